"""Page bitmaps (lib/bitmap.c): the search both CMA and genalloc use to find a free run.

A bitmap is a ``bytearray`` with one byte per bit (0 = free, 1 = used): ``bytes.find`` on a run
of zero bytes is a fast first-fit scan, which keeps a 128 MiB CMA area cheap to search.
"""
from __future__ import annotations


def _align_up(index: int, align_mask: int, align_offset: int) -> int:
    return ((index + align_offset + align_mask) & ~align_mask) - align_offset


def bitmap_find_next_zero_area(bitmap: bytearray, start: int, nr: int, align_mask: int = 0,
                               align_offset: int = 0) -> int:
    """First index >= ``start`` of ``nr`` clear bits with ``(index + align_offset) & align_mask
    == 0`` (bitmap_find_next_zero_area_off); ``len(bitmap)`` when there is none.

    ``align_offset`` lets a caller align absolute page frame numbers rather than indices
    relative to the start of its area, as CMA does.
    """
    size = len(bitmap)
    if nr <= 0 or start + nr > size:      # cannot fit: answer before building the needle
        return size
    run = bytes(nr)
    index = start
    while True:
        index = _align_up(index, align_mask, align_offset)
        if index < start or index + nr > size:
            return size
        found = bitmap.find(run, index)
        if found < 0 or found + nr > size:
            return size
        if (found + align_offset) & align_mask == 0:
            return found
        index = found + 1


def bitmap_set(bitmap: bytearray, start: int, nr: int) -> None:
    bitmap[start:start + nr] = b"\x01" * nr


def bitmap_clear(bitmap: bytearray, start: int, nr: int) -> None:
    bitmap[start:start + nr] = bytes(nr)


def bitmap_all_set(bitmap: bytearray, start: int, nr: int) -> bool:
    return bitmap.count(0, start, start + nr) == 0


def bitmap_weight(bitmap: bytearray) -> int:
    """Number of set bits."""
    return len(bitmap) - bitmap.count(0)


def largest_zero_run(bitmap: bytearray) -> int:
    """Length of the longest run of clear bits: what fragmentation leaves allocatable."""
    best = run = 0
    for chunk in bytes(bitmap).split(b"\x01"):
        run = len(chunk)
        best = max(best, run)
    return best
