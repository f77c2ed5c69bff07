"""TA address spaces: the secure OS's page tables for S-EL0, and its page allocator.

Each TA instance has its own address space (a page map VA -> PA with permissions, the
secure/non-secure attribute and whether the page is TA-private). The S-EL0 CPU view's TLB-fill
policy is the active space's :meth:`TaAddressSpace.translate`, so an S-EL0 access outside the
map, or against its permissions, faults like a real translation fault.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emu.cpu import PROT_R, PROT_W, PROT_X, CpuView
from emu.extents import ExtentAllocator
from emu.faults import FaultInjector
from unicorn.unicorn_const import UC_MEM_FETCH, UC_MEM_WRITE

PAGE = 0x1000

TA_LOAD_BASE = 0x0010_0000      # fixed, deterministic load address (ASLR is not modelled)
TA_PARAM_BASE = 0x4000_0000     # memref parameters are mapped from here, per entry
TA_VA_LIMIT = 0x8000_0000


class AccessDenied(Exception):
    """A TA-supplied pointer is not mapped with the needed rights."""


class OutOfMemory(Exception):
    """The TA page pool is exhausted."""


@dataclass(frozen=True)
class Mapping:
    pa: int
    prot: int           # PROT_R | PROT_W | PROT_X
    secure: bool        # mapped as secure memory (SDP) or non-secure (normal shm)
    private: bool       # TA image, stack, heap: True; parameter mappings: False


class PagePool:
    """First-fit allocator of contiguous physical pages (secure TA memory)."""

    def __init__(self, base: int, size: int, faults: Any = None):
        self.base, self.size = base, size
        self._extents = ExtentAllocator(base, size, PAGE)
        self.faults = faults if faults is not None else FaultInjector()

    def alloc(self, nbytes: int) -> int:
        pa = None if self.faults.hit("ta.alloc") else self._extents.alloc(nbytes)
        if pa is None:
            raise OutOfMemory(f"TA page pool exhausted ({self._extents.round(nbytes):#x} bytes "
                              f"requested)")
        return pa

    def free(self, pa: int, nbytes: int) -> None:
        size = self._extents.free(pa)
        if size != self._extents.round(nbytes):
            raise ValueError(f"TA page pool: free of {pa:#x}+{nbytes:#x} does not match an "
                             f"allocation ({size!r})")

    @property
    def free_bytes(self) -> int:
        return self._extents.free_bytes


class TaAddressSpace:
    """Page map of one TA instance; also the S-EL0 view's translate policy while it runs."""

    def __init__(self) -> None:
        self.pages: dict[int, Mapping] = {}
        self.next_param_va = TA_PARAM_BASE
        # (va, size, mobj, offset) of each memref mapped for the current entry: how the core
        # turns a TA's VA back into the original memory object (TA-to-TA calls).
        self.param_objects: list[tuple] = []
        self._param_pages: list[int] = []

    def map_range(self, va: int, pa: int, size: int, prot: int, *, secure: bool,
                  private: bool) -> None:
        for off in range(0, (size + PAGE - 1) & ~(PAGE - 1), PAGE):
            self.pages[va + off] = Mapping(pa + off, prot, secure, private)

    def map_pages(self, va: int, pages: tuple[int, ...], prot: int, *, secure: bool,
                  private: bool) -> None:
        for i, pa in enumerate(pages):
            self.pages[va + i * PAGE] = Mapping(pa, prot, secure, private)

    def unmap(self, va: int, size: int) -> None:
        for off in range(0, (size + PAGE - 1) & ~(PAGE - 1), PAGE):
            self.pages.pop(va + off, None)

    def map_param(self, page_offset: int, pages: tuple[int, ...], writable: bool,
                  secure: bool) -> tuple[int, int]:
        """Map a memref's pages at the next free parameter VA; return (va of byte 0, span)."""
        va = self.next_param_va
        prot = PROT_R | (PROT_W if writable else 0)
        self.map_pages(va, pages, prot, secure=secure, private=False)
        self._param_pages.extend(va + i * PAGE for i in range(len(pages)))
        span = len(pages) * PAGE
        self.next_param_va += span + PAGE           # one guard page between parameters
        return va + page_offset, span

    def unmap_params(self) -> None:
        """Drop this entry's memref mappings (and only those: device frames stay mapped)."""
        for va in self._param_pages:
            self.pages.pop(va, None)
        self._param_pages.clear()
        self.next_param_va = TA_PARAM_BASE
        self.param_objects.clear()

    def param_object(self, va: int, size: int) -> tuple | None:
        """(mobj, offset) behind a TA VA range inside one of this entry's memref mappings."""
        for pva, psize, mobj, offset in self.param_objects:
            if pva <= va and va + size <= pva + psize:
                return mobj, offset + (va - pva)
        return None

    def translate(self, view: CpuView, va: int, access: int) -> tuple[int, int] | None:
        m = self.pages.get(va & ~(PAGE - 1))
        if m is None:
            view.deny(va, access, "translation fault (unmapped at S-EL0)")
            return None
        need = PROT_X if access == UC_MEM_FETCH else PROT_W if access == UC_MEM_WRITE else PROT_R
        if not m.prot & need:
            view.deny(va, access, "permission fault at S-EL0", m.pa)
            return None
        return m.pa, m.prot

    def resolve(self, va: int, size: int, *, write: bool) -> list[tuple[int, int]]:
        """Physical runs for a TA buffer, checking every page is mapped with the right rights."""
        if size == 0:
            return []
        if va < 0 or size < 0 or va + size > TA_VA_LIMIT:
            raise AccessDenied(f"buffer {va:#x}+{size:#x} outside the TA address space")
        runs: list[tuple[int, int]] = []
        pos, end = va, va + size
        need = PROT_W if write else PROT_R
        while pos < end:
            page = pos & ~(PAGE - 1)
            m = self.pages.get(page)
            if m is None or not m.prot & need:
                raise AccessDenied(f"TA address {pos:#x} not {'writable' if write else 'readable'}")
            chunk = min(page + PAGE, end) - pos
            pa = m.pa + (pos - page)
            if runs and runs[-1][0] + runs[-1][1] == pa:
                runs[-1] = (runs[-1][0], runs[-1][1] + chunk)
            else:
                runs.append((pa, chunk))
            pos += chunk
        return runs

    def pages_in(self, va: int, size: int) -> list[Mapping | None]:
        """The mapping of every page of [va, va + size); None for an unmapped page. A range
        reaching past TA_VA_LIMIT has unmapped pages by definition: it answers [None] without
        walking them (a TA may pass any size, e.g. 2**40 bytes = 2**28 pages)."""
        if va < 0 or va + size > TA_VA_LIMIT:
            return [None]
        first = va & ~(PAGE - 1)
        return [self.pages.get(p) for p in range(first, va + size, PAGE)]
