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

from unicorn import UC_HOOK_BLOCK, UcError
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

    def __init__(self, uc: Any):
        self.uc = uc
        self.c = TzCounter()
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
