"""emu.extents: the first-fit range allocator behind both worlds' page allocators."""
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.extents import ExtentAllocator


def test_first_fit_reuses_a_freed_hole_and_merges_neighbours() -> None:
    a = ExtentAllocator(0x1000_0000, 0x10000)
    x, y, z = a.alloc(0x1000), a.alloc(0x2000), a.alloc(0x1000)
    assert (x, y, z) == (0x1000_0000, 0x1000_1000, 0x1000_3000)
    assert a.free(y) == 0x2000
    assert a.alloc(0x1800) == y                      # rounded to 0x2000, fits the hole
    a.free(x), a.free(y), a.free(z)
    assert a.free_bytes == 0x10000 and a.alloc(0x10000) == 0x1000_0000


def test_aligned_allocation_leaves_the_gap_before_it_free() -> None:
    a = ExtentAllocator(0x1000, 0x20000)
    assert a.alloc(0x4000, align=0x10000) == 0x10000
    assert a.alloc(0x1000) == 0x1000


def test_exhaustion_and_foreign_free_are_reported_not_raised() -> None:
    a = ExtentAllocator(0, 0x2000)
    assert a.alloc(0x3000) is None
    assert a.free(0x1000) is None and a.free_bytes == 0x2000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 0x5000)), max_size=40))
def test_allocations_never_overlap_and_freeing_all_restores_the_pool(ops) -> None:
    a = ExtentAllocator(0x4000_0000, 0x40000)
    live: dict[int, int] = {}
    for do_alloc, n in ops:
        if do_alloc or not live:
            pa = a.alloc(n)
            if pa is None:
                continue
            size = a.round(n)
            assert all(pa + size <= s or s + l <= pa for s, l in live.items()), "overlap"
            assert 0x4000_0000 <= pa and pa + size <= 0x4004_0000
            live[pa] = size
        else:
            pa = next(iter(live))
            assert a.free(pa) == live.pop(pa)
    for pa in list(live):
        a.free(pa)
    assert a.free_bytes == 0x40000 and a.alloc(0x40000) == 0x4000_0000
