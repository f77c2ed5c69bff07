"""Secure video playback: the seed's ``videotestsrc ! aesenc ! aesdec ! kmssink`` for real.

The encrypted ``aesenc`` stream stays in normal memory; for every frame the decrypt TA (S-EL0)
decrypts its record into a dma-buf from ``protected,secure-video`` (on the CPU with the crypto
extension, or by programming the secure crypto engine), and the display controller scans the
frame out with its own NSAID through the TZC. The normal world only ever holds ciphertext and
dma-buf fds: a read of a frame buffer by the NS CPU faults, and the summary shows it.
"""
from __future__ import annotations

import time
import uuid as uuidlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import tzemu
from emu.devices.dma import DmaBusError
from linux_side.dma_buf import dma_buf_get
from linux_side.teec import (TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT,
                             TEEC_MEMREF_TEMP_INPUT, TEEC_NONE, TEEC_VALUE_INPUT,
                             TEEC_VALUE_OUTPUT, Operation, RegMemref, TempMemref, Value,
                             dma_heap_alloc)
from tzemu import aes_stream, video

DECRYPT_TA = uuidlib.UUID("5c2d1e77-9f3a-4b61-8e0d-2a7c4f9b1d03")
CMD_SET_KEY, CMD_SET_IV, CMD_DECRYPT_CPU, CMD_DECRYPT_ENGINE = 0, 1, 2, 3
FLAG_PER_BUFFER_PADDING, FLAG_FINAL = 1, 2
SEED_KEY = "1f9423681beb9a79215820f6bda73d0f"
SEED_IV = "e9aa8e834d8d70b7e0d254ff670dd718"
HEAP = "/dev/dma_heap/protected,secure-video"


class SvpError(Exception):
    """The stream cannot be played (format, key, padding, sizes): one clear message."""


@dataclass
class SvpResult:
    frames: int = 0
    bytes_decrypted: int = 0
    seconds: float = 0.0
    crcs: list[int] = field(default_factory=list)
    pngs: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    ns_read_fault: str | None = None

    @property
    def mb_per_s(self) -> float:
        return self.bytes_decrypted / self.seconds / 1e6 if self.seconds else 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def make_test_stream(fmt: str, width: int, height: int, frames: int, *, key: str = SEED_KEY,
                     iv: str = SEED_IV, serialize_iv: bool = True, cipher: str = "aes-128-cbc",
                     per_buffer_padding: bool = True) -> bytes:
    """Colour bars, one aesenc input buffer per frame (what videotestsrc ! aesenc produces)."""
    w = aes_stream.AesencWriter(key, iv, cipher, serialize_iv=serialize_iv,
                                per_buffer_padding=per_buffer_padding)
    out = b"".join(w.push(video.colour_bars(fmt, width, height, i)) for i in range(frames))
    return out + w.finish()


def play(p: Any, stream: bytes, *, key: str, iv: str | None, fmt: str, width: int, height: int,
         serialize_iv: bool = False, cipher: str = "aes-128-cbc", per_buffer_padding: bool = True,
         frames: int | None = None, crypto: str = "cpu", output: str | Path | None = None,
         png_dir: str | Path | None = None, png_frames: int | None = None,
         progress: Callable[[int, int], None] | None = None, try_ns_read: bool = True) -> SvpResult:
    """Decrypt ``stream`` frame by frame into protected buffers and scan them out."""
    fsize = video.frame_size(fmt, width, height)
    key_bytes = aes_stream.parse_key(key, cipher, strict=True)
    if serialize_iv:
        if len(stream) < 16:
            raise SvpError("stream shorter than its serialized IV")
        iv_bytes, body = stream[:16], stream[16:]
    else:
        iv_bytes, body = aes_stream.parse_iv(iv or "", strict=True), stream
    rec = aes_stream.record_size(fsize) if per_buffer_padding else fsize - fsize % 16 + 16
    if per_buffer_padding and len(body) % rec:
        raise SvpError(f"stream of {len(body)} bytes is not a whole number of {rec}-byte frame "
                       f"records ({fmt} {width}x{height}): truncated or wrong geometry")
    if not per_buffer_padding and len(body) % 16:
        raise SvpError("stream length is not a multiple of the AES block size")
    total = len(body) // rec if per_buffer_padding else max(1, len(body) // fsize)
    n = total if frames is None else min(frames, total)
    k = p.kernel
    ctx = p.linux.teec()
    res = SvpResult()
    sess = ctx.open_session(DECRYPT_TA)
    try:
        sess.invoke(CMD_SET_KEY, Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE),
                                           [TempMemref(key_bytes), Value(len(key_bytes) * 8), None, None]))
        sess.invoke(CMD_SET_IV, Operation((TEEC_MEMREF_TEMP_INPUT,) + (TEEC_NONE,) * 3,
                                          [TempMemref(iv_bytes), None, None, None]))
        src = ctx.allocate_shared_memory(rec)
        fd = frame = None
        try:
            fd = dma_heap_alloc(k, HEAP, fsize)
            frame = ctx.register_shared_memory_fd(fd)
            _play_frames(p, sess, src, frame, fd, body, res, n=n, rec=rec, fsize=fsize, fmt=fmt,
                         width=width, height=height, crypto=crypto,
                         per_buffer_padding=per_buffer_padding, output=output, png_dir=png_dir,
                         png_frames=png_frames, progress=progress, try_ns_read=try_ns_read)
        finally:          # every buffer goes back, whatever stopped the pipeline
            if frame is not None:
                ctx.release_shared_memory(frame)
            if fd is not None:
                k.close(fd)
            ctx.release_shared_memory(src)
    finally:
        sess.close()
        ctx.close()
    return res


