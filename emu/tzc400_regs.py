"""The TZC-400 register map, named after the TRM (``/work/shared/abi/tzc400.md``): offsets,
field masks and shifts, the ID registers' reset values, and :func:`register_name` for events and
messages. The device model is :mod:`emu.tzc400`; the secure world programs the same map through
its C header (``tee_os/include/drivers/tzc400.h``).
"""
from __future__ import annotations

__all__ = ["BUILD_CONFIG", "ACTION", "GATE_KEEPER", "SPECULATION_CTRL", "INT_STATUS", "INT_CLEAR",
           "FAIL_BASE", "FAIL_STRIDE", "REGION_BASE", "REGION_STRIDE", "PID4", "PID5", "PID6",
           "PID7", "PID0", "PID1", "PID2", "PID3", "CID0", "CID1", "CID2", "CID3", "PART_NUMBER",
           "COMPONENT_ID", "BUILD_CONFIG_NO_OF_FILTERS_SHIFT", "BUILD_CONFIG_ADDRESS_WIDTH_SHIFT",
           "ACTION_REACTION_VALUE_MASK", "GATE_KEEPER_OPEN_REQUEST_MASK",
           "GATE_KEEPER_OPEN_STATUS_SHIFT", "SPECULATION_CTRL_MASK", "INT_STATUS_OVERRUN_SHIFT",
           "INT_STATUS_OVERLAP_SHIFT", "FAIL_CONTROL_DIRECTION_WRITE", "FAIL_CONTROL_NON_SECURE",
           "FAIL_CONTROL_PRIVILEGED", "FAIL_ID_MASK", "REGION_BASE_LOW_MASK",
           "REGION_TOP_LOW_ONES", "REGION_ATTRIBUTES_S_WR_EN", "REGION_ATTRIBUTES_S_RD_EN",
           "REGION_ATTRIBUTES_FILTER_EN_MASK", "REGION_ID_ACCESS_NSAID_WR_SHIFT",
           "FAIL_ADDRESS_LOW", "FAIL_ADDRESS_HIGH", "FAIL_CONTROL", "FAIL_ID", "REGION_BASE_LOW",
           "REGION_BASE_HIGH", "REGION_TOP_LOW", "REGION_TOP_HIGH", "REGION_ATTRIBUTES",
           "REGION_ID_ACCESS", "register_name"]

# ---- register map (offsets) ---------------------------------------------------------------
BUILD_CONFIG = 0x000
ACTION = 0x004
GATE_KEEPER = 0x008
SPECULATION_CTRL = 0x00C
INT_STATUS = 0x010
INT_CLEAR = 0x014
FAIL_BASE, FAIL_STRIDE = 0x020, 0x10
REGION_BASE, REGION_STRIDE = 0x100, 0x20


def FAIL_ADDRESS_LOW(f: int) -> int: return FAIL_BASE + FAIL_STRIDE * f + 0x0      # noqa: E302,N802
def FAIL_ADDRESS_HIGH(f: int) -> int: return FAIL_BASE + FAIL_STRIDE * f + 0x4     # noqa: E302,N802
def FAIL_CONTROL(f: int) -> int: return FAIL_BASE + FAIL_STRIDE * f + 0x8          # noqa: E302,N802
def FAIL_ID(f: int) -> int: return FAIL_BASE + FAIL_STRIDE * f + 0xC               # noqa: E302,N802
def REGION_BASE_LOW(n: int) -> int: return REGION_BASE + REGION_STRIDE * n + 0x00  # noqa: E302,N802
def REGION_BASE_HIGH(n: int) -> int: return REGION_BASE + REGION_STRIDE * n + 0x04  # noqa: E302,N802
def REGION_TOP_LOW(n: int) -> int: return REGION_BASE + REGION_STRIDE * n + 0x08   # noqa: E302,N802
def REGION_TOP_HIGH(n: int) -> int: return REGION_BASE + REGION_STRIDE * n + 0x0C  # noqa: E302,N802
def REGION_ATTRIBUTES(n: int) -> int: return REGION_BASE + REGION_STRIDE * n + 0x10  # noqa: E302,N802
def REGION_ID_ACCESS(n: int) -> int: return REGION_BASE + REGION_STRIDE * n + 0x14  # noqa: E302,N802


