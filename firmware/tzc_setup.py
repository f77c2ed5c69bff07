"""Boot-time firewall, programmed by EL3 before the secure OS runs (TF-A's arm_tzc400_setup).

Region 0 (the background) opens DRAM to the normal world's CPU and devices; region 1 makes
secure DRAM secure-only; failures answer DECERR (an external abort at the master) and raise
the TZC interrupt, whose secure handler logs and clears the fail record (ACTION = ERR_INT). Protected
ranges are added later by the secure OS's platform hook (regions 2..8). The writes are the
same MMIO register writes any master would make, in the gatekeeper discipline: gates closed
while the regions are edited, opened afterwards.
"""
from __future__ import annotations

from typing import Callable, Iterable

from emu.abi import AbiSet
from emu.platform_map import MemoryMap

MmioWrite = Callable[[int, int, int], None]     # (offset, size, value)
MmioRead = Callable[[int, int], int]


def setup_boot_firewall(write: MmioWrite, read: MmioRead, memory_map: MemoryMap, abi: AbiSet,
                        ns_nsaids: Iterable[int]) -> None:
    c = abi.c
    call = abi.call_macro
    write(c.TZC400_GATE_KEEPER, 4, 0)
    id_access = 0
    for nsaid in sorted(set(ns_nsaids)):
        id_access |= call("TZC_REGION_ACCESS_RDWR", nsaid)
    bg = c.PLAT_TZC_REGION_NS_BACKGROUND
    write(call("TZC400_REGION_ID_ACCESS", bg), 4, id_access)
    write(call("TZC400_REGION_ATTRIBUTES", bg), 4, c.TZC_REGION_S_RDWR << c.TZC_REGION_ATTR_SEC_SHIFT)
    sec = memory_map.region("secure_dram")
    n = c.PLAT_TZC_REGION_SECURE_DRAM
    top = sec.base + sec.size - 1
    write(call("TZC400_REGION_ATTRIBUTES", n), 4, 0)
    write(call("TZC400_REGION_BASE_LOW", n), 4, sec.base & 0xFFFFFFFF)
    write(call("TZC400_REGION_BASE_HIGH", n), 4, sec.base >> 32)
    write(call("TZC400_REGION_TOP_LOW", n), 4, top & 0xFFFFFFFF)
    write(call("TZC400_REGION_TOP_HIGH", n), 4, top >> 32)
    write(call("TZC400_REGION_ID_ACCESS", n), 4, 0)
    write(call("TZC400_REGION_ATTRIBUTES", n), 4,
          (c.TZC_REGION_S_RDWR << c.TZC_REGION_ATTR_SEC_SHIFT) | 1)
    write(c.TZC400_ACTION, 4, c.TZC_ACTION_ERR_INT)
    filters = ((read(c.TZC400_BUILD_CONFIG, 4) >> 24) & 3) + 1
    mask = (1 << filters) - 1
    write(c.TZC400_GATE_KEEPER, 4, mask)
    status = (read(c.TZC400_GATE_KEEPER, 4) >> c.TZC_GATE_KEEPER_OS_SHIFT) & 0xF
    if status != mask:
        raise RuntimeError(f"TZC-400 gates did not open (status {status:#x})")
