"""Who may touch which physical memory: the access policy behind every NS CPU view and device.

Until the TZC-400 model is programmed, the policy is the boot-time firewall the memory map
implies: secure regions are secure-only, normal-world RAM is open. ``ProtectionFault`` is what a
denied access becomes for a Python caller (a debugger-style read, the kernel model, a device).
"""
from __future__ import annotations

from typing import Any

from emu.cpu import PROT_R, PROT_W, PROT_X, UC_PROT_ALL, CpuView
from emu.platform_map import MemoryMap
from unicorn.unicorn_const import UC_MEM_FETCH, UC_MEM_WRITE

PAGE_MASK = ~0xFFF & 0xFFFFFFFFFFFFFFFF


class ProtectionFault(Exception):
    """A denied access: address, size, direction, world and the firewall's fail record."""

    def __init__(self, address: int, size: int, direction: str, world: str, reason: str,
                 fail: dict[str, Any] | None = None):
        super().__init__(f"{world} {direction} of {size} byte(s) at {address:#x} denied: {reason}")
        self.address, self.size, self.direction, self.world = address, size, direction, world
        self.reason = reason
        self.fail = fail or {}


class BootFirewall:
    """Secure regions secure-only, NS RAM open; MMIO is not reachable through RAM views."""

    def __init__(self, memory_map: MemoryMap):
        self.map = memory_map

    def check(self, pa: int, size: int, write: bool, secure: bool) -> str | None:
        """None when allowed, else the reason for the refusal."""
        region = self.map.region_of(pa, max(size, 1))
        if region is None:
            return "no memory region at this address"
        if region.kind != "ram":
            return f"{region.name} is not RAM"
        if region.secure and not secure:
            return f"{region.name} is secure-only"
        return None

    def translate_ns(self, view: CpuView, vaddr: int, access: int) -> tuple[int, int] | None:
        """Identity-mapped NS-EL1 view checked against the firewall (the TLB-fill policy)."""
        reason = self.check(vaddr & PAGE_MASK, 0x1000, access == UC_MEM_WRITE, secure=False)
        if reason is not None:
            view.deny(vaddr, access, reason, vaddr)
            return None
        return vaddr & PAGE_MASK, UC_PROT_ALL

    def translate_secure(self, view: CpuView, vaddr: int, access: int) -> tuple[int, int] | None:
        reason = self.check(vaddr & PAGE_MASK, 0x1000, access == UC_MEM_WRITE, secure=True)
        if reason is not None:
            view.deny(vaddr, access, reason, vaddr)
            return None
        return vaddr & PAGE_MASK, PROT_R | PROT_W | PROT_X


__all__ = ["BootFirewall", "ProtectionFault", "UC_MEM_FETCH"]
