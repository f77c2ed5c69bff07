"""Normal-world memory management: the kernel's page allocator and user address spaces."""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from emu.extents import ExtentAllocator
from linux_side.errors import LinuxError

PAGE_SIZE = 0x1000


def page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class PageAllocator:
    """First-fit allocator of physically contiguous pages (alloc_pages / free_pages)."""

    def __init__(self, base: int, size: int, name: str = "kernel"):
        self.base, self.size, self.name = base, size, name
        self._extents = ExtentAllocator(base, size, PAGE_SIZE)
        self.allocated = self._extents.allocated

    def alloc(self, nbytes: int) -> int:
        pa = self._extents.alloc(nbytes)
        if pa is None:
            raise LinuxError(errno.ENOMEM, f"{self.name} pool: no {page_align(max(nbytes, 1)):#x} "
                                           f"contiguous bytes")
        return pa

    def alloc_aligned(self, nbytes: int, align: int) -> int:
        """Contiguous pages starting on an ``align`` boundary (a power of two of at least a
        page), as alloc_pages_exact's buddy allocation gives for a naturally aligned size."""
        pa = self._extents.alloc(nbytes, align)
        if pa is None:
            raise LinuxError(errno.ENOMEM, f"{self.name} pool: no {page_align(max(nbytes, 1)):#x} "
                                           f"contiguous bytes aligned to {max(align, PAGE_SIZE):#x}")
        return pa

    def free(self, pa: int) -> None:
        if self._extents.free(pa) is None:
            raise ValueError(f"{self.name} pool: {pa:#x} was not allocated")

    @property
    def free_bytes(self) -> int:
        return self._extents.free_bytes


USER_VA_BASE = 0x0000_0040_0000_0000


@dataclass
class UserSpace:
    """A process's address space: user VA pages backed by NS physical pages.

    ``pages`` is the kernel's VMA bookkeeping; when a page-table ``builder`` is attached
    (after paging_init) every mapping is also written as a user PTE in the TTBR0 tables.
    """

    pages: dict[int, int] = field(default_factory=dict)      # va page -> pa page
    next_va: int = USER_VA_BASE
    builder: Any = None

    def map(self, pa: int, size: int) -> int:
        va = self.next_va
        for off in range(0, page_align(size), PAGE_SIZE):
            self.pages[va + off] = pa + off
            if self.builder is not None:
                self.builder.map_page(va + off, pa + off, writable=True, user=True)
        self.next_va += page_align(size) + PAGE_SIZE
        return va

    def unmap(self, va: int, size: int) -> None:
        for off in range(0, page_align(size), PAGE_SIZE):
            if self.pages.pop(va + off, None) is not None and self.builder is not None:
                self.builder.unmap_page(va + off)

    def resolve(self, va: int, size: int) -> list[tuple[int, int]]:
        """Physical runs of a user buffer; EFAULT if any page is unmapped."""
        runs: list[tuple[int, int]] = []
        pos, end = va, va + size
        if va < 0 or size < 0:
            raise LinuxError(errno.EFAULT, f"bad user buffer {va:#x}+{size:#x}")
        while pos < end:
            page = pos & ~(PAGE_SIZE - 1)
            pa_page = self.pages.get(page)
            if pa_page is None:
                raise LinuxError(errno.EFAULT, f"user address {pos:#x} is not mapped")
            chunk = min(page + PAGE_SIZE, end) - pos
            pa = pa_page + pos - page
            if runs and runs[-1][0] + runs[-1][1] == pa:
                runs[-1] = (runs[-1][0], runs[-1][1] + chunk)
            else:
                runs.append((pa, chunk))
            pos += chunk
        return runs

    def resolve_pages(self, va: int, size: int) -> list[tuple[int, int]]:
        """(physical page, va page) for each page of a page-aligned user range; EFAULT if any
        page is unmapped (get_user_pages)."""
        if va % PAGE_SIZE:
            raise LinuxError(errno.EINVAL, f"user range {va:#x} is not page aligned")
        out = []
        for off in range(0, page_align(size), PAGE_SIZE):
            pa = self.pages.get(va + off)
            if pa is None:
                raise LinuxError(errno.EFAULT, f"user address {va + off:#x} is not mapped")
            out.append((pa, va + off))
        return out


def pfn_valid(kernel: Any, pa: int) -> bool:
    """Whether ``pa`` has a struct page: it lies in the RAM the kernel was given."""
    cfg = kernel.config
    return cfg.ram_base <= pa < cfg.ram_base + cfg.ram_size
