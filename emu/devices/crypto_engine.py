"""The crypto engine: an AES-CBC DMA engine that the secure world drives through MMIO.

Why a device: the decrypt TA can move protected video either with its own CPU loop or, as on
real SoCs, by handing physical addresses to a *secure* bus master that reads the ciphertext and
writes the plaintext itself. Its accesses go through the TZC-400 as secure accesses
(``DmaMaster.dma_read``/``dma_write``), so a region the secure world closed even to secure
masters stops it, with the usual fail record.

Register frame (4 KiB, 32-bit registers; an aligned 64-bit access covers two). Declared once here;
``ta/decrypt_ta.S`` mirrors the offsets (a test keeps them equal). Reset value 0 unless noted.

  offset      name           access  meaning
  0x00-0x1C   KEY0..KEY7     W       key bytes 4i..4i+3 in memory order (LE words); read as 0
  0x20        KEY_BITS       RW      128 (reset) or 256; anything else fails START, ERR_CODE 4
  0x30-0x3C   IV0..IV3       RW      CBC chaining value, memory order like KEY
  0x40/0x44   SRC_LO/SRC_HI  RW      source physical address
  0x48/0x4C   DST_LO/DST_HI  RW      destination physical address
  0x50        LEN            RW      bytes to read from SRC
  0x54        RECORD         RW      record size, 0 = all of LEN is one record (decrypt: ciphertext
                                     record, a multiple of 16; encrypt: plaintext record)
  0x58        CTRL           RW      bit0 START (self-clearing), bit1 DECRYPT (else encrypt),
                                     bit2 PER_RECORD_PADDING, bit3 FINAL_PADDING (once at the end)
  0x5C        STATUS         R/W1C   bit0 DONE, bit1 ERROR; START clears both
  0x60        ERR_CODE       R       1 bad padding, 2 bus error (TZC denied), 3 bad length or
                                     flags, 4 bad KEY_BITS
  0x64        OUT_LEN        R       bytes written to DST by the last operation
  0x70-0x7C   IV_OUT0..3     R       last ciphertext block (the chaining value to continue with)
  0xFFC       ID             R       0x41455343

Operations are synchronous: the START write completes the whole operation before it returns,
so the first STATUS read already shows DONE or ERROR (a driver still polls, as for hardware).
Records and padding are exactly those of ``tzemu.aes_stream``/the decrypt TA: decrypt removes
PKCS#7 from every record (PER_RECORD_PADDING) or once at the end (FINAL_PADDING); encrypt adds
it likewise. Any error leaves DST untouched: the whole output is judged by the TZC in one
``dma_write`` after the padding was checked. Every operation is an event (``crypto_engine``).
"""
from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from emu.devices.dma import DmaMaster
from emu.protection import ProtectionFault

FRAME_SIZE = 0x1000

# ---- register map ---------------------------------------------------------------------------
KEY0 = 0x00                       # KEY0..KEY7 at KEY0 + 4 i
KEY_BITS = 0x20
IV0 = 0x30                        # IV0..IV3 at IV0 + 4 i
SRC_LO, SRC_HI = 0x40, 0x44
DST_LO, DST_HI = 0x48, 0x4C
LEN = 0x50
RECORD = 0x54
CTRL = 0x58
STATUS = 0x5C
ERR_CODE = 0x60
OUT_LEN = 0x64
IV_OUT0 = 0x70                    # IV_OUT0..IV_OUT3 at IV_OUT0 + 4 i
ID = 0xFFC
ID_VALUE = 0x41455343

CTRL_START, CTRL_DECRYPT = 1 << 0, 1 << 1
CTRL_PER_RECORD_PADDING, CTRL_FINAL_PADDING = 1 << 2, 1 << 3
CTRL_MASK = 0xF
STATUS_DONE, STATUS_ERROR = 1 << 0, 1 << 1
ERR_NONE, ERR_PADDING, ERR_BUS, ERR_LENGTH, ERR_KEY = 0, 1, 2, 3, 4

REGISTER_NAMES: dict[int, str] = {
    **{KEY0 + 4 * i: f"KEY{i}" for i in range(8)}, KEY_BITS: "KEY_BITS",
    **{IV0 + 4 * i: f"IV{i}" for i in range(4)}, SRC_LO: "SRC_LO", SRC_HI: "SRC_HI",
    DST_LO: "DST_LO", DST_HI: "DST_HI", LEN: "LEN", RECORD: "RECORD", CTRL: "CTRL",
    STATUS: "STATUS", ERR_CODE: "ERR_CODE", OUT_LEN: "OUT_LEN",
    **{IV_OUT0 + 4 * i: f"IV_OUT{i}" for i in range(4)}, ID: "ID"}
_READ_ONLY = {ERR_CODE, OUT_LEN, ID} | {IV_OUT0 + 4 * i for i in range(4)}


