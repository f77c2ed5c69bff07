"""FF-A descriptor builder and parser (tee_os.spmc.descriptors): round trips for the v1.0,
v1.1 and v1.2 layouts, golden bytes of the worked example of optee_ffa.md §11.4, and the
malformations the builder can produce on purpose."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings, strategies as st

from tee_os.spmc import (FfaError, Receiver, build_mem_region, build_partition_info,
                         build_relinquish, parse_mem_region, parse_partition_info,
                         parse_relinquish)
from tee_os.spmc.descriptors import (HDR_1_0, HDR_1_1, c, emad_size_of, header_size_of,
                                     parse_header, regs_to_uuid, uuid_to_regs, version_tuple,
                                     version_word)

P = 0x8800_0000
OPTEE = 0x8001
RW = c.FFA_MEM_ACC_RW
VERSIONS = [(1, 0), (1, 1), (1, 2)]

# optee_ffa.md §11.4: LEND of a 1 MiB chunk at P, one receiver (OP-TEE, RW), use case 1
GOLDEN = {
    (1, 0): (
        "0000" "00" "00" "00000000" "0000000000000000" "0100000000000000"
        "00000000" "01000000"                                   # reserved, ep_count = 1
        "0180" "02" "00" "30000000" "0000000000000000"          # EMAD @32, composite_off 48
        "00010000" "01000000" "0000000000000000"                # composite @48: 256 / 1
        "0000008800000000" "00010000" "00000000"),              # constituent @64: P / 256
    (1, 1): (
        "0000" "0000" "00000000" "0000000000000000" "0100000000000000"
        "10000000" "01000000" "30000000" + "00" * 12            # EMAD size 16, count 1, @48
        + "0180" "02" "00" "40000000" "0000000000000000"        # EMAD @48, composite_off 64
        "00010000" "01000000" "0000000000000000"
        "0000008800000000" "00010000" "00000000"),
    (1, 2): (
        "0000" "0000" "00000000" "0000000000000000" "0100000000000000"
        "20000000" "01000000" "30000000" + "00" * 12            # EMAD size 32
        + "0180" "02" "00" "50000000" + "00" * 16 + "0000000000000000"  # composite_off 80
        "00010000" "01000000" "0000000000000000"
        "0000008800000000" "00010000" "00000000"),
}


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_bytes_of_the_worked_example(version):
    d = build_mem_region(version, 0, [(OPTEE, RW)], 0, 0, 1, [(P, 256)])
    assert d.hex() == GOLDEN[version]
    assert len(d) == {(1, 0): 80, (1, 1): 96, (1, 2): 112}[version]
    r = parse_mem_region(d, version)
    assert (r.composite_offset, r.total_page_count, r.range_count) == \
        ({(1, 0): 48, (1, 1): 64, (1, 2): 80}[version], 256, 1)
    assert [(k.address, k.page_count) for k in r.constituents] == [(P, 256)]


def test_layout_constants_come_from_the_header():
    assert (HDR_1_0.size, HDR_1_1.size) == (header_size_of((1, 0)), header_size_of((1, 1)))
    assert [emad_size_of(v) for v in VERSIONS] == [16, 16, 32]
    assert version_word((1, 2)) == c.FFA_VERSION_1_2
    assert version_tuple(c.FFA_VERSION_1_1) == (1, 1)


endpoint = st.integers(0, 0xFFFF)
constituent = st.tuples(st.integers(0, (1 << 52) - 1).map(lambda a: a * 0x1000),
                        st.integers(1, 0xFFFF))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(VERSIONS), endpoint,
       st.lists(st.tuples(endpoint, st.integers(0, 0xFF), st.integers(0, 0xFF),
                          st.binary(min_size=16, max_size=16)), min_size=1, max_size=5),
       st.integers(0, 0xFF), st.integers(0, 0xFFFFFFFF), st.integers(0, (1 << 64) - 1),
       st.lists(constituent, min_size=0, max_size=20), st.integers(0, (1 << 64) - 1))
def test_round_trip(version, sender, receivers, attrs, flags, tag, cons, handle):
    d = build_mem_region(version, sender, receivers, attrs, flags, tag, cons, handle=handle)
    r = parse_mem_region(d, version)
    assert (r.sender, r.attributes, r.flags, r.tag, r.handle) == (sender, attrs, flags, tag,
                                                                 handle)
    assert r.emad_count == len(receivers) and r.reserved == 0
    for e, (ep, perm, fl, imp) in zip(r.emads, receivers):
        assert (e.receiver, e.permissions, e.flags, e.reserved) == (ep, perm, fl, 0)
        assert e.impdef == (imp if version >= (1, 2) else b"")
        assert e.composite_offset == r.composite_offset
    assert r.total_page_count == sum(n for _, n in cons)
    assert [(k.address, k.page_count, k.reserved) for k in r.constituents] == \
        [(a, n, 0) for a, n in cons]
    assert r.composite_offset % 16 == 0 and len(d) == r.composite_offset + 16 + 16 * len(cons)


def test_retrieve_request_form_has_no_composite():
    d = build_mem_region((1, 2), 0, [Receiver(OPTEE, RW | c.FFA_MEM_ACC_NX)], 0,
                         c.FFA_MEMORY_REGION_TRANSACTION_TYPE_LEND, 1, None, handle=0x1234)
    r = parse_mem_region(d, (1, 2))
    assert len(d) == 48 + 32 and r.handle == 0x1234 and r.emads[0].composite_offset == 0
    assert r.constituents == [] and r.range_count == 0


def test_malformations_on_request():
    d = build_mem_region((1, 1), 0, [(OPTEE, RW)], 0, 0, 0, [(P, 1)], emad_offset=0x2000,
                         emad_at=48, emad_size=24, emad_count=3,
                         reserved={"header": 5, "emad": 6, "composite": 7, "constituent": 8})
    h = parse_header(d, (1, 1))
    assert (h.emad_offset, h.emad_size, h.emad_count, h.reserved) == (0x2000, 24, 3, 5)
    good = parse_mem_region(build_mem_region((1, 1), 0, [(OPTEE, RW)], 0, 0, 0, [(P, 1)],
                                             reserved={"emad": 6, "composite": 7,
                                                       "constituent": 8}), (1, 1))
    assert (good.emads[0].reserved, good.composite_reserved,
            good.constituents[0].reserved) == (6, 7, 8)
    d = build_mem_region((1, 2), 0, [(OPTEE, RW)], 0, 0, 0, [(P, 4)], page_count=9,
                         range_count=2, composite_offset=96, composite_at=128)
    assert int.from_bytes(d[48 + 4:48 + 8], "little") == 96
    assert int.from_bytes(d[128:132], "little") == 9 and int.from_bytes(d[132:136], "little") == 2
    v10 = build_mem_region((1, 0), 0, [(OPTEE, RW)], 0, 0, 0, [(P, 1)],
                           reserved={"header_byte": 0xAB, "header": 0xCD})
    assert v10[3] == 0xAB and v10[24] == 0xCD
    assert len(build_mem_region((1, 2), 0, [(OPTEE, RW)], 0, 0, 0, [(P, 1)],
                                total_length=200)) == 200


@pytest.mark.parametrize("cut,rule", [(20, "S6"), (60, "S6"), (90, "S7"), (100, "S8")])
def test_parser_bounds_checks(cut, rule):
    d = build_mem_region((1, 2), 0, [(OPTEE, RW)], 0, 0, 1, [(P, 256)])
    with pytest.raises(FfaError) as ei:
        parse_mem_region(d[:cut], (1, 2))
    assert ei.value.rule == rule and ei.value.code == c.FFA_INVALID_PARAMETERS


def test_relinquish_round_trip():
    d = build_relinquish(0x1000_0000_0003, [OPTEE], c.FFA_MEMORY_REGION_FLAG_CLEAR)
    assert len(d) == 18
    assert parse_relinquish(d) == (0x1000_0000_0003, 1, [OPTEE])
    with pytest.raises(FfaError):
        parse_relinquish(build_relinquish(1, [OPTEE], endpoint_count=4))


@pytest.mark.parametrize("version,size", [((1, 0), 8), ((1, 1), 24), ((1, 2), 24)])
def test_partition_info_layouts(version, size):
    u = uuid.UUID("486178e0-e7f8-11e3-bc5e-0002a5d5c51b")
    data = build_partition_info(version, [(OPTEE, 4, 0x103, u), (0x8002, 1, 0, uuid.UUID(int=1))])
    assert len(data) == 2 * size
    first, second = parse_partition_info(data, version, 2)
    assert (first["id"], first["execution_context"], first["partition_properties"]) == \
        (OPTEE, 4, 0x103)
    assert first["uuid"] == (u if size == 24 else None) and second["id"] == 0x8002


def test_uuid_register_encoding_is_linux_export_uuid():
    u = uuid.UUID("486178e0-e7f8-11e3-bc5e-0002a5d5c51b")
    w = uuid_to_regs(u)
    assert w[0] == int.from_bytes(u.bytes[:4], "little") and regs_to_uuid(w) == u


def test_v1_2_lend_matches_what_the_linux_headers_lay_out():
    """Differential: the same LEND packed with the normal world's own struct layouts."""
    from emu.abi import linux_abi

    lx = linux_abi()
    hdr, emad = lx.struct("ffa_mem_region"), lx.struct("ffa_mem_region_attributes")
    comp, rng = lx.struct("ffa_composite_mem_region"), lx.struct("ffa_mem_region_addr_range")
    cons = [(P, 16), (P + 0x20_0000, 8)]
    comp_off = hdr.size + 2 * emad.size
    buf = bytearray(hdr.pack({"sender_id": 0, "attributes": 0, "flags": 0, "handle": 0,
                              "tag": 2, "ep_mem_size": emad.size, "ep_count": 2,
                              "ep_mem_offset": hdr.size}))
    for ep in (OPTEE, 0x8002):
        buf += emad.pack({"receiver": ep, "attrs": RW, "composite_off": comp_off})
    buf += comp.pack({"total_pg_cnt": 24, "addr_range_cnt": 2})
    for a, n in cons:
        buf += rng.pack({"address": a, "pg_cnt": n})
    assert build_mem_region((1, 2), 0, [(OPTEE, RW), (0x8002, RW)], 0, 0, 2, cons) == bytes(buf)
