"""FF-A conformance of the S-EL1 SPMC core, one test per rule of ffa_spec.md §4.3-§4.5.

Every refused call goes through ``Spmc.handle`` (or the secure OS's ``retrieve_for_sp`` /
``relinquish_for_sp`` for the borrower rules the normal world cannot reach) against an
in-memory normal world, and checks the exact FF-A error and that nothing changed: handles,
ownership, RX ownership, negotiated version (``Spmc.state_digest``).

Not modelled (no test): S29 / S30 / C4 (the NS sender always has RW on its own memory), S32 /
C2 / C8 (secure partitions never send memory here), S33 (the only NS endpoint is the sender,
so an NS receiver is S10), R16 (device memory is never accepted, S31), R23 (no deferred
reclaim).  C7 (OP-TEE: object in use) is C3: a retrieval is what "in use" means here.
"""
from __future__ import annotations

import inspect
import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from emu.events import EventBus
from tee_os.spmc import FfaError, Spmc, SpmcConfig, build_mem_region, build_relinquish
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


@pytest.fixture
def w():
    return World()


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


# ---- §4.3 DONATE / LEND / SHARE -------------------------------------------------------------

def test_S1_caller_buffer_malformed_or_not_ns(w):
    d = w.desc()
    w.put(d)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_LEND_64, len(d), len(d), 0, 1)   # w4 without x3
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_LEND_64, len(d), len(d), BASE + 0x3008, 1)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_LEND_64, len(d), len(d), 0x1000, 1)  # not NS
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_LEND_64, len(d), len(d), BASE + 0x3000, 0)


def test_S2_fragment_longer_than_total(w):
    d = w.desc()
    w.put(d)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_LEND_64, len(d) - 16, len(d), 0, 0)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_LEND_64, len(d), 0, 0, 0)


def test_S3_fragment_longer_than_the_buffer(w):
    d = w.desc(constituents=[(DATA + i * 2 * PAGE, 1) for i in range(300)])
    assert len(d) > PAGE
    w.put(d)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_LEND_64, len(d), len(d), 0, 0)
    v10 = World(version=(1, 0), map_pages=2)      # v1.0 callers: 4K per fragment at most
    d = v10.desc(constituents=[(DATA + i * 2 * PAGE, 1) for i in range(300)])
    v10.put(d)
    refused(v10, "INVALID_PARAMETERS", c.FFA_MEM_LEND_64, len(d), len(d), 0, 0)


def test_S4_no_rxtx_pair_mapped():
    w = World(map_pages=0)
    refused(w, "DENIED", desc=w.desc(), kind="lend")


@pytest.mark.parametrize("version,what", [((1, 2), {"header": 1}), ((1, 1), {"header": 1 << 88}),
                                          ((1, 0), {"header": 1}), ((1, 0), {"header_byte": 1}),
                                          ((1, 2), {"emad": 1}), ((1, 1), {"composite": 1}),
                                          ((1, 2), {"constituent": 1})])
def test_S5_reserved_fields_non_zero(version, what):
    w = World(version=version)
    refused(w, "INVALID_PARAMETERS", desc=w.desc(reserved=what), kind="lend")


def test_S5_emad_flags_on_send(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OPTEE, RW, 1)]), kind="lend")


@pytest.mark.parametrize("kw", [dict(emad_count=0), dict(emad_count=9),
                                dict(emad_offset=0x2000, emad_at=48),   # out of the fragment
                                dict(emad_offset=32, emad_at=48),       # < header size
                                dict(emad_offset=56, emad_at=56),       # not 16-byte aligned
                                dict(emad_size=16)])                    # v1.1 size, v1.2 caller
def test_S6_emad_count_offset_size(w, kw):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(**kw), kind="lend")


def test_S6_emad_size_must_match_the_version():
    w = World(version=(1, 1))
    refused(w, "INVALID_PARAMETERS", desc=w.desc(emad_size=32), kind="lend")
    d12 = build_mem_region((1, 2), NS, [(OPTEE, RW)], 0, 0, 0, [(DATA, 1)])
    refused(w, "INVALID_PARAMETERS", desc=d12, kind="lend")


