"""The OP-TEE driver's generic part (call.c, core.c): sessions, messages, parameters, shm.

Backend-independent code builds ``optee_msg_arg`` messages in kernel memory, converts
``tee_param``s to OPTEE_MSG parameters and asks the transport (``self.ops``) to run them. The
transport is chosen by name: ``"smc"`` (smc_abi: SMC calls, memrefs as RMEM/TMEM, shm
registered with MSG REGISTER_SHM) or ``"ffa"`` (ffa_abi: FF-A direct messages, memrefs as FMEM,
shm shared with FFA_MEM_SHARE). What differs lives behind these transport operations:
``get_msg_arg``/``free_msg_arg`` (where a message is written), ``do_call_with_arg``,
``to_msg_memref``, ``shm_register``/``shm_unregister``, ``pool_op_alloc`` (what a new
driver-private buffer needs), ``lend_protmem``/``reclaim_protmem``, ``gen_caps``, ``remove``.

Protected buffers arrive here already resolved by the TEE core (linux_uapi.md §8): a dynamic
pool's buffer as its lent chunk shm (DYNAMIC, so RMEM / FMEM {chunk offset + offset, size,
lend cookie or FF-A handle}), a static pool's as its DMA_BUF shm (not DYNAMIC, so TMEM
{carveout PA + buffer offset + offset, size, shm cookie}).
"""
from __future__ import annotations

import errno
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generator

from emu.abi import AbiSet
from linux_side.errors import LinuxError, einval
from linux_side.mm import PAGE_SIZE, page_align
from linux_side.optee.optee_msg import MsgArg, MsgParam, OpteeMsgLayout
from linux_side.optee.rpc import OpteeRpc
from linux_side.tee.tee_shm import ShmIdTable, TeeShm

if TYPE_CHECKING:
    from linux_side.kernel import Kernel

RPC_NUM_PARAMS = 4


@dataclass
class TeeParam:
    """``struct tee_param``: a value triple or a memref (shm, offset, size)."""

    attr: int
    a: int = 0
    b: int = 0
    c: int = 0
    shm: TeeShm | None = None

    @property
    def offset(self) -> int:
        return self.a

    @property
    def size(self) -> int:
        return self.b


