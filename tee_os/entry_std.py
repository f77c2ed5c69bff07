"""Yielding calls of the SMC transport: trusted threads, RPC, and the OPTEE_MSG commands.

A trusted thread is bound to one yielding call until it completes, across any number of RPC
round trips. Here a thread is a Python generator: it yields register-level RPCs
``(func, a1, a2)`` which leave the secure world as OPTEE_SMC_RETURN_RPC_* with the thread id in
a3, and it is resumed by OPTEE_SMC_CALL_RETURN_FROM_RPC. When every thread is busy a new call
gets OPTEE_SMC_RETURN_ETHREAD_LIMIT.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generator

from tee_os.mobj import Mobj, MobjError, contiguous_mobj
from tee_os.msg import MsgArg, MsgParam
from tee_os.msg_protmem import ProtmemCommands, _BadParam
from tee_os.rpc import (RpcAllocPayload, RpcCmd, RpcCmdReply, RpcForeignIntr, RpcFreePayload,
                        RpcPayload)
from tee_os.shm import ShmError, read_page_list
from tee_os.user_ta import TaParam

if TYPE_CHECKING:
    from tee_os.core import SecureOS

MAX_ARG_SIZE = 4096          # an optee_msg_arg must fit in one NONCONTIG page
RPC_NUM_PARAMS = 4           # THREAD_RPC_MAX_NUM_PARAMS


class ThreadState(enum.Enum):
    FREE = "free"
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass
class Thread:
    id: int
    state: ThreadState = ThreadState.FREE
    gen: Generator | None = None
    rpc_arg_pa: int | None = None          # preallocated by CALL_WITH_RPC_ARG / REGD_ARG
    rpc_alloc: tuple[int, int] | None = None  # (pa, cookie) obtained with RPC ALLOC


class StdEntry(ProtmemCommands):
    """Trusted threads and OPTEE_MSG commands, shared by the SMC and the FF-A transport.

    ``transport`` selects what differs (OP-TEE compiles these per build): memref params 5..7 are
    RMEM (a registered-shm cookie) over SMC and FMEM (an FF-A handle) over FF-A; LEND/RECLAIM_
    PROTMEM exist only over SMC, ASSIGN_PROTMEM only over FF-A.
    """

    def __init__(self, sos: "SecureOS", num_threads: int, transport: str = "smc"):
        self.sos = sos
        c = self.c = sos.c
        self.transport = transport
        self.layout = sos.msg_layout
        self.threads = [Thread(i) for i in range(num_threads)]
        self.commands = {
            c.OPTEE_MSG_CMD_OPEN_SESSION: self.cmd_open_session,
            c.OPTEE_MSG_CMD_INVOKE_COMMAND: self.cmd_invoke_command,
            c.OPTEE_MSG_CMD_CLOSE_SESSION: self.cmd_close_session,
            c.OPTEE_MSG_CMD_CANCEL: self.cmd_cancel,
            c.OPTEE_MSG_CMD_REGISTER_SHM: self.cmd_register_shm,
            c.OPTEE_MSG_CMD_UNREGISTER_SHM: self.cmd_unregister_shm,
            c.OPTEE_MSG_CMD_GET_PROTMEM_CONFIG: self.cmd_get_protmem_config,
        }
        if transport == "smc":
            self.commands[c.OPTEE_MSG_CMD_LEND_PROTMEM] = self.cmd_lend_protmem
            self.commands[c.OPTEE_MSG_CMD_RECLAIM_PROTMEM] = self.cmd_reclaim_protmem
        else:
            del self.commands[c.OPTEE_MSG_CMD_REGISTER_SHM]      # FF-A shares with FFA_MEM_SHARE
            self.commands[c.OPTEE_MSG_CMD_ASSIGN_PROTMEM] = self.cmd_assign_protmem
        self.rpc_prefix = c.OPTEE_SMC_RETURN_RPC_PREFIX

    # --- the yielding-call entry -----------------------------------------------------------
    def handle(self, a: tuple[int, ...]) -> tuple[int, int, int, int]:
        c = self.c
        fid = a[0] & 0xFFFFFFFF
        if fid == c.OPTEE_SMC_CALL_RETURN_FROM_RPC:
            tid = a[3] & 0xFFFFFFFF
            if tid >= len(self.threads) or self.threads[tid].state is not ThreadState.SUSPENDED:
                return (c.OPTEE_SMC_RETURN_ERESUME, 0, 0, 0)
            return self._run(self.threads[tid], a)
        if fid not in (c.OPTEE_SMC_CALL_WITH_ARG, c.OPTEE_SMC_CALL_WITH_RPC_ARG,
                       c.OPTEE_SMC_CALL_WITH_REGD_ARG):
            return (c.OPTEE_SMC_RETURN_UNKNOWN_FUNCTION, 0, 0, 0)
        thread = self.free_thread()
        if thread is None:
            return (c.OPTEE_SMC_RETURN_ETHREAD_LIMIT, a[1], a[2], a[3])
        located = self._locate_arg(fid, a)
        if located is None:
            return (c.OPTEE_SMC_RETURN_EBADADDR, 0, 0, 0)
        arg_pa, raw, rpc_pa = located
        out = self.start(thread, arg_pa, raw, rpc_pa)
        return out[1:5] if out[0] == "done" else (self.rpc_prefix | out[1], out[2], out[3], thread.id)

    def _locate_arg(self, fid: int, a: tuple[int, ...]) -> tuple[int, bytes, int | None] | None:
        """Find, check and copy out the optee_msg_arg; None means EBADADDR."""
        c, sos, lay = self.c, self.sos, self.layout
        if fid == c.OPTEE_SMC_CALL_WITH_REGD_ARG:
            mobj = sos.shm.lookup(((a[1] & 0xFFFFFFFF) << 32) | (a[2] & 0xFFFFFFFF))
            if mobj is None:
                return None
            try:
                runs = mobj.pa_ranges(a[3] & 0xFFFFFFFF, lay.header_size)
            except MobjError:
                return None
            pa = runs[0][0]
        else:
            pa = ((a[1] & 0xFFFFFFFF) << 32) | (a[2] & 0xFFFFFFFF)
        if pa % 8 or not sos.ns_range_ok(pa, lay.header_size):
            return None
        num = struct.unpack_from("<I", sos.read_ns(pa, lay.header_size), lay.off["num_params"])[0]
        size = lay.arg_size(num) if num < MAX_ARG_SIZE else MAX_ARG_SIZE + 1
        if size > MAX_ARG_SIZE or not sos.ns_range_ok(pa, size):
            return None
        raw = sos.read_ns(pa, size)         # private copy: the normal world may change it
        rpc_pa = None
        if fid in (c.OPTEE_SMC_CALL_WITH_RPC_ARG, c.OPTEE_SMC_CALL_WITH_REGD_ARG):
            rpc_pa = pa + size
            if not sos.ns_range_ok(rpc_pa, lay.arg_size(RPC_NUM_PARAMS)):
                return None
        return pa, raw, rpc_pa

    def free_thread(self) -> Thread | None:
        if self.sos.faults.hit("threads"):
            return None
        return next((t for t in self.threads if t.state is ThreadState.FREE), None)

    def start(self, thread: Thread, arg_pa: int, raw: bytes, rpc_pa: int | None) -> Any:
        thread.rpc_arg_pa, thread.rpc_alloc = rpc_pa, None
        thread.gen = self._call(thread, arg_pa, raw)
        return self.step(thread, None)

    def step(self, thread: Thread, value: Any) -> tuple[int, ...]:
        """Run a thread to its next exit: ("done", a0..a3) or ("rpc", func, a1, a2)."""
        thread.state = ThreadState.ACTIVE
        try:
            func, a1, a2 = thread.gen.send(value)
        except StopIteration as done:
            thread.state, thread.gen = ThreadState.FREE, None
            return ("done",) + tuple(done.value)
        thread.state = ThreadState.SUSPENDED
        return ("rpc", func, a1, a2)

    def _run(self, thread: Thread, value: Any) -> tuple[int, int, int, int]:
        """The SMC transport's register view of a thread exit."""
        out = self.step(thread, value)
        if out[0] == "done":
            return out[1:5]
        return (self.rpc_prefix | out[1], out[2], out[3], thread.id)

    # --- RPC: from high-level requests to the register protocol -------------------------------
    def _serve(self, thread: Thread, req: Any) -> Generator[tuple[int, int, int], Any, Any]:
        c, sos = self.c, self.sos
        if isinstance(req, RpcForeignIntr):
            yield (c.OPTEE_SMC_RPC_FUNC_FOREIGN_INTR, 0, 0)
            return None
        if isinstance(req, RpcAllocPayload):
            reply = yield from self._rpc_cmd(thread, RpcCmd(c.OPTEE_RPC_CMD_SHM_ALLOC, [
                MsgParam(c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT, req.shm_type, req.size, 0x1000)]))
            p = reply.params[0] if reply.params else None
            if reply.ret != c.TEE_SUCCESS or p is None or p.b < req.size:
                return None
            if self.transport == "ffa":          # FMEM_OUTPUT {global_id = the FF-A handle}
                if p.type(c.OPTEE_MSG_ATTR_TYPE_MASK) != c.OPTEE_MSG_ATTR_TYPE_FMEM_OUTPUT:
                    return None
                try:
                    mobj, offset = self._fmem_mobj(p)
                    runs = mobj.pa_ranges(offset, req.size) if mobj else []
                except (_BadParam, MobjError):
                    return None
                if len(runs) != 1:
                    return None                  # the payload must be contiguous here
                return RpcPayload(runs[0][0], req.size, p.c)
            if (p.type(c.OPTEE_MSG_ATTR_TYPE_MASK) != c.OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT
                    or p.attr & c.OPTEE_MSG_ATTR_NONCONTIG
                    or not sos.ns_range_ok(p.a, req.size)):
                return None
            return RpcPayload(p.a, req.size, p.c)
        if isinstance(req, RpcFreePayload):
            if self.transport == "ffa" and sos.ffa is not None:
                # thread_rpc_free over FF-A: unregister the handle first, or the normal
                # world's FFA_MEM_RECLAIM in its SHM_FREE handler is DENIED (still retrieved).
                sos.ffa.unregister(req.payload.cookie)
            yield from self._rpc_cmd(thread, RpcCmd(c.OPTEE_RPC_CMD_SHM_FREE, [
                MsgParam(c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT, c.OPTEE_RPC_SHM_TYPE_APPL,
                         req.payload.cookie, 0)]))
            return None
        if isinstance(req, RpcCmd):
            return (yield from self._rpc_cmd(thread, req))
        raise TypeError(f"unknown RPC request {req!r}")

    def _rpc_cmd(self, thread: Thread, req: RpcCmd) -> Generator[tuple[int, int, int], Any, RpcCmdReply]:
        c, sos, lay = self.c, self.sos, self.layout
        fail = RpcCmdReply(c.TEE_ERROR_OUT_OF_MEMORY, c.TEE_ORIGIN_COMMS, [])
        if thread.rpc_arg_pa is not None:
            rpc_pa, cookie = thread.rpc_arg_pa, 0
        else:
            if thread.rpc_alloc is None:
                regs = yield (c.OPTEE_SMC_RPC_FUNC_ALLOC, lay.arg_size(RPC_NUM_PARAMS), 0)
                pa = ((regs[1] & 0xFFFFFFFF) << 32) | (regs[2] & 0xFFFFFFFF)
                cookie = ((regs[4] & 0xFFFFFFFF) << 32) | (regs[5] & 0xFFFFFFFF)
                if not pa or pa % 8 or not sos.ns_range_ok(pa, lay.arg_size(RPC_NUM_PARAMS)):
                    return fail
                thread.rpc_alloc = (pa, cookie)
            rpc_pa, cookie = thread.rpc_alloc
        if len(req.params) > RPC_NUM_PARAMS:
            return fail
        arg = MsgArg(req.cmd, 0, 0, 0, 0, 0, len(req.params), req.params)
        sos.write_ns(rpc_pa, lay.build(arg))
        if sos.bus.active:
            sos.bus.emit("rpc_cmd", "S-EL1", cmd=req.cmd, num_params=len(req.params))
        yield (c.OPTEE_SMC_RPC_FUNC_CMD, cookie >> 32, cookie & 0xFFFFFFFF)
        raw = sos.read_ns(rpc_pa, lay.arg_size(len(req.params)))
        back = lay.parse(raw[:lay.header_size] + raw[lay.header_size:]) if raw else None
        params = back.params[:len(req.params)] if back else []
        return RpcCmdReply(back.ret, back.ret_origin, params)

    def _drive(self, thread: Thread, inner: Generator) -> Generator[tuple[int, int, int], Any, Any]:
        """Run a high-level generator, serving each RPC request it yields."""
        value = None
        while True:
            try:
                req = inner.send(value)
            except StopIteration as done:
                return done.value
            value = yield from self._serve(thread, req)

    # --- one call ------------------------------------------------------------------------------
    def _call(self, thread: Thread, arg_pa: int, raw: bytes) -> Generator:
        c, sos, lay = self.c, self.sos, self.layout
        arg = lay.parse(raw)
        handler = self.commands.get(arg.cmd)
        if handler is None:
            sos.log_event("msg_unknown_cmd", cmd=arg.cmd)
            return (c.OPTEE_SMC_RETURN_EBADCMD, 0, 0, 0)
        if sos.bus.active:
            sos.bus.emit("msg", "S-EL1", cmd=arg.cmd, func=arg.func, session=arg.session,
                         num_params=arg.num_params)
        if sos.pending_foreign_interrupt():
            yield from self._serve(thread, RpcForeignIntr())
        yield from self._drive(thread, handler(arg))
        self._write_back(arg_pa, arg)
        if thread.rpc_alloc is not None:
            pa, cookie = thread.rpc_alloc
            thread.rpc_alloc = None
            yield (c.OPTEE_SMC_RPC_FUNC_FREE, cookie >> 32, cookie & 0xFFFFFFFF)
        return (c.OPTEE_SMC_RETURN_OK, 0, 0, 0)

    def _write_back(self, arg_pa: int, arg: MsgArg) -> None:
        c, sos, lay = self.c, self.sos, self.layout
        for field_name, value in (("ret", arg.ret), ("ret_origin", arg.ret_origin),
                                  ("session", arg.session)):
            sos.write_ns(arg_pa + lay.off[field_name], struct.pack("<I", value & 0xFFFFFFFF))
        mask = c.OPTEE_MSG_ATTR_TYPE_MASK
        for i, p in enumerate(arg.params):
            t = p.attr & mask
            off = arg_pa + lay.param_offset(i)
            if t in (c.OPTEE_MSG_ATTR_TYPE_VALUE_OUTPUT, c.OPTEE_MSG_ATTR_TYPE_VALUE_INOUT):
                sos.write_ns(off, struct.pack("<QQQ", p.a, p.b, p.c))
            elif t in (c.OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT, c.OPTEE_MSG_ATTR_TYPE_TMEM_INOUT,
                       c.OPTEE_MSG_ATTR_TYPE_RMEM_OUTPUT, c.OPTEE_MSG_ATTR_TYPE_RMEM_INOUT):
                sos.write_ns(off + 8, struct.pack("<Q", p.b))

    # --- parameters ----------------------------------------------------------------------------
    def to_ta_params(self, params: list[MsgParam]) -> list[TaParam]:
        """OPTEE_MSG params -> TEE params; raises _BadParam (BAD_PARAMETERS, origin TEE)."""
        c, sos = self.c, self.sos
        if len(params) > c.TEE_NUM_PARAMS:
            raise _BadParam(f"{len(params)} parameters, at most {c.TEE_NUM_PARAMS}")
        out: list[TaParam] = []
        for p in params:
            if p.attr & ~(c.OPTEE_MSG_ATTR_TYPE_MASK | c.OPTEE_MSG_ATTR_NONCONTIG
                          | (c.OPTEE_MSG_ATTR_CACHE_MASK << c.OPTEE_MSG_ATTR_CACHE_SHIFT)):
                raise _BadParam(f"attribute {p.attr:#x} not allowed here")
            t = p.attr & c.OPTEE_MSG_ATTR_TYPE_MASK
            if t == c.OPTEE_MSG_ATTR_TYPE_NONE:
                out.append(TaParam(c.TEE_PARAM_TYPE_NONE))
            elif c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT <= t <= c.OPTEE_MSG_ATTR_TYPE_VALUE_INOUT:
                out.append(TaParam(t, p.a & 0xFFFFFFFF, p.b & 0xFFFFFFFF))
            elif c.OPTEE_MSG_ATTR_TYPE_TMEM_INPUT <= t <= c.OPTEE_MSG_ATTR_TYPE_TMEM_INOUT:
                ta_type = c.TEE_PARAM_TYPE_MEMREF_INPUT + (t - c.OPTEE_MSG_ATTR_TYPE_TMEM_INPUT)
                mobj, offset = self._tmem_mobj(p)
                out.append(TaParam(ta_type, mobj=mobj, offset=offset, size=p.b))
            elif (c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT <= t <= c.OPTEE_MSG_ATTR_TYPE_RMEM_INOUT
                  and self.transport == "ffa"):
                ta_type = c.TEE_PARAM_TYPE_MEMREF_INPUT + (t - c.OPTEE_MSG_ATTR_TYPE_FMEM_INPUT)
                mobj, offset = self._fmem_mobj(p)
                out.append(TaParam(ta_type, mobj=mobj, offset=offset, size=p.b))
            elif c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT <= t <= c.OPTEE_MSG_ATTR_TYPE_RMEM_INOUT:
                mobj = sos.shm.lookup(p.c)
                if mobj is None:          # the cookie lookup falls back to lent protected memory
                    lent = sos.protmem.by_cookie(p.c)
                    mobj = lent.mobj if lent is not None and not lent.releasing else None
                if mobj is None:
                    raise _BadParam(f"RMEM cookie {p.c:#x} is not registered shared memory")
                try:
                    mobj.check_range(p.a, p.b)
                except MobjError as exc:
                    raise _BadParam(str(exc)) from None
                ta_type = c.TEE_PARAM_TYPE_MEMREF_INPUT + (t - c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT)
                out.append(TaParam(ta_type, mobj=mobj, offset=p.a, size=p.b))
            else:
                raise _BadParam(f"parameter type {t:#x} unknown")
        return out

    def _tmem_mobj(self, p: MsgParam) -> tuple[Mobj | None, int]:
        """(memory object, offset in it) for a TMEM: NS memory, or a protected range."""
        c, sos = self.c, self.sos
        if p.a == 0:
            if p.b:
                raise _BadParam("NULL TMEM with a non-zero size")
            return None, 0
        if p.attr & c.OPTEE_MSG_ATTR_NONCONTIG:
            try:
                off, pages = read_page_list(sos.physmem, p.a, p.b, sos.ns_page_ok)
            except ShmError as exc:
                raise _BadParam(str(exc)) from None
            return Mobj("tmem", pages, off, p.b), 0
        if p.a + p.b > 1 << 64:
            raise _BadParam(f"TMEM {p.a:#x}+{p.b:#x} wraps")
        region = sos.protmem.find(p.a, p.b)
        if region is not None and not region.releasing:
            return region.mobj, p.a - region.base       # SDP memory by physical address
        if not sos.ns_range_ok(p.a, p.b):
            raise _BadParam(f"TMEM {p.a:#x}+{p.b:#x} is not normal-world memory")
        return contiguous_mobj("tmem", p.a, p.b), 0

    def _fmem_mobj(self, p: MsgParam) -> tuple[Mobj | None, int]:
        """FMEM {offs_low, offs_high, internal_offs, size, global_id}: memory by FF-A handle."""
        c, sos = self.c, self.sos
        offset = (p.a & 0xFFFFFFFF) | ((p.a >> 32) & 0xFFFF) << 32
        internal = (p.a >> 48) & 0xFFFF
        if p.c == c.OPTEE_MSG_FMEM_INVALID_GLOBAL_ID:
            if p.b:
                raise _BadParam("NULL FMEM with a non-zero size")
            return None, 0
        mobj = sos.ffa.mobj(p.c) if sos.ffa is not None else None
        if mobj is None:
            raise _BadParam(f"FMEM global id {p.c:#x} is not shared or lent memory")
        if mobj.secure and internal:
            raise _BadParam("non-zero internal offset into protected memory")
        try:
            mobj.check_range(offset + internal, p.b)
        except MobjError as exc:
            raise _BadParam(str(exc)) from None
        return mobj, offset + internal

    def _update_params(self, msg_params: list[MsgParam], ta_params: list[TaParam]) -> None:
        c = self.c
        for mp, tp in zip(msg_params, ta_params):
            if tp.type in (c.TEE_PARAM_TYPE_VALUE_OUTPUT, c.TEE_PARAM_TYPE_VALUE_INOUT):
                mp.a, mp.b, mp.c = tp.a, tp.b, 0
            elif tp.type in (c.TEE_PARAM_TYPE_MEMREF_OUTPUT, c.TEE_PARAM_TYPE_MEMREF_INOUT):
                mp.b = tp.size

    def _fail(self, arg: MsgArg, code: int, origin: int | None = None) -> None:
        arg.ret, arg.ret_origin = code, self.c.TEE_ORIGIN_TEE if origin is None else origin

    # --- OPTEE_MSG commands (each a generator that may yield RPC requests) ----------------------
    def cmd_open_session(self, arg: MsgArg) -> Generator:
        c = self.c
        meta = c.OPTEE_MSG_ATTR_META | c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT
        if arg.num_params < 2 or arg.params[0].attr != meta or arg.params[1].attr != meta:
            return self._fail(arg, c.TEE_ERROR_BAD_PARAMETERS)
        uuid_octets = struct.pack("<QQ", arg.params[0].a, arg.params[0].b)
        client = struct.pack("<QQ", arg.params[1].a, arg.params[1].b)
        try:
            ta_params = self.to_ta_params(arg.params[2:])
        except _BadParam as exc:
            self.sos.log_event("bad_params", cmd="OPEN_SESSION", detail=str(exc))
            return self._fail(arg, c.TEE_ERROR_BAD_PARAMETERS)
        import uuid as uuidlib
        ret, origin, sid = yield from self.sos.ta_manager.open_session(
            uuidlib.UUID(bytes=uuid_octets), arg.params[1].c & 0xFFFFFFFF, client, ta_params)
        self._update_params(arg.params[2:], ta_params)
        arg.ret, arg.ret_origin, arg.session = ret, origin, sid

    def cmd_invoke_command(self, arg: MsgArg) -> Generator:
        c = self.c
        try:
            ta_params = self.to_ta_params(arg.params)
        except _BadParam as exc:
            self.sos.log_event("bad_params", cmd="INVOKE_COMMAND", detail=str(exc))
            return self._fail(arg, c.TEE_ERROR_BAD_PARAMETERS)
        ret, origin = yield from self.sos.ta_manager.invoke(arg.session, arg.func, ta_params,
                                                             arg.cancel_id)
        self._update_params(arg.params, ta_params)
        arg.ret, arg.ret_origin = ret, origin

    def cmd_close_session(self, arg: MsgArg) -> Generator:
        if arg.num_params:
            return self._fail(arg, self.c.TEE_ERROR_BAD_PARAMETERS)
        arg.ret, arg.ret_origin = yield from self.sos.ta_manager.close_session(arg.session)

    def cmd_cancel(self, arg: MsgArg) -> Generator:
        arg.ret, arg.ret_origin = self.sos.ta_manager.cancel(arg.session, arg.cancel_id)
        yield from ()

    def cmd_register_shm(self, arg: MsgArg) -> Generator:
        c, sos = self.c, self.sos
        yield from ()
        want = c.OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT | c.OPTEE_MSG_ATTR_NONCONTIG
        if arg.num_params != 1 or arg.params[0].attr & ~(c.OPTEE_MSG_ATTR_CACHE_MASK
                                                          << c.OPTEE_MSG_ATTR_CACHE_SHIFT) != want:
            return self._fail(arg, c.TEE_ERROR_BAD_PARAMETERS)
        p = arg.params[0]
        try:
            off, pages = read_page_list(sos.physmem, p.a, p.b, sos.ns_page_ok)
            sos.check_shm_pages(pages)
            sos.shm.register(p.c, off, pages, p.b)
        except ShmError as exc:
            sos.log_event("register_shm_refused", detail=str(exc))
            return self._fail(arg, getattr(c, exc.code_name))
        arg.ret, arg.ret_origin = c.TEE_SUCCESS, c.TEE_ORIGIN_TEE

    def cmd_unregister_shm(self, arg: MsgArg) -> Generator:
        c, sos = self.c, self.sos
        yield from ()
        if arg.num_params != 1 or arg.params[0].attr != c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT:
            return self._fail(arg, c.TEE_ERROR_BAD_PARAMETERS)
        try:
            sos.shm.unregister(arg.params[0].c)
        except ShmError as exc:
            return self._fail(arg, getattr(c, exc.code_name))
        arg.ret, arg.ret_origin = c.TEE_SUCCESS, c.TEE_ORIGIN_TEE
