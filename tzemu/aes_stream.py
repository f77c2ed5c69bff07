"""The GStreamer ``aesenc``/``aesdec`` byte format (gst-plugins-bad 1.22.0), in Python.

Why: the decrypt TA consumes these streams bit-exactly, and tests need reference streams
without GStreamer installed. This module is the reference (``/work/shared/abi/gstreamer_aes.md``):

* :func:`parse_key` / :func:`parse_iv` reproduce how the element decodes its hex properties
  (pairs up to the first pair with a non-hex character, trailing odd nibble dropped, zero fill).
  One deliberate difference, our *stricter mode*: a key string that decodes to more bytes than
  the cipher's key length raises :class:`AesStreamError` (the element silently uses the first
  16/32 bytes, which hides a wrong ``cipher``); pass ``truncate_long=True`` for the element's
  behaviour. ``strict=True`` refuses every other quirk too (non-hex, odd length, short key/IV).
  An IV string longer than 16 bytes is always an error: the element writes it past its IV buffer.
* :class:`AesencWriter` produces byte-identical output to the element, buffer by buffer,
  including the 1.22.0 ``serialize-iv`` size bug (§3.4) behind ``gst_1_22_bug=True`` (the
  default): with ``serialize_iv`` and not ``per_buffer_padding``, every data buffer after the
  first gets 16 bytes of *uninitialised* memory appended; we append ``garbage`` (zeros by
  default), so only those 16 bytes can differ from a real pipeline's output.
* :func:`decrypt_stream` is the bit-exact decryptor of §6, with ``cryptography``; it needs the
  record boundaries for per-buffer padding: ``chunk`` (the encoder's fixed input buffer size, e.g.
  ``filesrc`` blocksize or a video frame size), ``buffer_sizes`` (the encoder's input buffer sizes)
  or ``record_sizes`` (the ciphertext records, what the decrypt TA's ``a`` parameter carries).
"""
from __future__ import annotations

from typing import Iterable, Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
CIPHERS = {"aes-128-cbc": 16, "aes-256-cbc": 32}
_CIPHER_ENUM = {0: "aes-128-cbc", 1: "aes-256-cbc"}
_KEY_BUFFER = 64                  # the element's key buffer: more than this overflows it
_HEX = set("0123456789abcdefABCDEF")


class AesStreamError(ValueError):
    """A stream, key or IV that the format (or our stricter mode) refuses; says why."""


def cipher_name(cipher: str | int) -> str:
    """'aes-128-cbc' / 'aes-256-cbc' from the nick or the enum value (0/1)."""
    name = _CIPHER_ENUM.get(cipher, cipher) if isinstance(cipher, int) else cipher.lower()
    if name not in CIPHERS:
        raise AesStreamError(f"unknown cipher {cipher!r}: use one of {', '.join(CIPHERS)}")
    return name


def key_length(cipher: str | int) -> int:
    return CIPHERS[cipher_name(cipher)]


def _hex_decode(text: str, what: str, strict: bool) -> bytes:
    """The element's decoder: pairs up to the first pair holding a non-hex character."""
    out = bytearray()
    for i in range(0, len(text) - 1, 2):
        pair = text[i:i + 2]
        if not set(pair) <= _HEX:
            if strict:
                raise AesStreamError(f"{what} {text!r}: non-hex character at {i} (the element "
                                     f"would keep only the {len(out)} bytes before it)")
            return bytes(out)
        out.append(int(pair, 16))
    if len(text) % 2:
        if strict:
            raise AesStreamError(f"{what} {text!r}: odd number of hex digits (the element "
                                 f"drops the last one)")
    return bytes(out)


def parse_key(text: str, cipher: str | int = "aes-128-cbc", *, strict: bool = False,
              truncate_long: bool = False) -> bytes:
    """The key the element uses for property value ``text`` on a fresh element."""
    n = key_length(cipher)
    raw = _hex_decode(text, "key", strict)
    if len(raw) > _KEY_BUFFER:
        raise AesStreamError(f"key {text[:16]!r}...: {len(raw)} bytes overflow the element's "
                             f"{_KEY_BUFFER}-byte key buffer")
    if len(raw) > n and not truncate_long:
        raise AesStreamError(f"{cipher_name(cipher)} needs a {n}-byte key; the key string "
                             f"decodes to {len(raw)} bytes (the element would silently use the "
                             f"first {n}; pass truncate_long=True for that)")
    if strict and raw and len(raw) != n:
        raise AesStreamError(f"{cipher_name(cipher)} needs a {n}-byte key, not {len(raw)}")
    return raw[:n].ljust(n, b"\0")


def parse_iv(text: str, *, strict: bool = False) -> bytes:
    """The IV the element uses for property value ``text`` on a fresh element."""
    raw = _hex_decode(text, "iv", strict)
    if len(raw) > BLOCK:
        raise AesStreamError(f"iv {text!r} decodes to {len(raw)} bytes: more than 16 are written "
                             f"past the element's IV into its other settings")
    if strict and raw and len(raw) != BLOCK:
        raise AesStreamError(f"iv must be 16 bytes, not {len(raw)}")
    return raw.ljust(BLOCK, b"\0")