def _play_frames(p: Any, sess: Any, src: Any, frame: Any, fd: int, body: bytes, res: SvpResult,
                 *, n: int, rec: int, fsize: int, fmt: str, width: int, height: int, crypto: str,
                 per_buffer_padding: bool, output: str | Path | None,
                 png_dir: str | Path | None, png_frames: int | None,
                 progress: Callable[[int, int], None] | None, try_ns_read: bool) -> None:
    """The frame loop: decrypt each record into the protected buffer, scan it out."""
    k = p.kernel
    frame_pa = dma_buf_get(k, fd).priv.table.sgl[0].phys
    display = p.devices["display"]
    out = open(output, "wb") if output else None
    png = Path(png_dir) if png_dir else None
    if png:
        png.mkdir(parents=True, exist_ok=True)
    cmd = CMD_DECRYPT_ENGINE if crypto == "engine" else CMD_DECRYPT_CPU
    flags = FLAG_PER_BUFFER_PADDING if per_buffer_padding else 0
    start = time.perf_counter()
    try:
        for i in range(n):
            chunk = body[i * rec:(i + 1) * rec] if per_buffer_padding else \
                body[i * fsize:(i + 1) * fsize if i + 1 < n else len(body)]
            last = not per_buffer_padding and i + 1 == n
            k.copy_to_user(src.va, chunk)
            written = Value()
            op = Operation((TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_VALUE_INPUT,
                            TEEC_VALUE_OUTPUT),
                           [RegMemref(src, 0, len(chunk)), RegMemref(frame, 0, fsize),
                            Value(rec if per_buffer_padding else 0, flags | (FLAG_FINAL if last else 0)),
                            written])
            ret, origin = sess.invoke(cmd, op, check=False)
            if ret:
                raise SvpError(_decrypt_error(ret, origin, i))
            try:
                res.crcs.append(display.scanout(frame_pa, fsize))
            except (tzemu.ProtectionFault, DmaBusError) as exc:
                raise SvpError(f"frame {i}: display scan-out failed: {exc}") from exc
            res.frames += 1
            res.bytes_decrypted += len(chunk)
            if out:
                out.write(display.last_frame)
            if png and (png_frames is None or len(res.pngs) < png_frames):
                path = png / f"frame-{i:04d}.png"
                path.write_bytes(video.to_png(fmt, width, height, display.last_frame))
                res.pngs.append(str(path))
            if progress:
                progress(i + 1, n)
    finally:
        res.seconds = time.perf_counter() - start
        if out:
            out.close()
    if try_ns_read:
        try:
            p.ns_read(frame_pa, 64)
            res.ns_read_fault = None
            res.faults.append("the NS CPU READ a protected frame buffer")
        except tzemu.ProtectionFault as f:
            res.ns_read_fault = f"{f.world} read of frame buffer {f.address:#x} faulted: {f.reason}"


def _decrypt_error(ret: int, origin: int, frame: int) -> str:
    names = {0xFFFF0005: "bad PKCS#7 padding (tampered stream or wrong key)",
             0xFFFF0006: "bad parameters (record size, key size)", 0xFFFF0007: "key or IV not set",
             0xFFFF0010: "frame buffer too small for the record",
             0xFFFF0000: "crypto engine error"}
    return f"frame {frame}: decrypt TA returned {ret:#x} (origin {origin}): {names.get(ret, 'error')}"


def crc_of_frames(fmt: str, width: int, height: int, frames: int) -> list[int]:
    """CRC32 of the plain colour-bar frames: what the display must show."""
    return [zlib.crc32(video.colour_bars(fmt, width, height, i)) for i in range(frames)]
