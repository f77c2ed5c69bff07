"""General-purpose special-memory allocator (lib/genalloc.c), page granular.

The protected-memory pools carve buffers out of a carveout or a lent chunk with it: first fit
over a bitmap with one bit per ``1 << min_alloc_order`` bytes, as ``gen_pool_create(PAGE_SHIFT,
-1)`` + ``gen_pool_alloc`` do. Address 0 means "no memory", like the kernel's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from linux_side.bitmap import (bitmap_all_set, bitmap_clear, bitmap_find_next_zero_area,
                               bitmap_set, bitmap_weight)

PAGE_SHIFT = 12


@dataclass(eq=False)
class GenPoolChunk:
    start: int
    size: int
    bits: bytearray = field(default_factory=bytearray)


class GenPool:
    def __init__(self, min_alloc_order: int = PAGE_SHIFT):
        self.order = min_alloc_order
        self.chunks: list[GenPoolChunk] = []

    def _nbits(self, size: int) -> int:
        return (size + (1 << self.order) - 1) >> self.order

    def add(self, start: int, size: int) -> None:
        """gen_pool_add: another range the pool may hand out."""
        self.chunks.append(GenPoolChunk(start, size, bytearray(size >> self.order)))

    def alloc(self, size: int) -> int:
        """gen_pool_alloc: the start of ``size`` bytes (rounded to the granule), or 0."""
        if size <= 0:
            return 0
        nbits = self._nbits(size)
        for chunk in self.chunks:
            idx = bitmap_find_next_zero_area(chunk.bits, 0, nbits)
            if idx < len(chunk.bits):
                bitmap_set(chunk.bits, idx, nbits)
                return chunk.start + (idx << self.order)
        return 0

    def free(self, addr: int, size: int) -> None:
        """gen_pool_free; freeing what was not allocated is a kernel BUG (ValueError here)."""
        nbits = self._nbits(size)
        for chunk in self.chunks:
            if chunk.start <= addr < chunk.start + chunk.size:
                idx = (addr - chunk.start) >> self.order
                if not bitmap_all_set(chunk.bits, idx, nbits):
                    raise ValueError(f"gen_pool_free of {addr:#x}+{size:#x}: not allocated")
                bitmap_clear(chunk.bits, idx, nbits)
                return
        raise ValueError(f"gen_pool_free of {addr:#x}: not in this pool")

    def size(self) -> int:
        return sum(c.size for c in self.chunks)

    def avail(self) -> int:
        return sum(c.size - (bitmap_weight(c.bits) << self.order) for c in self.chunks)

    def destroy(self) -> None:
        """gen_pool_destroy: BUGs if anything is still allocated."""
        if self.avail() != self.size():
            raise ValueError("gen_pool_destroy with outstanding allocations")
        self.chunks.clear()