@pytest.mark.parametrize("kw", [dict(composite_offset=0, composite_at=80),
                                dict(composite_offset=64, composite_at=64),  # inside the EMADs
                                dict(composite_offset=88, composite_at=88),  # unaligned
                                dict(composite_offset=0x1000, composite_at=80)])  # outside
def test_S7_composite_offset(w, kw):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(**kw), kind="lend")


def test_S7_composite_offset_differs_between_receivers(w):
    d = bytearray(w.desc(receivers=[(OPTEE, RW), (OTHER, RW)], attributes=NORMAL))
    d[48 + 32 + 4] += 16                        # second EMAD's composite offset
    refused(w, "INVALID_PARAMETERS", desc=bytes(d), kind="lend")


def test_S8_constituent_count_inconsistent_with_length(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(range_count=2), kind="lend")
    d = w.desc() + bytes(8)
    refused(w, "INVALID_PARAMETERS", desc=d, kind="lend")


def test_S9_sender_is_not_the_caller(w):
    d = build_mem_region((1, 2), 5, [(OPTEE, RW)], 0, 0, 0, [(DATA, 1)])
    refused(w, "DENIED", desc=d, kind="lend")


def test_S10_receiver_equals_sender(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(NS, RW)]), kind="lend")


def test_S11_receiver_repeated(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OPTEE, RW), (OPTEE, RW)],
                                                 attributes=NORMAL), kind="lend")


def test_S12_unknown_endpoint(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(0x8005, RW)]), kind="lend")
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(0x0003, RW)]), kind="lend")


def test_S13_donate_to_two_receivers(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OPTEE, 0), (OTHER, 0)]),
            kind="donate")


@pytest.mark.parametrize("perm", [3, 3 << 2 | RW, 0x10 | RW])
def test_S14_reserved_permission_values(w, perm):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OTHER, perm)]), kind="lend")


def test_S15_instruction_access_on_lend_or_share(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OTHER, RW | NX)]), kind="lend")
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OTHER, RW | NX)], attributes=NORMAL),
            kind="share")


def test_S16_data_access_missing_for_share_or_lend(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OTHER, 0)], attributes=NORMAL),
            kind="share")
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OTHER, 0)]), kind="lend")


def test_S17_data_access_given_for_donate(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OPTEE, RW)]), kind="donate")


def test_S18_ns_bit_or_reserved_attributes(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(attributes=NORMAL | c.FFA_MEMORY_SECURITY_MASK),
            kind="share")
    refused(w, "INVALID_PARAMETERS", desc=w.desc(attributes=1 << 8), kind="lend")


def test_S19_attributes_given_for_single_lend_or_donate(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(attributes=NORMAL), kind="lend")
    refused(w, "INVALID_PARAMETERS", desc=w.desc(attributes=NORMAL, receivers=[(OPTEE, 0)]),
            kind="donate")


def test_S20_share_or_multi_lend_not_normal_wb_is(w):
    refused(w, "DENIED", desc=w.desc(attributes=0), kind="share")
    wb_outer = NORMAL & ~c.FFA_MEMORY_SHAREABILITY_MASK | 2
    refused(w, "DENIED", desc=w.desc(attributes=wb_outer, receivers=[(OPTEE, RW), (OTHER, RW)]),
            kind="lend")


def test_S21_zero_flag_on_share(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(attributes=NORMAL, flags=CLEAR), kind="share")


@pytest.mark.parametrize("flags", [c.FFA_MEMORY_REGION_FLAG_TIME_SLICE, 1 << 5, 1 << 31,
                                   c.FFA_MEMORY_REGION_TRANSACTION_TYPE_LEND])
def test_S22_flag_bits_set(w, flags):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(flags=flags), kind="lend")


def test_S23_unaligned_constituent(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(constituents=[(DATA + 0x800, 1)]), kind="lend")


@pytest.mark.parametrize("cons", [[(DATA, 4), (DATA + 3 * PAGE, 1)], [(DATA, 2), (DATA, 2)],
                                  [(DATA, 2), (DATA + 4 * PAGE, 0)], [((1 << 64) - PAGE, 2)]])
def test_S24_overlapping_empty_or_overflowing_constituents(w, cons):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(constituents=cons), kind="lend")


def test_S25_page_count_mismatch(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(page_count=5), kind="lend")   # 5 declared, 4
    refused(w, "INVALID_PARAMETERS", desc=w.desc(page_count=3), kind="lend")   # 3 declared, 4


