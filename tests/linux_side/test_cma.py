"""CMA, genalloc and the bitmap search underneath: pure-model tests."""
from __future__ import annotations

import errno

import pytest

from linux_side.bitmap import bitmap_find_next_zero_area, bitmap_set, largest_zero_run
from linux_side.cma import CmaArea
from linux_side.errors import LinuxError
from linux_side.genalloc import GenPool

PAGE = 0x1000


def test_zero_area_search_honours_alignment_and_offset():
    bm = bytearray(16)
    bitmap_set(bm, 0, 1)
    assert bitmap_find_next_zero_area(bm, 0, 2) == 1
    assert bitmap_find_next_zero_area(bm, 0, 2, align_mask=3) == 4
    # aligned in absolute terms: index + 1 must be a multiple of 4
    assert bitmap_find_next_zero_area(bm, 0, 2, align_mask=3, align_offset=1) == 3
    assert bitmap_find_next_zero_area(bm, 0, 17) == 16
    bitmap_set(bm, 4, 12)
    assert bitmap_find_next_zero_area(bm, 0, 4) == 16
    assert largest_zero_run(bm) == 3


def test_cma_first_fit_release_and_accounting():
    cma = CmaArea(0x5000_0000, 64 * PAGE)
    a = cma.alloc(4)
    b = cma.alloc(8)
    assert (a, b) == (0x5000_0000, 0x5000_4000)
    assert cma.used_pages == 12 and cma.free_pages == 52
    assert cma.release(a, 4)
    assert cma.alloc(2) == a                      # first fit reuses the hole
    assert cma.stats["alloc_success"] == 3 and cma.stats["release"] == 1
    assert not cma.release(0x4000_0000, 1)          # not from this area
    with pytest.raises(ValueError):
        cma.release(b, 4)                           # not how it was allocated


def test_cma_alignment_is_in_absolute_page_frames():
    cma = CmaArea(0x5000_1000, 64 * PAGE)           # base not 16-page aligned
    cma.alloc(1)
    pa = cma.alloc(16, align_order=4)
    assert pa % (16 * PAGE) == 0 and pa == 0x5001_0000


def test_fragmentation_refuses_a_run_that_does_not_fit():
    cma = CmaArea(0x5000_0000, 16 * PAGE)
    blocks = [cma.alloc(2) for _ in range(8)]
    for pa in blocks[::2]:
        cma.release(pa, 2)
    assert cma.free_pages == 8 and cma.largest_free_run == 2
    with pytest.raises(LinuxError) as e:
        cma.alloc(4)
    assert e.value.errno == errno.ENOMEM and "largest run 2" in e.value.message
    assert cma.stats["alloc_fail"] == 1


def test_exhaustion_and_empty_area_are_enomem():
    cma = CmaArea(0x5000_0000, 4 * PAGE)
    cma.alloc(4)
    for area, count in ((cma, 1), (CmaArea(0, 0), 1), (cma, 0)):
        with pytest.raises(LinuxError) as e:
            area.alloc(count)
        assert e.value.errno == errno.ENOMEM


def test_genpool_is_page_granular_first_fit():
    gp = GenPool()
    gp.add(0x5e00_0000, 8 * PAGE)
    a = gp.alloc(5000)                              # two pages
    b = gp.alloc(PAGE)
    assert (a, b) == (0x5e00_0000, 0x5e00_2000)
    assert gp.avail() == 5 * PAGE
    assert gp.alloc(6 * PAGE) == 0                  # 0 means no memory
    gp.free(a, 5000)
    assert gp.alloc(2 * PAGE) == a
    with pytest.raises(ValueError):
        gp.free(0x5e00_6000, PAGE)
    with pytest.raises(ValueError):
        gp.destroy()                                # outstanding allocations
    gp.free(a, 2 * PAGE)
    gp.free(b, PAGE)
    gp.destroy()


def test_a_run_longer_than_the_bitmap_is_not_found_without_building_it():
    """Found by the ioctl fuzzer: a huge allocation request built a needle of ``nr`` bytes
    (MemoryError) before noticing it could never fit."""
    from linux_side.bitmap import bitmap_find_next_zero_area
    bits = bytearray(64)
    assert bitmap_find_next_zero_area(bits, 0, 1 << 62) == 64
    assert bitmap_find_next_zero_area(bits, 60, 5) == 64
    assert bitmap_find_next_zero_area(bits, 59, 5) == 59
