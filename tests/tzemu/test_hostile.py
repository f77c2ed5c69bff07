"""Issue 10: a hostile normal world.  Stateful property tests (hypothesis) drive random
interleavings of Linux-level and register-level actions on both ABIs; after every rule the
invariant monitor (emu/invariants.py) must report nothing.

Bounded for CI: HOSTILE_EXAMPLES (default 12) examples of HOSTILE_STEPS (default 20) steps each.
"""
from __future__ import annotations

import errno
import os
import struct

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, consumes, invariant, precondition,
                                 rule)

import tzemu
from emu.faults import POINTS
from emu.invariants import InvariantMonitor, check_invariants, protected_ranges
from emu.tzc400_regs import REGION_ATTRIBUTES, REGION_BASE_LOW, REGION_ID_ACCESS, REGION_TOP_LOW
from linux_side.errors import LinuxError
from linux_side.teec import (TEEC_MEMREF_PARTIAL_INOUT, TEEC_MEMREF_PARTIAL_INPUT,
                             TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_TEMP_INPUT,
                             TEEC_MEMREF_WHOLE, TEEC_NONE, TEEC_VALUE_INOUT, Operation,
                             RegMemref, TeecError, TempMemref, Value, dma_heap_alloc)

ECHO = "7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31"
SDP = "12345678-5b69-11e4-9dbb-101f74f00099"
HEAP = "/dev/dma_heap/protected,secure-video"
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "12"))
STEPS = int(os.environ.get("HOSTILE_STEPS", "20"))
SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                    suppress_health_check=list(HealthCheck), derandomize=True)
U64 = st.integers(0, (1 << 64) - 1)
# Fast calls and unknown function ids; yielding calls (0x32000003/4/12/13) are left to the
# register-level tests: a random one may park a secure thread in RPC forever.
YIELDING = {0x32000003, 0x32000004, 0x32000012, 0x32000013, 0x32000008}
FIDS = st.one_of(st.sampled_from([0x80000000, 0x84000000, 0x8400000A, 0xB2000000, 0xB2000001,
                                  0xB2000005, 0xB2000007, 0xB2000009, 0xB200000B, 0xB200000C,
                                  0xBF00FF01, 0xBF00FF02, 0xBF00FF03, 0x8200000F, 0xC4000061,
                                  0x84000063, 0x84000071, 0x84000064]),
                 st.integers(0, 0xFFFFFFFF)).filter(lambda f: f not in YIELDING)


def _tzc_snapshot(p):
    return [(r.base, r.top, r.s_rd, r.s_wr, r.filters, r.nsaid_rd, r.nsaid_wr)
            for r in p.tzc.regions()]


def _ns_ok(p, pa: int, n: int, write: bool) -> bool:
    """Does the firewall let the NS CPU do this access (every page)?"""
    need = 2 if write else 1
    page = pa & ~0xFFF
    while page < pa + n:
        if not p.access.page_prot(page, secure=False, nsaid=p.access.cpu_nsaid) & need:
            return False
        page += 0x1000
    return True


