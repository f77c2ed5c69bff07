"""OP-TEE dispatcher (TF-A's opteed): Trusted OS calls, owners 50..63.

At boot the secure OS runs its cold-boot entry and reports its vector table with
TEESMC_OPTEED_RETURN_ENTRY_DONE (x1 = table address). Afterwards each Trusted-OS SMC enters
S-EL1 at the table's fast- or yielding-call entry with the caller's x0..x7, and the secure OS
comes back with TEESMC_OPTEED_RETURN_CALL_DONE and x1..x4, which become the caller's x0..x3
(x4..x7 of the normal world are preserved, as the OP-TEE SMC ABI requires).
"""
from __future__ import annotations

from dataclasses import dataclass

from emu.abi import AbiSet
from emu.types import World
from firmware.monitor import El3Monitor, SecureWorldPanic
from firmware.smccc import SmcFunctionId

# struct optee_vectors (TF-A): one branch instruction per entry, in this order.
VECTOR_ENTRIES = ("yield_smc", "fast_smc", "cpu_on", "cpu_off", "cpu_resume", "cpu_suspend",
                  "fiq", "system_off", "system_reset")


@dataclass(frozen=True)
class OpteeVectors:
    base: int

    def entry(self, name: str) -> int:
        return self.base + 4 * VECTOR_ENTRIES.index(name)


class OpteeDispatcher:
    """Routes Trusted OS SMCs to OP-TEE's S-EL1 entry vectors."""

    name = "opteed"

    def __init__(self, monitor: El3Monitor, abi: AbiSet):
        c = abi.constants
        self.monitor = monitor
        self.owner_start, self.owner_end = c["OEN_TOS_START"], c["OEN_TOS_END"]
        self.entry_done = c["TEESMC_OPTEED_RETURN_ENTRY_DONE"]
        self.call_done = c["TEESMC_OPTEED_RETURN_CALL_DONE"]
        self.smc_unk = c["SMC_UNK"] & 0xFFFFFFFF
        self.vectors: OpteeVectors | None = None
        self._fast_entry = self._yield_entry = 0

    def boot(self, entry_point: int, boot_args: tuple[int, ...] = ()) -> OpteeVectors:
        """Cold-boot the secure OS and record its vector table (opteed_init)."""
        args = tuple(boot_args) + (0,) * (8 - len(boot_args))
        ret = self.monitor.enter_secure(entry_point, args, cause="cold boot")
        if ret[0] & 0xFFFFFFFF != self.entry_done:
            raise SecureWorldPanic(f"secure OS boot returned {ret[0]:#x}, expected "
                                   f"TEESMC_OPTEED_RETURN_ENTRY_DONE")
        self.vectors = OpteeVectors(ret[1])
        self._fast_entry = self.vectors.entry("fast_smc")
        self._yield_entry = self.vectors.entry("yield_smc")
        return self.vectors

    def handle(self, fid: SmcFunctionId, args: tuple[int, ...], from_world: World) -> tuple[int, ...]:
        if from_world is not World.NS_EL1 or self.vectors is None:
            return (self.smc_unk,)
        entry = self._fast_entry if fid.fast else self._yield_entry
        try:
            ret = self.monitor.enter_secure(entry, args, cause="fast smc" if fid.fast else "yielding smc")
        except SecureWorldPanic:
            return (self.smc_unk,)
        if ret[0] & 0xFFFFFFFF != self.call_done:
            return (self.smc_unk,)
        return ret[1:5]
