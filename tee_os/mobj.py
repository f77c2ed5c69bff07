"""Memory objects (OP-TEE's ``struct mobj``): what a memref parameter points at.

A mobj is a list of physical pages plus the offset of its first byte in the first page. Normal
shared memory is non-secure; protected memory (later) is secure. Every bounds check here is
overflow-safe: offsets and sizes come from the normal world.
"""
from __future__ import annotations

from dataclasses import dataclass, field

PAGE = 0x1000


class MobjError(ValueError):
    """A memref does not fit its memory object."""


@dataclass
class Mobj:
    kind: str                      # "tmem" (physical), "reg_shm" (registered), "protmem", ...
    pages: tuple[int, ...]         # physical page addresses
    page_offset: int               # offset of byte 0 within pages[0]
    size: int
    secure: bool = False
    cookie: int | None = None
    refs: int = 0                  # users (sessions/invocations) currently mapping it
    extra: dict = field(default_factory=dict)

    def check_range(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset > self.size or size > self.size - offset:
            raise MobjError(f"range {offset:#x}+{size:#x} outside {self.kind} of {self.size:#x} bytes")

    def pa_ranges(self, offset: int, size: int) -> list[tuple[int, int]]:
        """Physical (address, length) runs covering [offset, offset+size), merged when contiguous."""
        self.check_range(offset, size)
        runs: list[tuple[int, int]] = []
        pos = self.page_offset + offset
        remaining = size
        while remaining > 0:
            idx, inpage = divmod(pos, PAGE)
            chunk = min(PAGE - inpage, remaining)
            pa = self.pages[idx] + inpage
            if runs and runs[-1][0] + runs[-1][1] == pa:
                runs[-1] = (runs[-1][0], runs[-1][1] + chunk)
            else:
                runs.append((pa, chunk))
            pos += chunk
            remaining -= chunk
        return runs

    def pages_for(self, offset: int, size: int) -> tuple[int, tuple[int, ...]]:
        """(offset of the range in its first page, the page addresses covering it)."""
        self.check_range(offset, size)
        start = self.page_offset + offset
        first, last = start // PAGE, (start + max(size, 1) - 1) // PAGE
        return start % PAGE, self.pages[first:last + 1]


def contiguous_mobj(kind: str, pa: int, size: int, *, secure: bool = False,
                    cookie: int | None = None) -> Mobj:
    """A mobj over one physically contiguous range."""
    first = pa & ~(PAGE - 1)
    npages = (pa + max(size, 1) - first + PAGE - 1) // PAGE
    return Mobj(kind, tuple(first + i * PAGE for i in range(npages)), pa - first, size,
                secure=secure, cookie=cookie)