PID4, PID5, PID6, PID7 = 0xFD0, 0xFD4, 0xFD8, 0xFDC
PID0, PID1, PID2, PID3 = 0xFE0, 0xFE4, 0xFE8, 0xFEC
CID0, CID1, CID2, CID3 = 0xFF0, 0xFF4, 0xFF8, 0xFFC
# Part 0x460 (PID0 | (PID1 & 0xF) << 8), Arm JEP106 (0x3B, continuation 4), revision 0.
ID_REGISTERS: dict[int, tuple[str, int]] = {
    PID4: ("PID4", 0x04), PID5: ("PID5", 0), PID6: ("PID6", 0), PID7: ("PID7", 0),
    PID0: ("PID0", 0x60), PID1: ("PID1", 0xB4), PID2: ("PID2", 0x0B), PID3: ("PID3", 0),
    CID0: ("CID0", 0x0D), CID1: ("CID1", 0xF0), CID2: ("CID2", 0x05), CID3: ("CID3", 0xB1)}
PART_NUMBER, COMPONENT_ID = 0x460, 0xB105F00D

# ---- fields ---------------------------------------------------------------------------------
BUILD_CONFIG_NO_OF_FILTERS_SHIFT, BUILD_CONFIG_ADDRESS_WIDTH_SHIFT = 24, 8
ACTION_REACTION_VALUE_MASK = 0x3
GATE_KEEPER_OPEN_REQUEST_MASK, GATE_KEEPER_OPEN_STATUS_SHIFT = 0xF, 16
SPECULATION_CTRL_MASK = 0x3              # bit 0 read_spec_disable, bit 1 write_spec_disable
INT_STATUS_OVERRUN_SHIFT, INT_STATUS_OVERLAP_SHIFT = 8, 16
FAIL_CONTROL_DIRECTION_WRITE = 1 << 24
FAIL_CONTROL_NON_SECURE = 1 << 21
FAIL_CONTROL_PRIVILEGED = 1 << 20
FAIL_ID_MASK = 0x0FFFFFFF                # master id; bits 27:24 VNET (always 0 here)
REGION_BASE_LOW_MASK = 0xFFFFF000
REGION_TOP_LOW_ONES = 0x00000FFF
REGION_ATTRIBUTES_S_WR_EN = 1 << 31
REGION_ATTRIBUTES_S_RD_EN = 1 << 30
REGION_ATTRIBUTES_FILTER_EN_MASK = 0xF
REGION_ID_ACCESS_NSAID_WR_SHIFT = 16
_S_RD_BIT, _S_WR_BIT = 32, 33            # positions in a segment's permission word

_GLOBAL_NAMES = {BUILD_CONFIG: "BUILD_CONFIG", ACTION: "ACTION", GATE_KEEPER: "GATE_KEEPER",
                 SPECULATION_CTRL: "SPECULATION_CTRL", INT_STATUS: "INT_STATUS",
                 INT_CLEAR: "INT_CLEAR"}
_FAIL_NAMES = ("FAIL_ADDRESS_LOW", "FAIL_ADDRESS_HIGH", "FAIL_CONTROL", "FAIL_ID")
_REGION_NAMES = ("REGION_BASE_LOW", "REGION_BASE_HIGH", "REGION_TOP_LOW", "REGION_TOP_HIGH",
                 "REGION_ATTRIBUTES", "REGION_ID_ACCESS", None, None)


def register_name(offset: int) -> str:
    """The TRM name of a register offset (``REGION_ATTRIBUTES(3)``), for events and messages."""
    if offset in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[offset]
    if offset in ID_REGISTERS:
        return ID_REGISTERS[offset][0]
    if FAIL_BASE <= offset < FAIL_BASE + 4 * FAIL_STRIDE and offset % 4 == 0:
        f, r = divmod(offset - FAIL_BASE, FAIL_STRIDE)
        return f"{_FAIL_NAMES[r // 4]}({f})"
    if REGION_BASE <= offset < REGION_BASE + 9 * REGION_STRIDE and offset % 4 == 0:
        n, r = divmod(offset - REGION_BASE, REGION_STRIDE)
        if _REGION_NAMES[r // 4]:
            return f"{_REGION_NAMES[r // 4]}({n})"
    return f"RESERVED({offset:#05x})"
