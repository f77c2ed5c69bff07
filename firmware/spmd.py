"""SPM Dispatcher (TF-A's services/std_svc/spmd) for an SPMC at S-EL1: the FF-A configuration.

Owns the Standard Secure Service owner (4): PSCI (functions 0x00..0x1F, answered here) and the
FF-A range (0x60..0x97). At boot it enters the SPMC synchronously; the SPMC finishes its
initialisation with FFA_MSG_WAIT. Afterwards FF-A calls from the normal world are answered here
(FFA_ID_GET, FFA_SPM_ID_GET), turned into a framework message (FFA_VERSION), refused
(secure-only or never-forwarded calls), or forwarded: the SPMD resumes the SPMC right after its
last ``smc`` with the caller's x0..x7, and the SPMC's next ``smc`` (its response) goes back to
the normal world. Both worlds' contexts persist across switches (each world is its own CPU
view); the SPMD keeps the last registers of each for inspection.
"""
from __future__ import annotations

from emu.abi import AbiSet
from emu.types import World
from firmware.monitor import El3Monitor, SecureWorldPanic
from firmware.smccc import SmcFunctionId

SPMD_ID = 0xFFFF
FRAMEWORK_MSG = 1 << 31
FRAMEWORK_VERSION_REQ, FRAMEWORK_VERSION_RESP = 8, 9
PSCI_VERSION_1_1 = 0x10001


class Spmd:
    name = "spmd"

    def __init__(self, monitor: El3Monitor, abi: AbiSet, spmc_id: int = 0x8000):
        c = self.c = abi.c
        self.monitor = monitor
        self.owner_start = self.owner_end = c.OEN_STD_START
        self.spmc_id = spmc_id
        self.fnum_min, self.fnum_max = c.FFA_FNUM_MIN_VALUE, c.FFA_FNUM_MAX_VALUE
        self.resume_pc: int | None = None
        self.negotiating = True
        self.not_supported = self._error(c.FFA_ERROR_NOT_SUPPORTED)
        # Calls only a secure caller may make, and calls the SPMD never forwards.
        self.secure_only = {c.FFA_MSG_WAIT, c.FFA_INTERRUPT, c.FFA_MSG_YIELD,
                            c.FFA_EL3_INTR_HANDLE, c.FFA_ABORT_SMC32,
                            abi.call_macro("FFA_FID", "SMC_64", "FFA_FNUM_SECONDARY_EP_REGISTER")}
        self.never = {c.FFA_CONSOLE_LOG_SMC32, c.FFA_MEM_PERM_GET_SMC32, c.FFA_MEM_PERM_SET_SMC32}
        self.direct_req = {c.FFA_MSG_SEND_DIRECT_REQ_SMC32, c.FFA_MSG_SEND_DIRECT_REQ_SMC32 | (1 << 30)}
        self.smc_unk = c.SMC_UNK & 0xFFFFFFFF

    def _error(self, code: int) -> tuple[int, ...]:
        return (self.c.FFA_ERROR, 0, code & 0xFFFFFFFF, 0, 0, 0, 0, 0)

    def _success(self, w2: int = 0) -> tuple[int, ...]:
        return (self.c.FFA_SUCCESS_SMC32, 0, w2, 0, 0, 0, 0, 0)

    # --- boot -----------------------------------------------------------------------------------
    def boot(self, entry_point: int) -> None:
        """spmd_init: synchronous entry; the SPMC must end its initialisation with MSG_WAIT."""
        ret = self.monitor.enter_secure(entry_point, (0,) * 8, cause="spmc init")
        if ret[0] & 0xFFFFFFFF != self.c.FFA_MSG_WAIT:
            raise SecureWorldPanic(f"SPMC initialisation ended with {ret[0]:#x}, not FFA_MSG_WAIT")
        self.resume_pc = self.monitor.s_el1.pc

    def _to_spmc(self, regs: tuple[int, ...], cause: str) -> tuple[int, ...]:
        if self.resume_pc is None:
            raise SecureWorldPanic("SPMC not initialised")
        ret = self.monitor.enter_secure(self.resume_pc, regs, cause=cause)
        self.resume_pc = self.monitor.s_el1.pc
        return ret

    # --- calls ------------------------------------------------------------------------------------
    def handle(self, fid: SmcFunctionId, args: tuple[int, ...], from_world: World) -> tuple[int, ...]:
        c = self.c
        if fid.number <= 0x1F:
            return self._psci(fid)
        if not self.fnum_min <= fid.number <= self.fnum_max:
            return (self.smc_unk,)
        raw = fid.raw
        if raw == c.FFA_ID_GET:
            return self._success(0)                      # the NS endpoint's id
        if raw == c.FFA_SPM_ID_GET:
            return self._success(self.spmc_id)
        if raw in self.secure_only or raw in self.never:
            return self.not_supported
        try:
            if raw == c.FFA_VERSION:
                return self._version(args[1] & 0xFFFFFFFF)
            self.negotiating = False
            if raw in self.direct_req and (args[1] >> 16) & 0x8000:
                return self._error(c.FFA_ERROR_INVALID_PARAMETER)   # secure source from NS
            return self._to_spmc(tuple(args), cause="ffa " + hex(raw))
        except SecureWorldPanic:
            return self._error(c.FFA_ERROR_ABORTED)

    def _version(self, requested: int) -> tuple[int, ...]:
        """FFA_VERSION from NS becomes a framework direct request to the SPMC."""
        c = self.c
        req = (c.FFA_MSG_SEND_DIRECT_REQ_SMC32, (SPMD_ID << 16) | self.spmc_id,
               FRAMEWORK_MSG | FRAMEWORK_VERSION_REQ, requested, 0, 0, 0, 0)
        ret = self._to_spmc(req, cause="ffa version (framework message)")
        if ret[0] & 0xFFFFFFFF != c.FFA_MSG_SEND_DIRECT_RESP_SMC32 or \
                ret[2] & 0xFFFFFFFF != FRAMEWORK_MSG | FRAMEWORK_VERSION_RESP:
            return (c.FFA_ERROR_NOT_SUPPORTED & 0xFFFFFFFF,)
        return (ret[3] & 0xFFFFFFFF,)

    def _psci(self, fid: SmcFunctionId) -> tuple[int, ...]:
        """PSCI_VERSION answers 1.1; power management is not modelled (NOT_SUPPORTED)."""
        if fid.number == 0:
            return (PSCI_VERSION_1_1,)
        return (0xFFFFFFFF,)
