"""The Contiguous Memory Allocator (mm/cma.c): the platform's CMA region, page granular.

``dma_alloc_pages`` takes large physically contiguous blocks from here; the dynamic
protected-memory pool lends such a block to the secure world. First fit over a bitmap of the
area's pages, with the start aligned to ``1 << align_order`` pages in absolute page-frame
numbers (as ``cma_alloc`` aligns), so a fragmented area refuses a run it cannot hold even when
enough pages are free in total. Exhaustion is ``-ENOMEM``.
"""
from __future__ import annotations

import errno
from collections import Counter
from typing import Any

from emu.faults import FaultInjector
from linux_side.bitmap import (bitmap_all_set, bitmap_clear, bitmap_find_next_zero_area,
                               bitmap_set, bitmap_weight, largest_zero_run)
from linux_side.errors import LinuxError
from linux_side.mm import PAGE_SIZE

PAGE_SHIFT = 12
#: CONFIG_CMA_ALIGNMENT (Kconfig default 8): the largest alignment order dma_alloc_contiguous
#: asks of CMA, 2^8 pages = 1 MiB.
CMA_ALIGNMENT = 8


class CmaArea:
    """One CMA area; ``alloc``/``release`` count pages, as cma_alloc/cma_release do."""

    def __init__(self, base: int, size: int, name: str = "reserved", faults: Any = None):
        if base % PAGE_SIZE or size % PAGE_SIZE or size < 0:
            raise ValueError(f"cma {name}: base {base:#x} / size {size:#x} not page aligned")
        self.base, self.size, self.name = base, size, name
        self.count = size // PAGE_SIZE
        self.bitmap = bytearray(self.count)
        self.allocations: dict[int, int] = {}        # pa -> pages, for accounting and checks
        self.stats: Counter[str] = Counter()
        self.faults = faults if faults is not None else FaultInjector()

    def alloc(self, count: int, align_order: int = 0) -> int:
        """cma_alloc: the PA of ``count`` contiguous pages; LinuxError(ENOMEM) when no run of
        that length (at that alignment) is free."""
        if self.faults.hit("cma.alloc"):
            self.stats["alloc_fail"] += 1
            raise LinuxError(errno.ENOMEM, f"cma {self.name}: injected allocation failure")
        if count <= 0 or count > self.count:
            self.stats["alloc_fail"] += 1
            raise LinuxError(errno.ENOMEM, f"cma {self.name}: cannot allocate {count} pages "
                             f"from an area of {self.count}")
        mask = (1 << align_order) - 1
        offset = (self.base >> PAGE_SHIFT) & mask
        idx = bitmap_find_next_zero_area(self.bitmap, 0, count, mask, offset)
        if idx >= self.count:
            self.stats["alloc_fail"] += 1
            raise LinuxError(errno.ENOMEM, f"cma {self.name}: no run of {count} free pages "
                             f"(align order {align_order}); {self.free_pages} free, largest "
                             f"run {self.largest_free_run}")
        bitmap_set(self.bitmap, idx, count)
        pa = self.base + idx * PAGE_SIZE
        self.allocations[pa] = count
        self.stats["alloc_success"] += 1
        self.stats["pages_allocated"] += count
        return pa

    def contains(self, pa: int, count: int = 1) -> bool:
        return self.base <= pa and pa + count * PAGE_SIZE <= self.base + self.size

    def release(self, pa: int, count: int) -> bool:
        """cma_release: False if the pages are not from this area; releasing pages that were
        not allocated as one block is a kernel bug (ValueError)."""
        if not self.contains(pa, count):
            return False
        if self.allocations.get(pa) != count:
            raise ValueError(f"cma {self.name}: release of {pa:#x} x {count} pages does not "
                             "match an allocation")
        idx = (pa - self.base) // PAGE_SIZE
        assert bitmap_all_set(self.bitmap, idx, count)
        bitmap_clear(self.bitmap, idx, count)
        del self.allocations[pa]
        self.stats["release"] += 1
        self.stats["pages_released"] += count
        return True

    # --- accounting -------------------------------------------------------------------------
    @property
    def used_pages(self) -> int:
        return bitmap_weight(self.bitmap)

    @property
    def free_pages(self) -> int:
        return self.count - self.used_pages

    @property
    def largest_free_run(self) -> int:
        return largest_zero_run(self.bitmap)

    def __repr__(self) -> str:
        return (f"<CmaArea {self.name} {self.base:#x}+{self.size:#x}: {self.used_pages}/"
                f"{self.count} pages used>")
