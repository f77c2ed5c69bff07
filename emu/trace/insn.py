"""Instruction and block traces of the CPU views, in the Tarmac layout or as JSON lines.

Per instruction (``--insn``): world/EL, address, symbol+offset, encoding, capstone
disassembly, the general-purpose registers the instruction wrote, and its memory accesses.
A Python hook per instruction would cap the rate at that of an empty Python hook, so the
per-instruction work is native (``icount.c``): ``tz_insn`` stores the PC, its count and a
register snapshot (taken before the instruction, so it holds the previous one's results),
``tz_mem`` the memory accesses, and ``tz_format`` writes the lines from a table of static text
per address. Python fills that table the first time an address is seen (capstone, symbols,
which registers the instruction writes: :meth:`ViewTracer._describe`) and finishes the last
instruction of a run with a direct register read. Without a compiler the same records are made
by Python hooks and formatted by :meth:`ViewTracer._consume_py` (same output, slower).

Block mode (``--blocks``) records (address, instruction count) per translation block natively
(``icount.BlockRecorder``) and formats them in bulk.

Filters: by world, by address range and by symbol (a symbol covers up to the next label);
they become Unicorn hook ranges, so code outside costs nothing. Static text is cached per
address and symbol context (a world, or a TA on the shared S-EL0 view).
"""
from __future__ import annotations

import bisect
import ctypes
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from unicorn import arm64_const as A
from unicorn.unicorn_const import UC_MEM_WRITE
from unicorn.unicorn_py3.unicorn import uclib

from emu.disasm import _cs
from emu.trace.decode import EL_TOKENS
from emu.trace.icount import TZ_LEAVE, BlockRecorder, InsnCounter, InsnRecorder, NativeFormat

# uc_reg_read_batch without argtypes, called with ready ctypes objects (no conversions).
_rrb = ctypes.CDLL(uclib._name).uc_reg_read_batch
_rrb.restype = ctypes.c_int
# capstone 5 reports these as writing registers they do not write (cmp = subs xzr, svc ...).
_FALSE_WRITES = {"cmp", "cmn", "tst", "ccmp", "ccmn", "svc", "hvc", "smc", "fcmp", "fccmp"}


# ---- symbols and filters ------------------------------------------------------------------------

class Symbolizer:
    """Labels of every assembled stub and TA, per world; S-EL0 tables are per TA."""

    def __init__(self) -> None:
        self._tables: dict[str, tuple[list[int], list[str], int]] = {}
        self._added: list[tuple[str, Mapping[str, int], int]] = []   # merged on first use
        self.ta_loader: Callable[[str], tuple[Mapping[str, int], int, int] | None] | None = None

    def add(self, key: str, symbols: Mapping[str, int], end: int) -> None:
        """``key`` is a world name ("NS-EL1", "S-EL1") or "S-EL0:<ta name>". Sorting waits
        for the first lookup: an events-only trace never looks anything up."""
        self._added.append((key, dict(symbols), end))

    def _merge(self) -> None:
        added, self._added = self._added, []
        for key, symbols, end in added:
            addrs, labels, old_end = self._tables.get(key, ([], [], 0))
            pairs = sorted(set(zip(addrs, labels)) | {(v, k) for k, v in symbols.items()})
            self._tables[key] = ([a for a, _ in pairs], [n for _, n in pairs], max(end, old_end))

    def _table(self, key: str) -> tuple[list[int], list[str], int] | None:
        if self._added:
            self._merge()
        t = self._tables.get(key)
        if t is None and key.startswith("S-EL0:") and self.ta_loader is not None:
            loaded = self.ta_loader(key[6:])
            if loaded is not None:
                syms, base, size = loaded
                self.add(key, {k: base + v for k, v in syms.items()}, base + size)
                self._merge()
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
        if self._added:
            self._merge()
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

    __slots__ = ("text", "json", "names", "name0", "widx", "ids", "ptrs", "vals", "mv", "n")

    def __init__(self, text: str, jsn: str, regs: list[tuple[str, int]]):
        self.text, self.json, self.n = text, jsn, len(regs)
        self.names = [name for name, _ in regs]
        self.ids = (ctypes.c_int * max(1, self.n))(*[uc_id for _, uc_id in regs])
        self.vals = (ctypes.c_uint64 * max(1, self.n))()
        base = ctypes.addressof(self.vals)
        self.ptrs = (ctypes.c_void_p * max(1, self.n))(*[base + 8 * i for i in range(self.n)])
        self.mv = memoryview(self.vals).cast("B").cast("Q")[:self.n]   # faster than indexing
        self.name0 = self.names[0] if self.names else ""
        self.widx = tuple(_SNAP_INDEX[uc_id] for _, uc_id in regs)   # where in a snapshot


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


