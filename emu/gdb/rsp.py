"""GDB remote serial protocol: packet framing, checksums, escaping and run-length decoding.

Pure functions and a stream parser with no socket code, so they are testable on byte strings.
"""
from __future__ import annotations

from dataclasses import dataclass

ESCAPE = 0x7D
_SPECIAL = {ord("$"), ord("#"), ord("}"), ord("*")}
INTERRUPT = b"\x03"
MAX_PACKET = 0x4000


class RspError(ValueError):
    """A packet payload is malformed (the caller answers with an error packet)."""


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def escape(data: bytes) -> bytes:
    """Binary escaping: '$', '#', '}' and '*' become '}' followed by the byte XOR 0x20."""
    out = bytearray()
    for b in data:
        if b in _SPECIAL:
            out += bytes((ESCAPE, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == ESCAPE:
            try:
                out.append(next(it) ^ 0x20)
            except StopIteration:
                raise RspError("escape character at the end of the data") from None
        else:
            out.append(b)
    return bytes(out)


def rle_decode(data: bytes) -> bytes:
    """Expand run-length encoding: 'X*N' repeats X (ord(N) - 29) more times."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == ord("*"):
            if not out or i + 1 >= len(data):
                raise RspError("run-length marker without a preceding character or count")
            n = data[i + 1] - 29
            if n < 0:
                raise RspError("bad run-length count")
            out += bytes((out[-1],)) * n
            i += 2
            continue
        if b == ESCAPE and i + 1 < len(data):
            out += data[i:i + 2]
            i += 2
            continue
        out.append(b)
        i += 1
    return bytes(out)


def rle_encode(data: bytes) -> bytes:
    """Run-length encode a (printable) payload; runs of 4..97 become X*N (N never # or $)."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        j = i
        while j < len(data) and data[j] == b and j - i < 98:
            j += 1
        run = j - i
        if run >= 4 and b not in (ord("*"), ord("#"), ord("$"), ord("}")):
            extra = run - 1
            while chr(extra + 29) in "#$+-" or extra + 29 > 126:
                extra -= 1
            out.append(b)
            out += b"*" + bytes((extra + 29,))
            i += 1 + extra
        else:
            out.append(b)
            i += 1
    return bytes(out)


def frame(payload: bytes, *, binary: bool = False) -> bytes:
    """'$payload#cs' (escaped if ``binary``)."""
    body = escape(payload) if binary else payload
    return b"$" + body + b"#%02x" % checksum(body)


@dataclass
class Packet:
    kind: str            # "packet", "ack", "nack", "interrupt", "bad" (checksum mismatch)
    data: bytes = b""


class PacketReader:
    """Incremental parser of the byte stream from gdb.

    Returns ``Packet`` objects; garbage between packets is skipped, over-long packets are
    dropped (reported as "bad" so the caller NAKs them).
    """

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        self.buf += data
        out: list[Packet] = []
        while self.buf:
            b = self.buf[0]
            if b == ord("+"):
                out.append(Packet("ack"))
                del self.buf[0]
            elif b == ord("-"):
                out.append(Packet("nack"))
                del self.buf[0]
            elif b == 0x03:
                out.append(Packet("interrupt"))
                del self.buf[0]
            elif b == ord("$"):
                end = self.buf.find(b"#")
                if end < 0:
                    if len(self.buf) > MAX_PACKET:
                        self.buf.clear()
                        out.append(Packet("bad"))
                    break
                if len(self.buf) < end + 3:
                    break
                body = bytes(self.buf[1:end])
                cs = bytes(self.buf[end + 1:end + 3])
                del self.buf[:end + 3]
                try:
                    ok = int(cs, 16) == checksum(body)
                except ValueError:
                    ok = False
                if not ok:
                    out.append(Packet("bad", body))
                    continue
                try:
                    out.append(Packet("packet", rle_decode(body)))
                except RspError:
                    out.append(Packet("bad", body))
            else:
                nxt = [i for i in (self.buf.find(c) for c in (b"$", b"+", b"-", b"\x03")) if i >= 0]
                del self.buf[:min(nxt) if nxt else len(self.buf)]
        return out


def hex_to_int(text: bytes | str) -> int:
    try:
        return int(text, 16)
    except (ValueError, TypeError):
        raise RspError(f"not a hex number: {text!r}") from None


def hexlify(data: bytes) -> bytes:
    return data.hex().encode()


def unhexlify(text: bytes | str) -> bytes:
    try:
        return bytes.fromhex(text.decode() if isinstance(text, bytes) else text)
    except ValueError:
        raise RspError("bad hex data") from None
