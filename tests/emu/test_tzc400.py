"""TZC-400 model: register frame, region matching against a reference predicate, failure latching."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings, strategies as st

from emu import tzc400 as T
from emu.events import EventBus
from emu.tzc400 import Tzc400, TzcResponse

NS = 0x40000000
PAGE = 0x1000


def make(filters: int = 1, **kw) -> tuple[Tzc400, EventBus]:
    bus = EventBus(record=10_000)
    return Tzc400(filters=filters, bus=bus, **kw), bus


def program(tzc: Tzc400, n: int, base: int, top: int, attr: int, ident: int) -> None:
    """The TF-A sequence: disable, base, top, id access, attributes."""
    tzc.write(T.REGION_ATTRIBUTES(n), 4, 0)
    tzc.write(T.REGION_BASE_LOW(n), 4, base & 0xFFFFFFFF)
    tzc.write(T.REGION_BASE_HIGH(n), 4, base >> 32)
    tzc.write(T.REGION_TOP_LOW(n), 4, top & 0xFFFFFFFF)
    tzc.write(T.REGION_TOP_HIGH(n), 4, top >> 32)
    tzc.write(T.REGION_ID_ACCESS(n), 4, ident)
    tzc.write(T.REGION_ATTRIBUTES(n), 4, attr)


def open_gates(tzc: Tzc400, mask: int = 0xF) -> None:
    tzc.write(T.GATE_KEEPER, 4, mask & ((1 << tzc.filters) - 1))


# ---- register frame ---------------------------------------------------------------------------
def test_build_config_and_ids():
    tzc, _ = make(filters=4, address_width=40, regions=9)
    assert tzc.read(T.BUILD_CONFIG) == 0x03002708
    assert Tzc400(filters=1, address_width=32, regions=5).read(T.BUILD_CONFIG) == 0x00001F04
    cid = sum(tzc.read(T.CID0 + 4 * i) << (8 * i) for i in range(4))
    assert cid == 0xB105F00D == T.COMPONENT_ID
    assert tzc.read(T.PID0) | (tzc.read(T.PID1) & 0xF) << 8 == 0x460
    with pytest.raises(ValueError):
        Tzc400(filters=5)


def test_reset_values():
    tzc, _ = make(filters=2, address_width=40)
    assert tzc.read(T.ACTION) == 0 and tzc.read(T.GATE_KEEPER) == 0
    assert tzc.read(T.SPECULATION_CTRL) == 0 and tzc.read(T.INT_STATUS) == 0
    assert tzc.read(T.REGION_BASE_LOW(0)) == 0 and tzc.read(T.REGION_BASE_HIGH(0)) == 0
    assert tzc.read(T.REGION_TOP_LOW(0)) == 0xFFFFFFFF and tzc.read(T.REGION_TOP_HIGH(0)) == 0xFF
    assert tzc.read(T.REGION_ATTRIBUTES(0)) == 0x3           # filter_en: all filters, no secure
    assert tzc.read(T.REGION_ID_ACCESS(0)) == 0
    for n in range(1, 9):
        assert tzc.read(T.REGION_ATTRIBUTES(n)) == 0 and tzc.read(T.REGION_ID_ACCESS(n)) == 0
    assert not tzc.permits(NS, 4, write=False, secure=True, nsaid=0)


def test_read_only_registers_ignore_writes():
    tzc, bus = make()
    for off in (T.BUILD_CONFIG, T.INT_STATUS, T.PID0, T.CID3, T.FAIL_ADDRESS_LOW(0),
                T.FAIL_CONTROL(0), T.FAIL_ID(0)):
        before = tzc.read(off)
        tzc.write(off, 4, 0x12345678)
        assert tzc.read(off) == before
    names = [e.fields["register"] for e in bus.of_kind("tzc_ignored_write")]
    assert names == ["BUILD_CONFIG", "INT_STATUS", "PID0", "CID3", "FAIL_ADDRESS_LOW(0)",
                     "FAIL_CONTROL(0)", "FAIL_ID(0)"]
    assert not bus.of_kind("tzc_program")


def test_int_clear_is_write_only_and_bad_accesses():
    tzc, bus = make()
    assert tzc.read(T.INT_CLEAR) == 0
    assert bus.of_kind("tzc_bad_access")[-1].fields["reason"] == "INT_CLEAR is write-only"
    bus.clear()
    assert tzc.read(T.ACTION + 1) == 0 and tzc.read(T.ACTION, 2) == 0
    assert tzc.read(T.ACTION, 8) == 0 and tzc.read(0x1000) == 0    # 8-byte needs 8-aligned
    tzc.write(T.ACTION, 2, 3)
    tzc.write(T.ACTION + 2, 4, 3)
    assert tzc.read(T.ACTION) == 0
    assert len(bus.of_kind("tzc_bad_access")) == 6
    assert tzc.read(0x0F00) == 0                                          # reserved: RAZ
    assert bus.of_kind("tzc_bad_access")[-1].fields["reason"] == "reserved offset"


def test_region0_base_top_read_only_and_filter_en():
    tzc, bus = make(filters=2)
    for off in (T.REGION_BASE_LOW(0), T.REGION_BASE_HIGH(0), T.REGION_TOP_LOW(0),
                T.REGION_TOP_HIGH(0)):
        before = tzc.read(off)
        tzc.write(off, 4, 0x5000)
        assert tzc.read(off) == before
    assert len(bus.of_kind("tzc_ignored_write")) == 4
    tzc.write(T.REGION_ATTRIBUTES(0), 4, 0xC0000000 | 0x1)   # filter bits are not writable
    assert tzc.read(T.REGION_ATTRIBUTES(0)) == 0xC0000003
    ign = bus.of_kind("tzc_ignored_write")[-1].fields
    assert ign["register"] == "REGION_ATTRIBUTES(0)" and ign["value"] == 0x1
    tzc.write(T.REGION_ID_ACCESS(0), 4, 0x00010001)
    r0 = tzc.regions()[0]
    assert (r0.s_rd, r0.s_wr, r0.filters, r0.nsaid_rd, r0.nsaid_wr) == (True, True, 3, 1, 1)
    assert r0.base == 0 and r0.top == (1 << 40) - 1


def test_unaligned_base_and_top():
    tzc, bus = make()
    tzc.write(T.REGION_BASE_LOW(1), 4, NS + 0x123)
    tzc.write(T.REGION_TOP_LOW(1), 4, NS + 0x2000)          # exclusive-end bug: rounded up
    assert tzc.read(T.REGION_BASE_LOW(1)) == NS
    assert tzc.read(T.REGION_TOP_LOW(1)) == NS + 0x2FFF
    assert [e.fields["what"] for e in bus.of_kind("tzc_misuse")] == ["unaligned_base",
                                                                     "unaligned_top"]
    tzc.write(T.REGION_ID_ACCESS(1), 4, 1)
    tzc.write(T.REGION_ATTRIBUTES(1), 4, 0x1)
    open_gates(tzc)
    assert tzc.permits(NS + 0x2FFF, 1, write=False, secure=False, nsaid=0)   # one page more
    assert not tzc.permits(NS + 0x3000, 1, write=False, secure=False, nsaid=0)


def test_gatekeeper_and_speculation():
    tzc, _ = make(filters=4)
    tzc.write(T.GATE_KEEPER, 4, 0b0101)
    assert tzc.read(T.GATE_KEEPER) == 0b0101 << 16 | 0b0101
    tzc.write(T.SPECULATION_CTRL, 4, 0x3)
    assert tzc.read(T.SPECULATION_CTRL) == 3
    tzc1, bus = make(filters=1)
    tzc1.write(T.GATE_KEEPER, 4, 0xF)                     # bits for absent filters ignored
    assert tzc1.read(T.GATE_KEEPER) == 0x10001
    assert bus.of_kind("tzc_ignored_write")[-1].fields["value"] == 0xE


def test_eight_byte_accesses():
    tzc, _ = make(address_width=48)
    tzc.write(T.REGION_BASE_LOW(2), 8, 0x0000_0012_3456_7000)
    tzc.write(T.REGION_TOP_LOW(2), 8, 0x0000_0012_3457_7FFF)
    assert tzc.read(T.REGION_BASE_LOW(2)) == 0x34567000 and tzc.read(T.REGION_BASE_HIGH(2)) == 0x12
    assert tzc.read(T.REGION_TOP_LOW(2), 8) == 0x12_3457_7FFF
    assert tzc.regions()[2].base == 0x12_3456_7000
    tzc.write(T.REGION_ATTRIBUTES(2), 8, 0xFFFF_0000 << 32 | 0xC000_0001)   # attr + id_access
    r = tzc.regions()[2]
    assert (r.s_rd, r.s_wr, r.filters, r.nsaid_rd, r.nsaid_wr) == (True, True, 1, 0, 0xFFFF)
    assert tzc.read(T.CID0, 8) == 0xF0 << 32 | 0x0D
    tzc.write(T.REGION_BASE_HIGH(3), 4, 0xFFFFFFFF)             # above address_width: dropped
    assert tzc.read(T.REGION_BASE_HIGH(3)) == 0xFFFF


# ---- reference predicate (fact sheet section 4, written independently) ------------------------
@dataclass
class RefRegion:
    base: int
    top: int
    s_rd: bool
    s_wr: bool
    filters: int
    rd: int
    wr: int


def ref_allowed(regions: list[RefRegion], gates: int, pa: int, size: int, write: bool,
                secure: bool, nsaid: int, filt: int) -> bool:
    if not gates >> filt & 1:
        return False
    for page in range(pa // PAGE, (pa + max(size, 1) - 1) // PAGE + 1):
        addr = page * PAGE
        hits = []
        for r in regions[1:]:
            if r.filters >> filt & 1 and r.base <= addr <= r.top:
                hits.append(r)
        if len(hits) >= 2:
            return False
        r = hits[0] if hits else regions[0]
        if secure:
            ok = r.s_wr if write else r.s_rd
        else:
            ok = bool((r.wr if write else r.rd) >> nsaid & 1)
        if not ok:
            return False
    return True


SPACE = 48   # pages of the small address space at NS

region_st = st.builds(
    lambda b, length, s_rd, s_wr, f, rd, wr: RefRegion(NS + b * PAGE, NS + (b + length) * PAGE - 1,
                                                      s_rd, s_wr, f, rd, wr),
    st.integers(0, SPACE - 1), st.integers(-2, 20), st.booleans(), st.booleans(),
    st.integers(0, 15), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
access_st = st.tuples(st.integers(0, (SPACE + 4) * PAGE), st.integers(1, 3 * PAGE),
                      st.booleans(), st.booleans(), st.integers(0, 15), st.integers(0, 3))


@settings(max_examples=150, deadline=None)
@given(nfilters=st.integers(1, 4), r0=region_st, regs=st.lists(region_st, min_size=0, max_size=8),
       gates=st.integers(0, 15), accesses=st.lists(access_st, min_size=1, max_size=25))
def test_matches_reference_predicate(nfilters, r0, regs, gates, accesses):
    tzc, _ = make(filters=nfilters)
    fmask = (1 << nfilters) - 1
    # what the hardware holds: region 0 spans everything on all filters, masks trimmed
    model = [RefRegion(0, (1 << 40) - 1, r0.s_rd, r0.s_wr, fmask, r0.rd, r0.wr)]
    tzc.write(T.REGION_ATTRIBUTES(0), 4, r0.s_wr << 31 | r0.s_rd << 30)
    tzc.write(T.REGION_ID_ACCESS(0), 4, r0.wr << 16 | r0.rd)
    for n, r in enumerate(regs, start=1):
        r.filters &= fmask        # length <= 0 above gives base > top: never matches
        program(tzc, n, r.base, r.top, r.s_wr << 31 | r.s_rd << 30 | r.filters, r.wr << 16 | r.rd)
        model.append(r)
    open_gates(tzc, gates)
    for pa0, size, write, secure, nsaid, f in accesses:
        f %= nfilters
        pa = NS + pa0
        want = ref_allowed(model, gates, pa, size, write, secure, nsaid, f)
        assert tzc.permits(pa, size, write=write, secure=secure, nsaid=nsaid, filter=f) == want
        v = tzc.check(pa, size, write=write, secure=secure, nsaid=nsaid, filter=f)
        assert v.allowed == want
        if not want:
            assert tzc.fail_state(f)["status"]
    for f in range(nfilters):
        for page in range(SPACE + 2):
            pa = NS + page * PAGE
            for secure, nsaid in [(True, 0)] + [(False, k) for k in range(16)]:
                got = tzc.page_permissions(pa + 0x123, secure=secure, nsaid=nsaid, filter=f)
                assert got == (
                    tzc.permits(pa, PAGE, write=False, secure=secure, nsaid=nsaid, filter=f),
                    tzc.permits(pa, PAGE, write=True, secure=secure, nsaid=nsaid, filter=f))
                assert got[0] == ref_allowed(model, gates, pa, PAGE, False, secure, nsaid, f)


# ---- failures ---------------------------------------------------------------------------------
def sdp_setup(tzc: Tzc400) -> None:
    """Fact-sheet worked example: 1 MiB at 0x60000000, display NSAID 3 reads, codec 5 r/w."""
    tzc.write(T.REGION_ATTRIBUTES(0), 4, 0)
    program(tzc, 1, NS, 0x5FFFFFFF, 0xC0000001, 0xFFFFFFFF)
    program(tzc, 3, 0x60000000, 0x600FFFFF, 0xC0000001, 0x00200028)
    open_gates(tzc)


def test_worked_example_and_first_failure_latching():
    tzc, bus = make(address_width=40)
    sdp_setup(tzc)
    tzc.write(T.ACTION, 4, T.TzcAction.ERR)
    assert tzc.permits(0x60000000, 64, write=False, secure=False, nsaid=3)
    assert not tzc.permits(0x60000000, 64, write=True, secure=False, nsaid=3)
    assert tzc.permits(0x600FF000, 0x1000, write=True, secure=False, nsaid=5)
    assert tzc.permits(0x60000000, 64, write=True, secure=True, nsaid=0)
    assert tzc.permits(0x5FFFF000, 0x1000, write=True, secure=False, nsaid=0)
    v = tzc.check(0x5FFFFF00, 0x200, write=True, secure=False, nsaid=0, master_id=0x42,
                  privileged=False)
    assert not v.allowed and v.region == 3 and v.response is TzcResponse.DECERR
    assert not v.interrupt and "NSAID 0 write" in v.reason
    fs = tzc.fail_state(0)
    assert fs["FAIL_ADDRESS"] == 0x60000000          # first denied byte
    assert tzc.read(T.FAIL_ADDRESS_LOW(0)) == 0x60000000 and tzc.read(T.FAIL_ADDRESS_HIGH(0)) == 0
    assert tzc.read(T.FAIL_CONTROL(0)) == 1 << 24 | 1 << 21
    assert tzc.read(T.FAIL_ID(0)) == 0x42
    assert (fs["direction"], fs["secure"], fs["privileged"]) == ("write", False, False)
    assert tzc.int_status() == 0x1
    ev = bus.of_kind("tzc_verdict")[-1].fields
    assert ev["latched"] and ev["region"] == 3 and ev["response"] == "DECERR"
    # the second failure sets overrun and leaves FAIL_* alone
    tzc.check(0x60010000, 4, write=False, secure=False, nsaid=7, master_id=9)
    assert tzc.int_status() == 0x101
    assert tzc.read(T.FAIL_ADDRESS_LOW(0)) == 0x60000000 and tzc.read(T.FAIL_ID(0)) == 0x42
    # allowed accesses never latch
    tzc.check(0x60010000, 4, write=False, secure=False, nsaid=3)
    assert tzc.int_status() == 0x101
    # INT_CLEAR re-arms
    tzc.write(T.INT_CLEAR, 4, 1)
    assert tzc.int_status() == 0
    tzc.check(0x600A0010, 4, write=False, secure=False, nsaid=7, master_id=9, privileged=True)
    assert tzc.read(T.FAIL_ADDRESS_LOW(0)) == 0x600A0010
    assert tzc.read(T.FAIL_CONTROL(0)) == 1 << 21 | 1 << 20 and tzc.read(T.FAIL_ID(0)) == 9


def test_fail_address_high_and_secure_failure():
    tzc, _ = make(filters=2, address_width=40)
    open_gates(tzc)
    tzc.check(0x12_3456_7890, 8, write=False, secure=True, nsaid=0, filter=1)
    assert tzc.read(T.FAIL_ADDRESS_HIGH(1)) == 0x12 and tzc.read(T.FAIL_ADDRESS_LOW(1)) == 0x34567890
    assert tzc.read(T.FAIL_CONTROL(1)) == 1 << 20 and tzc.int_status() == 0b10
    assert not tzc.fail_state(0)["status"]


@pytest.mark.parametrize("action,response,interrupt", [
    (0, TzcResponse.OKAY, False), (1, TzcResponse.DECERR, False),
    (2, TzcResponse.OKAY, True), (3, TzcResponse.DECERR, True)])
def test_action_values(action, response, interrupt):
    tzc, _ = make()
    open_gates(tzc)
    tzc.write(T.ACTION, 4, action)
    v = tzc.check(NS, 4, write=False, secure=False, nsaid=1)
    assert (v.allowed, v.response, v.interrupt) == (False, response, interrupt)
    assert tzc.fail_state(0)["status"]                     # latched even without interrupt


# ---- misuse -----------------------------------------------------------------------------------
def test_closed_gate_denies_everything_on_that_filter():
    tzc, bus = make(filters=2)
    tzc.write(T.REGION_ATTRIBUTES(0), 4, 0xC0000000)
    tzc.write(T.REGION_ID_ACCESS(0), 4, 0xFFFFFFFF)
    tzc.write(T.GATE_KEEPER, 4, 0b10)
    v = tzc.check(NS, 4, write=False, secure=True, nsaid=0, filter=0)
    assert not v.allowed and v.reason == "filter gate closed"
    assert tzc.page_permissions(NS, secure=True, nsaid=0, filter=0) == (False, False)
    assert tzc.permits(NS, 4, write=True, secure=False, nsaid=4, filter=1)
    assert tzc.page_permissions(NS, secure=False, nsaid=4, filter=1) == (True, True)
    assert bus.of_kind("tzc_verdict")[-1].fields["reason"] == "filter gate closed"


def test_programming_with_gate_open_is_applied_and_flagged():
    tzc, bus = make()
    open_gates(tzc)
    tzc.write(T.REGION_BASE_LOW(2), 4, NS)        # region 2 disabled: harmless
    assert not bus.of_kind("tzc_misuse")
    tzc.write(T.REGION_ATTRIBUTES(2), 4, 0x40000001)
    m = bus.of_kind("tzc_misuse")[-1].fields
    assert m["what"] == "program_while_gate_open" and m["register"] == "REGION_ATTRIBUTES(2)"
    assert tzc.regions()[2].filters == 1          # applied anyway


def test_overlap_sets_overlap_bit_and_denies():
    tzc, bus = make(filters=2)
    program(tzc, 1, NS, NS + 0x3FFF, 0xC0000001, 0xFFFFFFFF)
    program(tzc, 2, NS + 0x2000, NS + 0x5FFF, 0xC0000003, 0xFFFFFFFF)
    mis = [e.fields for e in bus.of_kind("tzc_misuse") if e.fields["what"] == "overlap"]
    assert mis == [{"what": "overlap", "filter": 0, "regions": (1, 2)}]
    open_gates(tzc)
    assert tzc.permits(NS + 0x1000, 4, write=True, secure=True, nsaid=0)
    assert tzc.permits(NS + 0x2000, 4, write=True, secure=True, nsaid=0, filter=1)
    v = tzc.check(NS + 0x2004, 4, write=False, secure=True, nsaid=0, master_id=7)
    assert not v.allowed and v.overlap and "overlap" in v.reason
    assert tzc.int_status() == 1 | 1 << 16
    fs = tzc.fail_state(0)
    assert fs["overlap"] and fs["FAIL_ADDRESS"] == NS + 0x2004 and fs["FAIL_ID"] == 7
    assert tzc.page_permissions(NS + 0x3000, secure=True, nsaid=0) == (False, False)
    tzc.write(T.INT_CLEAR, 4, 1)
    assert tzc.int_status() == 0


def test_on_change_fires_on_config_writes_only():
    tzc, _ = make()
    calls = []
    unsub = tzc.on_change(lambda: calls.append(1))
    tzc.read(T.REGION_ATTRIBUTES(1))
    tzc.check(NS, 4, write=False, secure=False, nsaid=0)
    tzc.write(T.INT_CLEAR, 4, 1)
    tzc.write(T.SPECULATION_CTRL, 4, 1)
    tzc.write(T.BUILD_CONFIG, 4, 1)
    tzc.write(T.REGION_BASE_LOW(0), 4, 0x1000)
    assert calls == []
    tzc.write(T.REGION_ATTRIBUTES(1), 4, 1)
    tzc.write(T.REGION_TOP_LOW(1), 8, 0xFFFF)     # one MMIO write, one callback
    tzc.write(T.GATE_KEEPER, 4, 1)
    tzc.write(T.ACTION, 4, 1)
    assert len(calls) == 4
    unsub()
    tzc.write(T.ACTION, 4, 3)
    assert len(calls) == 4


def test_program_events_and_json():
    tzc, bus = make()
    sdp_setup(tzc)
    ev = [e.fields for e in bus.of_kind("tzc_program") if e.fields["register"] ==
          "REGION_ID_ACCESS(3)"][-1]
    assert ev["value"] == 0x00200028 and ev["region"] == 3
    j = tzc.to_json()
    r3 = j["regions"][3]
    assert (r3["base"], r3["top"], r3["nsaid_rd"], r3["nsaid_wr"], r3["enabled"]) == \
        (0x60000000, 0x600FFFFF, 0x28, 0x20, True)
    assert not j["regions"][2]["enabled"] and j["gate_keeper"] == 0x10001
    assert j["action"] == "NONE" and len(j["fails"]) == 1
    assert T.register_name(0x214) == "REGION_ID_ACCESS(8)"
