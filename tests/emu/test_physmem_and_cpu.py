"""One physical memory shared by every CPU view; TLB-fill policies; guest faults."""
import pytest
from hypothesis import given, settings, strategies as st

from emu.asm import assemble
from emu.cpu import CpuView, GuestFault
from emu.physmem import BusError, PhysMem
from emu.platform_map import load_memory_map
from emu.protection import BootFirewall
from emu.types import World

MM = load_memory_map()
NS = 0x40000000
SEC = 0x0E100000


@pytest.fixture(scope="module")
def mem():
    return PhysMem(MM)


def test_views_share_the_same_bytes(mem):
    a, b = CpuView(World.NS_EL1, mem), CpuView(World.S_EL1, mem)
    prog = assemble("str x1, [x0]\ndone:\n nop\n", NS + 0x100)
    mem.write(prog.base, prog.code)
    a.write_args([NS + 0x800, 0x1122334455667788])
    a.run(prog.base, prog.sym("done"))
    assert mem.read_u64(NS + 0x800) == 0x1122334455667788
    assert bytes(b.uc.mem_read(NS + 0x800, 8)) == mem.read(NS + 0x800, 8)


def test_zero_copy_views_and_bus_errors(mem):
    v = mem.view(NS + 0x2000, 16)
    v[:4] = b"abcd"
    assert mem.read(NS + 0x2000, 4) == b"abcd"
    with pytest.raises(BusError):
        mem.read(0x1000, 4)
    with pytest.raises(BusError):
        mem.read(SEC + MM.region("secure_dram").size - 4, 8)   # straddles the region end


def test_ns_view_cannot_read_secure_dram_and_faults_cleanly(mem):
    fw = BootFirewall(MM)
    ns = CpuView(World.NS_EL1, mem, fw.translate_ns)
    prog = assemble("ldr x1, [x0]\ndone:\n nop\n", NS + 0x200)
    mem.write(prog.base, prog.code)
    ns.invalidate_code(prog.base, prog.end)
    mem.write_u64(SEC + 0x10, 0xDEADBEEF)
    ns.write_args([SEC + 0x10, 0])
    with pytest.raises(GuestFault) as err:
        ns.run(prog.base, prog.sym("done"))
    assert err.value.denial is not None and "secure" in err.value.denial.reason
    assert ns.x(1) == 0, "denied read must not return data"
    s = CpuView(World.S_EL1, mem, fw.translate_secure)
    s.write_args([SEC + 0x10, 0])
    s.run(prog.base, prog.sym("done"))
    assert s.x(1) == 0xDEADBEEF


@settings(max_examples=40, deadline=None)
@given(offset=st.integers(0, 0x0FFFFFF8 // 8).map(lambda x: x * 8), secure=st.booleans())
def test_firewall_verdict_matches_the_region(offset, secure):
    fw = BootFirewall(MM)
    for base, region_secure in ((SEC, True), (NS, False)):
        region = MM.region_of(base)
        pa = base + offset % region.size
        verdict = fw.check(pa, 8, write=False, secure=secure)
        assert (verdict is None) == (secure or not region_secure)


def test_hook_exceptions_surface_instead_of_vanishing(mem):
    v = CpuView(World.S_EL1, mem)
    prog = assemble("smc #0\ndone:\n nop\n", NS + 0x300)
    mem.write(prog.base, prog.code)

    def boom(view, intno):
        raise RuntimeError("bug in a hook")
    v.on_intr = boom
    with pytest.raises(RuntimeError, match="bug in a hook"):
        v.run(prog.base, prog.sym("done"))
