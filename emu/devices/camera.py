"""The camera: the source end of a secure-video-record pipeline.

Why a device: in the record use case the camera writes frames straight into a protected buffer
(the secure world opened that TZC region for the camera's NSAID, write only), the decrypt TA
encrypts them from there into normal memory, and nothing in the normal world ever reads the raw
frames. So the camera is a *non-secure* DMA master with its own NSAID (the platform file's
``[nsaid] camera``) and every frame it captures goes through ``dma_write`` and the TZC: a buffer
the camera may not write raises ProtectionFault and stays unchanged.

``test_pattern`` is a format-agnostic, deterministic frame generator (emu/ cannot depend on
``tzemu.video``); scenarios that want real colour bars pass ``tzemu.video.colour_bars`` output to
``capture``.
"""
from __future__ import annotations

import zlib
from typing import Any

from emu.devices.dma import DmaMaster

_PRIME = 251                      # a pattern period that no power-of-two frame size aligns to


class Camera(DmaMaster):
    """A non-secure DMA master that writes whole frames."""

    frames: int = 0
    last_capture: tuple[int, int, int] | None = None   # (pa, size, crc32)

    def __init__(self, name: str = "camera", **kwargs: Any) -> None:
        if kwargs.pop("secure", False):
            raise ValueError("the camera is a non-secure master")
        super().__init__(name, secure=False, **kwargs)

    @classmethod
    def from_platform(cls, physmem: Any, tzc: Any, **kwargs: Any) -> "Camera":
        """A camera with the platform file's camera NSAID (``[nsaid] camera``)."""
        nsaid = physmem.map.nsaid["camera"]
        kwargs.setdefault("master_id", 0x10 + nsaid)
        return cls(physmem=physmem, tzc=tzc, nsaid=nsaid, **kwargs)

    def capture(self, pa: int, frame: bytes | bytearray | memoryview) -> int:
        """Write one frame at ``pa`` through the TZC; its CRC32. ProtectionFault (nothing
        written) when the TZC denies the camera's NSAID."""
        self.dma_write(pa, frame)
        crc = zlib.crc32(frame)
        size = memoryview(frame).nbytes
        self.frames += 1
        self.last_capture = (pa, size, crc)
        if self.bus.active:
            self.bus.emit("camera_capture", self.name, address=pa, size=size, crc32=crc,
                          frame=self.frames)
        return crc

    def capture_pattern(self, pa: int, size: int, frame_index: int | None = None) -> bytes:
        """Capture ``test_pattern(size, frame_index)`` (default: the next frame number)."""
        frame = self.test_pattern(size, self.frames if frame_index is None else frame_index)
        self.capture(pa, frame)
        return frame

    @staticmethod
    def test_pattern(size: int, frame_index: int = 0) -> bytes:
        """``size`` deterministic bytes: a ramp with period 251 shifted by the frame index, the
        frame index stamped (u32 LE) in the first 4 bytes so frames never repeat."""
        if size < 0:
            raise ValueError("size must not be negative")
        period = bytes((i * 7 + 3) % 256 for i in range(_PRIME))
        shift = (frame_index * 13) % _PRIME
        ramp = period[shift:] + period[:shift]
        body = ramp * (size // _PRIME + 1)
        stamp = (frame_index & 0xFFFFFFFF).to_bytes(4, "little")
        return (stamp + body[4:size])[:size]