class HostileLinux(RuleBasedStateMachine):
    """Linux-level and register-level actions by a hostile normal world."""

    BOOT: dict = {}
    fds = Bundle("fds")
    shms = Bundle("shms")
    sessions = Bundle("sessions")

    def __init__(self):
        super().__init__()
        self.p = tzemu.boot(**self.BOOT)
        self.mon = InvariantMonitor(self.p, expected=(TeecError,))
        self.ctx = self.p.linux.teec()
        self.scratch = self.p.kernel.pages.alloc(0x2000)
        self.live_fds: set[int] = set()

    def teardown(self):
        self.mon.close()

    # --- heap / dma-buf -------------------------------------------------------------------------
    @rule(target=fds, pages=st.sampled_from([1, 2, 4, 16, 64, 255, 256, 257, 1 << 20]))
    def alloc(self, pages):
        try:
            with self.mon.guard("dma_heap_alloc"):
                fd = dma_heap_alloc(self.p.kernel, HEAP, pages * 0x1000)
        except LinuxError:
            return -1
        assert fd not in self.live_fds, f"fd {fd} handed out twice"
        self.live_fds.add(fd)
        return fd

    # --- fault injection (emu/faults.py): a component fails at its next hit(s) -----------------
    @rule(point=st.sampled_from(sorted(POINTS)), nth=st.integers(1, 3))
    def inject(self, point, nth):
        """Arm one point in the world that owns it; the rules that follow must see only
        documented errors, and the invariants must hold."""
        world = "linux" if point in ("cma.alloc", "supplicant.shm_alloc") else "secure"
        self.p.faults[world].arm(point, nth)

    @rule(fd=consumes(fds))
    def close_fd(self, fd):
        if fd < 0:
            return
        self.live_fds.discard(fd)
        with self.mon.guard("close"):
            self.p.kernel.close(fd)

    @rule(target=shms, fd=fds)
    def register_fd(self, fd):
        try:
            with self.mon.guard("register_fd"):
                return self.ctx.register_shared_memory_fd(fd if fd >= 0 else 0x7F)
        except TeecError:
            return None

    @rule(fd=st.integers(-3, 64))
    def register_random_fd(self, fd):
        try:
            with self.mon.guard("register_fd"):
                shm = self.ctx.register_shared_memory_fd(fd)
        except TeecError:
            return
        self.ctx.release_shared_memory(shm)

    @rule(shm=consumes(shms))
    def release(self, shm):
        if shm is not None:
            with self.mon.guard("release"):
                self.ctx.release_shared_memory(shm)

    # --- sessions --------------------------------------------------------------------------------
    @rule(target=sessions, uuid=st.sampled_from([ECHO, SDP]))
    def open_session(self, uuid):
        try:
            with self.mon.guard("open_session"):
                return self.ctx.open_session(uuid)
        except (TeecError, LinuxError):
            return None

    @rule(sess=consumes(sessions))
    def close_session(self, sess):
        if sess is not None:
            with self.mon.guard("close_session"):
                sess.close()

    @rule(sess=sessions, shm=shms, cmd=st.integers(0, 9),
          kind=st.sampled_from([TEEC_MEMREF_PARTIAL_INOUT, TEEC_MEMREF_PARTIAL_INPUT,
                                TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_WHOLE]),
          offset=st.one_of(st.integers(0, 0x5000), U64), size=st.one_of(st.integers(0, 0x5000), U64))
    def invoke_memref(self, sess, shm, cmd, kind, offset, size):
        if sess is None or shm is None:
            return
        op = Operation((kind, TEEC_VALUE_INOUT, TEEC_NONE, TEEC_NONE),
                       [RegMemref(shm, offset, size), Value(offset & 0xFFFFFFFF, 1), None, None])
        try:
            with self.mon.guard("invoke"):
                sess.invoke(cmd, op, check=False)
        except (TeecError, LinuxError):
            pass

    @rule(sess=sessions, cmd=st.integers(0, 9), data=st.binary(max_size=64))
    def invoke_temp(self, sess, cmd, data):
        if sess is None:
            return
        op = Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_INOUT, TEEC_NONE, TEEC_NONE),
                       [TempMemref(data or None, size=len(data)), Value(41), None, None])
        try:
            with self.mon.guard("invoke"):
                sess.invoke(cmd, op, check=False)
        except (TeecError, LinuxError):
            pass

    @rule(sess=sessions, shm=shms, offset=st.integers(0, 0x3000), n=st.integers(1, 0x1000))
    def sdp_transform(self, sess, shm, offset, n):
        """The real SDP round trip (inject, transform, dump) where it fits."""
        if sess is None or shm is None:
            return
        for cmd, kind in ((1, TEEC_MEMREF_PARTIAL_INOUT),):
            try:
                with self.mon.guard("transform"):
                    sess.invoke(cmd, Operation((kind,) + (TEEC_NONE,) * 3,
                                               [RegMemref(shm, offset, n), None, None, None]),
                                check=False)
            except (TeecError, LinuxError):
                pass

    # --- raw registers, raw memory ----------------------------------------------------------------
    @rule(fid=FIDS, args=st.lists(U64, min_size=7, max_size=7))
    def raw_smc(self, fid, args):
        with self.mon.guard(f"smc {fid:#x}"):
            self.p.smc(fid, *args)

    def _address(self, data, write: bool):
        ranges = protected_ranges(self.p)
        choice = data.draw(st.sampled_from(["protected", "scratch", "random"] +
                                           ([] if write else ["ns_dram"])))
        if choice == "protected" and ranges:
            _, base, size, _ = data.draw(st.sampled_from(ranges))
            return base + data.draw(st.integers(0, size - 1)) & ~7
        if choice == "scratch":
            return self.scratch + data.draw(st.integers(0, 0x1FF8))
        if choice == "ns_dram":
            return data.draw(st.integers(0x40000000, 0x5FFFFFF8))
        pa = data.draw(st.integers(0, (1 << 40) - 8))
        if write and _ns_ok(self.p, pa, 8, True):
            return self.scratch            # never scribble over the kernel's own memory
        return pa

    @rule(data=st.data(), write=st.booleans())
    def ns_access(self, data, write):
        p = self.p
        pa = self._address(data, write)
        n = data.draw(st.sampled_from([1, 4, 8]))
        ok = _ns_ok(p, pa, n, write)
        before = p.physmem.read(pa, n) if p.access.region_of(pa) and \
            p.access.region_of(pa).kind == "ram" else None
        try:
            with self.mon.guard("ns access"):
                if write:
                    p.ns_write(pa, b"\xa5" * n)
                else:
                    p.ns_read(pa, n)
        except tzemu.ProtectionFault:
            assert not ok, f"NS {'write' if write else 'read'} of {pa:#x} faulted but is allowed"
            if before is not None:
                assert p.physmem.read(pa, n) == before, "a denied store changed memory"
            return
        assert ok, f"NS {'write' if write else 'read'} of protected/secure {pa:#x} succeeded"

    @rule(reg=st.sampled_from(["base", "top", "attr", "id", "action", "gate", "random"]),
          region=st.integers(0, 8), value=st.integers(0, 0xFFFFFFFF), off=st.integers(0, 0xFFC))
    def tzc_reprogram(self, reg, region, value, off):
        p = self.p
        offset = {"base": REGION_BASE_LOW(region), "top": REGION_TOP_LOW(region),
                  "attr": REGION_ATTRIBUTES(region), "id": REGION_ID_ACCESS(region),
                  "action": 0x004, "gate": 0x008, "random": off & ~3}[reg]
        before = _tzc_snapshot(p)
        with pytest.raises(tzemu.ProtectionFault):
            p.ns_write(p.tzc_base + offset, struct.pack("<I", value))
        with pytest.raises(tzemu.ProtectionFault):
            p.ns_read(p.tzc_base + offset, 4)
        assert _tzc_snapshot(p) == before, "the normal world reprogrammed the TZC-400"

    @invariant()
    def invariants_hold(self):
        errs = self.mon.check()
        assert errs == [], "\n".join(errs)


