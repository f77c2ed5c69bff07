"""The libutee system-call layer (svc #0, number in x8, arguments in x0..x7, result in x0).

Every number answers: implemented calls below, TEE_ERROR_NOT_SUPPORTED for the rest (including
the deprecated Secure Element range 55..69 and anything above TEE_SCN_MAX). Pointer arguments
are resolved through the TA's own address space; a bad pointer is ACCESS_DENIED where OP-TEE
returns it, or a TA panic where OP-TEE would kill the TA.
"""
from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Any, Callable

from tee_os.msg import MsgParam
from tee_os.rpc import RpcCmd, RpcCmdReply
from tee_os.ta_memory import AccessDenied
from tee_os.user_ta import NeedsCall, NeedsRpc, TaExit, TaParam, UserModeRunner

if TYPE_CHECKING:
    from tee_os.core import SecureOS

Handler = Callable[[UserModeRunner, tuple[int, ...]], Any]
TZEMU_SCN_VA_TO_PA = 0x7000          # tzemu extension (see sys_va_to_pa)


class SyscallTable:
    """Dispatch of TEE_SCN_* numbers to handlers, with names for traces."""

    def __init__(self, sos: "SecureOS"):
        self.sos = sos
        c = sos.c
        self.c = c
        self.names = {v: k for k, v in sos.abi.constants.items() if k.startswith("TEE_SCN_")
                      and k != "TEE_SCN_MAX"}
        self.handlers: dict[int, Handler] = {
            c.TEE_SCN_RETURN: self.sys_return,
            c.TEE_SCN_LOG: self.sys_log,
            c.TEE_SCN_PANIC: self.sys_panic,
            c.TEE_SCN_GET_PROPERTY: self.sys_get_property,
            c.TEE_SCN_GET_PROPERTY_NAME_TO_INDEX: self.sys_get_property_name_to_index,
            c.TEE_SCN_CHECK_ACCESS_RIGHTS: self.sys_check_access_rights,
            c.TEE_SCN_GET_CANCELLATION_FLAG: self.sys_get_cancellation_flag,
            c.TEE_SCN_UNMASK_CANCELLATION: self.sys_unmask_cancellation,
            c.TEE_SCN_MASK_CANCELLATION: self.sys_mask_cancellation,
            c.TEE_SCN_WAIT: self.sys_wait,
            c.TEE_SCN_GET_TIME: self.sys_get_time,
            c.TEE_SCN_SET_TA_TIME: self.sys_set_ta_time,
            c.TEE_SCN_CRYP_RANDOM_NUMBER_GENERATE: self.sys_random,
            c.TEE_SCN_CACHE_OPERATION: self.sys_cache_operation,
            c.TEE_SCN_OPEN_TA_SESSION: self.sys_open_ta_session,
            c.TEE_SCN_CLOSE_TA_SESSION: self.sys_close_ta_session,
            c.TEE_SCN_INVOKE_TA_COMMAND: self.sys_invoke_ta_command,
            TZEMU_SCN_VA_TO_PA: self.sys_va_to_pa,
        }
        self.names[TZEMU_SCN_VA_TO_PA] = "TZEMU_SCN_VA_TO_PA"
        self._rng_counter = 0
        self.ta_time_offsets: dict[Any, int] = {}    # TA UUID -> persistent - system (ms)

    def __call__(self, runner: UserModeRunner, nr: int, args: tuple[int, ...]) -> Any:
        sos = self.sos
        if sos.bus.active:
            sos.bus.emit("ta_syscall", "S-EL0", nr=nr, name=self.names.get(nr, "unknown"),
                         args=list(args), ta=runner.current.name if runner.current else None)
        handler = self.handlers.get(nr)
        if handler is None:
            result = self.c.TEE_ERROR_NOT_SUPPORTED
        else:
            try:
                result = handler(runner, args)
            except AccessDenied:
                # copy_from_user/copy_to_user failed: the core answers ACCESS_DENIED (libutee
                # then panics the TA if the caller was one of its own wrappers).
                result = self.c.TEE_ERROR_ACCESS_DENIED
        if sos.bus.active and isinstance(result, int):   # a code now (not TaExit, NeedsRpc...)
            sos.bus.emit("ta_syscall_return", "S-EL0", nr=nr, name=self.names.get(nr, "unknown"),
                         result=result, ta=runner.current.name if runner.current else None)
        return result

    # --- exit ----------------------------------------------------------------------------
    def sys_return(self, runner: UserModeRunner, a: tuple[int, ...]) -> TaExit:
        return TaExit("return", a[0] & 0xFFFFFFFF)

    def sys_panic(self, runner: UserModeRunner, a: tuple[int, ...]) -> TaExit:
        return TaExit("panic", a[0] & 0xFFFFFFFF, f"TA panicked with code {a[0] & 0xFFFFFFFF:#x}")

    def sys_log(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        size = min(a[1], 4096)
        text = runner.read_ta(a[0], size).decode("utf-8", "replace")
        self.sos.log_ta(runner.current.name if runner.current else "?", text)
        return self.c.TEE_SUCCESS

    # --- access rights (vm_check_access_rights) ------------------------------------------
    def check_access(self, runner: UserModeRunner, flags: int, va: int, size: int) -> int:
        c = self.c
        sec, nsec = c.TEE_MEMORY_ACCESS_SECURE, c.TEE_MEMORY_ACCESS_NONSECURE
        if va + size > 0xFFFFFFFFFFFFFFFF:
            return c.TEE_ERROR_ACCESS_DENIED
        if flags & sec and flags & nsec:
            return c.TEE_ERROR_ACCESS_DENIED
        if size == 0:
            return c.TEE_SUCCESS
        maps = runner.current.space.pages_in(va, size)
        if any(m is None for m in maps):
            return c.TEE_ERROR_ACCESS_DENIED
        if not flags & c.TEE_MEMORY_ACCESS_ANY_OWNER and not all(m.private for m in maps):
            return c.TEE_ERROR_ACCESS_DENIED
        for m in maps:
            if flags & nsec and m.secure or flags & sec and not m.secure:
                return c.TEE_ERROR_ACCESS_DENIED
            if flags & c.TEE_MEMORY_ACCESS_WRITE and not m.prot & 2:
                return c.TEE_ERROR_ACCESS_DENIED
            if flags & c.TEE_MEMORY_ACCESS_READ and not m.prot & 1:
                return c.TEE_ERROR_ACCESS_DENIED
        return c.TEE_SUCCESS

    def sys_check_access_rights(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        return self.check_access(runner, a[0] & 0xFFFFFFFF, a[1], a[2])

    # --- cancellation ----------------------------------------------------------------------
    def _session(self, runner: UserModeRunner):
        return self.sos.ta_manager.sessions.get(runner.session_id)

    def sys_get_cancellation_flag(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        s = self._session(runner)
        flag = int(bool(s and s.cancel_requested and not s.cancel_masked))
        runner.write_ta(a[0], struct.pack("<I", flag))
        return self.c.TEE_SUCCESS

    def _set_mask(self, runner: UserModeRunner, a: tuple[int, ...], masked: bool) -> int:
        s = self._session(runner)
        old = int(s.cancel_masked) if s else 1
        if s:
            s.cancel_masked = masked
        if a[0]:
            runner.write_ta(a[0], struct.pack("<I", old))
        return self.c.TEE_SUCCESS

    def sys_unmask_cancellation(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        return self._set_mask(runner, a, False)

    def sys_mask_cancellation(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        return self._set_mask(runner, a, True)

    def sys_wait(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        s = self._session(runner)
        if s and s.cancel_requested and not s.cancel_masked:
            return self.c.TEE_ERROR_CANCEL
        self.sos.advance_clock_ms(a[0] & 0xFFFFFFFF)
        return self.c.TEE_SUCCESS

    # --- time and randomness ----------------------------------------------------------------
    def sys_get_time(self, runner: UserModeRunner, a: tuple[int, ...]) -> Any:
        c = self.c
        cat, out = a[0] & 0xFFFFFFFF, a[1]
        if cat == c.UTEE_TIME_CAT_SYSTEM:
            secs, millis = self.sos.system_time()
            runner.write_ta(out, struct.pack("<II", secs, millis))
            return c.TEE_SUCCESS
        if cat == c.UTEE_TIME_CAT_TA_PERSISTENT:
            offset = self.ta_time_offsets.get(runner.current.uuid)
            if offset is None:
                return c.TEE_ERROR_TIME_NOT_SET
            secs, millis = self.sos.system_time()
            secs, millis = divmod(secs * 1000 + millis + offset, 1000)
            runner.write_ta(out, struct.pack("<II", secs & 0xFFFFFFFF, millis))
            return c.TEE_ERROR_OVERFLOW if secs > 0xFFFFFFFF else c.TEE_SUCCESS
        if cat != c.UTEE_TIME_CAT_REE:
            return c.TEE_ERROR_BAD_PARAMETERS
        runner.current.space.resolve(out, 8, write=True)  # validate before leaving for the RPC

        def finish(reply: RpcCmdReply) -> int:
            if reply.ret != c.TEE_SUCCESS:
                return reply.ret
            p = reply.params[0]
            runner.write_ta(out, struct.pack("<II", p.a & 0xFFFFFFFF, (p.b // 1_000_000) & 0xFFFFFFFF))
            return c.TEE_SUCCESS
        request = RpcCmd(c.OPTEE_RPC_CMD_GET_TIME,
                         [MsgParam(c.OPTEE_MSG_ATTR_TYPE_VALUE_OUTPUT, 0, 0, 0)])
        return NeedsRpc(request, finish)

    def sys_set_ta_time(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        """TEE_SetTAPersistentTime: the TA's persistent clock runs from the given TEE_Time on.
        Kept per TA UUID for the platform's lifetime (OP-TEE keeps it in secure storage)."""
        secs, millis = struct.unpack("<II", runner.read_ta(a[0], 8))
        if millis > 999:
            return self.c.TEE_ERROR_BAD_PARAMETERS
        now_s, now_ms = self.sos.system_time()
        self.ta_time_offsets[runner.current.uuid] = (secs * 1000 + millis) - (now_s * 1000 + now_ms)
        return self.c.TEE_SUCCESS

    def sys_random(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        size = a[1]
        if size > 1 << 20:
            return self.c.TEE_ERROR_BAD_PARAMETERS
        runner.write_ta(a[0], self.sos.random_bytes(size))
        return self.c.TEE_SUCCESS

    # --- properties (the core's sets; libutee serves ta_props itself) -------------------------
    def _prop_set(self, runner: UserModeRunner, handle: int) -> list[tuple[str, int, bytes]] | None:
        return self.sos.property_set(handle & 0xFFFFFFFF, runner)

    def sys_get_property_name_to_index(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        c = self.c
        props = self._prop_set(runner, a[0])
        if props is None:
            return c.TEE_ERROR_ITEM_NOT_FOUND
        if not a[1] or not a[2]:
            return c.TEE_ERROR_BAD_PARAMETERS
        name = runner.read_ta(a[1], min(a[2], 256))[:-1].split(b"\0", 1)[0].decode("utf-8", "replace")
        for index, (pname, _t, _v) in enumerate(props):
            if pname == name:
                runner.write_ta(a[3], struct.pack("<I", index))
                return c.TEE_SUCCESS
        return c.TEE_ERROR_ITEM_NOT_FOUND

    def sys_get_property(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        c = self.c
        props = self._prop_set(runner, a[0])
        index = a[1] & 0xFFFFFFFF
        if props is None or index >= len(props):
            return c.TEE_ERROR_ITEM_NOT_FOUND
        name, ptype, value = props[index]
        if a[6]:
            runner.write_ta(a[6], struct.pack("<I", ptype))
        result = c.TEE_SUCCESS
        for buf, len_ptr, data in ((a[2], a[3], name.encode() + b"\0"), (a[4], a[5], value)):
            if not len_ptr:
                continue
            have = struct.unpack("<I", runner.read_ta(len_ptr, 4))[0]
            runner.write_ta(len_ptr, struct.pack("<I", len(data)))
            if buf and have >= len(data):
                runner.write_ta(buf, data)
            elif buf or have < len(data):
                result = c.TEE_ERROR_SHORT_BUFFER
        return result

    # --- TA-to-TA and TA-to-PTA sessions (tee_svc_copy_param) --------------------------------
    def _callee_params(self, runner: UserModeRunner, up: int) -> list[TaParam] | int:
        """The caller's utee_params turned into the callee's params, or a TEE error."""
        c = self.c
        size = runner.params_size
        if self.check_access(runner, c.TEE_MEMORY_ACCESS_READ | c.TEE_MEMORY_ACCESS_WRITE
                             | c.TEE_MEMORY_ACCESS_ANY_OWNER, up, size) != c.TEE_SUCCESS:
            return c.TEE_ERROR_ACCESS_DENIED
        types, *vals = struct.unpack("<9Q", runner.read_ta(up, size)[:72])
        space = runner.current.space
        out: list[TaParam] = []
        for i in range(c.TEE_NUM_PARAMS):
            t = (types >> (4 * i)) & 0xF
            a, b = vals[2 * i], vals[2 * i + 1]
            if t in (c.TEE_PARAM_TYPE_VALUE_INPUT, c.TEE_PARAM_TYPE_VALUE_INOUT):
                out.append(TaParam(t, a & 0xFFFFFFFF, b & 0xFFFFFFFF))
            elif t in (c.TEE_PARAM_TYPE_NONE, c.TEE_PARAM_TYPE_VALUE_OUTPUT):
                out.append(TaParam(t))
            elif t in (c.TEE_PARAM_TYPE_MEMREF_INPUT, c.TEE_PARAM_TYPE_MEMREF_OUTPUT,
                       c.TEE_PARAM_TYPE_MEMREF_INOUT):
                if b == 0:
                    out.append(TaParam(t, va=0, size=0))
                    continue
                if a == 0:
                    return c.TEE_ERROR_BAD_PARAMETERS
                flags = c.TEE_MEMORY_ACCESS_READ | c.TEE_MEMORY_ACCESS_ANY_OWNER
                if t != c.TEE_PARAM_TYPE_MEMREF_INPUT:
                    flags |= c.TEE_MEMORY_ACCESS_WRITE
                if self.check_access(runner, flags, a, b) != c.TEE_SUCCESS:
                    return c.TEE_ERROR_ACCESS_DENIED
                maps = space.pages_in(a, b)
                if all(m.private for m in maps):
                    return c.TEE_ERROR_BAD_PARAMETERS       # a TA may not pass its private memory
                found = space.param_object(a, b)
                if found is None:
                    return c.TEE_ERROR_BAD_PARAMETERS
                out.append(TaParam(t, mobj=found[0], offset=found[1], size=b, va=a))
            else:
                return c.TEE_ERROR_BAD_PARAMETERS
        return out

    def _params_back(self, runner: UserModeRunner, up: int, params: list[TaParam]) -> None:
        c = self.c
        for i, p in enumerate(params):
            off = up + 8 + 16 * i
            if p.type in (c.TEE_PARAM_TYPE_VALUE_OUTPUT, c.TEE_PARAM_TYPE_VALUE_INOUT):
                runner.write_ta(off, struct.pack("<QQ", p.a, p.b))
            elif p.type in (c.TEE_PARAM_TYPE_MEMREF_OUTPUT, c.TEE_PARAM_TYPE_MEMREF_INOUT):
                runner.write_ta(off + 8, struct.pack("<Q", p.size))

    def _ret_orig(self, runner: UserModeRunner, ptr: int, origin: int) -> None:
        if ptr:
            runner.write_ta(ptr, struct.pack("<I", origin))

    def sys_open_ta_session(self, runner: UserModeRunner, a: tuple[int, ...]) -> Any:
        c = self.c
        dest, up, sess_ptr, orig_ptr = a[0], a[2], a[3], a[4]
        self._ret_orig(runner, orig_ptr, c.TEE_ORIGIN_TEE)
        private = c.TEE_MEMORY_ACCESS_READ | c.TEE_MEMORY_ACCESS_WRITE
        if (self.check_access(runner, c.TEE_MEMORY_ACCESS_READ, dest, 16) != c.TEE_SUCCESS
                or self.check_access(runner, private, sess_ptr, 4) != c.TEE_SUCCESS):
            return c.TEE_ERROR_ACCESS_DENIED
        import uuid as uuidlib
        target = uuidlib.UUID(bytes_le=runner.read_ta(dest, 16))
        params = self._callee_params(runner, up)
        if isinstance(params, int):
            return params
        caller = runner.current

        def finish(result: tuple[int, int, int]) -> int:
            ret, origin, sid = result
            runner.write_ta(sess_ptr, struct.pack("<I", sid if ret == c.TEE_SUCCESS else 0))
            self._ret_orig(runner, orig_ptr, origin)
            self._params_back(runner, up, params)
            return ret
        call = self.sos.ta_manager.open_session(target, c.TEE_LOGIN_TRUSTED_APP,
                                                caller.uuid.bytes, params, caller=caller)
        return NeedsCall(call, finish)

    def _own_session(self, runner: UserModeRunner, sid: int):
        s = self.sos.ta_manager.sessions.get(sid)
        return s if s is not None and s.caller is runner.current else None

    def sys_invoke_ta_command(self, runner: UserModeRunner, a: tuple[int, ...]) -> Any:
        c = self.c
        sid, cmd, up, orig_ptr = a[0] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF, a[3], a[4]
        self._ret_orig(runner, orig_ptr, c.TEE_ORIGIN_TEE)
        if self._own_session(runner, sid) is None:
            return c.TEE_ERROR_BAD_PARAMETERS
        params = self._callee_params(runner, up)
        if isinstance(params, int):
            return params

        def finish(result: tuple[int, int]) -> int:
            ret, origin = result
            self._ret_orig(runner, orig_ptr, origin)
            self._params_back(runner, up, params)
            return ret
        return NeedsCall(self.sos.ta_manager.invoke(sid, cmd, params), finish)

    def sys_close_ta_session(self, runner: UserModeRunner, a: tuple[int, ...]) -> Any:
        sid = a[0] & 0xFFFFFFFF
        if self._own_session(runner, sid) is None:
            return self.c.TEE_ERROR_BAD_PARAMETERS
        return NeedsCall(self.sos.ta_manager.close_session(sid), lambda result: result[0])

    # --- tzemu extension: physical address of a TA buffer, for programming DMA engines ------
    def sys_va_to_pa(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        """x0 = result, x1 = physical address of the mapped VA in x0, x2 = bytes physically
        contiguous from it.

        OP-TEE has no such syscall (its TAs reach DMA engines through core drivers); tzemu
        offers it to TAs that the platform lets program a device (``ta_device_maps``), so
        the decrypt TA can give the crypto engine physical source/destination addresses.
        """
        inst = runner.current
        if inst is None or inst.uuid not in self.sos.config.ta_device_maps:
            return self.c.TEE_ERROR_ACCESS_DENIED
        va = a[0]
        m = inst.space.pages.get(va & ~0xFFF)
        if m is None:
            return self.c.TEE_ERROR_ACCESS_DENIED
        run, page = 0x1000 - (va & 0xFFF), va & ~0xFFF
        while True:                       # x2 = bytes physically contiguous from va onwards
            nxt = inst.space.pages.get(page + 0x1000)
            if nxt is None or nxt.pa != m.pa + 0x1000 or nxt.secure != m.secure:
                break
            run, page, m = run + 0x1000, page + 0x1000, nxt
        first = inst.space.pages[va & ~0xFFF]
        runner.view.set_x(1, first.pa | (va & 0xFFF))
        runner.view.set_x(2, run)
        return self.c.TEE_SUCCESS

    # --- cache maintenance -------------------------------------------------------------------
    def sys_cache_operation(self, runner: UserModeRunner, a: tuple[int, ...]) -> int:
        c = self.c
        va, size, op = a[0], a[1], a[2] & 0xFFFFFFFF
        if not runner.current.flags & c.TA_FLAG_CACHE_MAINTENANCE:
            return c.TEE_ERROR_NOT_SUPPORTED
        maps = runner.current.space.pages_in(va, max(size, 1))
        if any(m is None or m.private for m in maps):
            return c.TEE_ERROR_ACCESS_DENIED
        if op not in (c.TEE_CACHECLEAN, c.TEE_CACHEFLUSH, c.TEE_CACHEINVALIDATE):
            return c.TEE_ERROR_NOT_SUPPORTED
        return c.TEE_SUCCESS


def deterministic_stream(seed: int, counter: int, size: int) -> bytes:
    """Bytes from SHA-256 in counter mode: the same seed gives the same TA-visible randomness."""
    out = bytearray()
    block = 0
    while len(out) < size:
        out += hashlib.sha256(struct.pack("<QQQ", seed, counter, block)).digest()
        block += 1
    return bytes(out[:size])
