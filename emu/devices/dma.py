"""DMA masters: devices that read and write physical memory through the TZC-400.

A DMA master has no MMU and no CPU view: its identity on the bus is its NSAID (non-secure
masters), its secure flag, its AXI master id and the TZC filter (DRAM port) it sits on. Every
access is judged by ``Tzc400.check`` first, so a denial latches the TZC's fail registers exactly as
a CPU access would.

Denied accesses: on hardware a denied read returns zeros (with ACTION = NONE/INT the master even
gets OKAY) and a denied write is dropped. tzemu records the fault either way and then *raises*
``ProtectionFault`` instead of handing back zeros, so a user (and a test) sees the denial where it
happened; no data is ever returned and memory is never changed by a denied access.

Memory outside the TZC (``Region.behind_tzc`` False, e.g. on-chip secure SRAM) is guarded by the
platform's static firewall instead: secure-only regions refuse non-secure masters.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Callable

from emu.events import EventBus
from emu.faults import POINTS, FaultInjector
from emu.physmem import PhysMem
from emu.protection import ProtectionFault
from emu.tzc400 import Tzc400, TzcResponse, TzcVerdict


class DmaBusError(OSError):
    """A DMA transfer ended with a bus error (SLVERR/DECERR from the interconnect, not the
    TZC): nothing was transferred. Raised by fault injection (``<master>.dma`` points)."""

    def __init__(self, master: str, direction: str, pa: int, size: int, why: str):
        super().__init__(errno.EIO, f"{master}: bus error on DMA {direction} of {pa:#x} "
                                    f"(+{size:#x}): {why}")
        self.master, self.direction, self.address, self.size = master, direction, pa, size


@dataclass
class DmaStats:
    reads: int = 0
    writes: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    denied_reads: int = 0
    denied_writes: int = 0


class DmaMaster:
    """A bus master whose every access goes through the TZC."""

    def __init__(self, name: str, *, physmem: PhysMem, tzc: Tzc400, nsaid: int,
                 secure: bool = False, master_id: int = 0, filter: int = 0,
                 bus: EventBus | None = None, privileged: bool = True,
                 injector: FaultInjector | None = None):
        if not 0 <= nsaid <= 15:
            raise ValueError(f"{name}: NSAID {nsaid} is not a 4-bit value")
        self.name, self.physmem, self.tzc = name, physmem, tzc
        self.nsaid, self.secure, self.master_id, self.filter = nsaid, secure, master_id, filter
        self.privileged = privileged
        self.bus = bus or tzc.bus
        self.faults: list[ProtectionFault] = []
        self.stats = DmaStats()
        # issue 10 part 4: the device side's fault-injection points (emu/faults.py)
        self.injector = injector if injector is not None else FaultInjector()
        self._fault_point = f"{name}.dma" if f"{name}.dma" in POINTS else None
        # The TZC interrupt line: the platform wires it to the secure world's handler.
        self.on_tzc_interrupt: Callable[[], None] | None = None

    def _outside_tzc_reason(self, pa: int, size: int) -> str | None:
        """None when the TZC guards this range, else '' (allowed) or the static denial."""
        region = self.physmem.map.region_of(pa, max(size, 1))
        if region is None or getattr(region, "behind_tzc", True):
            return None
        if region.secure and not self.secure:
            return f"{region.name} is secure-only (not behind the TZC)"
        return ""

    def _judge(self, pa: int, size: int, write: bool) -> None:
        """Raise ProtectionFault (after recording it) unless the access is allowed."""
        verdict: TzcVerdict | None = None
        reason = self._outside_tzc_reason(pa, size)
        if reason is None:
            verdict = self.tzc.check(pa, size, write=write, secure=self.secure, nsaid=self.nsaid,
                                     filter=self.filter, master_id=self.master_id,
                                     privileged=self.privileged, world=self.name)
            if verdict.allowed:
                return
            reason = verdict.reason
        elif not reason:
            return
        direction = "write" if write else "read"
        fail = self.tzc.fail_state(self.filter) if verdict is not None else {}
        fault = ProtectionFault(pa, size, direction, self.name, reason, fail=fail)
        fault.verdict = verdict          # type: ignore[attr-defined]  # response / interrupt
        self.faults.append(fault)
        if write:
            self.stats.denied_writes += 1
        else:
            self.stats.denied_reads += 1
        if self.bus.active:
            self.bus.emit("dma_fault", self.name, master=self.name, address=pa, size=size,
                          direction=direction, secure=self.secure, nsaid=self.nsaid,
                          filter=self.filter, reason=reason,
                          response=(verdict.response if verdict else TzcResponse.DECERR).value,
                          interrupt=bool(verdict and verdict.interrupt))
        if verdict is not None and verdict.interrupt and self.on_tzc_interrupt is not None:
            self.on_tzc_interrupt()
        raise fault

    def _bus_error_injected(self, pa: int, size: int, direction: str) -> None:
        if self._fault_point is None or not self.injector.hit(self._fault_point):
            return
        if self.bus.active:
            self.bus.emit("dma_fault", self.name, master=self.name, address=pa, size=size,
                          direction=direction, secure=self.secure, nsaid=self.nsaid,
                          filter=self.filter, reason="injected bus error", response="SLVERR",
                          interrupt=False)
        raise DmaBusError(self.name, direction, pa, size, f"injected ({self._fault_point})")

    def dma_read(self, pa: int, size: int) -> memoryview:
        """A zero-copy view of ``size`` bytes at ``pa``; ProtectionFault when denied."""
        if size <= 0:
            return memoryview(b"")
        self._judge(pa, size, write=False)
        self._bus_error_injected(pa, size, "read")
        view = self.physmem.view(pa, size)
        self.stats.reads += 1
        self.stats.bytes_read += size
        return view

    def dma_write(self, pa: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` at ``pa``; a denied write changes nothing and raises ProtectionFault."""
        size = memoryview(data).nbytes
        if size == 0:
            return
        self._judge(pa, size, write=True)
        self._bus_error_injected(pa, size, "write")
        self.physmem.write(pa, memoryview(data).cast("B"))
        self.stats.writes += 1
        self.stats.bytes_written += size


class TestMaster(DmaMaster):
    """A generic master for tests and demos (a memcpy engine)."""

    __test__ = False                     # not a pytest test class despite the name

    def dma_copy(self, src: int, dst: int, n: int) -> None:
        """Copy ``n`` bytes; both ends are judged, the source before anything is written."""
        data = bytes(self.dma_read(src, n))
        self.dma_write(dst, data)
