"""CPU views: one Unicorn instance per world context (NS-EL1, S-EL1, S-EL0).

Every view maps the same host buffers (``mem_map_ptr``) at their physical addresses and runs in
Unicorn's virtual-TLB mode: on a TLB miss the fill hook asks the view's ``translate`` policy for
the physical page and permissions. The policy is where the simulated MMU and the TZC verdict
live, so enforcement costs nothing per instruction once the TLB is warm. Because each world
has its own instance, a TLB entry can never leak across worlds; TLBs are flushed whenever the
state a policy depends on changes (TZC programming, page tables, the running TA).

A guest fault never escapes as a bare ``UcError``: :meth:`CpuView.run` turns it into
:class:`GuestFault`, which callers report as a fault event.
"""
from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from unicorn import (UC_ARCH_ARM64, UC_HOOK_CODE, UC_HOOK_INTR, UC_HOOK_TLB_FILL, UC_MODE_ARM,
                     UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE, UC_TLB_VIRTUAL, Uc,
                     UcError)
from unicorn import arm64_const as A
from unicorn.unicorn_const import (UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_ERR_EXCEPTION,
                                   UC_MEM_FETCH, UC_MEM_READ, UC_MEM_WRITE)
from unicorn.unicorn_py3.unicorn import uclib

from emu.disasm import effective_address
from emu.physmem import PhysMem
from emu.types import World

PAGE_MASK = ~0xFFF & 0xFFFFFFFFFFFFFFFF
ACCESS_NAMES = {UC_MEM_READ: "read", UC_MEM_WRITE: "write", UC_MEM_FETCH: "fetch"}
PROT_R, PROT_W, PROT_X = UC_PROT_READ, UC_PROT_WRITE, UC_PROT_EXEC
PROT_RW = PROT_R | PROT_W
PROT_RX = PROT_R | PROT_X

# Exception numbers Unicorn reports through UC_HOOK_INTR for AArch64 (QEMU's EXCP_*).
EXCP_UDEF = 1
EXCP_SWI = 2          # svc: PC already after the instruction
EXCP_PREFETCH_ABORT = 3
EXCP_DATA_ABORT = 4
EXCP_HVC = 11
EXCP_SMC = 13         # smc: PC already after the instruction

class Firewall(Protocol):
    """The platform's bus firewall as a CPU view consults it after its own MMU stage."""

    def page_prot(self, page_pa: int, *, secure: bool, nsaid: int) -> int: ...

    def refuse(self, pa: int, size: int, *, write: bool, secure: bool, nsaid: int,
               world: str, master_id: int = 0) -> tuple[str, dict]: ...


_NEED = {UC_MEM_READ: PROT_R, UC_MEM_WRITE: PROT_W, UC_MEM_FETCH: PROT_X}

# Translate policy: (view, VA of the access, access type) -> (page-aligned PA, UC_PROT_* perms),
# or None after calling view.deny(...) to refuse.
Translate = Callable[["CpuView", int, int], Optional[tuple[int, int]]]


@dataclass(frozen=True)
class Denial:
    """Why the last TLB fill was refused (set by the policy for fault reports)."""

    vaddr: int
    access: str
    reason: str
    paddr: int | None = None


class GuestFault(Exception):
    """Guest code faulted (abort, undefined instruction, refused translation)."""

    def __init__(self, world: World, pc: int, kind: str, detail: str,
                 denial: Denial | None = None):
        super().__init__(f"{world} fault at pc={pc:#x}: {kind}: {detail}")
        self.world, self.pc, self.kind, self.detail, self.denial = world, pc, kind, detail, denial


def identity_translate(view: "CpuView", vaddr: int, access: int) -> tuple[int, int] | None:
    return vaddr & PAGE_MASK, UC_PROT_ALL


_X_REGS = [A.UC_ARM64_REG_X0 + i for i in range(29)] + [A.UC_ARM64_REG_X29, A.UC_ARM64_REG_X30]


def _fast_entry(name: str, argtypes: tuple) -> ctypes._CFuncPtr:
    """The same libunicorn entry point with plain pointer-sized argument types.

    The binding's prototypes convert typed arrays on every call (~2 us); with c_void_p
    arguments a call costs ~1 us. These sit on the world-switch path, taken twice per SMC.
    """
    fn = getattr(ctypes.CDLL(uclib._name), name)
    fn.argtypes, fn.restype = argtypes, ctypes.c_int
    return fn


