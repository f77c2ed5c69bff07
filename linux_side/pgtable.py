"""The kernel's page-table code: real VMSAv8-64 stage-1 tables in NS memory.

The NS-EL1 CPU view translates through whatever this builds (``emu.mmu`` walks it on every TLB
miss), so the Linux model cannot "just know" where a buffer lives: it maps it, as the kernel's
``set_pte``/``pmd_set`` do, and the emulated core follows the descriptors. Nothing stops this
code from mapping a page that the TZC protects; that is deliberate, because the firewall, not
the kernel's good behaviour, is what must refuse the access.

Every table access goes through the ``read``/``write`` callables (the Linux model's NS memory
accesses), and the descriptor encodings come from ``emu.mmu`` so both ends agree bit for bit.
After changing a live mapping the caller flushes the CPU view's TLB (the TLBI this code would
be followed by on hardware).

Descriptor policy mirrors arm64 Linux: every mapping has AF set and is inner shareable; kernel
mappings are UXN (and PXN unless executable); user mappings are always PXN (and UXN unless
executable).
"""
from __future__ import annotations

from typing import Callable

from emu.mmu import (BLOCK_SIZE, DESC_TABLE, DESC_TYPE_MASK, DESC_VALID, LEVEL_SHIFT,
                     OA_MASK, PAGE_SIZE, block_descriptor, page_descriptor, start_level,
                     table_descriptor)

_ENTRY = 8
_LEAF_ATTRS = ~OA_MASK & ~DESC_TYPE_MASK & ((1 << 64) - 1)   # every bit but OA and type