class CryptoEngineError(Exception):
    """An operation started through :meth:`CryptoEngine.run` ended with STATUS.ERROR."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"crypto engine error {code}: {message}")
        self.code = code


class _OpError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class CryptoEngine(DmaMaster):
    """A secure DMA master with the register frame above (``mmio_read``/``mmio_write``)."""

    def __init__(self, name: str = "crypto_engine", *, secure: bool = True, **kwargs: Any):
        kwargs.setdefault("nsaid", 0)
        super().__init__(name, secure=secure, **kwargs)
        self.operations = 0
        self.reset()

    def reset(self) -> None:
        """Registers back to their reset values (all 0, KEY_BITS 128)."""
        self._key = bytearray(32)
        self._iv = bytearray(16)
        self._iv_out = bytearray(16)
        self._regs = {KEY_BITS: 128, SRC_LO: 0, SRC_HI: 0, DST_LO: 0, DST_HI: 0, LEN: 0,
                      RECORD: 0, CTRL: 0, STATUS: 0, ERR_CODE: 0, OUT_LEN: 0}
        self.last_error: str | None = None

    # ---- MMIO ---------------------------------------------------------------------------------
    def mmio_read(self, offset: int, size: int) -> int:
        """A load from the frame: 4 bytes = one register, 8 (aligned) = two, little-endian."""
        if size == 8 and offset % 8 == 0:
            return self._read32(offset) | self._read32(offset + 4) << 32
        if size == 4 and offset % 4 == 0:
            return self._read32(offset)
        self._bad_access("read", offset, size)
        return 0

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        """A store to the frame (same access sizes as ``mmio_read``)."""
        if size == 8 and offset % 8 == 0:
            self._write32(offset, value & 0xFFFFFFFF)
            self._write32(offset + 4, value >> 32 & 0xFFFFFFFF)
        elif size == 4 and offset % 4 == 0:
            self._write32(offset, value & 0xFFFFFFFF)
        else:
            self._bad_access("write", offset, size)

    def map_mmio(self, uc: Any, address: int) -> None:
        """Map the frame at ``address`` of a Unicorn view (the secure OS picks the address)."""
        uc.mmio_map(address, FRAME_SIZE,
                    lambda _uc, off, size, _ud: self.mmio_read(off, size), None,
                    lambda _uc, off, size, value, _ud: self.mmio_write(off, size, value), None)

    def _bad_access(self, direction: str, offset: int, size: int) -> None:
        if self.bus.active:
            self.bus.emit("crypto_engine_bad_access", self.name, direction=direction,
                          offset=offset, size=size)

    def _read32(self, off: int) -> int:
        if KEY0 <= off < KEY0 + 32:
            return 0                                      # keys are write-only
        if IV0 <= off < IV0 + 16:
            return int.from_bytes(self._iv[off - IV0:off - IV0 + 4], "little")
        if IV_OUT0 <= off < IV_OUT0 + 16:
            return int.from_bytes(self._iv_out[off - IV_OUT0:off - IV_OUT0 + 4], "little")
        if off == ID:
            return ID_VALUE
        return self._regs.get(off, 0)

    def _write32(self, off: int, value: int) -> None:
        if KEY0 <= off < KEY0 + 32:
            self._key[off - KEY0:off - KEY0 + 4] = value.to_bytes(4, "little")
        elif IV0 <= off < IV0 + 16:
            self._iv[off - IV0:off - IV0 + 4] = value.to_bytes(4, "little")
        elif off == STATUS:
            self._regs[STATUS] &= ~value                  # write one to clear
        elif off == CTRL:
            self._regs[CTRL] = value & CTRL_MASK & ~CTRL_START
            if value & CTRL_START:
                self._start()
        elif off in self._regs and off not in _READ_ONLY:
            self._regs[off] = value
        else:
            self._bad_access("write", off, 4)

    # ---- the operation ------------------------------------------------------------------------
    def _start(self) -> None:
        regs = self._regs
        ctrl = regs[CTRL]
        src = regs[SRC_HI] << 32 | regs[SRC_LO]
        dst = regs[DST_HI] << 32 | regs[DST_LO]
        length, record = regs[LEN], regs[RECORD]
        decrypt = bool(ctrl & CTRL_DECRYPT)
        regs[STATUS] = regs[ERR_CODE] = regs[OUT_LEN] = 0
        self.last_error = None
        self.operations += 1
        try:
            out_len, iv_out = self._operate(src, dst, length, record, ctrl)
        except _OpError as err:
            regs[STATUS], regs[ERR_CODE] = STATUS_ERROR, err.code
            self.last_error = str(err)
            if self.bus.active:
                self.bus.emit("crypto_engine", self.name, op="decrypt" if decrypt else "encrypt",
                              src=src, dst=dst, length=length, record=record, ctrl=ctrl,
                              status="error", err_code=err.code, reason=str(err))
            return
        regs[STATUS], regs[OUT_LEN] = STATUS_DONE, out_len
        self._iv_out[:] = iv_out
        if self.bus.active:
            self.bus.emit("crypto_engine", self.name, op="decrypt" if decrypt else "encrypt",
                          src=src, dst=dst, length=length, record=record, ctrl=ctrl,
                          status="done", out_len=out_len)

    def _cipher(self) -> Cipher:
        bits = self._regs[KEY_BITS]
        if bits not in (128, 256):
            raise _OpError(ERR_KEY, f"KEY_BITS {bits} is neither 128 nor 256")
        return Cipher(algorithms.AES(bytes(self._key[:bits // 8])), modes.CBC(bytes(self._iv)))

    def _read_source(self, src: int, length: int) -> memoryview:
        try:
            return self.dma_read(src, length)
        except ProtectionFault as fault:
            raise _OpError(ERR_BUS, f"source read denied: {fault.reason}") from None

    def _operate(self, src: int, dst: int, length: int, record: int,
                 ctrl: int) -> tuple[int, bytes]:
        """Run one operation; (OUT_LEN, IV_OUT) or _OpError with nothing written."""
        per_record = bool(ctrl & CTRL_PER_RECORD_PADDING)
        final = bool(ctrl & CTRL_FINAL_PADDING)
        if per_record and final:
            raise _OpError(ERR_LENGTH, "PER_RECORD_PADDING and FINAL_PADDING together")
        cipher = self._cipher()
        if ctrl & CTRL_DECRYPT:
            if length % 16 or record % 16:
                raise _OpError(ERR_LENGTH, f"LEN {length} / RECORD {record} not multiples of 16")
            data = self._read_source(src, length)
            iv_out = bytes(data[-16:]) if length else bytes(self._iv)
            dec = cipher.decryptor()
            plain = memoryview(dec.update(data) + dec.finalize())
            if per_record:
                out = unpad_records(plain, record or length)
            elif final and length:
                out = plain[:length - pkcs7_length(plain)]
            else:
                out = plain
        else:
            if not (per_record or final) and length % 16:
                raise _OpError(ERR_LENGTH, f"LEN {length} is not a multiple of 16 without padding")
            data = self._read_source(src, length)
            padded = pad_records(data, record or length) if per_record else \
                pad_final(data) if final else data
            enc = cipher.encryptor()
            out = memoryview(enc.update(padded) + enc.finalize())
            iv_out = bytes(out[-16:]) if len(out) else bytes(self._iv)
        try:
            self.dma_write(dst, out)
        except ProtectionFault as fault:
            raise _OpError(ERR_BUS, f"destination write denied: {fault.reason}") from None
        return len(out), iv_out

    # ---- a Python driver (tests, the secure OS's own use) ---------------------------------------
    def run(self, *, key: bytes, iv: bytes, src: int, dst: int, length: int, record: int = 0,
            decrypt: bool = True, per_record_padding: bool = False,
            final_padding: bool = False) -> tuple[int, bytes]:
        """Program the registers as a driver would and start; (OUT_LEN, IV_OUT) or
        :class:`CryptoEngineError`."""
        if len(key) not in (16, 32) or len(iv) != 16:
            raise ValueError("key must be 16 or 32 bytes and iv 16 bytes")
        w = self.mmio_write
        for i in range(8):
            w(KEY0 + 4 * i, 4, int.from_bytes(key.ljust(32, b"\0")[4 * i:4 * i + 4], "little"))
        w(KEY_BITS, 4, len(key) * 8)
        for i in range(4):
            w(IV0 + 4 * i, 4, int.from_bytes(iv[4 * i:4 * i + 4], "little"))
        w(SRC_LO, 8, src)
        w(DST_LO, 8, dst)
        w(LEN, 4, length)
        w(RECORD, 4, record)
        w(CTRL, 4, CTRL_START | (CTRL_DECRYPT if decrypt else 0)
          | (CTRL_PER_RECORD_PADDING if per_record_padding else 0)
          | (CTRL_FINAL_PADDING if final_padding else 0))
        status = self.mmio_read(STATUS, 4)
        if status & STATUS_ERROR:
            raise CryptoEngineError(self.mmio_read(ERR_CODE, 4), self.last_error or "")
        return self.mmio_read(OUT_LEN, 4), bytes(self._iv_out)


# ---- padding (emu/ imports nothing above it, so the engine keeps its own copy) ----------------
def pkcs7_length(plain: memoryview) -> int:
    """PKCS#7 length p at the end of ``plain`` (1..16); _OpError when invalid."""
    end = len(plain)
    p = plain[end - 1]
    if not 1 <= p <= 16 or bytes(plain[end - p:end]) != bytes([p]) * p:
        raise _OpError(ERR_PADDING, "bad PKCS#7 padding")
    return p


def unpad_records(plain: memoryview, record: int) -> bytes:
    """Remove PKCS#7 from every ``record``-byte record (the last one may be shorter)."""
    pieces = []
    for start in range(0, len(plain), record):
        rec = plain[start:start + record]
        pieces.append(rec[:len(rec) - pkcs7_length(rec)])
    return b"".join(pieces)


def pad_final(data: memoryview) -> bytes:
    """PKCS#7 once at the end (1..16 bytes)."""
    p = 16 - len(data) % 16
    return b"".join((data, bytes([p]) * p))


def pad_records(data: memoryview, record: int) -> bytes:
    """PKCS#7 on every ``record``-byte plaintext record (the aesenc per-buffer format)."""
    return b"".join(pad_final(data[s:s + record]) for s in range(0, len(data), record))