_VP = ctypes.c_void_p
_reg_read_batch = _fast_entry("uc_reg_read_batch", (_VP, _VP, _VP, ctypes.c_int))
_reg_write_batch = _fast_entry("uc_reg_write_batch", (_VP, _VP, _VP, ctypes.c_int))
_emu_start = _fast_entry("uc_emu_start", (_VP, ctypes.c_uint64, ctypes.c_uint64,
                                          ctypes.c_uint64, ctypes.c_size_t))
_emu_stop = _fast_entry("uc_emu_stop", (_VP,))
_PACK8 = struct.Struct("<8Q")
_LOW32x8 = struct.Struct("<" + "I4x" * 8)
_PACKN = {n: struct.Struct(f"<{n}Q") for n in range(1, 9)}
_INTR_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
_CODE_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                               ctypes.c_void_p)


class CpuView:
    """A Unicorn AArch64 instance that sees physical memory through a translate policy."""

    def __init__(self, world: World, physmem: PhysMem, translate: Translate | None = None, *,
                 firewall: "Firewall | None" = None, nsaid: int = 0):
        self.world = world
        self.secure = world.secure
        self.nsaid = nsaid
        self.firewall = firewall
        self.physmem = physmem
        self.uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        self._h = self.uc._uch.value
        for block in physmem.blocks:
            self.uc.mem_map_ptr(block.region.base, block.region.size, UC_PROT_ALL, block.host_ptr)
        self.translate: Translate = translate or identity_translate
        self.denial: Denial | None = None
        self.uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        self.uc.hook_add(UC_HOOK_TLB_FILL, self._tlb_fill)
        self.on_intr: Callable[[CpuView, int], None] = self._default_intr
        self._native_cbs: list = []          # keep ctypes callbacks alive
        self._hook_native(UC_HOOK_INTR, _INTR_CFUNC(self._intr_native), 1, 0)
        self._gates: dict[int, Callable[[CpuView], None]] = {}
        self.on_flush: list[Callable[[], None]] = []
        self._gate_hook = None
        self.pending_fault: GuestFault | None = None
        self._refused: tuple[int, int, int] | None = None
        # Preallocated arrays for batch x0..x7 transfers (1 native call instead of 8).
        self._ids8 = (ctypes.c_int * 8)(*_X_REGS[:8])
        self._vals8 = (ctypes.c_uint64 * 8)()
        base = ctypes.addressof(self._vals8)
        self._ptrs8 = (ctypes.c_void_p * 8)(*[base + 8 * i for i in range(8)])
        self._ids8_addr = ctypes.addressof(self._ids8)
        self._ptrs8_addr = ctypes.addressof(self._ptrs8)
        if world is World.S_EL0:
            self.uc.reg_write(A.UC_ARM64_REG_CPACR_EL1, 3 << 20)  # FP/SIMD allowed at EL0
            self.uc.reg_write(A.UC_ARM64_REG_PSTATE, 0x0)          # EL0t
        else:
            self.uc.reg_write(A.UC_ARM64_REG_CPACR_EL1, 3 << 20)

    # --- translation -------------------------------------------------------------------
    def _tlb_fill(self, uc: Uc, vaddr: int, access: int, entry, _ud) -> bool:
        result = self.translate(self, vaddr, access)       # the MMU stage of this view
        if result is None:
            return False
        need = _NEED.get(access, PROT_R)
        fw = self.firewall
        if fw is not None:                                  # the bus firewall (TZC) stage
            page = result[0]
            prot = result[1] & fw.page_prot(page, secure=self.secure, nsaid=self.nsaid)
            if not prot & need:
                # Recorded once run() knows the exact address (the fill only sees the 1 KiB
                # block: Unicorn's TLB uses QEMU's minimum Arm page).
                self._refused = (page, vaddr, access)
                self.deny(vaddr, access, "refused by the bus firewall", page | (vaddr & 0xFFF))
                return False
            result = (page, prot)
        elif not result[1] & need:
            self.deny(vaddr, access, "permission fault", result[0] | (vaddr & 0xFFF))
            return False
        # Unicorn 2.1.4 passes the access address rounded to QEMU's 1 KiB minimum Arm page (its
        # TLB entries are 1 KiB) and derives the entry from (vaddr, paddr) as given, so paddr
        # must carry vaddr's offset within the 4 KiB page or every access in it is shifted.
        entry.paddr = result[0] | (vaddr & 0xFFF)
        entry.perms = result[1]
        return True

    def deny(self, vaddr: int, access: int, reason: str, paddr: int | None = None) -> None:
        """Called by a policy that refuses a fill, so the fault report can say why."""
        self.denial = Denial(vaddr, ACCESS_NAMES.get(access, str(access)), reason, paddr)

    def flush_tlb(self) -> None:
        """Drop every cached translation (Unicorn's TLB and any walk cache listening)."""
        self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
        for listener in self.on_flush:
            listener()

    def read_regs(self, ids: "ctypes.Array[ctypes.c_int]", out: "ctypes.Array[ctypes.c_uint64]",
                  ptrs: "ctypes.Array[ctypes.c_void_p]") -> None:
        """Batch-read registers into preallocated arrays (one native call)."""
        _reg_read_batch(self._h, ctypes.addressof(ids), ctypes.addressof(ptrs), len(ids))

    def invalidate_code(self, begin: int, end: int) -> None:
        """Drop cached translations of code after its bytes changed (Unicorn is not coherent)."""
        self.uc.ctl_remove_cache(begin, end)

    # --- exceptions and gates ------------------------------------------------------------
    def _default_intr(self, view: "CpuView", intno: int) -> None:
        self.pending_fault = GuestFault(self.world, self.pc, "exception",
                                        f"unhandled exception {intno}")
        self.stop()

    def _hook_native(self, htype: int, cb: ctypes._CFuncPtr, begin: int, end: int) -> ctypes.c_size_t:
        """uc_hook_add with a ctypes callback of our own: the world-switch hooks run a few
        times per SMC, and skipping the binding's two Python wrapper frames is measurable."""
        handle = ctypes.c_size_t()
        status = uclib.uc_hook_add(self.uc._uch, ctypes.byref(handle), htype, cb,
                                   ctypes.c_void_p(0), ctypes.c_uint64(begin), ctypes.c_uint64(end))
        if status:
            raise UcError(status)
        self._native_cbs.append(cb)
        return handle

    def _guard(self, exc: BaseException) -> None:
        """Record a hook's exception like the binding does, and stop; run() re-raises it."""
        if self.uc._hook_exception is None:
            self.uc._hook_exception = exc
        _emu_stop(self._h)

    def _intr_native(self, _h, intno: int, _ud) -> None:
        try:
            self.on_intr(self, intno)
        except BaseException as exc:  # noqa: BLE001 - re-raised by run()
            self._guard(exc)

    def set_gates(self, begin: int, end: int, gates: dict[int, Callable[["CpuView"], None]]) -> None:
        """Install native-call gates: addresses where the Python half of a component runs.

        One code hook covers [begin, end); outside that range it costs nothing.
        """
        self._gates = dict(gates)
        if self._gate_hook is not None:
            uclib.uc_hook_del(self.uc._uch, self._gate_hook)
        self._gate_hook = self._hook_native(UC_HOOK_CODE, _CODE_CFUNC(self._gate), begin, end - 1)

    def _gate(self, _h, address: int, size: int, _ud) -> None:
        fn = self._gates.get(address)
        if fn is not None:
            try:
                fn(self)
            except BaseException as exc:  # noqa: BLE001 - re-raised by run()
                self._guard(exc)

    # --- registers -------------------------------------------------------------------------
    def read_args(self) -> tuple[int, ...]:
        """x0..x7 in one native call."""
        _reg_read_batch(self._h, self._ids8_addr, self._ptrs8_addr, 8)
        return _PACK8.unpack_from(self._vals8)

    def last_args_w(self) -> tuple[int, ...]:
        """w0..w7 of the last :meth:`read_args` (the SMC32 view), without another native call."""
        return _LOW32x8.unpack_from(self._vals8)

    def write_args(self, values: tuple[int, ...] | list[int]) -> None:
        """Write x0..x(n-1) from ``values`` (n <= 8) in one native call."""
        n = len(values)
        try:
            _PACKN[n].pack_into(self._vals8, 0, *values)
        except struct.error:
            _PACKN[n].pack_into(self._vals8, 0, *[v & 0xFFFFFFFFFFFFFFFF for v in values])
        _reg_write_batch(self._h, self._ids8_addr, self._ptrs8_addr, n)

    def reg(self, name: str) -> int:
        return self.uc.reg_read(getattr(A, f"UC_ARM64_REG_{name.upper()}"))

    def set_reg(self, name: str, value: int) -> None:
        self.uc.reg_write(getattr(A, f"UC_ARM64_REG_{name.upper()}"), value)

    def x(self, n: int) -> int:
        return self.uc.reg_read(_X_REGS[n])

    def set_x(self, n: int, value: int) -> None:
        self.uc.reg_write(_X_REGS[n], value & 0xFFFFFFFFFFFFFFFF)

    @property
    def pc(self) -> int:
        return self.uc.reg_read(A.UC_ARM64_REG_PC)

    @pc.setter
    def pc(self, value: int) -> None:
        self.uc.reg_write(A.UC_ARM64_REG_PC, value)

    @property
    def sp(self) -> int:
        return self.uc.reg_read(A.UC_ARM64_REG_SP)

    @sp.setter
    def sp(self, value: int) -> None:
        self.uc.reg_write(A.UC_ARM64_REG_SP, value)

    def context_save(self):
        return self.uc.context_save()

    def context_restore(self, ctx) -> None:
        self.uc.context_restore(ctx)

    def _reg_by_name(self, name: str) -> int:
        if name in ("xzr", "wzr"):
            return 0
        value = self.uc.reg_read(getattr(A, f"UC_ARM64_REG_{('x' + name[1:]) if name[0] == 'w' else name}".upper()))
        return value & 0xFFFFFFFF if name[0] == "w" else value

    def fetch_code(self, va: int, size: int = 4) -> bytes | None:
        """Instruction bytes at a virtual address, through this view's own translation."""
        result = self.translate(self, va, UC_MEM_FETCH)
        if result is None:
            return None
        return self.physmem.read(result[0] | (va & 0xFFF), size)

    def _record_refusal(self, pc: int) -> None:
        """Turn a firewall-refused fill into the exact access and let the firewall record it."""
        page, vaddr, access = self._refused
        self._refused = None
        write = access == UC_MEM_WRITE
        exact = pc if access == UC_MEM_FETCH else vaddr
        if access != UC_MEM_FETCH:
            code = self.fetch_code(pc)
            ea = effective_address(code, pc, self._reg_by_name) if code else None
            block = vaddr & ~0x3FF
            if ea is not None and block - 64 < ea < block + 0x400:
                exact = max(ea, block)
        pa = page | (exact & 0xFFF)
        reason, _fail = self.firewall.refuse(pa, 1, write=write, secure=self.secure,
                                             nsaid=self.nsaid, world=str(self.world))
        self.denial = Denial(exact, ACCESS_NAMES.get(access, str(access)), reason, pa)

    # --- running -----------------------------------------------------------------------------
    def stop(self) -> None:
        _emu_stop(self._h)

    def run(self, begin: int, until: int = 0, count: int = 0) -> None:
        """Run from ``begin`` until ``until``/stop/``count`` instructions; faults raise GuestFault."""
        self.denial = self.pending_fault = self._refused = None
        uc = self.uc
        uc._hook_exception = None
        status = _emu_start(self._h, begin, until, 0, count)
        if uc._hook_exception is not None:
            # A Python hook raised: that is an emulator bug, never a guest fault; surface it.
            exc, uc._hook_exception = uc._hook_exception, None
            raise exc
        if status:
            raise self._fault_from(status)
        if self.pending_fault is not None:
            fault, self.pending_fault = self.pending_fault, None
            raise fault

    def _fault_from(self, status: int) -> GuestFault:
        pc = self.pc
        err = UcError(status)
        if status == UC_ERR_EXCEPTION and self._refused is not None and self.firewall is not None:
            self._record_refusal(pc)
        if status == UC_ERR_EXCEPTION and self.denial is not None:
            d = self.denial
            return GuestFault(self.world, pc, f"{d.access} abort", d.reason, d)
        return GuestFault(self.world, pc, "exception", str(err))
