"""The virtual clock: retired-instruction counts per CPU view, cheap enough to leave on.

Traces are stamped with instruction counts, never wall time, so two runs of the same scenario
give byte-identical traces. AArch64 instructions are 4 bytes, so a ``UC_HOOK_BLOCK`` callback
that adds ``size / 4`` per translation block counts them. A Python block hook costs ~0.2 us per
block, which is too slow for long runs, so the callback is a few lines of C (``icount.c``)
compiled with the system ``cc`` into a cache directory at first use and installed with
``uc_hook_add`` through ctypes. Without a compiler (or with ``TZEMU_TRACE_NATIVE=0``) a Python
block hook with the same struct takes over and the trace header says so.

Counting happens at block entry: a block cut short by a fault still counts in full, which is
deterministic. Hooks exist only while a tracer is attached (:meth:`InsnCounter.remove`).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from unicorn import (UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_MEM_READ_AFTER, UC_HOOK_MEM_WRITE,
                     UcError)
from unicorn.unicorn_py3.unicorn import uclib

_U64 = ctypes.c_uint64
BLOCK_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                               ctypes.c_void_p)


class TzCounter(ctypes.Structure):
    """Mirror of ``tz_counter`` in icount.c."""

    _fields_ = [("count", _U64), ("block_base", _U64), ("block_start", _U64)]


FLUSH_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class TzBlocks(ctypes.Structure):
    """Mirror of ``tz_blocks`` in icount.c: a buffer of (address, block_base, size) triples."""

    _fields_ = [("counter", ctypes.POINTER(TzCounter)), ("n", _U64), ("cap", _U64),
                ("buf", ctypes.POINTER(_U64)), ("flush", FLUSH_CFUNC)]


TZ_MAX_REGS = 40
TZ_LEAVE = (1 << 64) - 1                 # pc of a "left the filtered ranges" snapshot
MEM_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_int,
                             ctypes.c_int64, ctypes.c_void_p)


class TzInsns(ctypes.Structure):
    """Mirror of ``tz_insns`` in icount.c."""


INSNS_FLUSH = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
TzInsns._fields_ = [("counter", ctypes.POINTER(TzCounter)), ("n", _U64), ("cap", _U64),
                    ("buf", ctypes.POINTER(_U64)), ("mn", _U64), ("mcap", _U64),
                    ("mbuf", ctypes.POINTER(_U64)), ("seq", _U64), ("flush", INSNS_FLUSH),
                    ("reg_read_batch", ctypes.c_void_p), ("nregs", ctypes.c_int64),
                    ("regs", ctypes.c_int * TZ_MAX_REGS), ("ptrs", ctypes.c_void_p * TZ_MAX_REGS),
                    ("leaves", _U64)]

_NATIVE: tuple[Any, str] | None = None


def _cache_dir() -> Path:
    base = os.environ.get("TZEMU_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tzemu")
    return Path(base) / "trace"


def load_native() -> tuple[Any, str]:
    """(the compiled library or None, a one-line description for the trace header)."""
    global _NATIVE
    if _NATIVE is not None:
        return _NATIVE
    if os.environ.get("TZEMU_TRACE_NATIVE", "1") == "0":
        _NATIVE = (None, "python block hook (TZEMU_TRACE_NATIVE=0)")
        return _NATIVE
    source = resources.files("emu.trace").joinpath("icount.c").read_bytes()
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    tag = hashlib.sha256(source + (cc or "").encode()).hexdigest()[:16]
    target = _cache_dir() / f"icount-{tag}.so"
    try:
        if not target.exists():
            if cc is None:
                raise OSError("no C compiler (cc) found")
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                src, out = Path(tmp) / "icount.c", Path(tmp) / "icount.so"
                src.write_bytes(source)
                proc = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(src)],
                                      capture_output=True, text=True, timeout=60)
                if proc.returncode != 0:
                    raise OSError(f"cc failed: {proc.stderr.strip()[:200]}")
                os.replace(out, target)
        lib = ctypes.CDLL(str(target))
        _NATIVE = (lib, f"native block hook ({target.name})")
    except (OSError, subprocess.SubprocessError) as exc:
        _NATIVE = (None, f"python block hook ({exc})")
    return _NATIVE


def _hook_add(uc: Any, htype: int, callback: Any, user: int, begin: int, end: int) -> ctypes.c_size_t:
    handle = ctypes.c_size_t()
    status = uclib.uc_hook_add(uc._uch, ctypes.byref(handle), htype, callback,
                               ctypes.c_void_p(user), ctypes.c_uint64(begin), ctypes.c_uint64(end))
    if status:
        raise UcError(status)
    return handle


class InsnCounter:
    """Retired instructions of one Unicorn instance (one CPU view)."""

    def __init__(self, uc: Any, slot: TzCounter | None = None):
        self.uc = uc
        self.c = slot if slot is not None else TzCounter()   # a slot of a shared array
        self.native, self.how = load_native()
        self._handle: ctypes.c_size_t | None = None
        self._cb: Any = None

    @property
    def count(self) -> int:
        return self.c.count

    def exact(self, address: int) -> int:
        """Instructions retired before the one at ``address`` in the current block."""
        c = self.c
        return c.block_base + ((address - c.block_start) >> 2)

    def install(self) -> None:
        if self._handle is not None:
            return
        if self.native is not None:
            fn = ctypes.cast(self.native.tz_count, ctypes.c_void_p)
            self._handle = _hook_add(self.uc, UC_HOOK_BLOCK, fn, ctypes.addressof(self.c), 1, 0)
            return
        c = self.c

        def count(_h: int, address: int, size: int, _u: int) -> None:
            c.block_base = n = c.count
            c.block_start = address
            c.count = n + (size >> 2)
        self._cb = BLOCK_CFUNC(count)
        self._handle = _hook_add(self.uc, UC_HOOK_BLOCK, self._cb, 0, 1, 0)

    def remove(self) -> None:
        if self._handle is not None:
            uclib.uc_hook_del(self.uc._uch, self._handle)
            self._handle = None


class BlockRecorder:
    """Every translation block a view enters, as (address, instructions before it, size).

    Natively the triples go to a C buffer that is handed to ``sink`` when full or on
    :meth:`drain`; Python never runs per block. ``ranges`` limit recording (the counter still
    counts everything): Unicorn range hooks cost nothing outside their range.
    """

    def __init__(self, counter: InsnCounter, sink: Callable[[list[int]], None],
                 ranges: Sequence[tuple[int, int]] = ((1, 0),), capacity: int = 3 * 8192):
        self.counter = counter
        self.sink = sink
        self.ranges = list(ranges)
        self._handles: list[ctypes.c_size_t] = []
        self._keep: list[Any] = []
        self.b = TzBlocks()
        self._buf = (_U64 * capacity)()
        self.b.counter = ctypes.pointer(counter.c)
        self.b.cap, self.b.n = capacity, 0
        self.b.buf = ctypes.cast(self._buf, ctypes.POINTER(_U64))
        self._flush_cb = FLUSH_CFUNC(lambda _p: self.drain())
        self.b.flush = self._flush_cb
        self._pending: list[int] = []

    def install(self) -> None:
        native = self.counter.native
        for begin, end in self.ranges:
            if native is not None:
                fn = ctypes.cast(native.tz_record, ctypes.c_void_p)
                self._handles.append(_hook_add(self.counter.uc, UC_HOOK_BLOCK, fn,
                                               ctypes.addressof(self.b), begin, end))
            else:
                c, pending = self.counter.c, self._pending

                def record(_h: int, address: int, size: int, _u: int) -> None:
                    pending.extend((address, c.block_base, size))
                    if len(pending) >= 3 * 8192:
                        self.drain()
                cb = BLOCK_CFUNC(record)
                self._keep.append(cb)
                self._handles.append(_hook_add(self.counter.uc, UC_HOOK_BLOCK, cb, 0, begin, end))

    def drain(self) -> None:
        """Hand every recorded triple to the sink (called when full, on events and at close)."""
        n = self.b.n
        if n:
            words = self._buf[:n]
            self.b.n = 0
            self.sink(words)
        if self._pending:
            words, self._pending[:] = list(self._pending), []
            self.sink(words)

    def remove(self) -> None:
        self.drain()
        for h in self._handles:
            uclib.uc_hook_del(self.counter.uc._uch, h)
        self._handles.clear()


class InsnRecorder:
    """Per-instruction records of one view: (pc, count, register snapshot) and memory accesses.

    Natively (``tz_insn``/``tz_leave``/``tz_mem``) no Python runs per instruction; ``sink(final)``
    is called with the buffers when one fills up (``final`` False: the run goes on) and on
    :meth:`drain`. The fallback hooks are Python and fill the same buffers (much slower).
    """

    def __init__(self, counter: InsnCounter, regs: Sequence[int], sink: Callable[[bool], None],
                 ranges: Sequence[tuple[int, int]], leave: Sequence[tuple[int, int]],
                 memory: bool, capacity: int = 4096):
        self.counter, self.sink, self.ranges, self.leave = counter, sink, list(ranges), list(leave)
        self.memory, self.nregs, self.stride = memory, len(regs), 2 + len(regs)
        t = self.t = TzInsns()
        t.counter = ctypes.pointer(counter.c)
        self._buf = (_U64 * (self.stride * capacity))()
        self._mbuf = (_U64 * (4 * capacity))()
        t.buf, t.cap = ctypes.cast(self._buf, ctypes.POINTER(_U64)), self.stride * capacity
        t.mbuf, t.mcap = ctypes.cast(self._mbuf, ctypes.POINTER(_U64)), 4 * capacity
        t.reg_read_batch = ctypes.cast(uclib.uc_reg_read_batch, ctypes.c_void_p)
        t.nregs = len(regs)
        for i, r in enumerate(regs):
            t.regs[i] = r
        self._flush_cb = INSNS_FLUSH(lambda _p: self.sink(False))
        t.flush = self._flush_cb
        self.words = memoryview(self._buf).cast("B").cast("Q")
        self.mwords = memoryview(self._mbuf).cast("B").cast("Q")
        self._handles: list[ctypes.c_size_t] = []
        self._keep: list[Any] = []

    def install(self) -> None:
        native, uc, user = self.counter.native, self.counter.uc, ctypes.addressof(self.t)
        if native is not None:
            code, leave, mem = (ctypes.cast(f, ctypes.c_void_p)
                                for f in (native.tz_insn, native.tz_leave, native.tz_mem))
        else:
            code, leave, mem = (BLOCK_CFUNC(self._py_insn), BLOCK_CFUNC(self._py_leave),
                                MEM_CFUNC(self._py_mem))
            self._keep += [code, leave, mem]
        for lo, hi in self.ranges:
            self._handles.append(_hook_add(uc, UC_HOOK_CODE, code, user, lo, hi))
        for lo, hi in self.leave:
            self._handles.append(_hook_add(uc, UC_HOOK_BLOCK, leave, user, lo, hi))
        if self.memory:
            self._handles.append(_hook_add(uc, UC_HOOK_MEM_READ_AFTER | UC_HOOK_MEM_WRITE, mem,
                                           user, 1, 0))

    # The fallback: the same records from Python hooks.
    def _py_snapshot(self, pc: int, count: int) -> None:
        t, n = self.t, self.t.n
        self._buf[n], self._buf[n + 1] = pc, count
        base = ctypes.addressof(self._buf) + 8 * (n + 2)
        for i in range(self.nregs):
            t.ptrs[i] = base + 8 * i
        uclib.uc_reg_read_batch(self.counter.uc._uch, t.regs, t.ptrs, self.nregs)
        t.n = n + self.stride
        if t.n + self.stride > t.cap:
            self.sink(False)

    def _py_insn(self, _h: int, address: int, _size: int, _u: int) -> None:
        c = self.counter.c
        self.t.seq += 1
        self._py_snapshot(address, c.block_base + ((address - c.block_start) >> 2))

    def _py_leave(self, _h: int, _address: int, _size: int, _u: int) -> None:
        self.t.seq += 1
        self.t.leaves += 1
        self._py_snapshot(TZ_LEAVE, 0)

    def _py_mem(self, _h: int, access: int, address: int, size: int, value: int, _u: int) -> None:
        t, m = self.t, self.t.mn
        self._mbuf[m:m + 4] = [t.seq, access << 8 | size, address, value & ((1 << 64) - 1)]
        t.mn = m + 4
        if t.mn + 4 > t.mcap:
            self.sink(False)

    @property
    def traced(self) -> int:
        """Instructions recorded so far."""
        return self.t.seq - self.t.leaves

    def remove(self) -> None:
        for h in self._handles:
            uclib.uc_hook_del(self.counter.uc._uch, h)
        self._handles.clear()


class TzInfo(ctypes.Structure):
    """Mirror of ``tz_info``: the static text of one instruction address."""

    _fields_ = [("pc", _U64), ("text", ctypes.c_uint32), ("len", ctypes.c_uint32),
                ("nregs", ctypes.c_uint32), ("widx", ctypes.c_uint8 * 12)]


class TzFmt(ctypes.Structure):
    """Mirror of ``tz_fmt``."""

    _fields_ = [("table", ctypes.c_void_p), ("mask", _U64), ("pool", ctypes.c_void_p),
                ("regnames", ctypes.c_void_p), ("base", _U64), ("json", ctypes.c_int64),
                ("out", ctypes.c_void_p), ("olen", _U64), ("ocap", _U64), ("pos", _U64),
                ("mpos", _U64), ("seq", _U64), ("missing", _U64), ("write_type", ctypes.c_int64)]


TZ_DONE, TZ_FULL, TZ_MISS = 0, 1, 2
_HASH = 0x9E3779B97F4A7C15


class _Table:
    """One symbol context's static texts: an open-addressing table the C formatter reads."""

    def __init__(self, size: int = 1024):
        self.size, self.used = size, 0
        self.entries = (TzInfo * size)()
        self.pool = ctypes.create_string_buffer(1 << 16)
        self.plen = 0

    def _slot(self, pc: int) -> int:
        i = ((pc >> 2) * _HASH) & ((1 << 64) - 1) & (self.size - 1)
        while self.entries[i].pc not in (0, pc):
            i = (i + 1) & (self.size - 1)
        return i

    def add(self, pc: int, text: bytes, widx: Sequence[int]) -> None:
        if 2 * (self.used + 1) > self.size:
            old = [(e.pc, e.text, e.len, e.nregs, bytes(e.widx)) for e in self.entries if e.pc]
            self.size *= 2
            self.entries = (TzInfo * self.size)()
            for epc, off, ln, nr, w in old:
                e = self.entries[self._slot(epc)]
                e.pc, e.text, e.len, e.nregs = epc, off, ln, nr
                e.widx[:] = list(w)
        if self.plen + len(text) > len(self.pool):
            bigger = ctypes.create_string_buffer(2 * (self.plen + len(text)))
            ctypes.memmove(bigger, self.pool, self.plen)
            self.pool = bigger
        ctypes.memmove(ctypes.addressof(self.pool) + self.plen, text, len(text))
        e = self.entries[self._slot(pc)]
        e.pc, e.text, e.len, e.nregs = pc, self.plen, len(text), len(widx)
        e.widx[:len(widx)] = list(widx)
        self.plen += len(text)
        self.used += 1