def test_S26_no_constituents(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(constituents=[]), kind="lend")


def test_S27_pages_donated_away(w):
    h = w.handle_of(w.send("donate"))
    w.spmc.retrieve_for_sp(h)
    refused(w, "DENIED", desc=w.desc(constituents=[(DATA + PAGE, 1)]), kind="lend")


@pytest.mark.parametrize("kind", ["share", "lend", "donate"])
def test_S28_range_already_lent(w, kind):
    w.handle_of(w.send("lend"))
    part = w.desc(constituents=[(DATA + 3 * PAGE, 2)],
                  attributes=NORMAL if kind == "share" else 0,
                  receivers=[(OPTEE, 0 if kind == "donate" else RW)])
    refused(w, "DENIED", desc=part, kind=kind)


def test_S31_device_memory(w):
    dev = (c.FFA_MEMORY_DEVICE_MEM << c.FFA_MEMORY_TYPE_OFFSET)
    refused(w, "DENIED", desc=w.desc(attributes=dev), kind="share")


def test_S34_lend_of_non_ns_memory(w):
    refused(w, "DENIED", desc=w.desc(constituents=[(0x0E00_0000, 1)]), kind="lend")
    refused(w, "DENIED", desc=w.desc(constituents=[(BASE + SIZE - PAGE, 2)]), kind="lend")
    refused(w, "DENIED", desc=w.desc(constituents=[(TX, 1)]), kind="lend")   # own RX/TX


def test_S34_override_gives_optee_49_code():
    w = World(error_overrides={"S34": c.FFA_INVALID_PARAMETERS})
    refused(w, "INVALID_PARAMETERS", desc=w.desc(constituents=[(0x0E00_0000, 1)]), kind="lend")


def test_S35_no_free_handle():
    w = World(max_handles=1)
    w.handle_of(w.send("lend"))
    refused(w, "NO_MEMORY", desc=w.desc(constituents=[(DATA + 8 * PAGE, 1)]), kind="lend")


def test_S36_too_many_fragments():
    w = World(max_fragments=2)
    d = w.desc(constituents=[(DATA + i * 2 * PAGE, 1) for i in range(3)])
    before = w.spmc.state_digest()
    r = w.send("lend", d[:-32], total=len(d))
    h = r[1] | (r[2] << 32)
    w.put(d[-32:-16])
    assert code(w.call(c.FFA_MEM_FRAG_TX, h & 0xFFFFFFFF, h >> 32, 16)) == E["NO_MEMORY"]
    assert w.spmc.state_digest() == before


def test_S37_protection_refused_by_the_platform(w):
    w.lend_rc = c.FFA_DENIED
    refused(w, "DENIED", desc=w.desc(), kind="lend")
    assert len(w.lent) == 1


def test_S38_descriptor_copy_fault(w):
    w.fail_reads = True
    d = w.desc()
    before = w.spmc.state_digest()
    assert code(w.call(c.FFA_MEM_LEND_64, len(d), len(d), 0, 0)) == E["ABORTED"]
    assert w.spmc.state_digest() == before


def test_O5_optee_emad_must_be_rw(w):
    refused(w, "INVALID_PARAMETERS", desc=w.desc(receivers=[(OPTEE, RO)]), kind="lend")


def test_O6_send_handle_without_hypervisor_bit(w):
    refused(w, "NO_MEMORY", desc=w.desc(handle=5), kind="lend")


def test_S_registers_w5_w7_mbz(w):
    d = w.desc()
    w.put(d)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_LEND_64, len(d), len(d), 0, 0, 1)


# ---- fragments ------------------------------------------------------------------------------

def _pending(w, n=300):
    d = w.desc(constituents=[(DATA + i * 2 * PAGE, 1) for i in range(n)])
    first = PAGE // 16 * 16
    r = w.send("lend", d[:first], total=len(d))
    assert r[0] == c.FFA_MEM_FRAG_RX and r[3] == first
    return d, first, r[1] | (r[2] << 32)


