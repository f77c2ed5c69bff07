"""One physical memory, shared by every CPU view and device.

Each RAM region of the memory map is one anonymous host mapping. Unicorn instances map the same
host pages with ``mem_map_ptr`` so a store by one view is visible to every other view and to
Python at once; Python readers (devices, the secure OS) get zero-copy ``memoryview`` slices.

Nothing here decides *who* may access memory: that is the TZC's and the views' job. PhysMem is the
bus behind the firewall.
"""
from __future__ import annotations

import ctypes
import mmap
import struct
from dataclasses import dataclass

from emu.platform_map import MemoryMap, Region
from emu.types import PhysAddr


class BusError(Exception):
    """A physical access hit no RAM (unmapped or MMIO through the RAM path)."""

    def __init__(self, pa: int, size: int):
        super().__init__(f"physical access {pa:#x}+{size:#x} hits no RAM region")
        self.pa, self.size = pa, size


@dataclass
class RamBlock:
    region: Region
    buffer: mmap.mmap
    view: memoryview
    host_ptr: int


class PhysMem:
    """The host buffers behind the platform's RAM regions."""

    def __init__(self, memory_map: MemoryMap):
        self.map = memory_map
        self.blocks: list[RamBlock] = []
        for region in memory_map.regions:
            if region.kind != "ram":
                continue
            buf = mmap.mmap(-1, region.size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            ptr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
            self.blocks.append(RamBlock(region, buf, memoryview(buf), ptr))
        self._last = self.blocks[0]

    def _block(self, pa: int, size: int) -> RamBlock:
        b = self._last
        if b.region.base <= pa and pa + size <= b.region.base + b.region.size:
            return b
        for b in self.blocks:
            if b.region.base <= pa and pa + size <= b.region.base + b.region.size:
                self._last = b
                return b
        raise BusError(pa, size)

    def is_ram(self, pa: int, size: int = 1) -> bool:
        try:
            self._block(pa, size)
        except BusError:
            return False
        return True

    def view(self, pa: PhysAddr | int, size: int) -> memoryview:
        """Zero-copy window on ``size`` bytes at ``pa`` (must lie in one RAM region)."""
        if size < 0 or pa < 0:
            raise BusError(pa, size)
        b = self._block(pa, size)
        off = pa - b.region.base
        return b.view[off:off + size]

    def read(self, pa: PhysAddr | int, size: int) -> bytes:
        return bytes(self.view(pa, size))

    def write(self, pa: PhysAddr | int, data: bytes | bytearray | memoryview) -> None:
        self.view(pa, len(data))[:] = data

    def fill(self, pa: PhysAddr | int, size: int, value: int = 0) -> None:
        """Set a range to one byte value (scrubbing uses value 0)."""
        b = self._block(pa, size)
        off = pa - b.region.base
        ctypes.memset(b.host_ptr + off, value, size)

    def is_zero(self, pa: PhysAddr | int, size: int) -> bool:
        v = self.view(pa, size)
        return v.count(0) == size if hasattr(v, "count") else not any(v)

    def read_u32(self, pa: int) -> int:
        return struct.unpack_from("<I", self.view(pa, 4))[0]

    def read_u64(self, pa: int) -> int:
        return struct.unpack_from("<Q", self.view(pa, 8))[0]

    def write_u32(self, pa: int, value: int) -> None:
        struct.pack_into("<I", self.view(pa, 4), 0, value & 0xFFFFFFFF)

    def write_u64(self, pa: int, value: int) -> None:
        struct.pack_into("<Q", self.view(pa, 8), 0, value & 0xFFFFFFFFFFFFFFFF)
