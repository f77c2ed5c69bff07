"""The emulated EL3 secure monitor: SMC trap, runtime-service routing, world switch.

Unicorn cannot run EL3, so the monitor is Python entered from the SMC exception hook
(UC_HOOK_INTR number 13, PC already past the ``smc``). Like TF-A it keeps a registry of runtime
services keyed by SMCCC owning-entity ranges (``DECLARE_RT_SVC``) and one explicit world
switch, :meth:`El3Monitor.enter_secure`. It is the only code that moves register values between
worlds; it never touches either side's Python objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from emu.abi import AbiSet, firmware_abi
from emu.cpu import EXCP_SMC, CpuView, GuestFault
from emu.events import EventBus
from emu.types import World
from firmware.smccc import SmcccDecoder, SmcFunctionId


class SecureWorldPanic(Exception):
    """The secure world faulted or did not return through the dispatcher protocol."""


class RuntimeService(Protocol):
    name: str
    owner_start: int
    owner_end: int

    def handle(self, fid: SmcFunctionId, args: tuple[int, ...],
               from_world: World) -> tuple[int, ...]: ...


@dataclass
class WorldContext:
    """What EL3 keeps of a world across a switch (the general-purpose arguments)."""

    world: World
    regs: tuple[int, ...] = field(default_factory=tuple)


class El3Monitor:
    """SMC entry, routing and the single world switch of the platform."""

    def __init__(self, ns_view: CpuView, s_el1_view: CpuView, bus: EventBus,
                 abi: AbiSet | None = None):
        self.abi = abi or firmware_abi()
        self.decoder = SmcccDecoder(self.abi)
        self.smc_unk32 = self.abi.constants["SMC_UNK"] & 0xFFFFFFFF
        self.ns = ns_view
        self.s_el1 = s_el1_view
        self.bus = bus
        self.services: list[RuntimeService] = []
        self._by_owner: dict[int, RuntimeService] = {}
        self._ns_ctx = WorldContext(World.NS_EL1)
        self._s_ctx = WorldContext(World.S_EL1)
        self.contexts = {World.NS_EL1: self._ns_ctx, World.S_EL1: self._s_ctx}
        self._secure_return: tuple[int, ...] | None = None
        self._route_cache: dict[int, tuple[SmcFunctionId, RuntimeService | None]] = {}
        self.secure_panic: GuestFault | None = None
        self.smc_count = 0
        ns_view.on_intr = self._ns_exception
        s_el1_view.on_intr = self._secure_exception

    # --- registry ------------------------------------------------------------------------
    def register(self, service: RuntimeService) -> None:
        for owner in range(service.owner_start, service.owner_end + 1):
            if owner in self._by_owner:
                raise ValueError(f"owner {owner} already served by {self._by_owner[owner].name}")
        self.services.append(service)
        for owner in range(service.owner_start, service.owner_end + 1):
            self._by_owner[owner] = service

    # --- SMC from the normal world ----------------------------------------------------------
    def _ns_exception(self, view: CpuView, intno: int) -> None:
        if intno != EXCP_SMC:
            view.pending_fault = GuestFault(view.world, view.pc, "exception",
                                            f"unexpected exception {intno} at NS-EL1")
            view.stop()
            return
        args = view.read_args()
        self._ns_ctx.regs = args
        view.write_args(self.handle_smc(World.NS_EL1, args, view))

    def unknown(self, fid: SmcFunctionId) -> tuple[int, ...]:
        """SMCCC's "unknown function": 0xFFFFFFFF in w0 (all ones in x0 for SMC64)."""
        return (0xFFFFFFFFFFFFFFFF if fid.smc64 else self.smc_unk32,)

    def _route(self, raw: int) -> tuple[SmcFunctionId, RuntimeService | None]:
        route = self._route_cache.get(raw)
        if route is None:
            fid = self.decoder.decode(raw)
            route = (fid, self._by_owner.get(fid.owner))
            if len(self._route_cache) < 4096:       # fuzzers must not grow it without bound
                self._route_cache[raw] = route
        return route

    def handle_smc(self, from_world: World, args: tuple[int, ...],
                   view: CpuView | None = None) -> tuple[int, ...]:
        """Route one SMC to its runtime service; unknown ids get SMC_UNK, never an exception."""
        self.smc_count += 1
        fid, service = self._route(args[0] & 0xFFFFFFFF)   # ``view`` last read ``args``
        if not fid.smc64:
            # SMC32: only w0..w7 are defined; the upper halves are not passed on.
            args = view.last_args_w() if view is not None else tuple(a & 0xFFFFFFFF for a in args)
        bus = self.bus
        if bus.active:
            bus.emit("smc", str(from_world), fid=fid.raw, owner=fid.owner, kind=fid.kind,
                     args=list(args))
        result = service.handle(fid, args, from_world) if service else self.unknown(fid)
        if bus.active:
            bus.emit("smc_return", str(from_world), fid=fid.raw, result=list(result),
                     service=service.name if service else None)
        return result

    # --- the world switch -------------------------------------------------------------------
    def enter_secure(self, entry: int, args: tuple[int, ...] | list[int], cause: str) -> tuple[int, ...]:
        """Run S-EL1 from ``entry`` with x0..x7 = ``args`` until it SMCs back; return its x0..x7.

        The normal world stays suspended in its SMC hook meanwhile: its Unicorn instance keeps
        its registers, which is the NS context the dispatcher saves in TF-A.
        """
        if self.secure_panic is not None:
            raise SecureWorldPanic(f"secure world is dead: {self.secure_panic}")
        s = self.s_el1
        self._secure_return = None
        s.write_args(args)
        bus = self.bus
        if bus.active:
            bus.emit("world_switch", "EL3", frm="NS-EL1", to="S-EL1", cause=cause, entry=entry)
        try:
            s.run(entry)
        except GuestFault as fault:
            self.secure_panic = fault
            bus.emit("fault", "S-EL1", pc=fault.pc, kind=fault.kind, detail=fault.detail)
            raise SecureWorldPanic(str(fault)) from None
        ret = self._secure_return
        if ret is None:
            raise SecureWorldPanic("S-EL1 stopped without returning to EL3")
        self._s_ctx.regs = ret
        if bus.active:
            bus.emit("world_switch", "EL3", frm="S-EL1", to="NS-EL1", cause="return",
                     x0=ret[0])
        return ret

    def _secure_exception(self, view: CpuView, intno: int) -> None:
        if intno == EXCP_SMC:
            self._secure_return = view.read_args()
        else:
            view.pending_fault = GuestFault(view.world, view.pc, "exception",
                                            f"unexpected exception {intno} at S-EL1")
        view.stop()