def test_F1_frag_tx_unknown_handle_or_nothing_pending(w):
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_FRAG_TX, 0x1234, 0, 16)
    d, first, h = _pending(w)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_FRAG_TX, (h + 1) & 0xFFFFFFFF, h >> 32, 16)
    w.put(d[first:])                            # the right handle still completes
    assert w.call(c.FFA_MEM_FRAG_TX, h & 0xFFFFFFFF, h >> 32, len(d) - first)[0] == \
        c.FFA_SUCCESS_32


def test_F2_frag_tx_for_complete_transaction(w):
    h = w.handle_of(w.send("lend"))
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_FRAG_TX, h & 0xFFFFFFFF, h >> 32, 16)


def test_F3_frag_tx_from_another_sender(w):
    d, first, h = _pending(w)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_FRAG_TX, h & 0xFFFFFFFF, h >> 32, 16, 5 << 16)


@pytest.mark.parametrize("flen", [8, 0x2000, 0])
def test_F3_bad_fragment_aborts_the_transaction(flen):
    w = World()
    before = w.spmc.state_digest()
    d, first, h = _pending(w)
    w.put(d[first:])
    r = w.call(c.FFA_MEM_FRAG_TX, h & 0xFFFFFFFF, h >> 32, flen)   # misaligned / too long
    assert code(r) == E["INVALID_PARAMETERS"]
    assert w.spmc.state_digest() == before and w.spmc.lookup(h) is None


def test_F3_bad_constituent_in_a_later_fragment_aborts(w):
    before = w.spmc.state_digest()
    d, first, h = _pending(w)
    w.put(build_mem_region((1, 2), NS, [], constituents=[(DATA, 1)])[-16:])  # overlaps frag 1
    assert code(w.call(c.FFA_MEM_FRAG_TX, h & 0xFFFFFFFF, h >> 32, 16)) == \
        E["INVALID_PARAMETERS"]
    assert w.spmc.state_digest() == before


def test_F4_retrieve_or_reclaim_before_all_fragments(w):
    d, first, h = _pending(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h, rule="R2")
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_RECLAIM, h & 0xFFFFFFFF, h >> 32, 0, rule="C1")


# ---- §4.4 retrieve --------------------------------------------------------------------------

def _lent(w, receivers=((OPTEE, RW),), kind="lend", flags=0, tag=3, **kw):
    attrs = NORMAL if kind == "share" or len(receivers) > 1 else 0
    return w.handle_of(w.send(kind, w.desc(receivers=receivers, attributes=attrs, flags=flags,
                                           tag=tag, **kw)))


def _req(h, receivers=((OPTEE, RW | NX),), flags=0, tag=3, sender=NS, attributes=0, **kw):
    return build_mem_region((1, 2), sender, receivers, attributes, flags, tag, None,
                            handle=h, **kw)


def _hyp_req(w, h, **kw):
    d = build_mem_region(w.version, 0, [], 0, 0, 0, None, handle=h, **kw)
    w.put(d)
    return w.call(c.FFA_MEM_RETRIEVE_REQ_64, len(d), len(d), 0, 0)


def test_R1_unknown_handle(w):
    refused(w, "INVALID_PARAMETERS", *_hyp_args(w, 0x1000_0000_0009))
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, 0x1000_0000_0009)


def _hyp_args(w, h):
    d = build_mem_region(w.version, 0, [], 0, 0, 0, None, handle=h)
    w.put(d)
    return (c.FFA_MEM_RETRIEVE_REQ_64, len(d), len(d), 0, 0)


def test_R2_sending_incomplete(w):
    d, first, h = _pending(w)
    refused(w, "INVALID_PARAMETERS", *_hyp_args(w, h))


def test_R3_request_length_or_layout(w):
    h = _lent(w)
    fid, total, frag, *_ = _hyp_args(w, h)
    refused(w, "INVALID_PARAMETERS", fid, total + 16, frag, 0, 0)      # fragment != total
    refused(w, "INVALID_PARAMETERS", fid, total + 16, total + 16, 0, 0)  # length != layout
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h,
               request=_req(h, reserved={"header": 1}))


def test_R4_sender_differs(w):
    h = _lent(w)
    sp_refused(w, "DENIED", w.spmc.retrieve_for_sp, h, request=_req(h, sender=5))


def test_R5_tag_mismatch(w):
    h = _lent(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h, request=_req(h, tag=4))


