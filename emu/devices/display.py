"""The display controller: the kmssink end of a protected video pipeline.

It scans frames out of physical memory as a non-secure DMA master with its own NSAID, so a
protected (TZC region) buffer is visible to it only if the secure world opened that region for the
display's NSAID. The CRC of each frame lets tests compare what was shown without keeping images;
``last_frame`` keeps the bytes for the module that turns frames into PNGs.
"""
from __future__ import annotations

import zlib

from emu.devices.dma import DmaMaster


class DisplayController(DmaMaster):
    """Reads whole frames through ``dma_read`` and reports their CRC32."""

    last_frame: bytes | None = None
    last_crc: int | None = None
    last_scanout: tuple[int, int] | None = None     # (pa, size) of the last shown frame
    frames: int = 0

    def scanout(self, pa: int, size: int) -> int:
        """Show the frame at ``pa``: its zlib.crc32; ProtectionFault (nothing shown) if denied."""
        view = self.dma_read(pa, size)
        crc = zlib.crc32(view)
        self.last_frame, self.last_crc, self.last_scanout = bytes(view), crc, (pa, size)
        self.frames += 1
        if self.bus.active:
            self.bus.emit("display_scanout", self.name, address=pa, size=size, crc32=crc,
                          frame=self.frames)
        return crc