class HostileSmcDynamic(HostileLinux):
    BOOT = {"abi": "smc", "protmem": "dynamic"}


class HostileSmcStatic(HostileLinux):
    BOOT = {"abi": "smc", "protmem": "static"}


class HostileFfaDynamic(HostileLinux):
    BOOT = {"abi": "ffa", "protmem": "dynamic"}

    @rule(fid=st.sampled_from([0x84000063, 0x84000064, 0x84000065, 0x8400006F, 0x84000070,
                               0x84000071, 0xC4000071, 0x84000073, 0x84000079, 0x8400007A,
                               0x84000072, 0x84000067, 0x84000061, 0x84000068]),
          args=st.lists(U64, min_size=7, max_size=7))
    def raw_ffa(self, fid, args):
        """FF-A calls with random registers, without touching the driver's mailbox."""
        if fid in (0x84000067, 0x84000061):     # RXTX_UNMAP / RX_RELEASE: the driver's state
            return
        with self.mon.guard(f"ffa {fid:#x}"):
            self.p.smc(fid, *args)


TestHostileSmcDynamic = HostileSmcDynamic.TestCase
TestHostileSmcDynamic.settings = SETTINGS
TestHostileSmcStatic = HostileSmcStatic.TestCase
TestHostileSmcStatic.settings = SETTINGS
TestHostileFfaDynamic = HostileFfaDynamic.TestCase
TestHostileFfaDynamic.settings = SETTINGS


# --- register-level FF-A: random and mutated memory descriptors ---------------------------------
OPTEE, RW = 0x8001, 0x02
FFA_OVERRIDES = st.fixed_dictionaries({}, optional={
    "emad_size": st.sampled_from([0, 8, 16, 32, 48, 0xFFFFFFFF]),
    "emad_count": st.sampled_from([0, 2, 3, 0xFFFFFFFF]),
    "emad_offset": st.sampled_from([0, 8, 16, 32, 47, 48, 64, 0xFFFF0000]),
    "composite_offset": st.sampled_from([0, 4, 16, 64, 96, 0xFFFFFFF0]),
    "page_count": st.integers(0, 0x1_0000_0000),
    "range_count": st.sampled_from([0, 2, 0xFFFFFFFF]),
    "reserved": st.fixed_dictionaries({}, optional={
        k: st.integers(1, 0xFF) for k in ("header", "emad", "composite", "constituent")}),
    "total_length": st.integers(0, 256),
})


