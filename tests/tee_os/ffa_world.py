"""The in-memory normal world and the checking helpers of the FF-A conformance tests
(test_ffa_conformance*.py): one SPMC (tee_os.spmc) driven through ``Spmc.handle`` with real
descriptor bytes in a buffer standing for NS memory, and ``refused``/``sp_refused``, which check
the exact FF-A error, the rule that fired and that no state changed."""
from __future__ import annotations

import inspect
import re
import uuid

import pytest

from emu.events import EventBus
from tee_os.spmc import FfaError, Spmc, SpmcConfig, build_mem_region
from tee_os.spmc.descriptors import c, version_word

BASE, SIZE = 0x8000_0000, 0x80_0000
TX, RX = BASE, BASE + 0x1_0000
DATA = BASE + 0x10_0000
PAGE = c.FFA_PAGE_SIZE
OPTEE, OTHER, NS = 0x8001, 0x8002, 0
RW, RO = c.FFA_MEM_ACC_RW, c.FFA_MEM_ACC_RO
NX = c.FFA_MEM_ACC_NX
NORMAL = c.FFA_NORMAL_MEM_REG_ATTR
CLEAR = c.FFA_MEMORY_REGION_FLAG_CLEAR
E = {n: getattr(c, "FFA_" + n) for n in ("INVALID_PARAMETERS", "DENIED", "NO_MEMORY", "BUSY",
                                         "ABORTED", "NOT_SUPPORTED")}
SEND = {"share": c.FFA_MEM_SHARE_64, "lend": c.FFA_MEM_LEND_64, "donate": c.FFA_MEM_DONATE_64}


class World:
    """A normal world in a bytearray, an SPMC in front of it, version 1.2, RX/TX mapped."""

    def __init__(self, version=(1, 2), map_pages=1, **cfg):
        self.mem = bytearray(SIZE)
        self.fail_reads = self.fail_writes = False
        self.lent, self.reclaimed = [], []
        self.lend_rc = self.reclaim_rc = None
        cfg.setdefault("other_partitions", ((OTHER, uuid.UUID(int=7), 0),))
        self.bus = EventBus(record=10_000)
        self.spmc = Spmc(SpmcConfig(**cfg), read_ns=self.read, write_ns=self.write,
                         ns_ddr_range=self.ns_ddr, on_lend=self._on_lend,
                         on_reclaim=self._on_reclaim, bus=self.bus)
        self.version = version
        assert self.call(c.FFA_VERSION, version_word(version))[0] == c.FFA_VERSION_1_2
        if map_pages:
            assert self.call(c.FFA_RXTX_MAP_64, TX, RX, map_pages)[0] == c.FFA_SUCCESS_32

    def read(self, a, n):
        if self.fail_reads or not self.ns_ddr(a, n):
            raise ValueError(f"bus error at {a:#x}")
        return bytes(self.mem[a - BASE:a - BASE + n])

    def write(self, a, d):
        if self.fail_writes or not self.ns_ddr(a, len(d)):
            raise ValueError(f"bus error at {a:#x}")
        self.mem[a - BASE:a - BASE + len(d)] = d

    @staticmethod
    def ns_ddr(a, n):
        return n >= 0 and BASE <= a and a + n <= BASE + SIZE

    def _on_lend(self, tx):
        self.lent.append(tx.handle)
        return self.lend_rc

    def _on_reclaim(self, tx):
        self.reclaimed.append((tx.handle, tx.clear_on_reclaim))
        return self.reclaim_rc

    def call(self, *regs):
        return self.spmc.handle(tuple(regs))

    def put(self, data, at=TX):
        self.mem[at - BASE:at - BASE + len(data)] = data

    def desc(self, receivers=((OPTEE, RW),), attributes=0, flags=0, tag=0,
             constituents=((DATA, 4),), **kw):
        return build_mem_region(self.version, NS, receivers, attributes, flags, tag,
                                constituents, **kw)

    def send(self, kind="lend", desc=None, total=None, frag=None, addr=0, pages=0):
        desc = self.desc(attributes=NORMAL if kind == "share" else 0,
                         receivers=((OPTEE, 0 if kind == "donate" else RW),)) \
            if desc is None else desc
        self.put(desc, addr or TX)
        total = len(desc) if total is None else total
        return self.call(SEND[kind], total, len(desc) if frag is None else frag, addr, pages)

    def handle_of(self, r):
        assert r[0] == c.FFA_SUCCESS_32, r
        return r[2] | (r[3] << 32)

    def reclaim(self, h, flags=0, *more):
        return self.call(c.FFA_MEM_RECLAIM, h & 0xFFFFFFFF, h >> 32, flags, *more)


def code(r):
    assert r[0] == c.FFA_ERROR, [hex(v) for v in r]
    return r[2] - (1 << 32) if r[2] & (1 << 31) else r[2]


def _rule_of_caller():
    m = re.match(r"test_([SFRLCO]\d+)_", inspect.stack()[2].function)
    return m.group(1) if m else None


def refused(w, err, *regs, desc=None, kind=None, rule="test name"):
    """Send a call (or a descriptor); check the error, the rule that fired (by default the
    one the test is named after) and that no state changed."""
    rule = _rule_of_caller() if rule == "test name" else rule
    before = w.spmc.state_digest()
    r = w.send(kind, desc) if desc is not None else w.call(*regs)
    assert code(r) == E[err], r
    fired = w.bus.of_kind("ffa_call")[-1].fields["rule"]
    assert rule is None or fired == rule, fired
    assert w.spmc.state_digest() == before
    return r


def sp_refused(w, err, fn, *a, rule="test name", **kw):
    rule = _rule_of_caller() if rule == "test name" else rule
    before = w.spmc.state_digest()
    with pytest.raises(FfaError) as ei:
        fn(*a, **kw)
    assert ei.value.code == E[err], ei.value
    assert rule is None or ei.value.rule == rule, ei.value
    assert w.spmc.state_digest() == before
    return ei.value



def _pending(w, n=300):
    d = w.desc(constituents=[(DATA + i * 2 * PAGE, 1) for i in range(n)])
    first = PAGE // 16 * 16
    r = w.send("lend", d[:first], total=len(d))
    assert r[0] == c.FFA_MEM_FRAG_RX and r[3] == first
    return d, first, r[1] | (r[2] << 32)
