"""RPC commands from the secure world (drivers/tee/optee/rpc.c and the supplicant path).

The kernel serves GET_TIME, SHM_ALLOC and SHM_FREE itself (the FF-A transport replaces the last
two with its own, which answer FMEM); other commands (LOAD_TA, FS, ...) go to tee-supplicant.
Every reply carries ret_origin = TEEC_ORIGIN_COMMS.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from linux_side.errors import LinuxError
from linux_side.optee.optee_msg import MsgArg, MsgParam
from linux_side.tee.tee_shm import TeeShm

if TYPE_CHECKING:
    from linux_side.optee.optee import OpteeDriver

MAX_RPC_PARAMS = 4


class OpteeRpc:
    def __init__(self, driver: "OpteeDriver"):
        self.drv = driver
        self.c = driver.c
        c = self.c
        self.handlers = {
            c.OPTEE_RPC_CMD_GET_TIME: self.get_time,
            c.OPTEE_RPC_CMD_SHM_ALLOC: self.shm_alloc,
            c.OPTEE_RPC_CMD_SHM_FREE: self.shm_free,
        }

    def handle_cmd(self, ctx: Any, arg_shm: TeeShm) -> None:
        drv, c = self.drv, self.c
        conduit = drv.kernel.conduit
        head = conduit.read(arg_shm.paddr, drv.msg.header)
        n = drv.msg.num_params(head)
        if n > MAX_RPC_PARAMS:
            arg = drv.msg.unpack(head, 0)
            arg.ret, arg.ret_origin = c.TEEC_ERROR_BAD_PARAMETERS, c.TEEC_ORIGIN_COMMS
            conduit.write(arg_shm.paddr, drv.msg.pack(arg))
            return
        arg = drv.msg.unpack(conduit.read(arg_shm.paddr, drv.msg.size(n)), n)
        drv.stats[f"rpc_cmd_{arg.cmd}"] += 1
        handler = self.handlers.get(arg.cmd)
        if handler is not None:
            handler(arg)
        else:
            self.supplicant(arg)
        arg.ret_origin = c.TEEC_ORIGIN_COMMS
        conduit.write(arg_shm.paddr, drv.msg.pack(arg))

    def supplicant(self, arg: MsgArg) -> None:
        """optee_supp_thrd_req: tee-supplicant gets memrefs by address (the transport says
        how its memref parameters resolve); only their sizes come back."""
        drv = self.drv
        params = arg.params
        arg.params = [drv.ops.rpc_param_for_supp(p) for p in params]
        try:
            drv.kernel.supplicant.handle(arg, drv)
        finally:
            for orig, seen in zip(params, arg.params):
                if seen is not orig:
                    orig.b = seen.b
            arg.params = params

    def get_time(self, arg: MsgArg) -> None:
        c = self.c
        if len(arg.params) != 1 or arg.params[0].attr & c.OPTEE_MSG_ATTR_TYPE_MASK \
                != c.OPTEE_MSG_ATTR_TYPE_VALUE_OUTPUT:
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        secs, nsecs = self.drv.kernel.realtime()
        arg.params[0].a, arg.params[0].b = secs, nsecs
        arg.ret = c.TEEC_SUCCESS

    def shm_alloc(self, arg: MsgArg) -> None:
        c, drv = self.c, self.drv
        if len(arg.params) != 1 or arg.params[0].attr != c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT:
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        shm_type, size = arg.params[0].a, arg.params[0].b
        if shm_type not in (c.OPTEE_RPC_SHM_TYPE_APPL, c.OPTEE_RPC_SHM_TYPE_KERNEL) or size == 0:
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        try:
            if drv.kernel.faults.hit("supplicant.shm_alloc"):
                raise LinuxError(errno.ENOMEM, "injected fault: RPC shm allocation failed")
            shm = drv.alloc_priv_shm(size)
        except OSError:
            arg.ret = c.TEEC_ERROR_OUT_OF_MEMORY
            return
        shm.extra["rpc_type"] = shm_type
        arg.params[0] = MsgParam(c.OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT, shm.paddr, size, shm.cookie)
        arg.ret = c.TEEC_SUCCESS

    def shm_free(self, arg: MsgArg) -> None:
        c, drv = self.c, self.drv
        if len(arg.params) != 1 or arg.params[0].attr != c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT:
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        shm = drv.shm_table.by_cookie.get(arg.params[0].b)
        if shm is None or "rpc_type" not in shm.extra:
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        drv.shm_table.put(shm)
        arg.ret = c.TEEC_SUCCESS
