"""The platform's access control: the TZC-400 in front of DRAM, fixed rules elsewhere.

Every CPU view's TLB-fill policy and every Python-side access that stands for a master (the
kernel model's loads and stores, devices) asks this object. DRAM is judged by the TZC-400 with
the master's security state and NSAID; trusted SRAM and MMIO are not behind the TZC and are
secure-only (the TZC frame itself) or refused. Whenever the TZC configuration changes, every
registered view's TLB is flushed, so the next access re-derives its permissions: enforcement
costs nothing per instruction in steady state.

A refused access latches the TZC fail registers (first failure per filter) and becomes an
``external_abort`` event for the world that made it.
"""
from __future__ import annotations

from typing import Any, Callable

from emu.cpu import PROT_R, PROT_W, PROT_X, CpuView
from emu.events import EventBus
from emu.platform_map import MemoryMap, Region
from emu.protection import ProtectionFault
from emu.tzc400 import Tzc400

PAGE = 0x1000
PAGE_MASK = ~(PAGE - 1) & 0xFFFFFFFFFFFFFFFF


class AccessControl:
    def __init__(self, memory_map: MemoryMap, tzc: Tzc400, bus: EventBus, *, tzc_base: int,
                 cpu_nsaid: int):
        self.map = memory_map
        self.tzc = tzc
        self.bus = bus
        self.tzc_base = tzc_base
        self.cpu_nsaid = cpu_nsaid
        self.views: list[CpuView] = []
        self.flushes = 0
        self.last_fail: dict[str, Any] = {}
        # The TZC interrupt line (ACTION = INT/ERR_INT), wired to the secure world's handler.
        self.on_interrupt: Callable[[], None] | None = None
        self._regions = sorted(memory_map.regions, key=lambda r: r.base)
        # Device register frames only the secure world may reach (the TZC, secure engines).
        self.secure_frames: list[tuple[int, int]] = [(tzc_base, tzc.FRAME_SIZE)]
        tzc.on_change(self.flush_all)

    def register_view(self, view: CpuView) -> None:
        self.views.append(view)

    def flush_all(self) -> None:
        """The TZC changed: drop every cached translation so permissions are re-derived."""
        self.flushes += 1
        for v in self.views:
            v.flush_tlb()

    def region_of(self, pa: int) -> Region | None:
        for r in self._regions:
            if r.base <= pa < r.base + r.size:
                return r
        return None

    # --- verdicts -----------------------------------------------------------------------------
    def page_prot(self, page_pa: int, *, secure: bool, nsaid: int) -> int:
        """UC_PROT bits a master may use on a page (0: nothing)."""
        r = self.region_of(page_pa)
        if r is None:
            return 0
        if r.kind == "mmio":
            frame = any(b <= page_pa < b + n for b, n in self.secure_frames)
            return PROT_R | PROT_W if secure and frame else 0
        if not r.behind_tzc:
            return PROT_R | PROT_W | PROT_X if secure or not r.secure else 0
        rd, wr = self.tzc.page_permissions(page_pa, secure=secure, nsaid=nsaid)
        return (PROT_R | PROT_X if rd else 0) | (PROT_W if wr else 0)

    def refuse(self, pa: int, size: int, *, write: bool, secure: bool, nsaid: int,
               world: str, master_id: int = 0) -> tuple[str, dict[str, Any]]:
        """Record a refused access like the hardware does; return (reason, fail record)."""
        r = self.region_of(pa)
        if r is not None and r.kind == "ram" and r.behind_tzc:
            verdict = self.tzc.check(pa, size, write=write, secure=secure, nsaid=nsaid,
                                     master_id=master_id, world=world)
            fail = self.tzc.fail_state(0)       # as latched at the fault, before any handler
            reason = f"TZC-400: {verdict.reason}"
            if verdict.interrupt and self.on_interrupt is not None:
                self.on_interrupt()
        else:
            fail = {}
            reason = ("no memory at this address" if r is None else
                      f"{r.name} is not reachable from {'secure' if secure else 'non-secure'} "
                      f"{'MMIO' if r.kind == 'mmio' else 'masters'}")
        self.last_fail = fail
        self.bus.emit("external_abort", world, address=pa, size=size,
                      direction="write" if write else "read", reason=reason, fail=fail)
        return reason, fail

    def check_access(self, pa: int, size: int, *, write: bool, secure: bool, nsaid: int,
                     world: str, master_id: int = 0) -> None:
        """A Python-side access on behalf of a master; raises ProtectionFault if refused."""
        if size <= 0:
            return
        need = PROT_W if write else PROT_R
        page = pa & PAGE_MASK
        end = pa + size
        while page < end:
            if not self.page_prot(page, secure=secure, nsaid=nsaid) & need:
                at = max(page, pa)
                reason, fail = self.refuse(at, min(end, page + PAGE) - at, write=write,
                                           secure=secure, nsaid=nsaid, world=world,
                                           master_id=master_id)
                raise ProtectionFault(at, size, "write" if write else "read", world, reason, fail)
            page += PAGE
