"""Instruction and block traces of the CPU views, in the Tarmac layout or as JSON lines.

Per instruction (``--insn``): world/EL, address, symbol+offset, encoding, capstone
disassembly, the general-purpose registers the instruction wrote, and its memory accesses.
Everything static about an instruction (disassembly, symbol, which registers it writes, the
preformatted text) is computed once per address and cached, so the per-instruction hook only
formats a timestamp and reads the written registers in one batch call: that is what keeps the
rate within reach of an empty Python hook. Registers are read when the *next* instruction (or
the end of the run, or any event) arrives, i.e. after the instruction retired.

Block mode (``--blocks``) records (address, instruction count) per translation block in native
code (``icount.BlockRecorder``) and formats them in bulk.

Filters: by world, by address range and by symbol (a symbol covers up to the next label);
they become Unicorn hook ranges, so code outside costs nothing.
"""
from __future__ import annotations

import bisect
import ctypes
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_READ_AFTER, UC_HOOK_MEM_WRITE
from unicorn import arm64_const as A
from unicorn.unicorn_const import UC_MEM_WRITE
from unicorn.unicorn_py3.unicorn import uclib

from emu.disasm import _cs
from emu.trace.decode import EL_TOKENS
from emu.trace.icount import BLOCK_CFUNC, BlockRecorder, InsnCounter, _hook_add

MEM_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_int,
                             ctypes.c_int64, ctypes.c_void_p)
_reg_read_batch = getattr(ctypes.CDLL(uclib._name), "uc_reg_read_batch")
_reg_read_batch.argtypes = (ctypes.c_void_p,) * 3 + (ctypes.c_int,)
_reg_read_batch.restype = ctypes.c_int
# capstone 5 reports these as writing registers they do not write (cmp = subs xzr, svc ...).
_FALSE_WRITES = {"cmp", "cmn", "tst", "ccmp", "ccmn", "svc", "hvc", "smc", "fcmp", "fccmp"}


# ---- symbols and filters ------------------------------------------------------------------------

class Symbolizer:
    """Labels of every assembled stub and TA, per world; S-EL0 tables are per TA."""

    def __init__(self) -> None:
        self._tables: dict[str, tuple[list[int], list[str], int]] = {}
        self.ta_loader: Callable[[str], tuple[Mapping[str, int], int, int] | None] | None = None

    def add(self, key: str, symbols: Mapping[str, int], end: int) -> None:
        """``key`` is a world name ("NS-EL1", "S-EL1") or "S-EL0:<ta name>"."""
        addrs, labels, old_end = self._tables.get(key, ([], [], 0))
        pairs = sorted(set(zip(addrs, labels)) | {(v, k) for k, v in symbols.items()})
        self._tables[key] = ([a for a, _ in pairs], [n for _, n in pairs], max(end, old_end))

    def _table(self, key: str) -> tuple[list[int], list[str], int] | None:
        t = self._tables.get(key)
        if t is None and key.startswith("S-EL0:") and self.ta_loader is not None:
            loaded = self.ta_loader(key[6:])
            if loaded is not None:
                syms, base, size = loaded
                self.add(key, {k: base + v for k, v in syms.items()}, base + size)
                t = self._tables[key]
        return t

    def lookup(self, key: str, addr: int) -> str | None:
        t = self._table(key)
        if t is None or not t[0] or addr < t[0][0] or addr >= t[2]:
            return None
        i = bisect.bisect_right(t[0], addr) - 1
        off = addr - t[0][i]
        return t[1][i] if off == 0 else f"{t[1][i]}+{off:#x}"

    def ranges_of(self, name: str) -> list[tuple[str, int, int]]:
        """(key, begin, end) of every label called ``name`` (up to the next label)."""
        out = []
        for key in list(self._tables):
            addrs, labels, end = self._tables[key]
            for i, label in enumerate(labels):
                if label == name:
                    nxt = next((a for a in addrs[i + 1:] if a > addrs[i]), end)
                    out.append((key, addrs[i], nxt))
        return out


@dataclass
class TraceFilter:
    """``world=S-EL0,addr=0x1000-0x2000,sym=name`` (keys may repeat; ranges are [lo, hi))."""

    worlds: set[str] = field(default_factory=set)
    ranges: list[tuple[int, int]] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, specs: str | Sequence[str] | None) -> "TraceFilter":
        f = cls()
        items = [specs] if isinstance(specs, str) else list(specs or [])
        for part in (p.strip() for s in items for p in s.split(",") if p.strip()):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"filter {part!r}: expected key=value")
            if key == "world":
                f.worlds.add(value)
            elif key == "addr":
                lo, sep, hi = value.partition("-")
                begin = int(lo, 0)
                f.ranges.append((begin, int(hi, 0) if sep else begin + 4))
            elif key == "sym":
                f.symbols.append(value)
            else:
                raise ValueError(f"filter {part!r}: unknown key {key!r} (world, addr, sym)")
        return f

    def hook_ranges(self, world: str, symbolizer: Symbolizer) -> list[tuple[int, int]] | None:
        """Inclusive Unicorn hook ranges for a view, [(1, 0)] for everything, None to skip."""
        if self.worlds and world not in self.worlds:
            return None
        if not self.ranges and not self.symbols:
            return [(1, 0)]
        out = [(lo, hi - 1) for lo, hi in self.ranges]
        for name in self.symbols:
            out += [(lo, hi - 1) for key, lo, hi in symbolizer.ranges_of(name)
                    if key.split(":")[0] == world]
        return out or None


