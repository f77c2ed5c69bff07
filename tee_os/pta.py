"""Pseudo-TAs: services inside the secure OS, opened by UUID like a TA.

A PTA called by the normal world receives memory objects; called by a TA it works on the
calling TA's mappings (VAs passed unchanged), as OP-TEE's PTAs do. With secure data path on,
memrefs from a normal-world client must be non-secure: an SDP memref is refused with
BAD_PARAMETERS (origin TEE) before the PTA's entry point runs.

``invoke_tests`` (d96a5b40-c3e5-21e3-8794-1002a5d5c61b) implements the SDP commands used by
optee_test: 3 COPY_NSEC_TO_SEC, 4 READ_MODIFY_SEC, 5 COPY_SEC_TO_NSEC.
"""
from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from tee_os.core import SecureOS
    from tee_os.user_ta import TaInstance, TaParam

INVOKE_TESTS_UUID = uuidlib.UUID("d96a5b40-c3e5-21e3-8794-1002a5d5c61b")
CMD_TRACE, CMD_COPY_NSEC_TO_SEC, CMD_READ_MODIFY_SEC, CMD_COPY_SEC_TO_NSEC = 0, 3, 4, 5


@dataclass
class PtaBuffer:
    """A memref as a PTA sees it: where its bytes are and whether they are secure (SDP)."""

    runs: list[tuple[int, int]]      # physical (address, length)
    secure: bool
    size: int


def negate(data: bytes) -> bytes:
    """(~b + 1) & 0xFF for every byte: two's-complement negation modulo 256."""
    return bytes((-b) & 0xFF for b in data)


class PseudoTa:
    uuid: uuidlib.UUID
    name: str

    def __init__(self, sos: "SecureOS"):
        self.sos = sos
        self.c = sos.c

    def invoke(self, cmd: int, params: list["TaParam"],
               buffer: Callable[["TaParam"], PtaBuffer]) -> int:
        raise NotImplementedError


class InvokeTestsPta(PseudoTa):
    uuid = INVOKE_TESTS_UUID
    name = "invoke_tests.pta"

    def _read(self, buf: PtaBuffer, n: int) -> bytes:
        out, need = bytearray(), n
        for pa, length in buf.runs:
            take = min(length, need)
            out += self.sos.physmem.read(pa, take)
            need -= take
            if not need:
                break
        return bytes(out)

    def _write(self, buf: PtaBuffer, data: bytes) -> None:
        pos = 0
        for pa, length in buf.runs:
            if pos >= len(data):
                break
            chunk = data[pos:pos + length]
            self.sos.physmem.write(pa, chunk)
            pos += len(chunk)

    def invoke(self, cmd: int, params: list["TaParam"],
               buffer: Callable[["TaParam"], PtaBuffer]) -> int:
        c = self.c
        types = [p.type for p in params] + [0] * (4 - len(params))
        if cmd == CMD_TRACE:
            return c.TEE_SUCCESS
        if cmd in (CMD_COPY_NSEC_TO_SEC, CMD_COPY_SEC_TO_NSEC):
            if types != [c.TEE_PARAM_TYPE_MEMREF_INPUT, c.TEE_PARAM_TYPE_MEMREF_OUTPUT, 0, 0]:
                return c.TEE_ERROR_BAD_PARAMETERS
            src_p, dst_p = params[0], params[1]
            if dst_p.size < src_p.size:
                dst_p.size = src_p.size
                return c.TEE_ERROR_SHORT_BUFFER
            if src_p.size == 0:
                return c.TEE_SUCCESS
            src, dst = buffer(src_p), buffer(dst_p)
            want_src_secure = cmd == CMD_COPY_SEC_TO_NSEC
            if src.secure != want_src_secure or dst.secure == want_src_secure:
                return c.TEE_ERROR_BAD_PARAMETERS
            self._write(dst, self._read(src, src_p.size))
            dst_p.size = src_p.size
            return c.TEE_SUCCESS
        if cmd == CMD_READ_MODIFY_SEC:
            if types != [c.TEE_PARAM_TYPE_MEMREF_INOUT, 0, 0, 0]:
                return c.TEE_ERROR_BAD_PARAMETERS
            buf = buffer(params[0])
            if not buf.secure:
                return c.TEE_ERROR_BAD_PARAMETERS
            self._write(buf, negate(self._read(buf, params[0].size)))
            return c.TEE_SUCCESS
        return c.TEE_ERROR_NOT_SUPPORTED


PSEUDO_TAS = (InvokeTestsPta,)
