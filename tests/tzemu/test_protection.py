"""Protection a SoC would enforce: the TZC-400 boot firewall, secure-side programming through
MMIO, CPU views that follow the TZC, NS MMU mappings of protected pages, DMA masters."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

import tzemu
from protection_helpers import assert_ns_accessible, assert_protected
from tzemu.cli import main

SV, TUI, REC, NS_SHM = 1, 2, 3, 0


def test_boot_firewall_in_tzc_json(capsys):
    assert main(["tzc", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    r0, r1 = state["regions"][0], state["regions"][1]
    assert r1["enabled"] and (r1["base"], r1["top"]) == (0x0E100000, 0x0EFFFFFF)
    assert r1["s_rd"] and r1["s_wr"] and r1["nsaid_rd"] == r1["nsaid_wr"] == 0
    assert r0["nsaid_rd"] & 1 and r0["nsaid_wr"] & 1          # the CPU's NSAID 0
    assert r0["nsaid_rd"] & (1 << 3)                          # the display
    assert state["action"] == "ERR_INT" and state["gate_keeper"] >> 16 & 1


def test_ns_read_of_secure_dram_reports_the_exact_fail_address(platform):
    with pytest.raises(tzemu.ProtectionFault) as e:
        platform.ns_read(0x0E234567, 4)
    f = e.value
    assert f.address == f.fail["FAIL_ADDRESS"] == 0x0E234567
    assert f.fail["FAIL_CONTROL"] & (1 << 21)                 # non-secure access
    aborts = platform.bus.of_kind("external_abort")
    assert aborts and aborts[-1].world == "NS-EL1" and aborts[-1].fields["address"] == 0x0E234567
    assert platform.secure_os.tzc_violations[-1]["address"] == 0x0E234567
    assert platform.tzc.int_status() == 0, "the secure TZC interrupt handler cleared it"


def test_normal_world_cannot_reach_the_tzc_frame(platform):
    before = platform.tzc.to_json()
    with pytest.raises(tzemu.ProtectionFault, match="not reachable"):
        platform.ns_write(platform.tzc_base + 0x110 + 0x20, (0xC000000F).to_bytes(4, "little"))
    assert platform.tzc.to_json()["regions"] == before["regions"]


def _program(p, use_case, pa, size):
    p.bus.clear()
    p.secure_os.protmem_hook.set_protmem_range(use_case, pa, size)
    return [e for e in p.bus.recorded if e.kind == "tzc_program"]


def test_the_secure_os_programs_regions_through_mmio_with_the_gatekeeper(platform):
    p = platform
    pa = p.kernel.pages.alloc(0x10000)
    writes = _program(p, SV, pa, 0x10000)
    assert writes and all(e.world == "S-EL1" for e in writes)
    regs = [e.fields["register"] for e in writes]
    assert regs[0] == "GATE_KEEPER" and regs[-1] == "GATE_KEEPER"
    assert writes[0].fields["value"] == 0 and writes[-1].fields["value"] == 1
    assert "REGION_ATTRIBUTES(2)" in regs
    region = p.tzc.regions()[2]
    assert (region.base, region.top) == (pa, pa + 0xFFFF)
    assert p.secure_os.protmem_hook.programmed == 1


@pytest.mark.parametrize("use_case, readers, writers", [
    (SV, ("display", "codec"), ("codec",)),
    (TUI, ("display",), ()),
    (REC, (), ("camera",)),
])
def test_protected_range_faults_for_ns_cpu_and_other_masters(platform, use_case, readers, writers):
    p = platform
    pa = p.kernel.pages.alloc(0x4000)
    assert_ns_accessible(p, pa, 0x4000)
    p.physmem.write(pa, b"secret-bytes".ljust(0x4000, b"\x5a"))
    _program(p, use_case, pa, 0x4000)
    assert_protected(p, pa, 0x4000, readers=readers, writers=writers)
    _program(p, NS_SHM, pa, 0x4000)
    assert_ns_accessible(p, pa, 0x4000)


def test_views_follow_the_tzc_through_tlb_flushes(platform):
    p = platform
    pa = p.kernel.pages.alloc(0x1000)
    p.ns_write(pa, b"before")
    assert p.ns_read(pa, 6) == b"before"
    flushes = p.access.flushes
    _program(p, SV, pa, 0x1000)
    assert p.access.flushes > flushes
    with pytest.raises(tzemu.ProtectionFault):
        p.ns_read(pa, 6)
    _program(p, NS_SHM, pa, 0x1000)
    assert p.ns_read(pa, 6) == b"before"


def test_kernel_linear_map_of_a_protected_page_faults_at_the_tzc(platform):
    """The driver leaves lent memory in the linear map; the access must die at the TZC."""
    p = platform
    pa = p.kernel.pages.alloc(0x1000)
    va = p.kernel.phys_to_virt(pa)
    assert p.kernel.kernel_pt.lookup(va) == pa
    _program(p, SV, pa, 0x1000)
    ns = p.ns
    ns.write_args([va + 0x10, p.kernel.phys_to_virt(p.scratch), 8])
    with pytest.raises(tzemu.GuestFault) as e:
        ns.run(p._stub("tzemu_ns_copy"), p._stub("tzemu_ns_copy_done"))
    assert "TZC-400" in e.value.denial.reason
    assert e.value.denial.paddr == pa + 0x10
    assert p.secure_os.tzc_violations[-1]["address"] == pa + 0x10


def test_running_out_of_regions_and_overlaps_are_refused(platform):
    from tee_os.plat_protmem import ProtmemHookError
    p = platform
    hook = p.secure_os.protmem_hook
    base = p.kernel.pages.alloc(0x8000)
    for i in range(7):
        hook.set_protmem_range(SV, base + i * 0x1000, 0x1000)
    with pytest.raises(ProtmemHookError, match="no free TZC-400 region"):
        hook.set_protmem_range(SV, base + 0x7000, 0x1000)
    with pytest.raises(ProtmemHookError, match="overlaps"):
        hook.set_protmem_range(SV, base, 0x2000)
    with pytest.raises(ProtmemHookError, match="4 KiB"):
        hook.set_protmem_range(SV, base + 0x7001, 0x1000)


@settings(max_examples=15, deadline=None)
@given(ranges=st.lists(st.tuples(st.integers(0, 15), st.integers(1, 4), st.sampled_from([SV, TUI])),
                       max_size=4),
       probes=st.lists(st.integers(0, 20 * 0x1000 - 1), min_size=1, max_size=6))
def test_ns_cpu_verdicts_match_the_programmed_ranges(shared_platform, ranges, probes):
    p = shared_platform
    hook = p.secure_os.protmem_hook
    base = getattr(shared_platform, "_hyp_base", None) or p.kernel.pages.alloc(20 * 0x1000)
    shared_platform._hyp_base = base
    done = []
    for start, npages, uc in ranges:
        pa, size = base + start * 0x1000, npages * 0x1000
        if any(d[0] < pa + size and pa < d[0] + d[1] for d in done):
            continue
        hook.set_protmem_range(uc, pa, size)
        done.append((pa, size))
    try:
        for off in probes:
            a = base + off
            protected = any(d[0] <= a < d[0] + d[1] for d in done)
            try:
                p.ns_read(a, 1)
                assert not protected, f"read of protected {a:#x} succeeded"
            except tzemu.ProtectionFault:
                assert protected, f"read of normal {a:#x} faulted"
    finally:
        for pa, size in done:
            hook.set_protmem_range(NS_SHM, pa, size)
