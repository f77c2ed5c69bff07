"""``monitor`` commands of the tzemu gdb stub (``monitor help`` lists them): the worlds, the
TZC-400 state, FF-A handles, protected memory, event tracing and break-on-call.

A mixin of :class:`emu.gdb.server.GdbServer`, which owns the state these commands change
(``trace``, ``break_on``) and the thread model they print (:mod:`emu.gdb.world_threads`).
"""
from __future__ import annotations

from typing import Any

from emu.gdb.world_threads import CPU_TID, TA_TID0
from tzemu.platform import PlatformError


class MonitorCommands:
    """``qRcmd`` handling; ``monitor LINE`` in gdb."""

    p: Any
    trace: bool
    break_on: dict[int, str]
    _fid_names: dict[int, list[str]]

    # --- monitor commands -------------------------------------------------------------------------
    HELP = """tzemu monitor commands:
  worlds                   cpu0 (thread 1) and the world contexts (threads 2..): EL, PC
  tzc                      TZC-400 regions (enabled ones) and fail state
  ffa handles              FF-A memory handles known to the SPMC (abi=ffa)
  protmem                  protected-memory regions of the secure OS
  trace on|off             print every platform event (SMCs, world switches, faults)
  break-on smc|ffa NAME    stop when the EL3 monitor sees that call (e.g. FFA_MEM_LEND)
  break-on clear           forget every break-on
  phys read ADDR LEN       read physical memory as the secure side (hex dump)
  help                     this text
"""

    def _monitor(self, line: str) -> bytes:
        try:
            text = self.monitor(line)
        except (ValueError, IndexError, KeyError, AttributeError, PlatformError) as exc:
            text = f"error: {exc}\n"
        return text.encode().hex().encode() if text else b"OK"

    def monitor(self, line: str) -> str:
        words = line.split()
        if not words or words[0] == "help":
            return self.HELP
        cmd = words[0]
        if cmd == "worlds":
            lines = []
            live = self._ctx_tid_of(self._cpu_view())
            for tid, name in self.threads().items():
                view = self._view(tid)
                mark = "*" if tid in (CPU_TID, live) else " "
                extra = ("" if tid < TA_TID0 or self._space_of(tid) is not None
                         else "  (not loaded)")
                lines.append(f"{mark} thread {tid}: {name:30} EL{self._el(view)} "
                             f"pc={view.pc:#x}{extra}")
            return "\n".join(lines) + "\n"
        if cmd == "tzc":
            state = self.p.tzc.to_json()
            lines = [f"TZC-400: action {state['action']}, gate keeper {state['gate_keeper']:#x}"]
            for r in state["regions"]:
                if r["enabled"]:
                    lines.append(f"  region {r['index']}: {r['base']:#x}..{r['top']:#x} "
                                 f"s_rd={int(r['s_rd'])} s_wr={int(r['s_wr'])} "
                                 f"nsaid_rd={r['nsaid_rd']:#x} nsaid_wr={r['nsaid_wr']:#x}")
            for i, f in enumerate(state["fails"]):
                lines.append(f"  filter {i} fail: status={f['status']} "
                             f"address={f['FAIL_ADDRESS']:#x} control={f['FAIL_CONTROL']:#x}")
            return "\n".join(lines) + "\n"
        if cmd == "ffa" and words[1:2] == ["handles"]:
            ffa = getattr(self.p.secure_os, "ffa", None)
            if ffa is None:
                return "no FF-A transport (boot with --abi ffa)\n"
            handles = ffa.spmc.handles()
            return (repr(handles) if not isinstance(handles, (list, dict)) else
                    "\n".join(f"  {h}" for h in (handles.items() if isinstance(handles, dict) else handles))
                    or "  (none)") + "\n"
        if cmd == "protmem":
            regions = self.p.secure_os.protmem.regions
            return ("\n".join(f"  {r}" for r in regions) or "  (none)") + "\n"
        if cmd == "trace":
            self.trace = words[1] == "on"
            return f"trace {'on' if self.trace else 'off'}\n"
        if cmd == "break-on":
            if words[1] == "clear":
                self.break_on.clear()
                return "break-on list cleared\n"
            name = words[2] if len(words) > 2 else words[1]
            fids = self._resolve(name)
            if not fids:
                raise ValueError(f"unknown function {name!r}")
            for fid, n in fids.items():
                self.break_on[fid] = n
            return "".join(f"break-on {n} (fid {fid:#x})\n" for fid, n in fids.items())
        if cmd == "phys" and words[1] == "read":
            addr, length = int(words[2], 0), int(words[3], 0)
            if not 0 < length <= 0x10000:
                raise ValueError("LEN must be 1..65536")
            data = self.p.physmem.read(addr, length)
            return "".join(f"{addr + i:#012x}: {data[i:i + 16].hex(' ')}\n"
                           for i in range(0, len(data), 16))
        raise ValueError(f"unknown monitor command {line!r} (try 'monitor help')")

    def _names(self) -> dict[int, str]:
        from emu.abi import firmware_abi, secure_abi
        out: dict[int, list[str]] = {}
        for abi in (firmware_abi(), secure_abi()):
            for k, v in abi.constants.items():
                if isinstance(v, int) and (k.startswith("FFA_") or k.startswith("OPTEE_SMC_")) \
                        and 0x80000000 <= v <= 0xFFFFFFFF and k not in out.get(v, []):
                    out.setdefault(v, []).append(k)
        return out

    def _resolve(self, name: str) -> dict[int, str]:
        name = name.upper()
        wanted = {name, "OPTEE_SMC_" + name, "FFA_" + name}
        wanted |= {w + s for w in list(wanted) for s in ("_SMC32", "_SMC64", "_32", "_64")}
        return {fid: names[0] for fid, names in self._fid_names.items()
                if wanted & set(names)}