# ---- per-instruction tracing ------------------------------------------------------------------

class _Insn:
    """Everything about one instruction at one address that does not change between runs."""

    __slots__ = ("text", "json", "names", "ids", "ptrs", "vals", "n")

    def __init__(self, text: str, jsn: str, regs: list[tuple[str, int]]):
        self.text, self.json, self.n = text, jsn, len(regs)
        self.names = [name for name, _ in regs]
        self.ids = (ctypes.c_int * max(1, self.n))(*[uc_id for _, uc_id in regs])
        self.vals = (ctypes.c_uint64 * max(1, self.n))()
        base = ctypes.addressof(self.vals)
        self.ptrs = (ctypes.c_void_p * max(1, self.n))(*[base + 8 * i for i in range(self.n)])


def _uc_reg(cs_name: str, sp_name: str) -> tuple[str, int] | None:
    if cs_name in ("xzr", "wzr"):
        return None
    if cs_name in ("sp", "wsp"):
        return sp_name, A.UC_ARM64_REG_SP
    if cs_name in ("fp", "x29", "w29"):
        return "X29", A.UC_ARM64_REG_X29
    if cs_name in ("lr", "x30", "w30"):
        return "X30", A.UC_ARM64_REG_X30
    if cs_name == "nzcv":
        return "CPSR", A.UC_ARM64_REG_PSTATE
    if cs_name[0] in "xw" and cs_name[1:].isdigit():
        return f"X{int(cs_name[1:])}", getattr(A, f"UC_ARM64_REG_X{int(cs_name[1:])}")
    return None


