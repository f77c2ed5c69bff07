"""Capstone helpers: disassembly for traces and the effective address of a faulting access.

Unicorn's TLB-fill hook reports only the page of a refused access, but a TZC fail record and a
``ProtectionFault`` must carry the exact address. On a fault (rare, off the hot path) the
faulting instruction is decoded and its addressing mode evaluated from the CPU registers.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

from capstone import CS_ARCH_ARM64, CS_MODE_ARM, Cs
from capstone import arm64_const as C


@lru_cache(maxsize=1)
def _cs() -> Cs:
    cs = Cs(CS_ARCH_ARM64, CS_MODE_ARM)
    cs.detail = True
    return cs


def disassemble(code: bytes, address: int) -> list[tuple[int, str, str]]:
    """(address, mnemonic, operands) for each instruction."""
    return [(i.address, i.mnemonic, i.op_str) for i in _cs().disasm(code, address)]


def _extend(value: int, ext: int) -> int:
    if ext in (C.ARM64_EXT_UXTW,):
        return value & 0xFFFFFFFF
    if ext == C.ARM64_EXT_SXTW:
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value >> 31 else value
    if ext == C.ARM64_EXT_UXTX or ext == C.ARM64_EXT_SXTX:
        return value
    return value


def effective_address(code: bytes, pc: int, reg: Callable[[str], int]) -> int | None:
    """The first byte a load/store at ``pc`` accesses, from its addressing mode.

    ``reg(name)`` returns a register value by capstone name ("x0", "sp", ...). Post-indexed
    forms access the base before the update. Returns None for what cannot be decoded.
    """
    try:
        insn = next(_cs().disasm(code, pc, 1))
    except StopIteration:
        return None
    for op in insn.operands:
        if op.type != C.ARM64_OP_MEM:
            continue
        base = reg(insn.reg_name(op.mem.base)) if op.mem.base else 0
        ea = base + op.mem.disp
        if op.mem.index:
            idx = _extend(reg(insn.reg_name(op.mem.index)), op.ext)
            if op.shift.type == C.ARM64_SFT_LSL:
                idx <<= op.shift.value
            ea += idx
        return ea & 0xFFFFFFFFFFFFFFFF
    return None