# The register snapshot every instruction record carries: the GPRs, SP and PSTATE (for NZCV).
SNAPSHOT = [getattr(A, f"UC_ARM64_REG_X{i}") for i in range(29)] + \
    [A.UC_ARM64_REG_X29, A.UC_ARM64_REG_X30, A.UC_ARM64_REG_SP, A.UC_ARM64_REG_PSTATE]
_SNAP_INDEX = {reg: i for i, reg in enumerate(SNAPSHOT)}


class ViewTracer:
    """Instruction (or block) tracing of one CPU view; ``out`` receives finished text.

    Records come from native hooks (``icount.InsnRecorder`` / ``BlockRecorder``); this class
    turns them into Tarmac or JSON lines in bulk, which is where the time goes.
    """

    def __init__(self, view: Any, counter: InsnCounter, symbolizer: Symbolizer,
                 out: Callable[[str], None], fmt: str,
                 ranges: list[tuple[int, int]], memory: bool = True):
        self.view, self.uc, self.world = view, view.uc, str(view.world)
        self.counter, self.sym, self.out = counter, symbolizer, out
        self.jsonl, self.ranges, self.memory = fmt == "jsonl", ranges, memory
        self.el = EL_TOKENS.get(self.world, "EL1h_n")
        self.sp_name = "SP_EL0" if self.el.startswith("EL0") else "SP_EL1"
        self.key = self.world
        self.caches: dict[str, dict[int, Any]] = {}
        self.cache = self.caches.setdefault(self.key, {})
        self.bcache: dict[int, str] = {}
        self.base_value = 0                    # the clock at this view's instruction count 0
        self.block_count = 0
        self.pending: tuple[_Insn, int, int, int] | None = None   # (insn, ts, count, seq)
        self.seq = 0                           # instruction records seen (C's tz_insns.seq)
        self.memq: list[tuple[int, int, int, int]] = []
        self._hp = ctypes.c_void_p(self.uc._uch.value)
        self.recorder: BlockRecorder | None = None
        self.insns: InsnRecorder | None = None
        self.nf: NativeFormat | None = None

    @property
    def count(self) -> int:
        """Instructions traced (per instruction) or inside traced blocks."""
        return self.insns.traced if self.insns is not None else self.block_count

    def set_ta(self, ta: str) -> None:
        """The S-EL0 view now runs ``ta``: symbols and cached decodings are per TA."""
        self.drain()
        self.key = f"S-EL0:{ta}"
        self.cache = self.caches.setdefault(self.key, {})
        self.bcache = {}
        if self.nf is not None:
            self.nf.use(self.key)

    # --- install --------------------------------------------------------------------------------
    def install_insn(self) -> None:
        whole = self.ranges == [(1, 0)]
        self.insns = InsnRecorder(self.counter, SNAPSHOT, self._consume, self.ranges,
                                  [] if whole else _complement(self.ranges), self.memory)
        self.insns.install()
        if self.counter.native is not None:
            names = [f"X{i}" for i in range(31)] + [self.sp_name, "CPSR"]
            self.nf = NativeFormat(self.counter.native, names, self.jsonl, UC_MEM_WRITE)
            self.nf.use(self.key)

    def install_blocks(self) -> None:
        self.recorder = BlockRecorder(self.counter, self._on_blocks, self.ranges)
        self.recorder.install()

    def remove(self) -> None:
        self.drain()
        for rec in (self.recorder, self.insns):
            if rec is not None:
                rec.remove()

    def drain(self) -> None:
        """Format everything recorded; the last instruction is finished with a direct register
        read (called at events and run ends, when it has retired)."""
        if self.recorder is not None:
            self.recorder.drain()
        if self.insns is not None:
            self._consume(True)

    def _consume(self, final: bool) -> None:
        if self.nf is not None:
            self._consume_native(final)
        else:
            self._consume_py(final)

    def _static(self, pc: int) -> tuple[bytes, tuple[int, ...]]:
        e = self.cache.get(pc)
        if e is None:
            e = self.cache[pc] = self._describe(pc)
        return (e.json if self.jsonl else e.text).encode(), e.widx

    def _consume_native(self, final: bool) -> None:
        """``tz_format`` writes every record but the last; with ``final`` the last one is
        written here from a direct register read, else it moves to the buffer start."""
        rec, nf = self.insns, self.nf
        t, f = rec.t, nf.f
        nf.run(rec, self.base_value, self._static,
               lambda b: self.out(b.decode("utf-8", "replace")))
        if final:
            if f.pos < t.n:
                f.seq += 1
                pc, cnt = rec.words[f.pos], rec.words[f.pos + 1]
                if pc != TZ_LEAVE:
                    e = self.cache.get(pc) or self._describe(pc)
                    if e.n:
                        _rrb(self._hp, e.ids, e.ptrs, e.n)
                    mw = rec.mwords
                    mem = [(mw[i], mw[i + 1], mw[i + 2], mw[i + 3]) for i in range(f.mpos, t.mn, 4)
                           if mw[i] == f.seq]
                    line = self._line_json if self.jsonl else self._line_text
                    self.out(line(e, self.base_value + cnt, cnt, list(e.mv), mem))
            t.n = t.mn = f.pos = f.mpos = 0
            return
        left, mleft = t.n - f.pos, t.mn - f.mpos
        if f.pos:
            ctypes.memmove(ctypes.addressof(rec._buf), ctypes.addressof(rec._buf) + 8 * f.pos, 8 * left)
        if f.mpos:
            ctypes.memmove(ctypes.addressof(rec._mbuf), ctypes.addressof(rec._mbuf) + 8 * f.mpos,
                           8 * mleft)
        t.n, t.mn, f.pos, f.mpos = left, mleft, 0, 0

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

    def _consume_py(self, final: bool) -> None:
        """Without a compiler: the recorded instructions as lines. An instruction's register
        values are in the snapshot of the record after it; with ``final`` the last one is read
        directly.

        This loop is where ``--insn`` spends its time: per instruction one dict lookup, one
        f-string and a few memoryview reads; nothing else.
        """
        rec = self.insns
        t = rec.t
        words, stride, n, mw = rec.words, rec.stride, t.n, rec.mwords
        mem = self.memq
        if t.mn:
            mem += [(mw[i], mw[i + 1], mw[i + 2], mw[i + 3]) for i in range(0, t.mn, 4)]
            t.mn = 0
        mi, nm, out = 0, len(mem), []
        cache, describe, base, seq, p = self.cache, self._describe, self.base_value, self.seq, self.pending
        line = self._line_json if self.jsonl else self._line_text
        for off in range(0, n + (stride if final else 0), stride):
            if p is not None:
                e, ts, cnt, s = p
                if off < n:
                    vals = [words[off + 2 + i] for i in e.widx]
                else:                           # the last one, read now (it has retired)
                    if e.n:
                        _rrb(self._hp, e.ids, e.ptrs, e.n)
                    vals = list(e.mv)
                accesses = []
                while mi < nm and mem[mi][0] <= s:
                    if mem[mi][0] == s:
                        accesses.append(mem[mi])
                    mi += 1
                out.append(line(e, ts, cnt, vals, accesses))
                p = None
            if off >= n:
                break
            pc = words[off]
            seq += 1
            if pc == TZ_LEAVE:
                continue
            e = cache.get(pc)
            if e is None:
                e = cache[pc] = describe(pc)
            cnt = words[off + 1]
            p = (e, base + cnt, cnt, seq)
        t.n = 0
        self.seq, self.pending = seq, p
        del mem[:mi]
        if out:
            self.out("".join(out))

    @staticmethod
    def _line_text(e: _Insn, ts: int, cnt: int, vals: list[int], mem: list[tuple]) -> str:
        if e.n == 1:
            text = f"{ts} clk IT ({cnt}) {e.text}\n{ts} clk R {e.name0} {vals[0]:016X}\n"
        else:
            text = f"{ts} clk IT ({cnt}) {e.text}\n" + "".join(
                f"{ts} clk R {name} {v:016X}\n" for name, v in zip(e.names, vals))
        for _s, kind, address, value in mem:
            size = kind & 0xFF
            v = value & ((1 << (8 * size)) - 1)
            digits = f"{v >> 32:08x}_{v & 0xFFFFFFFF:08x}" if size == 8 else f"{v:0{2 * size}x}"
            text += (f"{ts} clk {'MW' if kind >> 8 == UC_MEM_WRITE else 'MR'}{size} "
                     f"{address:016x} {digits}\n")
        return text

    @staticmethod
    def _line_json(e: _Insn, ts: int, cnt: int, vals: list[int], mem: list[tuple]) -> str:
        regs = ",".join(f'"{name}":"{v:#x}"' for name, v in zip(e.names, vals))
        acc = ",".join(f'["{"MW" if k >> 8 == UC_MEM_WRITE else "MR"}{k & 0xFF}","{a:#x}",'
                       f'"{v & ((1 << (8 * (k & 0xFF))) - 1):0{2 * (k & 0xFF)}x}"]'
                       for _s, k, a, v in mem)
        return (f'{{"type":"insn","ts":{ts},"icount":{cnt},{e.json},"regs":{{{regs}}},'
                f'"mem":[{acc}]}}\n')

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
            self.block_count += size >> 2
        self.out("".join(out))