class PageTableBuilder:
    """One translation table tree (what one TTBR points at), built and edited in memory.

    VAs may be given in either canonical half: only bits [va_bits-1:12] index the tables,
    so the same builder serves a TTBR1 kernel map (``0xFFFF...``) or a TTBR0 user map.
    """

    def __init__(self, alloc_page: Callable[[], int], write: Callable[[int, bytes], None],
                 read: Callable[[int, int], bytes], *, va_bits: int = 48):
        self._alloc_page, self._write, self._read = alloc_page, write, read
        self.va_bits = va_bits
        self.start_level = start_level(va_bits)     # 0 for 48-bit VA, 1 for 39-bit, ...
        self.txsz = 64 - va_bits                     # the T0SZ/T1SZ to program with it
        self.tables: list[int] = []
        self.root: int = self._new_table()

    # --- memory ---------------------------------------------------------------------------
    def _new_table(self) -> int:
        """Allocate and zero a table page (a fresh page may hold stale data)."""
        pa = self._alloc_page()
        if pa & (PAGE_SIZE - 1):
            raise ValueError(f"allocator returned unaligned table page {pa:#x}")
        self._write(pa, bytes(PAGE_SIZE))
        self.tables.append(pa)
        return pa

    def _get(self, addr: int) -> int:
        return int.from_bytes(self._read(addr, _ENTRY), "little")

    def _set(self, addr: int, desc: int) -> None:
        self._write(addr, desc.to_bytes(_ENTRY, "little"))

    # --- indexing ------------------------------------------------------------------------
    def _check_va(self, va: int) -> int:
        top = va >> self.va_bits
        if va < 0 or top not in (0, (1 << (64 - self.va_bits)) - 1):
            raise ValueError(f"VA {va:#x} is not canonical for a {self.va_bits}-bit VA space")
        return va

    def _slot(self, table: int, va: int, level: int) -> int:
        shift = LEVEL_SHIFT[level]
        bits = self.va_bits - shift if level == self.start_level else 9
        return table + _ENTRY * ((va >> shift) & ((1 << bits) - 1))

    def _is_table(self, desc: int, level: int) -> bool:
        return level < 3 and desc & DESC_TYPE_MASK == DESC_VALID | DESC_TABLE

    def _split(self, slot: int, desc: int, level: int) -> int:
        """Replace the block at ``slot`` by a next-level table with the same mappings.

        Used when a page inside a block is remapped or unmapped (the kernel's block split).
        """
        table = self._new_table()
        child = level + 1
        size = BLOCK_SIZE[child]
        kind = DESC_VALID | (DESC_TABLE if child == 3 else 0)
        base, attrs = desc & OA_MASK & ~(BLOCK_SIZE[level] - 1), desc & _LEAF_ATTRS
        self._write(table, b"".join((base + i * size | attrs | kind).to_bytes(_ENTRY, "little")
                                    for i in range(512)))
        self._set(slot, table_descriptor(table))
        return table

    def _leaf_slot(self, va: int, stop: int, create: bool) -> tuple[int, int] | None:
        """Address of the level-``stop`` descriptor for ``va`` (and the level it is at).

        With ``create``, missing tables are allocated and blocks above ``stop`` are split;
        without it, the walk stops early at a block or an invalid entry (level returned < stop
        for a block, None for nothing mapped).
        """
        table, level = self.root, self.start_level
        while True:
            slot = self._slot(table, va, level)
            if level == stop:
                return slot, level
            desc = self._get(slot)
            if self._is_table(desc, level):
                table = desc & OA_MASK
            elif desc & DESC_VALID:
                if not create:
                    return slot, level              # a block covers va
                table = self._split(slot, desc, level)
            elif create:
                table = self._new_table()
                self._set(slot, table_descriptor(table))
            else:
                return None
            level += 1

    # --- the kernel's operations ----------------------------------------------------------------
    @staticmethod
    def _attrs(writable: bool, user: bool, executable: bool, attr_index: int) -> dict:
        return dict(writable=writable, user=user, attr_index=attr_index, af=True,
                    pxn=user or not executable, uxn=not (user and executable))

    def map_page(self, va: int, pa: int, *, writable: bool = True, user: bool = False,
                 executable: bool = False, attr_index: int = 0) -> None:
        """Map one 4 KiB page (set_pte); an existing mapping of ``va`` is replaced."""
        if va & (PAGE_SIZE - 1):
            raise ValueError(f"VA {va:#x} is not page-aligned")
        self._check_va(va)
        desc = page_descriptor(pa, **self._attrs(writable, user, executable, attr_index))
        slot, _ = self._leaf_slot(va, 3, create=True)  # type: ignore[misc]
        self._set(slot, desc)

    def map_block(self, va: int, pa: int, *, level: int = 2, writable: bool = True,
                  user: bool = False, executable: bool = False, attr_index: int = 0) -> bool:
        """Map one 2 MiB (level 2) or 1 GiB (level 1) block; False if a table already holds
        finer mappings there (the caller then maps pages instead)."""
        size = BLOCK_SIZE[level]
        if va & (size - 1) or pa & (size - 1) or level < self.start_level:
            raise ValueError(f"block {va:#x}->{pa:#x} not {size:#x}-aligned for level {level}")
        self._check_va(va)
        slot, _ = self._leaf_slot(va, level, create=True)  # type: ignore[misc]
        if self._is_table(self._get(slot), level):
            return False
        attrs = self._attrs(writable, user, executable, attr_index)
        self._set(slot, block_descriptor(pa, level, **attrs))
        return True

    def map_range(self, va: int, pa: int, size: int, *, block: bool = False,
                  **kw: bool | int) -> None:
        """Map ``size`` bytes page by page; with ``block``, 2 MiB-aligned stretches use
        level-2 blocks (fewer tables and TLB misses, as the kernel's linear map does)."""
        if (va | pa | size) & (PAGE_SIZE - 1):
            raise ValueError(f"range {va:#x}->{pa:#x}+{size:#x} is not page-aligned")
        big = BLOCK_SIZE[2]
        off = 0
        while off < size:
            v, p = va + off, pa + off
            if (block and not (v | p) & (big - 1) and size - off >= big
                    and self.start_level <= 2 and self.map_block(v, p, level=2, **kw)):
                off += big
                continue
            self.map_page(v, p, **kw)  # type: ignore[arg-type]
            off += PAGE_SIZE

    def unmap_page(self, va: int) -> None:
        """Remove the mapping of one page (pte_clear); a covering block is split first.
        Unmapping an unmapped page does nothing. Table pages are kept (see ``tables``)."""
        self._check_va(va)
        found = self._leaf_slot(va & ~(PAGE_SIZE - 1), 3, create=False)
        if found is None:
            return
        slot, level = found
        if level < 3:
            slot, _ = self._leaf_slot(va & ~(PAGE_SIZE - 1), 3, create=True)  # type: ignore[misc]
        self._set(slot, 0)

    def lookup(self, va: int) -> int | None:
        """The PA of byte ``va`` by a software walk (the kernel's own view of its tables;
        permissions and the access flag are not checked), or None if unmapped."""
        self._check_va(va)
        found = self._leaf_slot(va, 3, create=False)
        if found is None:
            return None
        slot, level = found
        desc = self._get(slot)
        if not desc & DESC_VALID or (level == 3 and not desc & DESC_TABLE):
            return None
        size = BLOCK_SIZE[level]
        return (desc & OA_MASK & ~(size - 1)) | (va & (size - 1))

    def descriptor_at(self, va: int, level: int) -> tuple[int, int] | None:
        """(slot PA, descriptor) at ``level`` for ``va`` if the walk reaches it: for tests
        and debuggers that need to inspect or corrupt one entry."""
        found = self._leaf_slot(va, level, create=False)
        if found is None or found[1] != level:
            return None
        return found[0], self._get(found[0])


__all__ = ["PageTableBuilder"]
