"""SMC Calling Convention: function-identifier decoding (SMCCC v1.2).

The field positions come from EL3's own header copy (firmware/include/smccc.h), like TF-A's
``smccc.h``; nothing here is typed by hand.
"""
from __future__ import annotations

from dataclasses import dataclass

from emu.abi import AbiSet, firmware_abi


@dataclass(frozen=True)
class SmcFunctionId:
    raw: int          # the 32-bit function identifier (w0)
    fast: bool        # bit 31: fast call (1) or yielding call (0)
    smc64: bool       # bit 30: SMC64 (1) or SMC32 (0) calling convention
    owner: int        # bits 29:24: owning entity number
    number: int       # bits 15:0: function number

    @property
    def kind(self) -> str:
        return ("fast" if self.fast else "yielding") + ("/SMC64" if self.smc64 else "/SMC32")


class SmcccDecoder:
    """Decodes function identifiers with the field layout read from a header set."""

    def __init__(self, abi: AbiSet | None = None):
        c = (abi or firmware_abi()).constants
        self.type_shift = c["FUNCID_TYPE_SHIFT"]
        self.cc_shift = c["FUNCID_CC_SHIFT"]
        self.oen_shift = c["FUNCID_OEN_SHIFT"]
        self.oen_mask = c["FUNCID_OEN_MASK"]
        self.num_mask = c["FUNCID_NUM_MASK"]

    def decode(self, x0: int) -> SmcFunctionId:
        """Decode w0; the upper 32 bits of x0 are ignored (SMCCC: the id is in W0)."""
        fid = x0 & 0xFFFFFFFF
        return SmcFunctionId(fid, bool((fid >> self.type_shift) & 1),
                             bool((fid >> self.cc_shift) & 1),
                             (fid >> self.oen_shift) & self.oen_mask, fid & self.num_mask)
