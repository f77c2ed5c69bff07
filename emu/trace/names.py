"""Name tables for trace decoding, built once from the three header sets.

Every name and number comes from the header loader (``linux_abi()``, ``secure_abi()``,
``firmware_abi()``), never from literals, so a header change shows up in traces as it does in
the emulator.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable, Iterable

from emu.abi import AbiSet, firmware_abi, linux_abi, secure_abi

M32 = 0xFFFFFFFF
ReadPhys = Callable[[int, int], bytes]

#: Which world and EL a trace writes for each world name (Tarmac's mode tokens).
EL_TOKENS = {"NS-EL1": "EL1h_n", "S-EL1": "EL1h_s", "S-EL0": "EL0t_s", "EL3": "EL3h_s"}
_FID_PREFIXES = ("OPTEE_SMC_", "FFA_", "ARM_SMCCC_", "SMCCC_", "TEESMC_OPTEED_")


_h = hex          # addresses, handles and raw values are shown in hex


def _table(sets: Iterable[AbiSet], prefixes: tuple[str, ...], skip: tuple[str, ...] = (),
           keep: Callable[[str, int], bool] = lambda n, v: True) -> dict[int, str]:
    """value -> the shortest header name with one of ``prefixes`` (ties: alphabetical)."""
    out: dict[int, str] = {}
    names = sorted({(n, v) for s in sets for n, v in s.constants.items()
                    if n.startswith(prefixes) and not any(k in n for k in skip) and keep(n, v)},
                   key=lambda nv: (len(nv[0]), nv[0]))
    for name, value in names:
        out.setdefault(value, name)
    return out


class Names:
    """Name tables built once from the three header sets."""

    def __init__(self) -> None:
        lin, sec, fw = linux_abi(), secure_abi(), firmware_abi()
        self.lin, self.sec, self.fw = lin, sec, fw
        # ``AbiSet.c`` builds a constants object per access: keep one of each.
        self.lc, self.sc, self.fc = lin.c, sec.c, fw.c
        f = self.fc
        self.type_shift, self.cc_shift = f.FUNCID_TYPE_SHIFT, f.FUNCID_CC_SHIFT
        self.oen_shift, self.oen_mask = f.FUNCID_OEN_SHIFT, f.FUNCID_OEN_MASK
        self.num_mask = f.FUNCID_NUM_MASK
        tos = f.OEN_TOS_START

        def is_fid(_n: str, v: int) -> bool:
            if not 0 <= v <= M32 or (v >> 17) & 0x7F:           # bits 23:17 reserved
                return False
            return bool(v >> self.type_shift & 1) or ((v >> self.oen_shift) & self.oen_mask) >= tos
        self.fid = _table((lin, sec, fw), _FID_PREFIXES, keep=is_fid)
        self.owners: dict[int, str] = {}
        for name, v in sorted(fw.constants.items()):
            if name.startswith("OEN_") and name.endswith("_START"):
                end = fw.constants[name[:-6] + "_END"]
                for o in range(v, end + 1):
                    self.owners[o] = name[4:-6]
        lc = self.lc
        self.smc_ret = _table((lin,), ("OPTEE_SMC_RETURN_",), ("MASK", "PREFIX"))
        self.rpc_prefix = lc.OPTEE_SMC_RETURN_RPC_PREFIX
        self.rpc_prefix_mask = lc.OPTEE_SMC_RETURN_RPC_PREFIX_MASK
        self.rpc_func_mask = lc.OPTEE_SMC_RETURN_RPC_FUNC_MASK
        self.unknown = lc.OPTEE_SMC_RETURN_UNKNOWN_FUNCTION
        self.rpc_func = _table((lin,), ("OPTEE_SMC_RPC_FUNC_",))
        self.ffa_err = {v & M32: n for v, n in _table((lin,), ("FFA_RET_",)).items()}
        self.smccc_err = {v & M32: n for v, n in _table(
            (fw,), ("SMC_",), keep=lambda n, v: v < 0 or n == "SMC_UNK").items()}
        self.tee_err = _table((lin, sec), ("TEEC_ERROR_", "TEE_ERROR_", "TEEC_SUCCESS"))
        self.origin = _table((lin,), ("TEEC_ORIGIN_",))
        self.sec_caps = _bits(lin, "OPTEE_SMC_SEC_CAP_")
        self.nsec_caps = _bits(lin, "OPTEE_SMC_NSEC_CAP_")
        self.ffa_caps = _bits(lin, "OPTEE_FFA_SEC_CAP_")
        self.msg_cmd = _table((lin,), ("OPTEE_MSG_CMD_",))
        self.rpc_cmd = _table((lin,), ("OPTEE_RPC_CMD_",))
        self.attr_smc = _table((lin,), ("OPTEE_MSG_ATTR_TYPE_",), ("FMEM", "MASK"))
        self.attr_ffa = _table((lin,), ("OPTEE_MSG_ATTR_TYPE_",), ("RMEM", "MASK"))
        self.use_case = _table((lin,), ("OPTEE_MSG_PROTMEM_",))
        self.optee_ffa = _table((lin,), ("OPTEE_FFA_",), ("SEC_CAP", "VERSION", "MAX_", "_BIT", "RETURN"))
        self.ioctl = _table((lin,), ("TEE_IOC_", "DMA_HEAP_IOCTL_"), ("MAGIC", "BASE"))
        self.syscall = _table((sec,), ("TEE_SCN_",), ("MAX",))
        self.yield_ret = _table((lin,), ("OPTEE_FFA_YIELDING_CALL_RETURN_",))
        self.tzc_action = _table((sec,), ("TZC_ACTION_",))
        self.tzc_sec = _table((sec,), ("TZC_REGION_S_",))
        self.ffa_send = {v for k, v in sec.constants.items() if k.startswith(
            ("FFA_MEM_LEND_", "FFA_MEM_SHARE_", "FFA_MEM_DONATE_", "FFA_MEM_RETRIEVE_REQ_"))}


def _bits(abi: AbiSet, prefix: str) -> list[tuple[int, str]]:
    return sorted((v, n[len(prefix):]) for n, v in abi.constants.items()
                  if n.startswith(prefix) and v and v & (v - 1) == 0)


def bit_names(value: int, table: list[tuple[int, str]]) -> list[str]:
    """Set bits by name; unnamed set bits as ``bitN``."""
    out = [n for v, n in table if value & v]
    rest = value & ~sum(v for v, _ in table)
    return out + [f"bit{i}" for i in range(64) if rest >> i & 1]


@lru_cache(maxsize=1)
def names() -> Names:
    return Names()

