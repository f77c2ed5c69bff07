"""OPTEE_MSG protected-memory commands: GET_PROTMEM_CONFIG, LEND/RECLAIM_PROTMEM (SMC ABI)
and ASSIGN_PROTMEM (FF-A), as a part of :class:`tee_os.entry_std.StdEntry`.

Refusals follow OP-TEE exactly, including its quirks: LEND/ASSIGN and an unknown-cookie
RECLAIM set only ``ret`` and leave ``ret_origin`` as the normal world wrote it.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Generator

from tee_os.mobj import MobjError
from tee_os.msg import MsgArg
from tee_os.protmem import ProtmemError

if TYPE_CHECKING:
    from tee_os.core import SecureOS


class _BadParam(Exception):
    """A parameter the secure OS refuses (TEE_ERROR_BAD_PARAMETERS, origin TEE)."""


class ProtmemCommands:
    sos: "SecureOS"
    transport: str

    # --- protected memory --------------------------------------------------------------------
    def cmd_get_protmem_config(self, arg: MsgArg) -> Generator:
        """p0 VALUE_INOUT {a = use case} -> {min size, alignment, PA width}; p1 memref OUTPUT
        for the attribute array (the SMC ABI returns none: p1 is left as it came)."""
        c, pm, sos = self.c, self.sos.protmem, self.sos
        yield from ()
        arg.ret_origin = c.TEE_ORIGIN_TEE
        mask = c.OPTEE_MSG_ATTR_TYPE_MASK
        outs = (c.OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT, c.OPTEE_MSG_ATTR_TYPE_RMEM_OUTPUT)  # RMEM = FMEM
        if (arg.num_params != 2 or arg.params[0].attr != c.OPTEE_MSG_ATTR_TYPE_VALUE_INOUT
                or arg.params[1].attr & mask not in outs or arg.params[0].a >= 0x7FFFFFFF):
            arg.ret = c.TEE_ERROR_BAD_PARAMETERS
            return
        try:
            min_size, align = pm.config(arg.params[0].a)
        except ProtmemError as exc:
            self.sos.log_event("protmem_config_refused", detail=str(exc))
            arg.ret = getattr(c, exc.code_name)
            return
        p0 = arg.params[0]
        p0.a, p0.b, p0.c = min_size, align, 64
        arg.ret = c.TEE_SUCCESS
        if self.transport == "ffa":
            # One u32 memory attribute per receiver: {endpoint id, permission RW, flags 0}.
            entry = struct.pack("<HBB", self.sos.ffa.sp_id, c.FFA_MEM_ACC_RW, 0)
            p1 = arg.params[1]
            if p1.c == c.OPTEE_MSG_FMEM_INVALID_GLOBAL_ID or p1.b < len(entry):
                p1.b = len(entry)
                arg.ret = c.TEE_ERROR_SHORT_BUFFER
                return
            try:
                mobj, offset = self._fmem_mobj(p1)
                pa = mobj.pa_ranges(offset, len(entry))[0][0]
            except (_BadParam, MobjError):
                arg.ret = c.TEE_ERROR_BAD_PARAMETERS
                return
            sos.write_ns(pa, entry)
            p1.b = len(entry)

    def cmd_assign_protmem(self, arg: MsgArg) -> Generator:
        """p0 VALUE_INPUT {a = FF-A handle of the lent chunk, b = use case} (FF-A only)."""
        c, sos = self.c, self.sos
        yield from ()
        if arg.num_params != 1 or arg.params[0].attr != c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT:
            arg.ret = c.TEE_ERROR_BAD_PARAMETERS
            return
        try:
            sos.protmem.assign(arg.params[0].a, arg.params[0].b)
        except ProtmemError as exc:
            sos.log_event("protmem_assign_refused", detail=str(exc))
            arg.ret = getattr(c, exc.code_name)
            return
        arg.ret = c.TEE_SUCCESS

    def cmd_lend_protmem(self, arg: MsgArg) -> Generator:
        """p0 VALUE_INPUT {a = use case}, p1 TMEM_INPUT {PA, size, cookie}. Refusals set only
        ``ret`` (BAD_PARAMETERS): OP-TEE leaves ret_origin as the normal world wrote it."""
        c, sos = self.c, self.sos
        yield from ()
        if (arg.num_params != 2 or arg.params[0].attr != c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT
                or arg.params[1].attr != c.OPTEE_MSG_ATTR_TYPE_TMEM_INPUT):
            arg.ret = c.TEE_ERROR_BAD_PARAMETERS
            return
        use_case, p1 = arg.params[0].a, arg.params[1]
        try:
            sos.protmem.lend(use_case, p1.a, p1.b, p1.c)
        except ProtmemError as exc:
            sos.log_event("protmem_lend_refused", detail=str(exc), pa=p1.a, size=p1.b)
            arg.ret = getattr(c, exc.code_name)
            return
        arg.ret = c.TEE_SUCCESS

    def cmd_reclaim_protmem(self, arg: MsgArg) -> Generator:
        """1 param carrying the cookie: RMEM_INPUT (rmem.shm_ref, what Linux sends) or
        VALUE_INPUT (value.a, what the header comment documents)."""
        c, sos = self.c, self.sos
        yield from ()
        if arg.num_params != 1 or arg.params[0].attr not in (c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT,
                                                              c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT):
            return self._fail(arg, c.TEE_ERROR_BAD_PARAMETERS)
        p = arg.params[0]
        cookie = p.c if p.attr == c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT else p.a
        try:
            sos.protmem.reclaim(cookie)
        except ProtmemError as exc:
            sos.log_event("protmem_reclaim_refused", detail=str(exc), cookie=cookie)
            arg.ret = getattr(c, exc.code_name)
            return
        arg.ret = c.TEE_SUCCESS