class HostileFfaRaw(RuleBasedStateMachine):
    """FFA_MEM_LEND / SHARE / DONATE / FRAG_TX / RECLAIM from the NS endpoint with valid,
    random and mutated descriptors (every version layout), plus protmem assignment calls."""

    handles = Bundle("handles")

    def __init__(self):
        super().__init__()
        self.p = tzemu.boot(abi="ffa", probe_linux=False, protmem="dynamic")
        self.mon = InvariantMonitor(self.p)
        self.f = self.p.ffa
        self.f.version(1, 2)
        assert self.f.map_rxtx().ok
        self.cma = self.p.memory_map.cma_base

    def teardown(self):
        self.mon.close()

    def _send(self, op, desc, frag=None):
        f = self.f
        desc = desc[:f.pages * 0x1000]
        with self.mon.guard("ffa mem"):
            r = {"lend": f.lend, "share": f.share, "donate": f.donate}[op](desc, frag)
        return r.handle if r.ok else None

    @rule(target=handles, op=st.sampled_from(["lend", "share", "lend", "donate"]),
          version=st.sampled_from([(1, 0), (1, 1), (1, 2)]),
          tag=st.sampled_from([0, 1, 2, 3, 7]),
          perm=st.sampled_from([RW, 0x01, 0x03, 0x06, 0x00]),
          receiver=st.sampled_from([OPTEE, OPTEE, 0x8002, 0x0000, 0xFFFF]),
          cons=st.lists(st.tuples(st.integers(0, 0x7F), st.integers(0, 300)), min_size=0, max_size=3),
          base=st.sampled_from(["cma", "secure", "random", "tx"]),
          attrs=st.sampled_from([0x2F, 0x00, 0x24, 0xFF]), flags=st.sampled_from([0, 1, 2, 0x1F]),
          overrides=FFA_OVERRIDES, frag=st.one_of(st.none(), st.integers(0, 96)))
    def mem_send(self, op, version, tag, perm, receiver, cons, base, attrs, flags, overrides, frag):
        origin = {"cma": self.cma, "secure": 0x0E100000, "tx": self.f.tx,
                  "random": 0x40000000}[base]
        constituents = [(origin + i * 0x10000, n) for i, n in cons]
        try:
            desc = self.f.build([(receiver, perm)], constituents, version=version, tag=tag,
                                attributes=attrs, flags=flags, **overrides)
        except (ValueError, OverflowError, struct.error):
            return None
        return self._send(op, desc, frag)

    @rule(target=handles, data=st.binary(min_size=0, max_size=200), op=st.sampled_from(["lend", "share"]))
    def mem_send_random_bytes(self, data, op):
        return self._send(op, data)

    @rule(target=handles, pages=st.sampled_from([16, 256]), tag=st.sampled_from([1, 2]),
          at=st.integers(0, 15))
    def lend_valid(self, pages, tag, at):
        desc = self.f.build([(OPTEE, RW)], [(self.cma + at * 0x100000, pages)], tag=tag,
                            attributes=0x2F)
        return self._send("lend", desc)

    @rule(handle=handles, data=st.binary(max_size=64))
    def frag_tx(self, handle, data):
        if handle is not None:
            with self.mon.guard("frag_tx"):
                self.f.frag_tx(handle, data)

    @rule(handle=st.one_of(handles, U64), flags=st.sampled_from([0, 1, 2, 0xFFFFFFFF]))
    def reclaim(self, handle, flags):
        if handle is not None:
            with self.mon.guard("reclaim"):
                self.f.reclaim(handle, flags)

    @rule(handle=st.one_of(handles, U64), service=st.sampled_from([11, 12, 0, 2, 3, 99]),
          arg=U64)
    def optee_service(self, handle, service, arg):
        if handle is None:
            return
        f = self.f
        with self.mon.guard("optee ffa"):
            if service == 12:
                f.release_protmem(handle)
            else:
                f.optee(service, handle & 0xFFFFFFFF, handle >> 32, arg & 0xFFFFFFFF)

    @rule(data=st.data())
    def ns_probe(self, data):
        ranges = protected_ranges(self.p)
        if not ranges:
            return
        _, base, size, _ = data.draw(st.sampled_from(ranges))
        pa = base + data.draw(st.integers(0, size - 8)) & ~7
        with pytest.raises(tzemu.ProtectionFault):
            self.p.ns_read(pa, 8)

    @invariant()
    def invariants_hold(self):
        errs = self.mon.check()
        assert errs == [], "\n".join(errs)


