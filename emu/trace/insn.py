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
# uc_reg_read_batch without argtypes: called with ready ctypes objects, it skips conversions
# (~30% of the call on the per-instruction path).
_rrb = ctypes.CDLL(uclib._name).uc_reg_read_batch
_rrb.restype = ctypes.c_int
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

    __slots__ = ("text", "json", "names", "name0", "ids", "ptrs", "vals", "mv", "n")

    def __init__(self, text: str, jsn: str, regs: list[tuple[str, int]]):
        self.text, self.json, self.n = text, jsn, len(regs)
        self.names = [name for name, _ in regs]
        self.ids = (ctypes.c_int * max(1, self.n))(*[uc_id for _, uc_id in regs])
        self.vals = (ctypes.c_uint64 * max(1, self.n))()
        base = ctypes.addressof(self.vals)
        self.ptrs = (ctypes.c_void_p * max(1, self.n))(*[base + 8 * i for i in range(self.n)])
        self.mv = memoryview(self.vals).cast("B").cast("Q")[:self.n]   # faster than indexing
        self.name0 = self.names[0] if self.names else ""


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


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ranges covering every address outside ``ranges`` (inclusive too)."""
    out, nxt = [], 0
    for lo, hi in sorted(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= (1 << 64) - 1:
        out.append((nxt, (1 << 64) - 1))
    return out


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
        self.pending: _Insn | None = None       # JSON mode's state (text mode: closures)
        self.base_value = self.n = self.pn = 0   # base_value: clock of this view's count 0
        self.whole = ranges == [(1, 0)]
        self.buf: list[str] = []
        self.mem: list[str] = []
        self._traced: Callable[[], int] | None = None
        self._handles: list[Any] = []
        self._keep: list[Any] = []
        self._hp = ctypes.c_void_p(self.uc._uch.value)
        self._count = 0
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
        if self.jsonl:
            hook, mem_hook = self._on_insn_json, self._on_mem_json
        else:
            hook, mem_hook, self._flush_pending, self._resync, self._traced = self._text_hooks()
        cb = BLOCK_CFUNC(hook)
        self._keep.append(cb)
        for lo, hi in self.ranges:
            self._handles.append(_hook_add(self.uc, UC_HOOK_CODE, cb, 0, lo, hi))
        if not self.whole:
            # Leaving the filtered ranges retires the last traced instruction: a block hook
            # on the complement (it fires per block, not per instruction) writes it out.
            leave = BLOCK_CFUNC(self._on_leave)
            self._keep.append(leave)
            for lo, hi in _complement(self.ranges):
                self._handles.append(_hook_add(self.uc, UC_HOOK_BLOCK, leave, 0, lo, hi))
        if self.memory:
            mcb = MEM_CFUNC(mem_hook)
            self._keep.append(mcb)
            self._handles.append(_hook_add(self.uc, UC_HOOK_MEM_READ_AFTER | UC_HOOK_MEM_WRITE,
                                           mcb, 0, 1, 0))

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

    @property
    def count(self) -> int:
        """Instructions traced (per-instruction mode) or covered by traced blocks."""
        return self._traced() if self._traced is not None else self._count

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
        return _Insn(text, json.dumps(static, separators=(",", ":"))[1:-1], regs)

    def _text_hooks(self) -> tuple[Any, ...]:
        """The text-mode hooks as closures: the per-instruction path of ``--insn``.

        State lives in closure cells rather than attributes (a cell access is several times
        cheaper); the previous instruction is written when the next one arrives, as one
        f-string for its IT and R lines, followed by its MR/MW lines (same timestamp).
        """
        pending: _Insn | None = None
        pt = pn = n = traced = 0
        buf, mem, out, hp = self.buf, self.mem, self.out, self._hp
        describe, whole, counter_c, rrb, write_kind = \
            self._describe, self.whole, self.counter.c, _rrb, UC_MEM_WRITE

        def emit(p: _Insn) -> None:
            t = pt
            if p.n == 1:
                rrb(hp, p.ids, p.ptrs, 1)
                buf.append(f"{t} clk IT ({pn}) {p.text}\n{t} clk R {p.name0} {p.mv[0]:016X}\n")
            elif p.n:
                rrb(hp, p.ids, p.ptrs, p.n)
                buf.append(f"{t} clk IT ({pn}) {p.text}\n" + "".join(
                    f"{t} clk R {name} {v:016X}\n" for name, v in zip(p.names, p.mv)))
            else:
                buf.append(f"{t} clk IT ({pn}) {p.text}\n")
            if mem:
                buf.extend(mem)
                mem.clear()

        def hook(_h: int, address: int, _size: int, _u: int) -> None:
            nonlocal pending, pt, pn, n, traced
            try:
                if pending is not None:
                    emit(pending)
                cache = self.cache
                e = cache.get(address)
                if e is None:
                    e = cache[address] = describe(address)
                if whole:                  # every instruction passes here: count them
                    pn = n
                    n += 1
                else:                      # filtered: ask the block counter
                    pn = counter_c.block_base + ((address - counter_c.block_start) >> 2)
                pending, pt = e, self.base_value + pn
                traced += 1
                if len(buf) > 8192:
                    out("".join(buf))
                    buf.clear()
            except BaseException as exc:  # noqa: BLE001 - surfaced by CpuView.run
                self.view._guard(exc)

        def mem_hook(_h: int, access: int, address: int, size: int, value: int, _u: int) -> None:
            if pending is None:
                return
            v = value & ((1 << (8 * size)) - 1)
            digits = f"{v >> 32:08x}_{v & 0xFFFFFFFF:08x}" if size == 8 else f"{v:0{2 * size}x}"
            mem.append(f"{pt} clk {'MW' if access == write_kind else 'MR'}{size} "
                       f"{address:016x} {digits}\n")

        def flush_pending() -> None:
            nonlocal pending
            if pending is not None:
                p, pending = pending, None
                emit(p)

        def resync() -> None:
            nonlocal n
            n = counter_c.count

        return hook, mem_hook, flush_pending, resync, lambda: traced

    def _on_leave(self, _h: int, _address: int, _size: int, _u: int) -> None:
        try:
            self._flush_pending()
        except BaseException as exc:  # noqa: BLE001 - surfaced by CpuView.run
            self.view._guard(exc)

    def _on_insn_json(self, _h: int, address: int, _size: int, _u: int) -> None:
        """JSON Lines hook: a record is complete when the next instruction arrives."""
        try:
            if self.pending is not None:
                self._write_json()
            e = self.cache.get(address)
            if e is None:
                e = self.cache[address] = self._describe(address)
            if self.whole:
                n = self.n
                self.n = n + 1
            else:
                c = self.counter.c
                n = c.block_base + ((address - c.block_start) >> 2)
            self.pending, self.pn = e, n
            self._count += 1
        except BaseException as exc:  # noqa: BLE001 - surfaced by CpuView.run
            self.view._guard(exc)

    def _on_mem_json(self, _h: int, access: int, address: int, size: int, value: int,
                     _u: int) -> None:
        if self.pending is None:
            return
        v = value & ((1 << (8 * size)) - 1)
        self.mem.append(f'["{"MW" if access == UC_MEM_WRITE else "MR"}{size}","{address:#x}",'
                        f'"{v:0{2 * size}x}"]')

    def _write_json(self) -> None:
        """Finish the pending instruction's record (its registers now hold its results)."""
        e, n = self.pending, self.pn
        self.pending = None
        if e.n:
            _rrb(self._hp, e.ids, e.ptrs, e.n)
        regs = ",".join(f'"{name}":"{v:#x}"' for name, v in zip(e.names, e.mv))
        self.buf.append(f'{{"type":"insn","ts":{self.base_value + n},"icount":{n},{e.json},'
                        f'"regs":{{{regs}}},"mem":[{",".join(self.mem)}]}}\n')
        self.mem.clear()
        if len(self.buf) > 8192:
            self.out("".join(self.buf))
            self.buf.clear()

    def _flush_pending(self) -> None:          # JSON mode; text mode replaces it (_text_hooks)
        if self.pending is not None:
            self._write_json()

    def _resync(self) -> None:                 # JSON mode; text mode replaces it
        self.n = self.counter.c.count

    def flush(self) -> None:
        """Write the last traced instruction (with its registers) and everything buffered."""
        self._flush_pending()
        if self.buf:
            self.out("".join(self.buf))
            self.buf.clear()

    def resync(self) -> None:
        """At a run's start: the block counter is exact at block boundaries."""
        self._resync()

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
            self._count += size >> 2
        self.out("".join(out))

    def drain(self) -> None:
        if self.recorder is not None:
            self.recorder.drain()