class NativeFormat:
    """Drives ``tz_format``: static texts in, formatted bytes out (see icount.c)."""

    def __init__(self, lib: Any, regnames: Sequence[str], json: bool, write_type: int,
                 capacity: int = 1 << 20):
        self.lib, self.f = lib, TzFmt()
        self.out = ctypes.create_string_buffer(capacity)
        self.names = ctypes.create_string_buffer(b"".join(n.encode()[:7].ljust(8, b"\0")
                                                          for n in regnames))
        f = self.f
        f.out, f.ocap, f.json = ctypes.addressof(self.out), capacity, int(json)
        f.regnames, f.write_type = ctypes.addressof(self.names), write_type
        self.tables: dict[str, _Table] = {}
        self.table = self.use("")

    def use(self, key: str) -> _Table:
        self.table = self.tables.setdefault(key, _Table())
        return self.table

    def run(self, insns: InsnRecorder, base: int, describe: Callable[[int], tuple[bytes, Sequence[int]]],
            write: Callable[[bytes], None]) -> None:
        """Format every record that has a successor; the last stays at ``f.pos``."""
        f, tab = self.f, self.table
        f.base = base
        while True:
            f.table, f.mask, f.pool = ctypes.addressof(tab.entries), tab.size - 1, \
                ctypes.addressof(tab.pool)
            rc = self.lib.tz_format(ctypes.byref(f), ctypes.byref(insns.t))
            if rc == TZ_MISS:
                tab.add(f.missing, *describe(f.missing))
                continue
            if f.olen:
                write(self.out.raw[:f.olen])
                f.olen = 0
            if rc == TZ_DONE:
                return
