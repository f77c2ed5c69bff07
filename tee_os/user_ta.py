"""User TAs at S-EL0: instances, entry into the TA, and the exits that bring control back.

Entering a TA is what OP-TEE's ``user_ta_enter`` does: map the memref parameters, write a
``struct utee_params`` on the TA stack, set x0 = entry function, x1 = session, x2 = params,
x3 = command, SP = x2, PC = the ELF entry, and run at S-EL0. The TA leaves through the RETURN
or PANIC syscall; any other syscall is served inline from the S-EL0 exception hook. A syscall
that needs the normal world (an RPC) suspends the TA: its CPU context is saved, the thread's
generator yields the RPC, and the TA resumes when the answer comes back.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Generator

from emu.cpu import EXCP_SMC, EXCP_SWI, PROT_R, PROT_RX, PROT_RW, CpuView, GuestFault
from emu.events import EventBus
from emu.physmem import PhysMem
from tee_os.ta_loader import TaImage
from tee_os.ta_memory import PAGE, TA_LOAD_BASE, AccessDenied, PagePool, TaAddressSpace

STACK_ALIGNMENT = 64                   # vexpress/QEMU value of OP-TEE's STACK_ALIGNMENT


@dataclass
class TaParam:
    """One TEE_Param as the TA sees it (type is a TEE_PARAM_TYPE_* value)."""

    type: int
    a: int = 0
    b: int = 0
    mobj: Any = None      # tee_os.mobj.Mobj for memrefs
    offset: int = 0
    size: int = 0
    va: int = 0


@dataclass
class TaExit:
    kind: str            # "return", "panic", "fault"
    value: int = 0
    detail: str = ""


@dataclass
class NeedsRpc:
    """A syscall that must ask the normal world: ``request`` is yielded, ``finish`` maps the reply."""

    request: Any
    finish: Callable[[Any], int]


@dataclass
class NeedsCall:
    """A syscall that runs another session's entry (TA-to-TA): ``call`` is that generator."""

    call: Any
    finish: Callable[[Any], int]


@dataclass
class TaInstance:
    image: TaImage
    space: TaAddressSpace
    allocations: list[tuple[int, int]]
    stack_top: int
    entry: int
    dead: bool = False
    sessions: set[int] = field(default_factory=set)
    name: str = ""

    @property
    def uuid(self):
        return self.image.uuid

    @property
    def flags(self) -> int:
        return self.image.flags


def load_instance(image: TaImage, pool: PagePool, physmem: PhysMem,
                  invalidate_code: Callable[[], None]) -> TaInstance:
    """Map an image's segments, apply its relocations, allocate its stack (ldelf's job)."""
    space = TaAddressSpace()
    allocations: list[tuple[int, int]] = []
    try:
        for seg in image.segments:
            size = (seg.memsz + PAGE - 1) & ~(PAGE - 1)
            pa = pool.alloc(size)
            allocations.append((pa, size))
            physmem.fill(pa, size, 0)
            physmem.write(pa, seg.data)
            prot = {"r": PROT_R, "rx": PROT_RX, "rw": PROT_RW}[seg.perms]
            space.map_range(TA_LOAD_BASE + seg.vaddr, pa, size, prot, secure=True, private=True)
        for r_offset, addend in image.relocations:
            runs = space.resolve(TA_LOAD_BASE + r_offset, 8, write=False)
            blob = struct.pack("<Q", TA_LOAD_BASE + addend)
            pos = 0
            for pa, length in runs:
                physmem.write(pa, blob[pos:pos + length])
                pos += length
        stack = (image.stack_size + PAGE - 1) & ~(PAGE - 1)
        stack_pa = pool.alloc(stack)
        allocations.append((stack_pa, stack))
        physmem.fill(stack_pa, stack, 0)
        image_end = max(s.vaddr + s.memsz for s in image.segments)
        stack_base = TA_LOAD_BASE + ((image_end + PAGE - 1) & ~(PAGE - 1)) + PAGE  # guard page
        space.map_range(stack_base, stack_pa, stack, PROT_RW, secure=True, private=True)
    except Exception:
        for pa, size in allocations:
            physmem.fill(pa, size, 0)
            pool.free(pa, size)
        raise
    invalidate_code()
    return TaInstance(image, space, allocations, stack_base + stack,
                      TA_LOAD_BASE + image.entry, name=image.name)


def destroy_instance(inst: TaInstance, pool: PagePool, physmem: PhysMem) -> None:
    """Scrub and free every page of the instance."""
    for pa, size in inst.allocations:
        physmem.fill(pa, size, 0)
        pool.free(pa, size)
    inst.allocations.clear()
    inst.space.pages.clear()