class OpteeDriver:
    def __init__(self, kernel: "Kernel", abi: AbiSet, backend: str = "smc"):
        self.kernel = kernel
        self.abi = abi
        self.c = abi.c
        self.msg = OpteeMsgLayout(abi)
        self.shm_table = ShmIdTable()
        self.stats: Counter[str] = Counter()
        self.rpc = OpteeRpc(self)
        self.ops: Any
        if backend == "smc":
            from linux_side.optee.smc_abi import SmcAbi
            self.ops = SmcAbi(self)
        elif backend == "ffa":
            from linux_side.optee.ffa_abi import FfaAbi
            self.ops = FfaAbi(self)
        else:
            raise LinuxError(errno.ENODEV, f"optee: unknown backend {backend!r}")
        self.sessions: dict[int, Any] = {}     # session id -> owning context
        self.teedev: Any = None                # the TeeDevice, set by the kernel before probe

    def probe(self):
        return self.ops.probe()

    def gen_caps(self) -> int:
        return self.ops.gen_caps()

    # --- kernel shared memory ----------------------------------------------------------------
    def alloc_priv_shm(self, size: int, flags: int | None = None) -> TeeShm:
        """Physically contiguous kernel memory from the driver's pool (TEE_SHM_PRIV unless
        ``flags`` say otherwise); the transport's ``pool_op_alloc`` registers it if it must
        (FF-A shares every private buffer, SMC none)."""
        c = self.c
        size = max(size, 1)
        pa = self.kernel.pages.alloc(size)
        self.kernel.conduit.write(pa, bytes(page_align(size)))
        npages = page_align(size) // PAGE_SIZE
        shm = TeeShm(None, size, c.TEE_SHM_PRIV if flags is None else flags,
                     tuple(pa + i * PAGE_SIZE for i in range(npages)), 0, pa)
        self.shm_table.new_cookie(shm)
        shm.release_cb.append(lambda s: self.kernel.pages.free(s.paddr))
        try:
            self.ops.pool_op_alloc(shm)
        except BaseException:
            self.shm_table.put(shm)
            raise
        return shm

    def register_shm(self, shm: TeeShm) -> Generator:
        """Make a buffer known to the secure world (sets TEE_SHM_DYNAMIC)."""
        return (yield from self.ops.shm_register(shm))

    def unregister_shm(self, shm: TeeShm) -> Generator:
        return (yield from self.ops.shm_unregister(shm))

    # --- messages ------------------------------------------------------------------------------
    def do_msg(self, ctx: Any, arg: MsgArg) -> Generator[Any, Any, MsgArg]:
        """Write ``arg`` where the transport wants it, run the call, read the answer back. A
        transport failure answers TEEC_ERROR_COMMUNICATION from origin COMMS."""
        n = len(arg.params)
        shm, offs = self.ops.get_msg_arg(n)
        try:
            self.kernel.conduit.write(shm.paddr + offs, self.msg.pack(arg))
            self.stats["calls"] += 1
            try:
                yield from self.ops.do_call_with_arg(ctx, shm, offs)
            except LinuxError:
                return MsgArg(arg.cmd, arg.func, arg.session, arg.cancel_id,
                              self.c.TEEC_ERROR_COMMUNICATION, self.c.TEEC_ORIGIN_COMMS, arg.params)
            raw = self.kernel.conduit.read(shm.paddr + offs, self.msg.size(n))
            return self.msg.unpack(raw, n)
        finally:
            self.ops.free_msg_arg(shm, offs)

    def to_msg_params(self, params: list[TeeParam]) -> list[MsgParam]:
        """optee_to_msg_param: values here, memrefs by the transport (``to_msg_memref``)."""
        c = self.c
        out = []
        for p in params:
            t = p.attr & c.TEE_IOCTL_PARAM_ATTR_TYPE_MASK
            if t == c.TEE_IOCTL_PARAM_ATTR_TYPE_NONE:
                out.append(MsgParam(c.OPTEE_MSG_ATTR_TYPE_NONE))
            elif c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT <= t <= c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT:
                out.append(MsgParam(c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT + t - 1, p.a, p.b, p.c))
            else:
                out.append(self.ops.to_msg_memref(p, t - c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT))
        return out

    def from_msg_params(self, params: list[TeeParam], msg: list[MsgParam]) -> None:
        """Copy outputs back: value a/b/c for value outputs, size for memref outputs."""
        c = self.c
        for p, m in zip(params, msg):
            t = p.attr & c.TEE_IOCTL_PARAM_ATTR_TYPE_MASK
            if t in (c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT):
                p.a, p.b, p.c = m.a, m.b, m.c
            elif t in (c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT,
                       c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT):
                p.b = m.b

    # --- the TEE driver ops ---------------------------------------------------------------------
    def open_session(self, ctx: Any, uuid: bytes, clnt_uuid: bytes, login: int,
                     cancel_id: int, params: list[TeeParam]) -> Generator:
        c = self.c
        meta = c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT | c.OPTEE_MSG_ATTR_META
        p0 = MsgParam(meta, int.from_bytes(uuid[:8], "little"), int.from_bytes(uuid[8:], "little"))
        p1 = MsgParam(meta, int.from_bytes(clnt_uuid[:8], "little"),
                      int.from_bytes(clnt_uuid[8:], "little"), login)
        arg = MsgArg(cmd=c.OPTEE_MSG_CMD_OPEN_SESSION, cancel_id=cancel_id,
                     params=[p0, p1] + self.to_msg_params(params))
        back = yield from self.do_msg(ctx, arg)
        self.from_msg_params(params, back.params[2:])
        if back.ret == c.TEEC_SUCCESS:
            self.sessions[back.session] = ctx
        return back.session, back.ret, back.ret_origin

    def invoke_func(self, ctx: Any, session: int, func: int, cancel_id: int,
                    params: list[TeeParam]) -> Generator:
        c = self.c
        if self.sessions.get(session) is not ctx:
            raise einval(f"optee: session {session:#x} is not open in this context")
        arg = MsgArg(cmd=c.OPTEE_MSG_CMD_INVOKE_COMMAND, func=func, session=session,
                     cancel_id=cancel_id, params=self.to_msg_params(params))
        back = yield from self.do_msg(ctx, arg)
        self.from_msg_params(params, back.params)
        return back.ret, back.ret_origin

    def close_session(self, ctx: Any, session: int) -> Generator:
        c = self.c
        if self.sessions.get(session) is not ctx:
            raise einval(f"optee: session {session:#x} is not open in this context")
        del self.sessions[session]
        yield from self.do_msg(ctx, MsgArg(cmd=c.OPTEE_MSG_CMD_CLOSE_SESSION, session=session))
        return 0

    def cancel_req(self, ctx: Any, cancel_id: int, session: int) -> Generator:
        c = self.c
        if self.sessions.get(session) is not ctx:
            raise einval(f"optee: session {session:#x} is not open in this context")
        yield from self.do_msg(ctx, MsgArg(cmd=c.OPTEE_MSG_CMD_CANCEL, session=session,
                                           cancel_id=cancel_id))
        return 0


def shm_rpc_view(shm: TeeShm, offset: int) -> TeeShm:
    """The RPC argument that follows the message in the same buffer, ``offset`` bytes in."""
    return TeeShm(None, shm.size - offset, shm.flags, (), 0, shm.paddr + offset, cookie=0)
