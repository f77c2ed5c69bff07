"""FF-A conformance of the S-EL1 SPMC core: retrieve (ffa_spec.md §4.4), relinquish and
reclaim (§4.5), zero-memory flags, RX buffer ownership and robustness. Same harness and
conventions as test_ffa_conformance.py (tests/tee_os/ffa_world.py)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ffa_world import (BASE, CLEAR, DATA, E, NORMAL, NS, NX, OPTEE, OTHER, PAGE, RO, RW, World,
                       _pending, code, refused, sp_refused)
from tee_os.spmc import build_mem_region, build_relinquish
from tee_os.spmc.descriptors import c


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