class UserModeRunner:
    """Runs TA entries on the S-EL0 view and serves their syscalls."""

    def __init__(self, view: CpuView, physmem: PhysMem, bus: EventBus,
                 syscall: Callable[["UserModeRunner", int, tuple[int, ...]], Any],
                 utee_params_size: int):
        """``utee_params_size``: sizeof(struct utee_params) from the secure header copy (72:
        u64 types + u64 vals[8]; the TA finds it at stack_top - ROUNDUP(size, 64))."""
        self.view = view
        self.params_size = utee_params_size
        self.physmem = physmem
        self.bus = bus
        self.syscall = syscall
        self.current: TaInstance | None = None
        self.params: list[TaParam] = []
        self.session_id = 0
        self._exit: TaExit | NeedsRpc | None = None
        view.on_intr = self._exception

    # --- memory helpers for syscalls --------------------------------------------------------
    def read_ta(self, va: int, size: int) -> bytes:
        assert self.current is not None
        runs = self.current.space.resolve(va, size, write=False)
        return b"".join(self.physmem.read(pa, n) for pa, n in runs)

    def write_ta(self, va: int, data: bytes) -> None:
        assert self.current is not None
        runs = self.current.space.resolve(va, len(data), write=True)
        pos = 0
        for pa, n in runs:
            self.physmem.write(pa, data[pos:pos + n])
            pos += n

    # --- S-EL0 exceptions -------------------------------------------------------------------
    def _exception(self, view: CpuView, intno: int) -> None:
        if intno == EXCP_SWI:
            args = view.read_args()
            nr = view.x(8)
            try:
                result = self.syscall(self, nr, args)
            except AccessDenied as exc:
                result = TaExit("panic", 0, f"bad pointer in syscall {nr}: {exc}")
            if isinstance(result, (TaExit, NeedsRpc, NeedsCall)):
                self._exit = result
                view.stop()
            else:
                view.set_x(0, result & 0xFFFFFFFF)
            return
        what = "smc at EL0 (UNDEFINED)" if intno == EXCP_SMC else f"exception {intno}"
        self._exit = TaExit("fault", 0, what)
        view.stop()

    # --- entry ---------------------------------------------------------------------------------
    def _write_params(self, inst: TaInstance, params: list[TaParam]) -> int:
        types = 0
        vals = [0] * 8
        for i, p in enumerate(params[:4]):
            types |= (p.type & 0xF) << (4 * i)
            if p.type in (5, 6, 7):
                vals[2 * i], vals[2 * i + 1] = p.va, p.size
            elif p.type in (1, 3):
                vals[2 * i], vals[2 * i + 1] = p.a & 0xFFFFFFFF, p.b & 0xFFFFFFFF
        params_va = inst.stack_top - ((self.params_size + STACK_ALIGNMENT - 1)
                                      & ~(STACK_ALIGNMENT - 1))
        self.write_ta(params_va, struct.pack("<Q8Q", types, *vals))
        return params_va

    def _read_back(self, params_va: int, params: list[TaParam]) -> None:
        raw = self.read_ta(params_va, self.params_size)
        vals = struct.unpack_from("<8Q", raw, 8)
        for i, p in enumerate(params[:4]):
            if p.type in (2, 3):
                p.a, p.b = vals[2 * i] & 0xFFFFFFFF, vals[2 * i + 1] & 0xFFFFFFFF
            elif p.type in (6, 7):
                p.size = vals[2 * i + 1]

    def enter(self, inst: TaInstance, func: int, session_id: int, cmd: int,
              params: list[TaParam]) -> Generator[Any, Any, TaExit]:
        """Run one TA entry to its exit; yields RPC requests, returns the TaExit."""
        view = self.view
        self.current, self.params, self.session_id = inst, params, session_id
        view.translate = inst.space.translate
        view.flush_tlb()
        params_va = self._write_params(inst, params)
        view.write_args([func, session_id, params_va, cmd, 0, 0, 0, 0])
        for n in range(8, 31):
            view.set_x(n, 0)
        view.sp = params_va
        view.set_reg("pstate", 0)
        pc = inst.entry
        bus = self.bus
        if bus.active:
            bus.emit("world_switch", "S-EL1", frm="S-EL1", to="S-EL0", cause="ta entry",
                     ta=inst.name, func=func, cmd=cmd)
        while True:
            self._exit = None
            try:
                view.run(pc)
            except GuestFault as fault:
                bus.emit("fault", "S-EL0", pc=fault.pc, kind=fault.kind, detail=fault.detail,
                         ta=inst.name)
                self._exit = TaExit("fault", 0, f"{fault.kind} at {fault.pc:#x}: {fault.detail}")
            ex = self._exit
            if isinstance(ex, (NeedsRpc, NeedsCall)):
                ctx = view.context_save()
                if isinstance(ex, NeedsRpc):
                    reply = yield ex.request
                else:          # another TA runs on this view meanwhile (it saves its own)
                    reply = yield from ex.call
                self.current, self.params, self.session_id = inst, params, session_id
                view.translate = inst.space.translate
                view.flush_tlb()
                view.context_restore(ctx)
                view.set_x(0, ex.finish(reply) & 0xFFFFFFFF)
                pc = view.pc
                continue
            if ex is None:
                ex = TaExit("fault", 0, "TA stopped without an exit syscall")
            if ex.kind == "return":
                try:
                    self._read_back(params_va, params)
                except AccessDenied as exc:
                    ex = TaExit("fault", 0, f"utee_params unreadable: {exc}")
            if bus.active:
                bus.emit("world_switch", "S-EL0", frm="S-EL0", to="S-EL1", cause=ex.kind,
                         ta=inst.name, value=ex.value)
            inst.space.unmap_params()
            return ex
