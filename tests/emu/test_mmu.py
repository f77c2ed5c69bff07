"""The simulated MMU walks the real stage-1 tables the Linux model builds, and the CPU view's
TLB fill puts the MMU before the firewall: a kernel mapping of a protected page faults at the
TZC, not in the MMU."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings, strategies as st

from emu.asm import assemble
from emu.cpu import PROT_R, PROT_W, PROT_X, CpuView, GuestFault
from emu.mmu import (AF, AP_EL0, AP_TABLE_NO_EL0, AP_TABLE_RO, DESC_VALID, OA_MASK, PXN,
                     PXN_TABLE, UXN, UXN_TABLE, Stage1Mmu, TranslationFault, block_descriptor,
                     descriptor, table_descriptor)
from emu.physmem import PhysMem
from emu.platform_map import load_memory_map
from emu.types import World
from linux_side.pgtable import PageTableBuilder
from unicorn.unicorn_const import UC_MEM_READ, UC_MEM_WRITE

MM = load_memory_map()
KERNEL = 0xFFFF_0000_0000_0000            # linear map: KERNEL + pa
POOL = 0x4800_0000                        # table pages come from here (NS DRAM)
POOL_PAGES = 0x8000
CARVEOUT = MM.carveout("secure-video")


@pytest.fixture(scope="module")
def mem() -> PhysMem:
    return PhysMem(MM)


class Pool:
    """A bump allocator of NS DRAM pages that wraps around: one test never needs the whole
    pool, and the builder zeroes every page it gets, so reuse across tests is safe."""

    def __init__(self) -> None:
        self.next = 0

    def alloc(self) -> int:
        pa = POOL + (self.next % POOL_PAGES) * 0x1000
        self.next += 1
        return pa


POOL_ALLOC = Pool()


def new_builder(mem: PhysMem, va_bits: int = 48) -> PageTableBuilder:
    return PageTableBuilder(POOL_ALLOC.alloc, mem.write, mem.read, va_bits=va_bits)


def fault(fn, *args, **kw) -> TranslationFault:
    with pytest.raises(TranslationFault) as err:
        fn(*args, **kw)
    return err.value


# --- walking what the builder built ----------------------------------------------------------
def test_page_walk_returns_pa_level_and_attributes(mem):
    b = new_builder(mem)
    b.map_page(0x12345000, 0x40042000, attr_index=3)
    t = Stage1Mmu(mem.read_u64, ttbr0=b.root).walk(0x12345ABC)
    assert (t.pa, t.page_pa, t.level, t.block_size) == (0x40042ABC, 0x40042000, 3, 0x1000)
    assert (t.readable, t.writable, t.executable, t.user, t.user_exec) == (True, True, False,
                                                                         False, False)
    assert t.af and not t.ns_bit and t.attr_index == 3


def test_2mib_blocks_from_the_builder(mem):
    b = new_builder(mem)
    b.map_range(KERNEL + 0x40000000, 0x40000000, 0x400000, block=True)
    mmu = Stage1Mmu(mem.read_u64, ttbr1=b.root)
    t = mmu.walk(KERNEL + 0x40312345)
    assert (t.pa, t.level, t.block_size, t.page_pa) == (0x40312345, 2, 0x200000, 0x40312000)
    assert len(b.tables) == 3, "a 2 MiB block needs no level-3 table"


def test_1gib_block_written_by_hand(mem):
    l0, l1 = POOL_ALLOC.alloc(), POOL_ALLOC.alloc()
    mem.fill(l0, 0x2000)
    mem.write_u64(l0, table_descriptor(l1))
    mem.write_u64(l1 + 8 * 1, block_descriptor(0x40000000, 1, writable=False, pxn=False))
    mem.write_u64(l1 + 8 * 3, descriptor("block", 0xC0000000, level=1))
    mmu = Stage1Mmu(mem.read_u64, ttbr0=l0)
    t = mmu.walk(0x7654_3210)
    assert (t.pa, t.level, t.block_size) == (0x7654_3210, 1, 1 << 30)
    assert not t.writable and t.executable
    assert mmu.walk(0xFFFF_FFFF).pa == 0xFFFF_FFFF
    assert fault(mmu.walk, 0x8000_0000).level == 1       # entry 2 is invalid


def test_ttbr1_linear_map_and_the_va_range_split(mem):
    kernel, user = new_builder(mem), new_builder(mem)
    kernel.map_range(KERNEL + 0x40000000, 0x40000000, 0x10000)
    user.map_page(0x400000, 0x40001000, user=True)
    mmu = Stage1Mmu(mem.read_u64, ttbr0=user.root, ttbr1=kernel.root)
    assert mmu.walk(KERNEL + 0x4000_1234).pa == 0x4000_1234
    assert mmu.walk(0x400010).pa == 0x40001010
    for hole in (0x0001_0000_0000_0000, 0x8000_0000_0000_0000, 0xFFFE_FFFF_FFFF_F000):
        f = fault(mmu.walk, hole)
        assert (f.kind, f.level) == ("translation", 0) and "TTBR" in f.message
    mmu.ttbr0 = kernel.root       # a context switch: the low half now uses other tables
    assert fault(mmu.walk, 0x400010).kind == "translation"


def test_39_bit_va_starts_the_walk_at_level_1(mem):
    b = new_builder(mem, va_bits=39)
    b.map_page(0x7F_FFFF_F000, 0x40005000)
    assert len(b.tables) == 3 and b.start_level == 1
    mmu = Stage1Mmu(mem.read_u64, t0sz=25, t1sz=25, ttbr0=b.root, ttbr1=b.root)
    assert mmu.walk(0x7F_FFFF_F008).pa == 0x40005008
    assert mmu.walk(0xFFFF_FFFF_FFFF_F008).pa == 0x40005008   # same index bits, TTBR1
    assert fault(mmu.walk, 0x80_0000_0000).level == 0          # beyond 2^39
    with pytest.raises(ValueError):
        Stage1Mmu(mem.read_u64, t0sz=12)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_an_invalid_descriptor_faults_at_its_level(mem, level):
    b = new_builder(mem)
    va = KERNEL + 0x40203000
    b.map_page(va, 0x40203000)
    slot, desc = b.descriptor_at(va, level)
    mem.write_u64(slot, desc & ~DESC_VALID)
    f = fault(Stage1Mmu(mem.read_u64, ttbr1=b.root).walk, va)
    assert (f.kind, f.level) == ("translation", level)


def test_reserved_encodings_fault(mem):
    b = new_builder(mem)
    b.map_page(0x1000, 0x40001000)
    mmu = Stage1Mmu(mem.read_u64, ttbr0=b.root)
    slot, desc = b.descriptor_at(0x1000, 3)
    mem.write_u64(slot, desc & ~0b10)                        # 0b01 at level 3
    assert (fault(mmu.walk, 0x1000).kind, fault(mmu.walk, 0x1000).level) == ("translation", 3)
    mem.write_u64(b.root, (0x40000000 & OA_MASK) | AF | DESC_VALID)   # block at level 0
    assert fault(mmu.walk, 0x1000).level == 0


def test_access_flag_zero_is_an_access_flag_fault(mem):
    b = new_builder(mem)
    b.map_page(0x5000, 0x40005000)
    b.map_range(0x400000, 0x40400000, 0x200000, block=True)
    mmu = Stage1Mmu(mem.read_u64, ttbr0=b.root)
    for va, level in ((0x5000, 3), (0x400000, 2)):
        slot, desc = b.descriptor_at(va, level)
        mem.write_u64(slot, desc & ~AF)
        f = fault(mmu.walk, va + 8)
        assert (f.kind, f.level) == ("access_flag", level)
        assert "access flag" in str(f)


def test_output_addresses_beyond_48_bits_are_address_size_faults(mem):
    b = new_builder(mem)
    b.map_page(0x5000, 0x40005000)
    mmu = Stage1Mmu(mem.read_u64, ttbr0=b.root)
    slot, desc = b.descriptor_at(0x5000, 3)
    mem.write_u64(slot, desc | 1 << 48)
    assert (fault(mmu.walk, 0x5000).kind, fault(mmu.walk, 0x5000).level) == ("address_size", 3)
    slot, desc = b.descriptor_at(0x5000, 1)
    mem.write_u64(slot, desc | 1 << 50)                      # next table beyond the PA size
    assert (fault(mmu.walk, 0x5000).kind, fault(mmu.walk, 0x5000).level) == ("address_size", 1)
    mmu.pa_bits = 40
    mmu.ttbr0 = 1 << 44
    assert (fault(mmu.walk, 0x5000).kind, fault(mmu.walk, 0x5000).level) == ("address_size", 0)


def test_a_table_outside_ram_is_an_external_abort_on_the_walk(mem):
    b = new_builder(mem)
    b.map_page(0x5000, 0x40005000)
    slot, _ = b.descriptor_at(0x5000, 2)
    mem.write_u64(slot, table_descriptor(0x1000))            # no RAM at PA 0x1000
    f = fault(Stage1Mmu(mem.read_u64, ttbr0=b.root).walk, 0x5000)
    assert (f.kind, f.level) == ("external_abort", 3)


# --- permissions -------------------------------------------------------------------------
def perm_mmu(mem):
    b = new_builder(mem)
    b.map_page(0x1000, 0x40001000, writable=False)                       # kernel RO data
    b.map_page(0x2000, 0x40002000, executable=True, writable=False)      # kernel text
    b.map_page(0x3000, 0x40003000, user=True)                            # user RW data
    b.map_page(0x4000, 0x40004000, user=True, executable=True, writable=False)  # user text
    b.map_page(0x5000, 0x40005000)                                       # kernel RW data
    return b, Stage1Mmu(mem.read_u64, ttbr0=b.root)


def test_read_only_pages_refuse_writes_at_every_el(mem):
    _, mmu = perm_mmu(mem)
    assert mmu.check(0x1000, write=False, fetch=False).pa == 0x40001000
    f = fault(mmu.check, 0x1000, write=True, fetch=False)
    assert (f.kind, f.level) == ("permission", 3) and "read-only" in f.message
    assert fault(mmu.check, 0x4000, write=True, fetch=False, el=0).kind == "permission"


def test_el0_reaches_only_user_pages(mem):
    _, mmu = perm_mmu(mem)
    assert mmu.check(0x3000, write=True, fetch=False, el=0).user
    for va in (0x1000, 0x5000):
        f = fault(mmu.check, va, write=False, fetch=False, el=0)
        assert f.kind == "permission" and "EL0" in f.message
    assert mmu.check(0x3000, write=True, fetch=False, el=1).writable   # no PAN


def test_pxn_and_uxn(mem):
    _, mmu = perm_mmu(mem)
    assert mmu.check(0x2000, write=False, fetch=True, el=1).executable
    assert "UXN" in fault(mmu.check, 0x2000, write=False, fetch=True, el=0).message
    assert mmu.check(0x4000, write=False, fetch=True, el=0).user_exec
    assert "PXN" in fault(mmu.check, 0x4000, write=False, fetch=True, el=1).message
    assert fault(mmu.check, 0x5000, write=False, fetch=True).kind == "permission"


def test_el0_writable_pages_are_never_el1_executable(mem):
    b = new_builder(mem)
    b.map_page(0x1000, 0x40001000)
    slot, desc = b.descriptor_at(0x1000, 3)
    mem.write_u64(slot, desc & ~PXN | AP_EL0)                 # AP[2:1]=0b01 with PXN clear
    t = Stage1Mmu(mem.read_u64, ttbr0=b.root).walk(0x1000)
    assert t.user and t.writable and not t.executable


@pytest.mark.parametrize("bit, field, expected", [
    (AP_TABLE_RO, "writable", False), (AP_TABLE_NO_EL0, "user", False),
    (PXN_TABLE, "executable", False), (UXN_TABLE, "user_exec", False)])
@pytest.mark.parametrize("level", [0, 1, 2])
def test_hierarchical_table_controls_are_inherited(mem, bit, field, expected, level):
    b = new_builder(mem)
    # EL1 execute needs a page EL0 cannot write (implicit PXN), so that case maps a kernel page.
    b.map_page(0x1000, 0x40001000, user=field != "executable")
    slot, desc = b.descriptor_at(0x1000, 3)
    mem.write_u64(slot, desc & ~(PXN | UXN))                 # the leaf allows everything
    slot, desc = b.descriptor_at(0x1000, level)
    mmu = Stage1Mmu(mem.read_u64, ttbr0=b.root)
    assert getattr(mmu.walk(0x1000), field) != expected
    mem.write_u64(slot, desc | bit)
    assert getattr(mmu.walk(0x1000), field) == expected
    if bit == AP_TABLE_RO:
        assert fault(mmu.check, 0x1000, write=True, fetch=False).kind == "permission"


# --- property: walk() agrees with what was mapped ------------------------------------------
_vpage = st.one_of(st.integers(0, (1 << 36) - 1),            # anywhere in 48 bits
                   st.integers(0, 2047),                       # clustered: shared tables
                   st.integers(0x7FFF_FFE00, 0x7FFF_FFFFF))
_perms = st.tuples(st.booleans(), st.booleans(), st.booleans())


@settings(max_examples=60, deadline=None)
@given(maps=st.dictionaries(_vpage, st.tuples(st.integers(0x40000, (1 << 36) - 1), _perms),
                            min_size=1, max_size=25),
       probes=st.lists(_vpage, max_size=10), high=st.booleans(), data=st.data())
def test_walk_returns_exactly_what_was_mapped(mem, maps, probes, high, data):
    b = new_builder(mem)
    top = KERNEL if high else 0
    for vp, (pp, (w, u, x)) in maps.items():
        b.map_page(top | vp << 12, pp << 12, writable=w, user=u, executable=x)
    gone = set(data.draw(st.lists(st.sampled_from(sorted(maps)), max_size=5)))
    for vp in gone:
        b.unmap_page(top | vp << 12)
    mmu = Stage1Mmu(mem.read_u64, ttbr0=b.root, ttbr1=b.root)
    for vp, (pp, (w, u, x)) in maps.items():
        off = data.draw(st.integers(0, 0xFFF))
        if vp in gone:
            assert fault(mmu.walk, top | vp << 12 | off).kind == "translation"
            continue
        t = mmu.walk(top | vp << 12 | off)
        assert (t.pa, t.level, t.writable, t.user) == (pp << 12 | off, 3, w, u)
        assert t.executable == (x and not u) and t.user_exec == (x and u)
        assert b.lookup(top | vp << 12 | off) == pp << 12 | off
    for vp in probes:
        if vp not in maps:
            assert fault(mmu.walk, top | vp << 12).kind == "translation"


# --- end to end: Unicorn runs kernel code through the MMU and the firewall -------------------
CODE_PA, DATA_PA, RO_PA = 0x4001_0000, 0x4001_1000, 0x4001_2000
PROT_PA = CARVEOUT.base + 0x3000
KVA = KERNEL + CODE_PA
DATA, RO, PROT, UNMAPPED = KERNEL + DATA_PA, KERNEL + RO_PA, KERNEL + PROT_PA, KERNEL + 0x4001_F000
TZC_REASON = "TZC: region 1 (secure-video) denies NS access"


def firewall(pa: int, write: bool) -> str | None:
    """Stand-in for the TZC verdict: the secure-video carveout is secure-only."""
    return TZC_REASON if CARVEOUT.base <= pa < CARVEOUT.base + CARVEOUT.size else None


@pytest.fixture
def kernel(mem):
    b = new_builder(mem)
    b.map_page(KVA, CODE_PA, executable=True, writable=False)
    b.map_page(DATA, DATA_PA)
    b.map_page(RO, RO_PA, writable=False)
    b.map_page(PROT, PROT_PA)               # the kernel *can* map a protected page
    mmu = Stage1Mmu(mem.read_u64, ttbr1=b.root)
    checks: list[tuple[int, bool]] = []

    def secure_check(pa: int, write: bool) -> str | None:
        checks.append((pa, write))
        return firewall(pa, write)
    view = CpuView(World.NS_EL1, mem, translate=mmu.translate_policy(secure_check))
    prog = assemble("ldr x2, =0x1122334455667788\n"
                    "ldr x1, [x0]\n add x1, x1, #1\n str x1, [x0, #8]\n"
                    "done:\n nop\n", KVA)
    mem.write(CODE_PA, prog.code)
    view.invalidate_code(KVA, prog.end)
    return b, mmu, view, prog, checks


def test_kernel_code_runs_at_a_kernel_va_and_loads_and_stores_through_the_mmu(mem, kernel):
    _, mmu, view, prog, checks = kernel
    mem.write_u64(DATA_PA, 41)
    view.write_args([DATA + 0x10, 0])
    mem.write_u64(DATA_PA + 0x10, 41)
    view.run(prog.base, prog.sym("done"))
    assert view.x(2) == 0x1122334455667788, "literal pool read from the code page via its VA"
    assert view.x(1) == 42 and mem.read_u64(DATA_PA + 0x18) == 42
    assert (DATA_PA, False) in checks and mmu.stats.walks >= 2


def test_store_to_a_read_only_va_is_an_mmu_permission_fault(mem, kernel):
    _, _, view, prog, _ = kernel
    mem.write_u64(RO_PA, 7)
    mem.write_u64(RO_PA + 8, 0)
    view.write_args([RO, 0])
    with pytest.raises(GuestFault) as err:
        view.run(prog.base, prog.sym("done"))
    d = err.value.denial
    # Unicorn hands the fill the VA rounded down to its 1 KiB target page, not the exact byte.
    assert d.access == "write" and "permission" in d.reason and d.paddr & ~0xFFF == RO_PA
    assert view.x(1) == 8 and mem.read_u64(RO_PA + 8) == 0, "the load worked, the store did not"
    assert err.value.pc == prog.base + 12


def test_load_from_an_unmapped_va_is_a_translation_fault(kernel):
    _, _, view, prog, _ = kernel
    view.write_args([UNMAPPED, 5])
    with pytest.raises(GuestFault) as err:
        view.run(prog.base, prog.sym("done"))
    d = err.value.denial
    assert d.access == "read" and "translation" in d.reason and d.paddr is None
    assert view.x(1) == 5


def test_a_kernel_mapping_of_a_protected_page_faults_at_the_firewall(mem, kernel):
    _, mmu, view, prog, _ = kernel
    t = mmu.check(PROT, write=False, fetch=False)
    assert t.pa == PROT_PA, "the MMU itself allows the access"
    mem.write_u64(PROT_PA, 0x5EC12E7)
    view.write_args([PROT, 0])
    with pytest.raises(GuestFault) as err:
        view.run(prog.base, prog.sym("done"))
    d = err.value.denial
    assert d.reason == TZC_REASON and d.paddr == PROT_PA and d.access == "read"
    assert view.x(1) == 0, "no secret leaked"


def test_fetch_from_a_data_page_is_refused_by_pxn(mem, kernel):
    _, _, view, _, _ = kernel
    mem.write(DATA_PA + 0x100, assemble("nop\n", DATA + 0x100).code)
    with pytest.raises(GuestFault) as err:
        view.run(DATA + 0x100, DATA + 0x104)
    assert err.value.denial.access == "fetch" and "PXN" in err.value.denial.reason


def test_unmapping_takes_effect_after_the_tlb_flush(mem, kernel):
    b, _, view, prog, _ = kernel
    view.write_args([DATA, 0])
    view.run(prog.base, prog.sym("done"))
    b.unmap_page(DATA)
    view.flush_tlb()
    with pytest.raises(GuestFault) as err:
        view.run(prog.base, prog.sym("done"))
    assert "translation" in err.value.denial.reason


def test_tlb_entries_never_grant_a_direction_the_firewall_refuses(mem):
    b = new_builder(mem)
    b.map_page(DATA, DATA_PA)
    mmu = Stage1Mmu(mem.read_u64, ttbr1=b.root)
    read_only = mmu.translate_policy(lambda pa, write: "TZC: read-only region" if write else None)
    write_only = mmu.translate_policy(lambda pa, write: None if write else "TZC: write-only")

    class View:
        denial = None

        def deny(self, *args):
            self.denial = args
    v = View()
    assert read_only(v, DATA + 8, UC_MEM_READ) == (DATA_PA, PROT_R)
    assert read_only(v, DATA + 8, UC_MEM_WRITE) is None and v.denial[2].startswith("TZC")
    assert write_only(v, DATA, UC_MEM_WRITE) == (DATA_PA, PROT_W)
    assert mmu.translate_policy()(v, DATA, UC_MEM_READ) == (DATA_PA, PROT_R | PROT_W)
    b.map_page(DATA, DATA_PA, executable=True)
    assert mmu.translate_policy()(v, DATA, UC_MEM_READ) == (DATA_PA, PROT_R | PROT_W | PROT_X)


def test_an_el0_view_reaches_user_pages_only(mem):
    b = new_builder(mem)
    b.map_page(0x400000, CODE_PA + 0x8000, user=True, executable=True, writable=False)
    b.map_page(0x401000, DATA_PA + 0x8000, user=True)
    b.map_page(0x402000, DATA_PA + 0x9000)                     # kernel-only
    mmu = Stage1Mmu(mem.read_u64, ttbr0=b.root, el=0)
    view = CpuView(World.S_EL0, mem, translate=mmu.translate_policy())
    prog = assemble("ldr x1, [x0]\n str x1, [x0, #8]\ndone:\n nop\n", 0x400000)
    mem.write(CODE_PA + 0x8000, prog.code)
    mem.write_u64(DATA_PA + 0x8000, 99)
    view.write_args([0x401000, 0])
    view.run(prog.base, prog.sym("done"))
    assert mem.read_u64(DATA_PA + 0x8008) == 99
    view.write_args([0x402000, 0])
    with pytest.raises(GuestFault) as err:
        view.run(prog.base, prog.sym("done"))
    assert "EL0" in err.value.denial.reason and "permission" in err.value.denial.reason


# --- cost ----------------------------------------------------------------------------------
def test_walk_rate_is_reported(mem, capsys):
    b = new_builder(mem)
    b.map_range(KERNEL + 0x40000000, 0x40000000, 0x40000)
    b.map_range(KERNEL + 0x40400000, 0x40400000, 0x200000, block=True)
    mmu = Stage1Mmu(mem.read_u64, ttbr1=b.root)
    rates = {}
    for name, va in (("4 KiB page, 4 levels", KERNEL + 0x40021000),
                     ("2 MiB block, 3 levels", KERNEL + 0x40512000)):
        n, start = 20000, time.perf_counter()
        for _ in range(n):
            mmu.walk(va)
        rates[name] = n / (time.perf_counter() - start)
    with capsys.disabled():
        print("\n" + "; ".join(f"MMU walk {k}: {v:,.0f} walks/s" for k, v in rates.items()))
    assert mmu.stats["walks"] == mmu.stats.walks >= 40000
