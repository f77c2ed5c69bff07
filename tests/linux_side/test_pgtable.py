"""The Linux model's page-table code writes real VMSAv8-64 descriptors through its NS memory
accessors, with arm64 Linux's descriptor policy, and the simulated MMU agrees with its own
software walk."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from emu.mmu import (AF, AP_EL0, AP_RO, ATTRINDX, DESC_VALID, PXN, SH_INNER, UXN, Stage1Mmu,
                     TranslationFault)
from emu.physmem import PhysMem
from emu.platform_map import load_memory_map
from linux_side import pgtable
from linux_side.pgtable import PageTableBuilder

MM = load_memory_map()
KERNEL = 0xFFFF_0000_0000_0000
POOL, POOL_PAGES = 0x4C00_0000, 0x4000
MIB2 = 0x20_0000


@pytest.fixture(scope="module")
def mem() -> PhysMem:
    return PhysMem(MM)


class Ns:
    """The kernel's NS memory accessors, recorded, plus a wrapping page allocator that hands
    out dirty pages (so the builder must zero its tables)."""

    def __init__(self, mem: PhysMem):
        self.mem, self.writes, self.reads, self.n = mem, [], [], 0

    def alloc(self) -> int:
        pa = POOL + (self.n % POOL_PAGES) * 0x1000
        self.n += 1
        self.mem.fill(pa, 0x1000, 0xA5)
        return pa

    def write(self, pa: int, data: bytes) -> None:
        self.writes.append((pa, len(data)))
        self.mem.write(pa, data)

    def read(self, pa: int, size: int) -> bytes:
        self.reads.append((pa, size))
        return self.mem.read(pa, size)

    def builder(self, **kw) -> PageTableBuilder:
        return PageTableBuilder(self.alloc, self.write, self.read, **kw)


_SHARED_NS: dict[int, Ns] = {}


def ns_for(mem: PhysMem) -> Ns:
    """One allocator per memory, so builders in one test never share table pages."""
    return _SHARED_NS.setdefault(id(mem), Ns(mem))


def leaf(mem: PhysMem, b: PageTableBuilder, va: int, level: int = 3) -> int:
    return b.descriptor_at(va, level)[1]


def test_root_is_allocated_and_zeroed(mem):
    b = ns_for(mem).builder()
    assert b.tables == [b.root] and mem.is_zero(b.root, 0x1000)
    assert b.start_level == 0 and b.txsz == 16
    assert b.lookup(KERNEL) is None


def test_map_page_allocates_one_table_per_level_and_shares_them(mem):
    b = ns_for(mem).builder()
    b.map_page(KERNEL + 0x4000_0000, 0x4000_0000)
    assert len(b.tables) == 4
    b.map_page(KERNEL + 0x4000_1000, 0x4000_7000)
    assert len(b.tables) == 4, "same level-3 table"
    b.map_page(KERNEL + 0x4020_0000, 0x4000_8000)
    assert len(b.tables) == 5, "a new 2 MiB slot needs one more level-3 table"
    assert b.lookup(KERNEL + 0x4000_1ABC) == 0x4000_7ABC


def test_descriptors_follow_the_arm64_linux_policy(mem):
    b = ns_for(mem).builder()
    cases = {  # va: (kwargs, bits that must be set, bits that must be clear)
        0x1000: (dict(), UXN | PXN, AP_RO | AP_EL0),
        0x2000: (dict(executable=True, writable=False), UXN | AP_RO, PXN | AP_EL0),
        0x3000: (dict(user=True), AP_EL0 | PXN | UXN, AP_RO),
        0x4000: (dict(user=True, executable=True, writable=False), AP_EL0 | PXN | AP_RO, UXN),
    }
    for va, (kw, _, _) in cases.items():
        b.map_page(va, 0x4000_0000 + va, attr_index=4, **kw)
    for va, (_, set_bits, clear_bits) in cases.items():
        d = leaf(mem, b, va)
        assert d & 0b11 == 0b11 and d & AF and d & (3 << 8) == SH_INNER
        assert d & (7 << 2) == ATTRINDX(4)
        assert d & set_bits == set_bits and not d & clear_bits, hex(d)
        assert d & 0x0000_FFFF_FFFF_F000 == 0x4000_0000 + va


def test_every_access_goes_through_the_callables_and_touches_only_tables(mem):
    ns = ns_for(mem)
    b = ns.builder()
    ns.writes.clear(), ns.reads.clear()
    b.map_range(KERNEL + 0x4000_0000, 0x4000_0000, 0x40_0000, block=True)
    b.map_range(0x40_0000, 0x4100_0000, 0x3000)
    b.unmap_page(KERNEL + 0x4010_0000)
    b.lookup(0x40_1000)
    assert ns.writes and ns.reads
    for pa, size in ns.writes + ns.reads:
        assert any(t <= pa and pa + size <= t + 0x1000 for t in b.tables), hex(pa)


def test_map_range_uses_2mib_blocks_only_where_aligned(mem):
    b = ns_for(mem).builder()
    va, pa = KERNEL + 0x4010_0000, 0x4010_0000       # 1 MiB of pages, then blocks, then pages
    b.map_range(va, pa, 0x60_0000, block=True)
    mmu = Stage1Mmu(mem.read_u64, ttbr1=b.root)
    levels = [mmu.walk(va + off).level for off in range(0, 0x60_0000, 0x8_0000)]
    assert levels == [3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3]
    assert b.descriptor_at(va + 0x10_0000, 2)[1] & 0b11 == 0b01
    nob = ns_for(mem).builder()
    nob.map_range(va, pa, 0x60_0000)
    assert len(nob.tables) == len(b.tables) + 2, "without blocks each 2 MiB needs a table"


def test_unmapping_a_page_inside_a_block_splits_it(mem):
    b = ns_for(mem).builder()
    b.map_range(KERNEL + 0x4020_0000, 0x4020_0000, MIB2, block=True, writable=False)
    before = len(b.tables)
    b.unmap_page(KERNEL + 0x4020_5000)
    assert len(b.tables) == before + 1
    mmu = Stage1Mmu(mem.read_u64, ttbr1=b.root)
    with pytest.raises(TranslationFault) as err:
        mmu.walk(KERNEL + 0x4020_5000)
    assert (err.value.kind, err.value.level) == ("translation", 3)
    for off in (0, 0x4000, 0x6000, MIB2 - 0x1000):
        t = mmu.walk(KERNEL + 0x4020_0000 + off + 0x10)
        assert (t.pa, t.level, t.writable) == (0x4020_0010 + off, 3, False)


def test_splitting_a_1gib_block_keeps_every_mapping(mem):
    b = ns_for(mem).builder()
    assert b.map_block(KERNEL + 0x4000_0000, 0x4000_0000, level=1, executable=True)
    b.map_page(KERNEL + 0x4123_4000, 0x5000_0000)            # remap one page inside it
    mmu = Stage1Mmu(mem.read_u64, ttbr1=b.root)
    assert mmu.walk(KERNEL + 0x4123_4008).pa == 0x5000_0008
    t = mmu.walk(KERNEL + 0x4123_5008)
    assert (t.pa, t.level, t.executable) == (0x4123_5008, 3, True)
    assert mmu.walk(KERNEL + 0x7FFF_FFF0).level == 2          # the rest stays 2 MiB blocks


def test_map_block_yields_to_existing_page_tables(mem):
    b = ns_for(mem).builder()
    b.map_page(0x20_3000, 0x4000_3000)
    assert not b.map_block(0x20_0000, 0x4020_0000)
    b.map_range(0x20_0000, 0x4020_0000, MIB2, block=True)      # falls back to pages
    assert b.lookup(0x20_3000) == 0x4020_3000 and b.descriptor_at(0x20_0000, 2)[1] & 2


def test_remap_replaces_and_unmap_of_nothing_is_harmless(mem):
    b = ns_for(mem).builder()
    b.map_page(0x1000, 0x4000_1000)
    b.map_page(0x1000, 0x4000_9000, writable=False)
    assert b.lookup(0x1000) == 0x4000_9000 and leaf(mem, b, 0x1000) & AP_RO
    n = len(b.tables)
    b.unmap_page(0x7000_0000)
    b.unmap_page(0x1000)
    b.unmap_page(0x1000)
    assert b.lookup(0x1000) is None and len(b.tables) == n
    assert leaf(mem, b, 0x1000) & DESC_VALID == 0


def test_bad_arguments_are_refused(mem):
    b = ns_for(mem).builder()
    with pytest.raises(ValueError):
        b.map_page(0x1001, 0x4000_0000)
    with pytest.raises(ValueError):
        b.map_page(0x1000, 0x4000_0010)
    with pytest.raises(ValueError):
        b.map_page(0x0001_0000_0000_0000, 0x4000_0000)           # not canonical for 48 bits
    with pytest.raises(ValueError):
        b.map_range(0x20_0000, 0x4000_0000, 0x800)
    with pytest.raises(ValueError):
        PageTableBuilder(lambda: 0x4000_0000, mem.write, mem.read, va_bits=52)


def test_a_39_bit_tree_starts_at_level_1(mem):
    b = ns_for(mem).builder(va_bits=39)
    b.map_page(KERNEL | 0xFFFF_FF80_0000_0000 | 0x1234_5000, 0x4000_5000)
    assert b.start_level == 1 and len(b.tables) == 3
    mmu = Stage1Mmu(mem.read_u64, t1sz=b.txsz, ttbr1=b.root)
    assert mmu.walk(0xFFFF_FF80_1234_5678).pa == 0x4000_5678


def test_pgtable_imports_only_emu_and_the_standard_library():
    tree = ast.parse(Path(pgtable.__file__).read_text())
    roots = {(n.module or "").split(".")[0] for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom)}
    roots |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
              for a in n.names}
    assert roots <= {"__future__", "typing", "emu"}, roots


def _block_page(n: int) -> int:
    """Page number of the n-th 2 MiB boundary, so block mappings get exercised."""
    return n * 512


@settings(max_examples=40, deadline=None)
@given(va_page=st.one_of(st.integers(0, (1 << 20) - 1), st.integers(0, 2047).map(_block_page)),
       pa_page=st.one_of(st.integers(0x40000, 0x7FFFF), st.integers(0x200, 0x3FF).map(_block_page)),
       npages=st.integers(1, 1100), block=st.booleans(), data=st.data())
def test_map_range_then_walk_and_lookup_agree(mem, va_page, pa_page, npages, block, data):
    b = ns_for(mem).builder()
    va, pa = KERNEL + (va_page << 12), pa_page << 12
    b.map_range(va, pa, npages << 12, block=block)
    mmu = Stage1Mmu(mem.read_u64, ttbr1=b.root)
    for i in sorted(set(data.draw(st.lists(st.integers(0, npages - 1), min_size=1,
                                           max_size=20))) | {0, npages - 1}):
        off = i << 12 | data.draw(st.integers(0, 0xFFF))
        t = mmu.walk(va + off)
        assert t.pa == b.lookup(va + off) == pa + off
        assert t.level == 3 or (block and t.level == 2)
    assert b.lookup(va + (npages << 12)) is None
    with pytest.raises(TranslationFault):
        mmu.walk(va + (npages << 12))