def test_R6_transaction_type_mismatch(w):
    h = _lent(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h,
               request=_req(h, flags=c.FFA_MEMORY_REGION_TRANSACTION_TYPE_SHARE))


def test_R7_caller_not_a_receiver(w):
    h = _lent(w)
    d = _req(h, receivers=[(NS, RW | NX)])       # the normal world as a borrower
    w.put(d)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_RETRIEVE_REQ_64, len(d), len(d), 0, 0)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h, endpoint=OTHER)


def test_R8_receiver_count_or_bypass_flag(w):
    h = _lent(w, receivers=[(OPTEE, RW), (OTHER, RW)])
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h, request=_req(h, [(OPTEE, RW)]))
    h1 = _lent(w, constituents=[(DATA + 64 * PAGE, 1)])
    bypass = c.FFA_MEMORY_REGION_FLAG_BYPASS_BORROWERS_CHECK
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h1, request=_req(h1, flags=bypass))
    assert w.spmc.retrieve_for_sp(h, request=_req(h, [(OPTEE, RW)], flags=bypass)) is not None


def test_R9_composite_offset_in_request(w):
    h = _lent(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h,
               request=_req(h, composite_offset=96))


@pytest.mark.parametrize("flags", [1 << 11, c.FFA_MEMORY_REGION_ADDRESS_RANGE_HINT_VALID,
                                   c.FFA_MEMORY_REGION_FLAG_TIME_SLICE])
def test_R10_hint_or_reserved_flags(w, flags):
    h = _lent(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h, request=_req(h, flags=flags))


@pytest.mark.parametrize("flag", [CLEAR, c.FFA_MEMORY_REGION_FLAG_CLEAR_RELINQUISH])
def test_R11_zero_flags_on_share(w, flag):
    h = _lent(w, kind="share")
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h,
               request=_req(h, [(OPTEE, RW)], flags=flag, attributes=NORMAL))


def test_R12_zero_requested_but_not_by_the_sender(w):
    h = _lent(w)
    sp_refused(w, "DENIED", w.spmc.retrieve_for_sp, h, request=_req(h, flags=CLEAR))


def test_R13_zero_flags_with_read_only_access(w):
    h = _lent(w, receivers=[(OTHER, RO)], flags=CLEAR)
    sp_refused(w, "DENIED", w.spmc.retrieve_for_sp, h, endpoint=OTHER,
               request=_req(h, [(OTHER, NX)], flags=CLEAR))


def test_R14_ns_bit_in_request(w):
    h = _lent(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h,
               request=_req(h, attributes=c.FFA_MEMORY_SECURITY_MASK))


def test_R15_attributes_not_normal_wb_is(w):
    h = _lent(w, kind="share")
    nc = NORMAL & ~c.FFA_MEMORY_CACHEABILITY_MASK | (1 << c.FFA_MEMORY_CACHEABILITY_OFFSET)
    sp_refused(w, "DENIED", w.spmc.retrieve_for_sp, h, request=_req(h, [(OPTEE, RW)],
                                                                     attributes=nc))


def test_R17_rw_requested_ro_sent(w):
    h = _lent(w, receivers=[(OTHER, RO)])
    sp_refused(w, "DENIED", w.spmc.retrieve_for_sp, h, endpoint=OTHER,
               request=_req(h, [(OTHER, RW | NX)]))


def test_R18_instruction_access_on_share(w):
    h = _lent(w, kind="share")
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h,
               request=_req(h, [(OPTEE, RW | NX)], attributes=NORMAL))


def test_R19_no_instruction_access_on_single_lend(w):
    h = _lent(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h, request=_req(h, [(OPTEE, RW)]))


def test_R20_executable_ns_memory(w):
    h = _lent(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h,
               request=_req(h, [(OPTEE, RW | c.FFA_MEM_ACC_EXE)]))


def test_R21_impdef_value_differs(w):
    h = _lent(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.retrieve_for_sp, h,
               request=_req(h, [(OPTEE, RW | NX, 0, 5)]))


def test_R22_retrieval_count_exceeded():
    w = World(retrieve_limit=1)
    h = _lent(w)
    w.spmc.retrieve_for_sp(h)
    sp_refused(w, "DENIED", w.spmc.retrieve_for_sp, h)
    assert _hyp_req(w, h)[0] == c.FFA_MEM_RETRIEVE_RESP
    w.call(c.FFA_RX_RELEASE)
    refused(w, "DENIED", *_hyp_args(w, h))       # one hypervisor retrieval per handle


