"""The tzemu gdb stub: one RSP server driving the whole platform from inside Unicorn hooks.

The platform runs in the caller's thread. While a client is attached, every CPU view carries a
full-range code hook (a native ctypes callback that returns at once unless a stop is due): when
it must stop (single step, breakpoint, watchpoint, ``monitor break-on``) it blocks inside the
hook and serves gdb packets, so nothing else in the platform runs meanwhile. Unicorn 2.1.4 only
instruments code translated after a hook is added, and a view that is already running keeps
its translated blocks: adding the hook per step or per breakpoint would miss instructions of
the running view, so the hook stays for the whole session and is removed on detach.

Threads (the way QEMU's gdbstub shows one CPU that changes exception level):

* thread 1, "cpu0", is the executing CPU. Its registers are those of whichever world runs right
  now (NS-EL1, S-EL1 or S-EL0), ``current_el`` and ``scr_el3.NS`` included, and every stop
  reply names it, so gdb's step over a breakpoint on an ``smc`` sees the stepped thread stop
  on the other side of the world switch. Stepping and continuing always drive thread 1.
* threads 2 (NS-EL1), 3 (S-EL1) and 4.. (S-EL0, one per TA image the secure OS knows) are the
  worlds' contexts, for inspection: registers read-only (the saved context of a world that is
  not executing), memory as that world sees it. A stop reply never names them; a step or a
  continue aimed at one alone is refused with a console message.

Each view's ``run`` is wrapped while a client is attached: the wrapper keeps the stack of
running views (nested: NS-EL1 -> EL3 -> S-EL1 -> S-EL0) and reports a stop at the ``until``
address of a run (Unicorn stops there without a code hook), e.g. the NS ``_done`` label right
after an ``smc`` returns.
"""
from __future__ import annotations

import ctypes
import socket
import struct
import sys
from typing import Any, Callable

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE
from unicorn.unicorn_py3.unicorn import uclib

from emu.cpu import CpuView
from emu.gdb import rsp
from emu.gdb.monitor import MonitorCommands
from emu.gdb.target_xml import REGISTERS, documents
from emu.gdb.world_threads import CPU_TID, WorldThreads
from emu.types import World
from tzemu.platform import PlatformError

_CODE_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                               ctypes.c_void_p)
_MEM_CFUNC = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64,
                              ctypes.c_int, ctypes.c_int64, ctypes.c_void_p)
SIGINT, SIGTRAP = 2, 5
E_MEM = b"E14"          # EFAULT: the selected world may not read/write there


class GdbKilled(PlatformError):
    """gdb sent 'k': the emulation ends."""


class _Resume(Exception):
    pass