def _key_iv(key: str | bytes, iv: str | bytes, cipher: str | int) -> tuple[bytes, bytes]:
    k = parse_key(key, cipher) if isinstance(key, str) else bytes(key)
    v = parse_iv(iv) if isinstance(iv, str) else bytes(iv)
    if len(k) != key_length(cipher):
        raise AesStreamError(f"{cipher_name(cipher)} needs a {key_length(cipher)}-byte key, "
                             f"not {len(k)}")
    if len(v) != BLOCK:
        raise AesStreamError(f"iv must be 16 bytes, not {len(v)}")
    return k, v


def pkcs7(data: bytes | memoryview) -> bytes:
    """``data`` followed by 1..16 bytes of PKCS#7 padding."""
    p = BLOCK - len(data) % BLOCK
    return bytes(data) + bytes([p]) * p


def record_size(n: int) -> int:
    """The ciphertext record of an n-byte input buffer with per-buffer padding: (n//16 + 1)·16."""
    return (n // BLOCK + 1) * BLOCK


class AesencWriter:
    """The ``aesenc`` element: ``push`` one input buffer, get its output buffer; ``finish`` at
    end of stream. ``buffers`` keeps the output buffers (sizes matter for the 1.22.0 bug)."""

    def __init__(self, key: str | bytes, iv: str | bytes, cipher: str | int = "aes-128-cbc",
                 serialize_iv: bool = False, per_buffer_padding: bool = True, *,
                 gst_1_22_bug: bool = True, garbage: bytes = bytes(BLOCK)) -> None:
        self.key, self.iv = _key_iv(key, iv, cipher)
        self.cipher = cipher_name(cipher)
        self.serialize_iv, self.per_buffer_padding = serialize_iv, per_buffer_padding
        self.gst_1_22_bug = gst_1_22_bug
        if len(garbage) != BLOCK:
            raise ValueError("garbage must be 16 bytes")
        self.garbage = garbage
        self._enc = None                      # initialised on the first buffer, like the element
        self._held = b""                      # partial block (per_buffer_padding=False)
        self.buffers: list[bytes] = []

    def push(self, buffer: bytes | bytearray | memoryview) -> bytes:
        """Encrypt one input buffer; return the element's output buffer for it."""
        first = self._enc is None
        if first:
            self._enc = Cipher(algorithms.AES(self.key), modes.CBC(self.iv)).encryptor()
        head = self.iv if first and self.serialize_iv else b""
        if self.per_buffer_padding:
            out = head + self._enc.update(pkcs7(buffer))
        else:
            data = self._held + bytes(buffer)
            whole = len(data) // BLOCK * BLOCK
            self._held = data[whole:]
            out = head + self._enc.update(data[:whole])
            if self.serialize_iv and self.gst_1_22_bug and not first:
                out += self.garbage            # §3.4: uninitialised bytes, not part of the chain
        self.buffers.append(out)
        return out

    def finish(self) -> bytes:
        """End of stream: the padding block with per_buffer_padding=False (never for an empty
        stream), else nothing."""
        if self.per_buffer_padding or self._enc is None:
            return b""
        out = self._enc.update(pkcs7(self._held))
        self._held = b""
        self.buffers.append(out)
        return out


def chunks(data: bytes, chunk: int) -> Iterable[bytes]:
    """``filesrc blocksize=chunk``: fixed buffers, the last one shorter, none for empty data."""
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    return (data[i:i + chunk] for i in range(0, len(data), chunk))


def encrypt_stream(data: bytes, key: str | bytes, iv: str | bytes,
                   cipher: str | int = "aes-128-cbc", serialize_iv: bool = False,
                   per_buffer_padding: bool = True, *, chunk: int = 4096,
                   gst_1_22_bug: bool = True) -> bytes:
    """``filesrc blocksize=chunk ! aesenc ... ! filesink``: the whole output file."""
    w = AesencWriter(key, iv, cipher, serialize_iv, per_buffer_padding,
                     gst_1_22_bug=gst_1_22_bug)
    return b"".join([w.push(c) for c in chunks(data, chunk)] + [w.finish()])


def split_records(length: int, chunk: int) -> list[int]:
    """Ciphertext record sizes of a per-buffer-padded stream (IV removed) whose encoder input
    came in ``chunk``-byte buffers (a file block size or a video frame size): record_size(chunk)
    each, the last one what remains."""
    if length % BLOCK:
        raise AesStreamError(f"stream has {length} bytes, not a multiple of 16: truncated")
    if chunk <= 0:
        raise AesStreamError("chunk must be positive")
    rec = record_size(chunk)
    full, rest = divmod(length, rec)
    return [rec] * full + ([rest] if rest else [])


def records_of_buffers(buffer_sizes: Iterable[int]) -> list[int]:
    """Ciphertext record sizes for known encoder input buffer sizes."""
    return [record_size(n) for n in buffer_sizes]


def _unpad(plain: memoryview, where: str) -> memoryview:
    if not len(plain):
        raise AesStreamError(f"{where}: empty, no PKCS#7 padding")
    p = plain[-1]
    if not 1 <= p <= BLOCK or bytes(plain[-p:]) != bytes([p]) * p:
        raise AesStreamError(f"{where}: invalid PKCS#7 padding (last byte {p:#04x}): wrong key "
                             f"or IV, tampered data, or wrong record boundaries")
    return plain[:-p]


def _repair_1_22(body: bytes, chunk: int | None, buffer_sizes: Sequence[int] | None) -> bytes:
    """§6 step 3: drop the 16 garbage bytes of every non-first data buffer (IV already gone)."""
    if buffer_sizes is not None:
        sizes, carry = [], 0
        for n in buffer_sizes:
            carry += n
            sizes.append(carry // BLOCK * BLOCK)
            carry %= BLOCK
    elif chunk is not None and chunk % BLOCK == 0:
        data_len = len(body) - BLOCK                       # without the final padding block
        if data_len < 0:
            raise AesStreamError("stream ends before its final padding block: truncated")
        sizes, rest = [min(chunk, data_len)], data_len - min(chunk, data_len)
        while rest > 0:
            take = chunk if rest > chunk + BLOCK else rest - BLOCK
            if take < 0:
                raise AesStreamError("1.22.0 stream does not split into buffers of "
                                     f"{chunk} bytes: truncated or wrong chunk")
            sizes.append(take)
            rest -= take + BLOCK
    else:
        raise AesStreamError("serialize-iv without per-buffer-padding from GStreamer 1.22.0 "
                             "carries 16 garbage bytes per buffer: give buffer_sizes, or a "
                             "chunk that is a multiple of 16, to remove them")
    want = sum(sizes) + BLOCK * (len(sizes) - 1) + BLOCK
    if len(body) != want:
        raise AesStreamError(f"1.22.0 stream has {len(body)} bytes after the IV, the buffer "
                             f"sizes give {want}: truncated or wrong boundaries")
    out, pos = [], 0
    for k, n in enumerate(sizes):
        out.append(body[pos:pos + n])
        pos += n + (BLOCK if k else 0)
    out.append(body[pos:])
    return b"".join(out)


def decrypt_stream(data: bytes, key: str | bytes, iv: str | bytes,
                   cipher: str | int = "aes-128-cbc", serialize_iv: bool = False,
                   per_buffer_padding: bool = True, *, chunk: int | None = None,
                   record_sizes: Sequence[int] | None = None,
                   buffer_sizes: Sequence[int] | None = None,
                   gst_1_22_bug: bool = True) -> bytes:
    """The §6 decryptor: the plaintext of an aesenc stream, or AesStreamError saying why not."""
    k, v = _key_iv(key, bytes(BLOCK) if serialize_iv else iv, cipher)   # iv ignored: in-band
    if not data:
        return b""
    body = data
    if serialize_iv:
        if len(data) < BLOCK:
            raise AesStreamError(f"serialize-iv stream of {len(data)} bytes is shorter than "
                                 f"its 16-byte IV: truncated")
        v, body = data[:BLOCK], data[BLOCK:]
        if gst_1_22_bug and not per_buffer_padding:
            body = _repair_1_22(body, chunk, buffer_sizes)
    if len(body) % BLOCK:
        raise AesStreamError(f"ciphertext of {len(body)} bytes is not a multiple of 16: "
                             f"truncated or not an aesenc stream")
    if not body:
        return b""
    dec = Cipher(algorithms.AES(k), modes.CBC(v)).decryptor()
    plain = memoryview(dec.update(body) + dec.finalize())
    if not per_buffer_padding:
        return bytes(_unpad(plain, "end of stream"))
    if record_sizes is None:
        if buffer_sizes is not None:
            record_sizes = records_of_buffers(buffer_sizes)
        elif chunk is not None:
            record_sizes = split_records(len(body), chunk)
        else:
            raise AesStreamError("per-buffer-padding streams carry no record boundaries: give "
                                 "chunk, buffer_sizes or record_sizes")
    if sum(record_sizes) != len(body):
        raise AesStreamError(f"record sizes sum to {sum(record_sizes)} but the stream has "
                             f"{len(body)} bytes of ciphertext: truncated or wrong boundaries")
    out, pos = [], 0
    for i, n in enumerate(record_sizes):
        if n <= 0 or n % BLOCK:
            raise AesStreamError(f"record {i}: size {n} is not a positive multiple of 16")
        out.append(_unpad(plain[pos:pos + n], f"record {i} (bytes {pos}..{pos + n})"))
        pos += n
    return b"".join(out)
