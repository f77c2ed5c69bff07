"""Arm Architecture Calls (owner 0): SMCCC_VERSION and SMCCC_ARCH_FEATURES, answered at EL3."""
from __future__ import annotations

from emu.abi import AbiSet
from emu.types import World
from firmware.smccc import SmcFunctionId


class ArmArchService:
    name = "arm_arch_svc"

    def __init__(self, abi: AbiSet):
        c = abi.constants
        self.owner_start = self.owner_end = c["OEN_ARM_START"]
        self.version_fid = c["SMCCC_VERSION"]
        self.features_fid = c["SMCCC_ARCH_FEATURES"]
        self.version_value = c["SMCCC_VERSION_1_2"]
        self.not_supported = c["SMC_ARCH_CALL_NOT_SUPPORTED"] & 0xFFFFFFFF
        self.success = c["SMC_ARCH_CALL_SUCCESS"]
        self.smc_unk = c["SMC_UNK"] & 0xFFFFFFFF
        self.implemented = {self.version_fid, self.features_fid}

    def handle(self, fid: SmcFunctionId, args: tuple[int, ...], from_world: World) -> tuple[int, ...]:
        if fid.raw == self.version_fid:
            return (self.version_value,)
        if fid.raw == self.features_fid:
            queried = args[1] & 0xFFFFFFFF
            return (self.success if queried in self.implemented else self.not_supported,)
        return (self.smc_unk,)