def test_R24_rx_buffer_busy(w):
    h = _lent(w)
    assert w.call(c.FFA_PARTITION_INFO_GET)[0] == c.FFA_SUCCESS_32   # caller now owns RX
    refused(w, "BUSY", *_hyp_args(w, h))


def test_R25_zeroing_fails(w):
    h = _lent(w, flags=CLEAR)
    w.fail_writes = True
    sp_refused(w, "NO_MEMORY", w.spmc.retrieve_for_sp, h)


# ---- §4.5 relinquish and reclaim ------------------------------------------------------------

def _relinquish(w, desc):
    w.put(desc)
    return (c.FFA_MEM_RELINQUISH,)


def test_L1_endpoint_count(w):
    h = _lent(w)
    w.spmc.retrieve_for_sp(h)
    refused(w, "INVALID_PARAMETERS", *_relinquish(w, build_relinquish(h, [])))
    refused(w, "INVALID_PARAMETERS", *_relinquish(w, build_relinquish(h, [NS, NS])))


def test_L2_endpoint_is_not_the_caller(w):
    h = _lent(w)
    w.spmc.retrieve_for_sp(h)
    refused(w, "INVALID_PARAMETERS", *_relinquish(w, build_relinquish(h, [OPTEE])))


def test_L3_unknown_handle(w):
    refused(w, "INVALID_PARAMETERS", *_relinquish(w, build_relinquish(0x77, [NS])))
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.relinquish_for_sp, 0x77)


def test_L4_relinquish_by_a_non_borrower(w):
    h = _lent(w)
    w.spmc.retrieve_for_sp(h)
    refused(w, "INVALID_PARAMETERS", *_relinquish(w, build_relinquish(h, [NS])))
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.relinquish_for_sp, h, endpoint=OTHER)


def test_L5_not_retrieved(w):
    h = _lent(w)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.relinquish_for_sp, h)


def test_L6_zero_after_relinquish_on_share(w):
    h = _lent(w, kind="share")
    w.spmc.retrieve_for_sp(h)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.relinquish_for_sp, h, flags=CLEAR)


def test_L7_zero_with_read_only_access(w):
    h = _lent(w, receivers=[(OTHER, RO)])
    w.spmc.retrieve_for_sp(h, endpoint=OTHER)
    sp_refused(w, "DENIED", w.spmc.relinquish_for_sp, h, endpoint=OTHER, flags=CLEAR)


@pytest.mark.parametrize("flags", [c.FFA_MEMORY_REGION_FLAG_TIME_SLICE, 1 << 7])
def test_L8_reserved_flags(w, flags):
    h = _lent(w)
    w.spmc.retrieve_for_sp(h)
    sp_refused(w, "INVALID_PARAMETERS", w.spmc.relinquish_for_sp, h, flags=flags)
    refused(w, "INVALID_PARAMETERS", *_relinquish(w, build_relinquish(h, [NS], flags)))


def test_C1_reclaim_unknown_handle(w):
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_RECLAIM, 0x99, 0x1000, 0)
    h = _lent(w)
    w.spmc.retrieve_for_sp(h)                    # pages donated? no: still reclaimable later
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_RECLAIM, h & 0xFFFFFFFF, (h >> 32) + 1, 0)


def test_C3_reclaim_while_still_retrieved(w):
    h = _lent(w)
    w.spmc.retrieve_for_sp(h)
    w.spmc.retrieve_for_sp(h)
    refused(w, "DENIED", c.FFA_MEM_RECLAIM, h & 0xFFFFFFFF, h >> 32, 0)
    w.spmc.relinquish_for_sp(h)
    refused(w, "DENIED", c.FFA_MEM_RECLAIM, h & 0xFFFFFFFF, h >> 32, 0)
    w.spmc.relinquish_for_sp(h)
    assert w.reclaim(h)[0] == c.FFA_SUCCESS_32


@pytest.mark.parametrize("flags", [c.FFA_MEMORY_REGION_FLAG_TIME_SLICE, CLEAR | (1 << 2),
                                   1 << 31])
