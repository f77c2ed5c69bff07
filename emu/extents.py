"""First-fit allocator of contiguous address ranges, shared by both worlds' page allocators.

The kernel model's ``alloc_pages`` and the secure OS's TA page pool allocate the same way
(first fit over a sorted free list, neighbours merged on free); each world wraps this in its
own error type, so no exception crosses a world boundary.
"""
from __future__ import annotations


class ExtentAllocator:
    """Contiguous ranges of whole granules from ``[base, base + size)``."""

    def __init__(self, base: int, size: int, granule: int = 0x1000):
        if granule & (granule - 1):
            raise ValueError(f"granule {granule:#x} is not a power of two")
        self.base, self.size, self.granule = base, size, granule
        self._free: list[tuple[int, int]] = [(base, size)]
        self.allocated: dict[int, int] = {}

    def round(self, nbytes: int) -> int:
        """``nbytes`` rounded up to whole granules (at least one)."""
        g = self.granule
        return (max(nbytes, 1) + g - 1) & ~(g - 1)

    def alloc(self, nbytes: int, align: int = 0) -> int | None:
        """Start of the first free range of ``nbytes`` (rounded) on an ``align`` boundary
        (a power of two; at least the granule), or None when nothing fits."""
        need = self.round(nbytes)
        align = max(align, self.granule)
        for i, (start, length) in enumerate(self._free):
            first = (start + align - 1) & ~(align - 1)
            if first + need > start + length:
                continue
            rest = [(start, first - start)] if first > start else []
            if first + need < start + length:
                rest.append((first + need, start + length - first - need))
            self._free[i:i + 1] = rest
            self.allocated[first] = need
            return first
        return None

    def free(self, start: int) -> int | None:
        """Return the range that starts at ``start``; its size, or None if it was not
        allocated here (the caller reports that in its own world's terms)."""
        size = self.allocated.pop(start, None)
        if size is None:
            return None
        self._free.append((start, size))
        self._free.sort()
        merged: list[tuple[int, int]] = []
        for s, length in self._free:
            if merged and merged[-1][0] + merged[-1][1] == s:
                merged[-1] = (merged[-1][0], merged[-1][1] + length)
            else:
                merged.append((s, length))
        self._free = merged
        return size

    @property
    def free_bytes(self) -> int:
        return sum(length for _, length in self._free)
