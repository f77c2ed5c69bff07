"""The gdb stub's thread model: thread 1 is the executing CPU, threads 2.. the worlds' saved
contexts (NS-EL1, S-EL1, one S-EL0 thread per TA image); registers and memory as each sees them.

A mixin of :class:`emu.gdb.server.GdbServer` (it uses the server's platform ``p`` and
``stop_view``); see that module's docstring for why the threads look this way.
"""
from __future__ import annotations

from typing import Any

from unicorn import arm64_const as A
from unicorn.unicorn_const import UC_MEM_READ, UC_MEM_WRITE

from emu.cpu import PROT_R, PROT_W, CpuView
from emu.gdb import rsp
from emu.gdb.target_xml import REGISTERS
from emu.types import World

CPU_TID = 1                     # the executing CPU
CTX_TIDS = {World.NS_EL1: 2, World.S_EL1: 3}
TA_TID0 = 4                     # first S-EL0 context thread
SCR_RW, SCR_NS = 1 << 10, 1     # the modelled SCR_EL3 bits


class WorldThreads:
    """Threads, registers and memory of the platform's worlds, for the RSP handlers."""

    p: Any
    stop_view: CpuView | None

    # --- threads -------------------------------------------------------------------------------
    def _tas(self) -> list[Any]:
        try:
            return list(self.p.secure_os.ta_manager.images.values())
        except AttributeError:
            return []

    def _cpu_view(self) -> CpuView:
        return self.stop_view or self.p.views[World.NS_EL1]

    def _world_name(self, view: CpuView) -> str:
        if view.world is World.S_EL0:
            tid = self._ta_tid_of(view)
            tas = self._tas()
            if TA_TID0 <= tid < TA_TID0 + len(tas):
                return f"S-EL0 {tas[tid - TA_TID0].name}"
        return str(view.world)

    def _el(self, view: CpuView) -> int:
        return (view.uc.reg_read(A.UC_ARM64_REG_PSTATE) >> 2) & 3

    def threads(self) -> dict[int, str]:
        cpu = self._cpu_view()
        out = {CPU_TID: f"cpu0: {self._world_name(cpu)}, EL{self._el(cpu)}"}
        live = self._ctx_tid_of(cpu)
        for world, tid in CTX_TIDS.items():
            out[tid] = f"{world} {'live, on cpu0' if tid == live else 'saved context'}"
        for i, img in enumerate(self._tas()):
            tid = TA_TID0 + i
            out[tid] = f"S-EL0 {img.name} {'live, on cpu0' if tid == live else 'context'}"
        return out

    def _space_of(self, tid: int) -> Any:
        """The TA address space behind a S-EL0 thread, if an instance exists."""
        tas = self._tas()
        if not TA_TID0 <= tid < TA_TID0 + len(tas):
            return None
        img = tas[tid - TA_TID0]
        tm = self.p.secure_os.ta_manager
        current = getattr(self.p.views[World.S_EL0].translate, "__self__", None)
        spaces = [inst.space for inst in tm.instances.values() if inst.image is img]
        spaces += [s.instance.space for s in tm.sessions.values()
                   if s.instance is not None and s.instance.image is img]
        if current in spaces:
            return current
        return spaces[0] if spaces else None

    def _ta_tid_of(self, view: CpuView) -> int:
        current = getattr(view.translate, "__self__", None)
        for tid in range(TA_TID0, TA_TID0 + len(self._tas())):
            if current is not None and self._space_of(tid) is current:
                return tid
        return TA_TID0

    def _ctx_tid_of(self, view: CpuView) -> int:
        """The context thread of the world ``view`` runs."""
        if view.world in CTX_TIDS:
            return CTX_TIDS[view.world]
        return self._ta_tid_of(view)

    def _view(self, tid: int) -> CpuView:
        if tid == CPU_TID:
            return self._cpu_view()
        if tid == CTX_TIDS[World.NS_EL1]:
            return self.p.views[World.NS_EL1]
        if tid == CTX_TIDS[World.S_EL1]:
            return self.p.views[World.S_EL1]
        return self.p.views[World.S_EL0]

    # --- registers -------------------------------------------------------------------------------
    def read_reg(self, tid: int, n: int) -> bytes:
        r = REGISTERS[n]
        view = self._view(tid)
        uc = view.uc
        if r.name == "current_el":
            value = self._el(view)                             # the EL number, 0..3
        elif r.name == "scr_el3":
            value = SCR_RW if view.secure else SCR_RW | SCR_NS  # RW (AArch64 lower ELs), NS
        elif r.cp is not None:
            value = uc.reg_read(A.UC_ARM64_REG_CP_REG, r.cp)
        else:
            value = uc.reg_read(r.uc)
        if isinstance(value, tuple):
            value = value[0]
        return (value & ((1 << r.bits) - 1)).to_bytes(r.bits // 8, "little")

    def write_reg(self, tid: int, n: int, data: bytes) -> None:
        r = REGISTERS[n]
        if len(data) != r.bits // 8:
            raise rsp.RspError("register size")
        if tid != CPU_TID:
            raise rsp.RspError("context threads are read-only: write thread 1 (cpu0)")
        if r.name in ("current_el", "scr_el3"):
            return                                    # modelled, read-only
        value = int.from_bytes(data, "little")
        uc = self._view(tid).uc
        if r.cp is not None:
            uc.reg_write(A.UC_ARM64_REG_CP_REG, r.cp + (value,))
        else:
            uc.reg_write(r.uc, value)

    # --- memory ------------------------------------------------------------------------------------
    def _translate(self, tid: int, va: int, write: bool) -> int | None:
        """PA for ``va`` as thread ``tid``'s world sees it (MMU stage, then the firewall)."""
        view = self._view(tid)
        access = UC_MEM_WRITE if write else UC_MEM_READ
        saved = view.denial
        try:
            if tid >= TA_TID0:
                space = self._space_of(tid)
                result = space.translate(view, va, access) if space is not None else None
            else:
                result = view.translate(view, va, access)
        except Exception:  # noqa: BLE001 - a walk that faults is simply "no access"
            result = None
        finally:
            view.denial = saved
        if result is None:
            return None
        page, prot = result
        if view.firewall is not None:
            prot &= view.firewall.page_prot(page, secure=view.secure, nsaid=view.nsaid)
        if not prot & (PROT_W if write else PROT_R):
            return None
        return page | (va & 0xFFF)

    def read_mem(self, tid: int, va: int, size: int) -> bytes | None:
        out = bytearray()
        while size > 0:
            chunk = min(size, 0x1000 - (va & 0xFFF))
            pa = self._translate(tid, va, False)
            if pa is None:
                break
            try:
                out += self.p.physmem.read(pa, chunk)
            except Exception:  # noqa: BLE001 - MMIO or a hole
                break
            va, size = va + chunk, size - chunk
        return bytes(out) if out else None

    def write_mem(self, tid: int, va: int, data: bytes) -> bool:
        pos = 0
        while pos < len(data):
            chunk = min(len(data) - pos, 0x1000 - ((va + pos) & 0xFFF))
            pa = self._translate(tid, va + pos, True)
            if pa is None:
                return False
            try:
                self.p.physmem.write(pa, data[pos:pos + chunk])
            except Exception:  # noqa: BLE001
                return False
            pos += chunk
        for view in self.p.views.values():
            view.invalidate_code(va, va + len(data))
        return True

