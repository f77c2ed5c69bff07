"""``Platform.ffa``: FF-A at register level, for conformance scenarios and experiments.

Every call is a real ``smc`` from the NS-EL1 stub through the SPMD into the SPMC. Descriptors
are built with the same builder the conformance tests use (any version layout, including
deliberately malformed ones) and written into the NS TX buffer; answers are read back from the
RX buffer. The helpers own one RX/TX pair, allocated from NS kernel pages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from emu.abi import secure_abi
from tee_os.spmc.descriptors import build_mem_region

PAGE = 0x1000


@dataclass
class FfaResult:
    regs: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return self.regs[0] & 0xFFFFFFFF != secure_abi().c.FFA_ERROR

    @property
    def error(self) -> int | None:
        """The FF-A error code (negative) of an FFA_ERROR answer."""
        if self.ok:
            return None
        w2 = self.regs[2] & 0xFFFFFFFF
        return w2 - (1 << 32) if w2 >> 31 else w2

    @property
    def handle(self) -> int:
        """A memory handle from FFA_SUCCESS (w2/w3) or FFA_MEM_FRAG_RX (w1/w2)."""
        c = secure_abi().c
        if self.regs[0] & 0xFFFFFFFF == c.FFA_MEM_FRAG_RX:
            return (self.regs[1] & 0xFFFFFFFF) | (self.regs[2] & 0xFFFFFFFF) << 32
        return (self.regs[2] & 0xFFFFFFFF) | (self.regs[3] & 0xFFFFFFFF) << 32


class FfaHelpers:
    def __init__(self, platform: Any):
        self.p = platform
        self.c = secure_abi().c
        self.tx = self.rx = 0
        self.pages = 0
        self.version_negotiated = (1, 0)

    def call(self, *regs: int) -> FfaResult:
        return FfaResult(self.p.smc(*regs))

    # --- setup --------------------------------------------------------------------------------
    def version(self, major: int = 1, minor: int = 2) -> tuple[int, int]:
        v = self.p.smc(self.c.FFA_VERSION, (major << 16) | minor)[0] & 0xFFFFFFFF
        self.version_negotiated = (v >> 16, v & 0xFFFF)
        return self.version_negotiated

    def map_rxtx(self, pages: int = 1) -> FfaResult:
        k = self.p.kernel
        self.tx, self.rx, self.pages = k.pages.alloc(pages * PAGE), k.pages.alloc(pages * PAGE), pages
        return self.call(self.c.FFA_RXTX_MAP_64, self.tx, self.rx, pages)

    def rx_release(self) -> FfaResult:
        return self.call(self.c.FFA_RX_RELEASE)

    def read_rx(self, size: int) -> bytes:
        return self.p.physmem.read(self.rx, size)

    def partition_info(self, uuid_words: Sequence[int] = (0, 0, 0, 0)) -> tuple[FfaResult, bytes]:
        r = self.call(self.c.FFA_PARTITION_INFO_GET, *uuid_words)
        data = self.read_rx((r.regs[2] & 0xFFFF) * (r.regs[3] & 0xFFFF)) if r.ok else b""
        return r, data

    # --- messages --------------------------------------------------------------------------------
    def direct_req(self, dst: int, w3: int, *args: int, src: int = 0) -> FfaResult:
        return self.call(self.c.FFA_MSG_SEND_DIRECT_REQ_32, (src << 16) | dst, 0, w3, *args)

    # --- memory ----------------------------------------------------------------------------------
    def build(self, receivers: Sequence[Any], constituents: Sequence[Sequence[int]] | None, *,
              version: tuple[int, int] | None = None, sender: int = 0, attributes: int = 0,
              flags: int = 0, tag: int = 0, **overrides: Any) -> bytes:
        """Descriptor bytes (see tee_os.spmc.descriptors.build_mem_region for overrides)."""
        return build_mem_region(version or self.version_negotiated, sender, receivers,
                                attributes, flags, tag, constituents, **overrides)

    def write_tx(self, data: bytes) -> None:
        if len(data) > self.pages * PAGE:
            raise ValueError(f"{len(data)} bytes do not fit the {self.pages}-page TX buffer")
        self.p.physmem.write(self.tx, data)

    def _mem_op(self, fid: int, desc: bytes, fragment: int | None) -> FfaResult:
        frag = len(desc) if fragment is None else fragment
        self.write_tx(desc[:frag])
        return self.call(fid, len(desc), frag, 0, 0)

    def share(self, desc: bytes, fragment: int | None = None) -> FfaResult:
        return self._mem_op(self.c.FFA_MEM_SHARE_64, desc, fragment)

    def lend(self, desc: bytes, fragment: int | None = None) -> FfaResult:
        return self._mem_op(self.c.FFA_MEM_LEND_64, desc, fragment)

    def donate(self, desc: bytes, fragment: int | None = None) -> FfaResult:
        return self._mem_op(self.c.FFA_MEM_DONATE_64, desc, fragment)

    def frag_tx(self, handle: int, data: bytes) -> FfaResult:
        self.write_tx(data)
        return self.call(self.c.FFA_MEM_FRAG_TX, handle & 0xFFFFFFFF, handle >> 32, len(data))

    def reclaim(self, handle: int, flags: int = 0) -> FfaResult:
        return self.call(self.c.FFA_MEM_RECLAIM, handle & 0xFFFFFFFF, handle >> 32, flags)

    # --- OP-TEE over FF-A --------------------------------------------------------------------------
    def optee(self, service: int, *args: int) -> FfaResult:
        return self.direct_req(0x8001, service, *args)

    def release_protmem(self, handle: int) -> FfaResult:
        return self.optee(self.c.OPTEE_FFA_RELEASE_PROTMEM, handle & 0xFFFFFFFF, handle >> 32)

    @staticmethod
    def w(regs: FfaResult, i: int) -> int:
        return regs.regs[i] & 0xFFFFFFFF


__all__ = ["FfaHelpers", "FfaResult"]