TestHostileFfaRaw = HostileFfaRaw.TestCase
TestHostileFfaRaw.settings = SETTINGS


# --- the checker itself catches what it claims to ---------------------------------------------
def _secure_tzc_write(p, offset, value):
    p.tzc.write(offset, 4, value, world="S-EL1")


def test_checker_is_clean_after_boot_on_every_configuration():
    for boot in ({}, {"protmem": "static"}, {"protmem": "dynamic"},
                 {"abi": "ffa", "protmem": "dynamic"}):
        assert check_invariants(tzemu.boot(**boot)) == [], boot


def test_checker_flags_an_opened_protected_range():
    p = tzemu.boot(protmem="static")
    n = next(r.index for r in p.tzc.regions() if r.index >= 2 and r.filters)
    _secure_tzc_write(p, REGION_ID_ACCESS(n), 0xFFFFFFFF)        # every NSAID read/write
    errs = check_invariants(p)
    assert any(e.startswith("(a) NS cpu") for e in errs), errs


def test_checker_flags_a_tzc_region_without_a_protected_range():
    p = tzemu.boot(protmem="dynamic")
    m = InvariantMonitor(p)
    _secure_tzc_write(p, REGION_BASE_LOW(5), 0x50000000)
    _secure_tzc_write(p, REGION_TOP_LOW(5), 0x500FFFFF)
    _secure_tzc_write(p, REGION_ATTRIBUTES(5), 0xC0000001)
    errs = m.check()
    assert any("fences no protected range" in e for e in errs), errs


def test_checker_flags_an_unscrubbed_reclaim():
    p = tzemu.boot(protmem="dynamic")
    m = InvariantMonitor(p)
    p.bus.emit("protmem_reclaim", "S-EL1", pa=p.memory_map.cma_base, size=0x1000)
    assert m.check() == []
    p.physmem.write(p.memory_map.cma_base, b"secret")
    p.bus.emit("protmem_reclaim", "S-EL1", pa=p.memory_map.cma_base, size=0x1000)
    assert any(e.startswith("(b)") for e in m.check())


def test_checker_flags_an_escaped_exception():
    p = tzemu.boot()
    m = InvariantMonitor(p)
    with pytest.raises(tzemu.ProtectionFault):
        with m.guard("expected"):
            p.ns_read(0x0E100000, 4)
    assert m.check() == []
    with pytest.raises(KeyError):
        with m.guard("bug"):
            raise KeyError("boom")
    assert any(e.startswith("(e) bug") for e in m.check())


def test_checker_flags_a_shm_id_reused_while_referenced():
    p = tzemu.boot()
    m = InvariantMonitor(p)
    ctx = p.linux.teec()
    shm = ctx.allocate_shared_memory(0x1000)
    assert m.check() == []
    table = p.kernel.optee.shm_table
    old = table.by_id[shm.id]
    import copy
    table.by_id[shm.id] = copy.copy(old)          # a second object under the same live id
    assert any("reused while" in e for e in m.check())
    table.by_id[shm.id] = old


# --- findings --------------------------------------------------------------------------------
def test_teec_invoke_does_not_leak_user_pages():
    """Found by bench/soak.py: Context._call leaked its ioctl argument page on every call."""
    p = tzemu.boot()
    ctx = p.linux.teec()
    sess = ctx.open_session(ECHO)
    op = lambda: Operation((TEEC_VALUE_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE),  # noqa: E731
                           [Value(1), None, None, None])
    sess.invoke(0, op())
    before = len(p.kernel.user.pages)
    for _ in range(20):
        sess.invoke(0, op())
    free = p.kernel.pages.free_bytes
    for _ in range(20):
        sess.invoke(0, op())
    assert len(p.kernel.user.pages) == before, \
        f"{len(p.kernel.user.pages) - before} user pages left mapped by 20 invokes"
    assert p.kernel.pages.free_bytes == free, "kernel pages not given back after invokes"


def test_munmap_of_an_address_that_is_not_a_mapping_start_is_einval_and_changes_nothing():
    p = tzemu.boot()
    va = p.kernel.user_alloc(0x2000)
    free = p.kernel.pages.free_bytes
    with pytest.raises(OSError) as err:
        p.kernel.user_free(va + 0x1000)
    assert err.value.errno == errno.EINVAL and p.kernel.pages.free_bytes == free
    p.kernel.user_free(va)
    assert p.kernel.pages.free_bytes == free + 0x2000
    with pytest.raises(OSError):
        p.linux.user_read(va, 1)