class ViewTracer:
    """Instruction (or block) tracing of one CPU view; ``out`` receives finished text."""

    def __init__(self, view: Any, counter: InsnCounter, symbolizer: Symbolizer,
                 out: Callable[[str], None], fmt: str,
                 ranges: list[tuple[int, int]], memory: bool = True):
        self.view, self.uc, self.world = view, view.uc, str(view.world)
        self.counter, self.sym, self.out = counter, symbolizer, out
        self.jsonl, self.ranges, self.memory = fmt == "jsonl", ranges, memory
        self.el = EL_TOKENS.get(self.world, "EL1h_n")
        self.sp_name = "SP_EL0" if self.el.startswith("EL0") else "SP_EL1"
        self.key = self.world
        self.caches: dict[str, dict[int, _Insn]] = {}
        self.cache = self.caches.setdefault(self.key, {})
        self.bcache: dict[int, str] = {}
        self.pending: _Insn | None = None
        self.pending_t = self.pending_n = self.cur_t = self.base_value = 0
        self.mem: list[str] = []
        self._handles: list[Any] = []
        self._keep: list[Any] = []
        self._h = self.uc._uch.value
        self.count = 0
        self.recorder: BlockRecorder | None = None

    def set_ta(self, ta: str) -> None:
        """The S-EL0 view now runs ``ta``: symbols and cached decodings are per TA."""
        self.flush()
        self.drain()
        self.key = f"S-EL0:{ta}"
        self.cache = self.caches.setdefault(self.key, {})
        self.bcache = {}

    # --- install --------------------------------------------------------------------------------
    def install_insn(self) -> None:
        cb = BLOCK_CFUNC(self._on_insn)
        self._keep.append(cb)
        for lo, hi in self.ranges:
            self._handles.append(_hook_add(self.uc, UC_HOOK_CODE, cb, 0, lo, hi))
        if self.memory:
            mcb = MEM_CFUNC(self._on_mem)
            self._keep.append(mcb)
            for lo, hi in [(1, 0)]:
                self._handles.append(_hook_add(self.uc, UC_HOOK_MEM_READ_AFTER | UC_HOOK_MEM_WRITE,
                                               mcb, 0, lo, hi))

    def install_blocks(self) -> None:
        self.recorder = BlockRecorder(self.counter, self._on_blocks, self.ranges)
        self.recorder.install()

    def remove(self) -> None:
        self.flush()
        if self.recorder is not None:
            self.recorder.remove()
        for h in self._handles:
            uclib.uc_hook_del(self.uc._uch, h)
        self._handles.clear()

    # --- per instruction -------------------------------------------------------------------------
    def _describe(self, address: int) -> _Insn:
        code = self.view.fetch_code(address) if hasattr(self.view, "fetch_code") else \
            bytes(self.uc.mem_read(address, 4))
        code = code or b"\0\0\0\0"
        enc = int.from_bytes(code[:4], "little")
        insn = next(_cs().disasm(code[:4], address, 1), None)
        regs: list[tuple[str, int]] = []
        if insn is None:
            asm = f".inst {enc:#010x}"
        else:
            asm = f"{insn.mnemonic} {insn.op_str}".strip()
            try:
                written = insn.regs_access()[1]
            except Exception:  # noqa: BLE001 - capstone without detail for this encoding
                written = []
            for rid in written:
                name = insn.reg_name(rid)
                if insn.mnemonic in _FALSE_WRITES and name != "nzcv":
                    continue
                r = _uc_reg(name, self.sp_name)
                if r is not None and r not in regs:
                    regs.append(r)
        sym = self.sym.lookup(self.key, address)
        text = f"{address:016x} {enc:08x} O {self.el} : {asm}" + (f" ; {sym}" if sym else "")
        static = {"world": self.world, "el": self.el, "pc": f"{address:#x}", "sym": sym,
                  "enc": f"{enc:08x}", "asm": asm}
        return _Insn(text, json.dumps(static)[1:-1], regs)

    def _on_insn(self, _h: int, address: int, _size: int, _u: int) -> None:
        try:
            if self.pending is not None:
                self.flush()
            e = self.cache.get(address)
            if e is None:
                e = self.cache[address] = self._describe(address)
            c = self.counter.c
            n = c.block_base + ((address - c.block_start) >> 2)
            self.cur_t = t = self.base_value + n
            self.count += 1
            if self.jsonl:
                self.pending, self.pending_t, self.pending_n = e, t, n
            else:
                self.out(f"{t} clk IT ({n}) {e.text}\n")
                if e.n:
                    self.pending, self.pending_t = e, t
        except BaseException as exc:  # noqa: BLE001 - surfaced by CpuView.run
            self.view._guard(exc)

    def _on_mem(self, _h: int, access: int, address: int, size: int, value: int, _u: int) -> None:
        kind = "MW" if access == UC_MEM_WRITE else "MR"
        v = value & ((1 << (8 * size)) - 1) if size < 8 else value & 0xFFFFFFFFFFFFFFFF
        digits = f"{v:0{2 * size}x}"
        if size == 8:
            digits = f"{digits[:8]}_{digits[8:]}"
        if self.jsonl:
            self.mem.append(f'["{kind}{size}","{address:#x}","{digits}"]')
        else:
            t = self.cur_t
            self.out(f"{t} clk {kind}{size} {address:016x} {digits}\n")

    def flush(self) -> None:
        """Write the register values of the last traced instruction (it has retired)."""
        e = self.pending
        if e is None:
            return
        self.pending = None
        if e.n:
            _reg_read_batch(self._h, ctypes.addressof(e.ids), ctypes.addressof(e.ptrs), e.n)
        if self.jsonl:
            regs = ",".join(f'"{name}":"{v:#x}"' for name, v in zip(e.names, e.vals))
            mem = ",".join(self.mem)
            self.mem.clear()
            self.out(f'{{"type":"insn","ts":{self.pending_t},"icount":{self.pending_n},'
                     f'{e.json},"regs":{{{regs}}},"mem":[{mem}]}}\n')
        else:
            t = self.pending_t
            self.out("".join(f"{t} clk R {name} {v:016X}\n" for name, v in zip(e.names, e.vals)))

    # --- blocks ---------------------------------------------------------------------------------
    def _on_blocks(self, words: list[int]) -> None:
        base, cache, out = self.base_value, self.bcache, []
        key, world, jsonl = self.key, self.world, self.jsonl
        for i in range(0, len(words), 3):
            address, n, size = words[i], words[i + 1], words[i + 2]
            s = cache.get(address)
            if s is None:
                sym = self.sym.lookup(key, address)
                if jsonl:
                    s = f'"world":"{world}","pc":"{address:#x}","sym":{json.dumps(sym)},"n":{size >> 2}}}\n'
                else:
                    s = f"{world} {address:016x} n={size >> 2}" + (f" ; {sym}\n" if sym else "\n")
                cache[address] = s
            if jsonl:
                out.append(f'{{"type":"block","ts":{base + n},"icount":{n},{s}')
            else:
                out.append(f"{base + n} clk BB ({n}) {s}")
            self.count += size >> 2
        self.out("".join(out))

    def drain(self) -> None:
        if self.recorder is not None:
            self.recorder.drain()