class GdbServer(WorldThreads, MonitorCommands):
    """RSP server on 127.0.0.1 for a booted :class:`tzemu.platform.Platform`."""

    def __init__(self, platform: Any, port: int = 0, *, host: str = "127.0.0.1",
                 symbol_files: list[Any] | None = None,
                 log: Callable[[str], None] | None = None):
        self.p = platform
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.symbol_files = symbol_files or []     # tzemu.symbols.SymbolFile (path, address)
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.conn: socket.socket | None = None
        self.reader = rsp.PacketReader()
        self.no_ack = False
        self.breakpoints: set[int] = set()
        self.watchpoints: dict[tuple[int, int, int], list] = {}
        self.stepping = False
        self.break_on: dict[int, str] = {}         # fid -> name (monitor break-on)
        self.trace = False
        self.stop_view: CpuView | None = None      # the executing view while stopped
        self.g_tid = CPU_TID
        self._running: list[CpuView] = []          # views inside run(), innermost last
        self.last_stop = b"S05"
        self._hooks: list[tuple[CpuView, Any]] = []
        self._unsub: Callable[[], None] | None = None
        self._fid_names = self._names()            # fid -> constant names
        self._thread_iter: list[int] = []
        self.sessions = 0

    # --- connection life cycle ---------------------------------------------------------------
    def wait_for_client(self) -> None:
        """Block until a gdb session lets execution start (c/s/vCont) or detaches."""
        while True:
            self.conn, _ = self.sock.accept()
            self.sessions += 1
            self.reader = rsp.PacketReader()
            self.no_ack = False
            self._attach()
            view = self._running[-1] if self._running else self.p.views[World.NS_EL1]
            self.stop_view, self.g_tid = view, CPU_TID
            self.last_stop = self._stop_reply(SIGTRAP, CPU_TID,
                                              "library:;" if self.symbol_files else "")
            if self._serve():           # resumed by the client, or detached cleanly
                return
            self._detach()              # the client went away: unhook, then accept again

    def close(self) -> None:
        self._detach()
        try:
            self.sock.close()
        except OSError:
            pass

    def _attach(self) -> None:
        if self._hooks:
            return
        for view in self.p.views.values():
            cb = _CODE_CFUNC(lambda _h, addr, size, _ud, v=view: self._code_hook(v, addr))
            self._hooks.append((view, view._hook_native(UC_HOOK_CODE, cb, 1, 0)))
            if "run" not in view.__dict__:
                view.run = self._wrap_run(view)
            # Blocks translated before the hook existed are not instrumented: drop them all.
            view.uc.ctl_flush_tb()
        self._unsub = self.p.bus.subscribe(self._on_event)

    def _detach(self) -> None:
        for view, handle in self._hooks:
            uclib.uc_hook_del(view.uc._uch, handle)
        self._hooks.clear()
        for view in self.p.views.values():
            view.__dict__.pop("run", None)
        for hooks in self.watchpoints.values():
            for view, handle in hooks:
                uclib.uc_hook_del(view.uc._uch, handle)
        self.watchpoints.clear()
        self.breakpoints.clear()
        self.stepping = False
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    # --- stops -------------------------------------------------------------------------------
    def _wrap_run(self, view: CpuView) -> Callable[..., None]:
        orig = view.run

        def run(begin: int, until: int = 0, count: int = 0) -> None:
            self._running.append(view)
            try:
                orig(begin, until, count)
                if (self.conn is not None and until and view.pc == until
                        and (self.stepping or until in self.breakpoints)):
                    # Unicorn ends the run before the ``until`` instruction without a code
                    # hook: this is where the CPU is now (e.g. right after the NS ``smc``).
                    self.stepping = False
                    self._stop(view, SIGTRAP)
            finally:
                self._running.pop()
        return run

    def _code_hook(self, view: CpuView, address: int) -> None:
        if self.conn is None:
            return
        if self.stepping or address in self.breakpoints:
            try:
                self.stepping = False
                self._stop(view, SIGTRAP)
            except BaseException as exc:  # noqa: BLE001 - re-raised by CpuView.run
                view._guard(exc)

    def _mem_hook(self, view: CpuView, access: int, address: int, size: int, kind: int) -> bool:
        if self.conn is None:
            return True
        name = {2: "watch", 3: "rwatch", 4: "awatch"}[kind]
        try:
            self._stop(view, SIGTRAP, f"{name}:{address:x};")
        except BaseException as exc:  # noqa: BLE001
            view._guard(exc)
        return True

    def _on_event(self, ev: Any) -> None:
        if self.trace and self.conn is not None:
            self._console(f"[{ev.seq}] {ev.world} {ev.kind} {self._describe(ev)}\n")
        if ev.kind == "smc" and self.conn is not None:
            fid = ev.fields.get("fid")
            name = self.break_on.get(fid)
            if name is not None:
                view = self._running[-1] if self._running else (
                    self.p.views[World.NS_EL1] if ev.world == "NS-EL1" else self.p.views[World.S_EL1])
                self.stepping = False
                self._console(f"tzemu: break-on {name} (fid {fid:#x}) from {ev.world}; the "
                              f"caller's smc has trapped to EL3 (pc is past the smc), x0..x7 "
                              f"hold its arguments\n")
                self._stop(view, SIGTRAP)

    def _describe(self, ev: Any) -> str:
        f = dict(ev.fields)
        if "fid" in f:
            f["fid"] = f"{f['fid']:#x} {self._fid_names.get(f['fid'], [''])[0]}".strip()
        return " ".join(f"{k}={v}" for k, v in f.items())

    def _stop(self, view: CpuView, sig: int, extra: str = "") -> None:
        """Stop the platform with ``view`` executing; the reply always names thread 1."""
        self.stop_view, self.g_tid = view, CPU_TID
        self.last_stop = self._stop_reply(sig, CPU_TID, extra)
        self._send(self.last_stop)
        if not self._serve():
            self._detach()

    def _stop_reply(self, sig: int, tid: int, extra: str = "") -> bytes:
        view = self._view(tid)
        pc = struct.pack("<Q", view.pc).hex()
        return f"T{sig:02x}{extra}thread:{tid:x};20:{pc};".encode()

    # --- packets -----------------------------------------------------------------------------------
    def _send(self, payload: bytes, *, binary: bool = False) -> None:
        if self.conn is None:
            return
        try:
            self.conn.sendall(rsp.frame(payload, binary=binary))
        except OSError:
            self.conn = None

    def _console(self, text: str) -> None:
        """An 'O' packet: text printed by gdb (only while the target runs or inside qRcmd)."""
        self._send(b"O" + text.encode().hex().encode())

    def _serve(self) -> bool:
        """Serve packets until a resume (True), a detach (True) or a lost client (False)."""
        while self.conn is not None:
            try:
                data = self.conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.conn = None
                return False
            for pkt in self.reader.feed(data):
                if pkt.kind == "bad":
                    if not self.no_ack:
                        self.conn.sendall(b"-")
                    continue
                if pkt.kind == "interrupt":
                    self._send(self._stop_reply(SIGINT, CPU_TID))
                    continue
                if pkt.kind != "packet":
                    continue
                if not self.no_ack:
                    self.conn.sendall(b"+")
                try:
                    reply = self.handle(pkt.data)
                except _Resume:
                    return True
                except GdbKilled:
                    self._detach()
                    raise
                except (rsp.RspError, ValueError, IndexError, KeyError, struct.error):
                    reply = b"E01"
                if reply is not None:
                    self._send(reply, binary=isinstance(reply, tuple))
                if pkt.data[:1] == b"D":
                    self._detach()
                    return True
        return False

    def handle(self, data: bytes) -> bytes | None:
        """One packet payload -> reply payload (None: no reply). Raises _Resume to continue."""
        cmd = data[:1]
        if data.startswith(b"qSupported"):
            feats = (b"PacketSize=4000;qXfer:features:read+;QStartNoAckMode+;vContSupported+;"
                     b"swbreak+;hwbreak+")
            if self.symbol_files:
                feats += b";qXfer:libraries:read+"
            return feats
        if data == b"QStartNoAckMode":
            self._send(b"OK")
            self.no_ack = True
            return None
        if data.startswith(b"qXfer:features:read:"):
            annex, _, rng = data[len(b"qXfer:features:read:"):].partition(b":")
            doc = documents().get(annex.decode())
            return self._xfer(doc, rng) if doc is not None else b"E00"
        if data.startswith(b"qXfer:libraries:read::"):
            return self._xfer(self._library_xml(), data[len(b"qXfer:libraries:read::"):])
        if data == b"?":
            return self.last_stop
        if data in (b"qAttached",):
            return b"1"
        if data == b"qC":
            return f"QC{CPU_TID:x}".encode()
        if data == b"qfThreadInfo":
            return b"m" + ",".join(f"{t:x}" for t in self.threads()).encode()
        if data == b"qsThreadInfo":
            return b"l"
        if data.startswith(b"qThreadExtraInfo,"):
            tid = rsp.hex_to_int(data.split(b",")[1])
            name = self.threads().get(tid)
            return name.encode().hex().encode() if name else b"E01"
        if data.startswith(b"qRcmd,"):
            return self._monitor(rsp.unhexlify(data[6:]).decode(errors="replace"))
        if data.startswith(b"qSymbol") or data.startswith(b"qTStatus") or data == b"qOffsets":
            return b"OK" if data.startswith(b"qSymbol") else b""
        if cmd == b"H":
            tid = data[2:]
            if tid not in (b"-1", b"0"):
                t = rsp.hex_to_int(tid)
                if t not in self.threads():
                    return b"E01"
                if data[1:2] == b"g":
                    self.g_tid = t
            return b"OK"
        if cmd == b"T":
            return b"OK" if rsp.hex_to_int(data[1:]) in self.threads() else b"E01"
        if cmd == b"g":
            return b"".join(self.read_reg(self.g_tid, i) for i in range(len(REGISTERS))).hex().encode()
        if cmd == b"G":
            raw = rsp.unhexlify(data[1:])
            pos = 0
            for i, r in enumerate(REGISTERS):
                n = r.bits // 8
                if pos + n > len(raw):
                    break
                self.write_reg(self.g_tid, i, raw[pos:pos + n])
                pos += n
            return b"OK"
        if cmd == b"p":
            n = rsp.hex_to_int(data[1:])
            return self.read_reg(self.g_tid, n).hex().encode() if n < len(REGISTERS) else b"E01"
        if cmd == b"P":
            n, _, val = data[1:].partition(b"=")
            self.write_reg(self.g_tid, rsp.hex_to_int(n), rsp.unhexlify(val))
            return b"OK"
        if cmd == b"m":
            addr, _, length = data[1:].partition(b",")
            mem = self.read_mem(self.g_tid, rsp.hex_to_int(addr), min(rsp.hex_to_int(length), 0x1000))
            return mem.hex().encode() if mem is not None else E_MEM
        if cmd == b"M":
            head, _, payload = data[1:].partition(b":")
            addr, _, length = head.partition(b",")
            blob = rsp.unhexlify(payload)
            if len(blob) != rsp.hex_to_int(length):
                return b"E01"
            return b"OK" if self.write_mem(self.g_tid, rsp.hex_to_int(addr), blob) else E_MEM
        if cmd == b"X":
            head, _, payload = data[1:].partition(b":")
            addr, _, length = head.partition(b",")
            blob = rsp.unescape(payload)
            if len(blob) != rsp.hex_to_int(length):
                return b"E01"
            if not blob:
                return b"OK"
            return b"OK" if self.write_mem(self.g_tid, rsp.hex_to_int(addr), blob) else E_MEM
        if cmd in (b"c", b"s"):
            if len(data) > 1:
                self._cpu_view().pc = rsp.hex_to_int(data[1:])
            self.stepping = cmd == b"s"
            raise _Resume
        if data == b"vCont?":
            return b"vCont;c;C;s;S"
        if data.startswith(b"vCont;"):
            return self._vcont(data[6:])
        if data.startswith(b"vMustReplyEmpty") or data.startswith(b"v"):
            return b""
        if cmd in (b"Z", b"z"):
            return self._breakpoint(data)
        if cmd == b"k":
            raise GdbKilled("killed by gdb")
        if cmd == b"D":
            return b"OK"
        return b""

    def _vcont(self, body: bytes) -> bytes:
        """Resume thread 1 (cpu0); a step or continue aimed only at a context thread is refused."""
        actions = []
        for a in body.split(b";"):
            if not a:
                continue
            act, _, tid = a.partition(b":")
            if act[:1] not in (b"c", b"C", b"s", b"S"):
                return b"E01"
            actions.append((act[:1].lower(), None if tid in (b"", b"-1", b"0")
                            else rsp.hex_to_int(tid.split(b".")[-1])))
        if not actions:
            return b"E01"
        # vCont applies the leftmost action that matches a thread: cpu0's action is the first
        # one naming thread 1 or all threads.
        mine = next((a for a, t in actions if t in (None, CPU_TID)), None)
        other = next(((a, t) for a, t in actions if t not in (None, CPU_TID)), None)
        if mine is None or (other is not None and other[0] == b"s"):
            act, tid = other if other is not None else (b"c", CPU_TID)
            self._console(f"tzemu: thread {tid} is a saved world context (read-only); step and "
                          f"continue thread 1 (cpu0), the executing CPU\n")
            self.last_stop = self._stop_reply(SIGTRAP if act == b"s" else 0, tid)
            return self.last_stop
        self.stepping = mine == b"s"
        raise _Resume

    def _xfer(self, doc: str, rng: bytes) -> bytes:
        off, _, length = rng.partition(b",")
        off, length = rsp.hex_to_int(off), rsp.hex_to_int(length)
        raw = doc.encode()
        chunk = raw[off:off + length]
        return (b"l" if off + length >= len(raw) else b"m") + rsp.escape(chunk)

    def _library_xml(self) -> str:
        libs = "".join(f'  <library name="{path}"><section address="{addr:#x}"/></library>\n'
                       for path, addr, *_offset in self.symbol_files)
        return f'<library-list>\n{libs}</library-list>\n'

    def _breakpoint(self, data: bytes) -> bytes:
        insert = data[:1] == b"Z"
        kind_s, addr_s, len_s = data[1:].split(b",")[:3]
        kind, addr, length = int(kind_s), rsp.hex_to_int(addr_s), rsp.hex_to_int(len_s.split(b";")[0])
        if kind in (0, 1):
            (self.breakpoints.add if insert else self.breakpoints.discard)(addr)
            return b"OK"
        if kind not in (2, 3, 4) or not 0 < length <= 0x1000:
            return b""
        key = (kind, addr, length)
        if insert:
            if key not in self.watchpoints:
                htype = {2: UC_HOOK_MEM_WRITE, 3: UC_HOOK_MEM_READ,
                         4: UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE}[kind]
                hooks = []
                for view in self.p.views.values():
                    cb = _MEM_CFUNC(lambda _h, acc, a, s, _v, _ud, v=view, k=kind:
                                    self._mem_hook(v, acc, a, s, k))
                    hooks.append((view, view._hook_native(htype, cb, addr, addr + length - 1)))
                self.watchpoints[key] = hooks
        else:
            for view, handle in self.watchpoints.pop(key, []):
                uclib.uc_hook_del(view.uc._uch, handle)
        return b"OK"



def attach_gdb(platform: Any, port: int, *, symbol_files: list[Any] | None = None,
               log: Callable[[str], None] | None = None) -> GdbServer:
    """Listen on 127.0.0.1:``port``, wait for gdb, and return once it lets execution start."""
    server = GdbServer(platform, port, symbol_files=symbol_files, log=log)
    server.log(f"tzemu: gdbserver listening on 127.0.0.1:{server.port}; "
               f"in gdb-multiarch: target remote :{server.port}")
    server.wait_for_client()
    return server
