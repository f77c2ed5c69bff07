"""FF-A conformance of the S-EL1 SPMC core, one test per rule of ffa_spec.md §4.3 (send) and fragments;
retrieve, relinquish and reclaim (§4.4-§4.5) are in test_ffa_conformance_retrieve.py.

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

import pytest

from ffa_world import (BASE, CLEAR, DATA, E, NORMAL, NS, NX, OPTEE, OTHER, PAGE, RO, RW, SIZE, TX,
                       World, _pending, code, refused, sp_refused)
from tee_os.spmc import build_mem_region
from tee_os.spmc.descriptors import c


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