def test_C5_reclaim_invalid_flags(w, flags):
    h = _lent(w)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_RECLAIM, h & 0xFFFFFFFF, h >> 32, flags)


def test_C6_reclaim_w4_to_w7_non_zero(w):
    h = _lent(w)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_RECLAIM, h & 0xFFFFFFFF, h >> 32, 0, 1)
    refused(w, "INVALID_PARAMETERS", c.FFA_MEM_RECLAIM, h & 0xFFFFFFFF, h >> 32, 0, 0, 0, 0, 1)


def test_C9_reclaim_refused_by_the_platform(w):
    h = _lent(w)
    w.reclaim_rc = c.FFA_BUSY
    refused(w, "BUSY", c.FFA_MEM_RECLAIM, h & 0xFFFFFFFF, h >> 32, CLEAR)
    assert w.reclaimed == [(h, True)] and not w.spmc.lookup(h).clear_on_reclaim


# ---- zero-memory flag combinations that succeed ---------------------------------------------

def test_zero_flags_that_are_accepted(w):
    w.mem[DATA - BASE:DATA - BASE + 4 * PAGE] = b"\xAA" * 4 * PAGE
    h = _lent(w, flags=CLEAR)                    # zero before retrieval
    assert w.mem[DATA - BASE] == 0xAA
    w.spmc.retrieve_for_sp(h)
    assert not any(w.mem[DATA - BASE:DATA - BASE + 4 * PAGE])
    w.mem[DATA - BASE] = 0x55
    w.spmc.relinquish_for_sp(h, flags=CLEAR)     # zero after relinquish
    assert w.mem[DATA - BASE] == 0
    assert w.reclaim(h, CLEAR)[0] == c.FFA_SUCCESS_32
    assert w.reclaimed == [(h, True)]            # the platform scrubs on reclaim


def test_zero_on_reclaim_without_a_platform_hook():
    w = World()
    w.spmc.on_reclaim = None
    h = _lent(w, kind="share")
    w.mem[DATA - BASE] = 0x77
    assert w.reclaim(h, CLEAR)[0] == c.FFA_SUCCESS_32
    assert w.mem[DATA - BASE] == 0


# ---- RX buffer ownership ----------------------------------------------------------------------

def test_rx_release_twice(w):
    assert w.call(c.FFA_PARTITION_INFO_GET)[0] == c.FFA_SUCCESS_32
    assert w.call(c.FFA_RX_RELEASE)[0] == c.FFA_SUCCESS_32
    refused(w, "DENIED", c.FFA_RX_RELEASE)


def test_rx_release_without_buffers():
    refused(World(map_pages=0), "DENIED", c.FFA_RX_RELEASE)


def test_partition_info_get_while_rx_owned(w):
    assert w.call(c.FFA_PARTITION_INFO_GET)[0] == c.FFA_SUCCESS_32
    refused(w, "BUSY", c.FFA_PARTITION_INFO_GET)
    r = w.call(c.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, c.FFA_PARTITION_INFO_GET_COUNT_FLAG)
    assert r[:3] == (c.FFA_SUCCESS_32, 0, 2)     # count only needs no RX


# ---- robustness -------------------------------------------------------------------------------

VALID = build_mem_region((1, 2), NS, [(OPTEE, RW)], 0, 0, 1, [(DATA, 16), (DATA + 32 * PAGE, 8)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1,
                max_size=6),
       st.sampled_from([c.FFA_MEM_LEND_64, c.FFA_MEM_LEND_32, c.FFA_MEM_SHARE_64,
                        c.FFA_MEM_DONATE_32]))
def test_random_mutations_of_a_lend_never_raise(mutations, fid):
    w = World()
    d = bytearray(VALID)
    for pos, val in mutations:
        d[pos] = val
    w.put(bytes(d))
    before = w.spmc.state_digest()
    r = w.call(fid, len(d), len(d), 0, 0)
    assert r[0] in (c.FFA_SUCCESS_32, c.FFA_ERROR)
    if r[0] == c.FFA_ERROR:
        assert code(r) in E.values()
        assert w.spmc.state_digest() == before
    else:
        h = w.handle_of(r)
        assert w.spmc.lookup(h).complete
        assert w.reclaim(h)[0] == c.FFA_SUCCESS_32
        assert w.spmc.state_digest() == before
