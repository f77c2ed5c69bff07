"""The OP-TEE driver's generic part (call.c, core.c): sessions, messages, parameters, shm.

Backend-independent code builds ``optee_msg_arg`` messages in kernel memory, converts
``tee_param``s to OPTEE_MSG parameters (registered shm -> RMEM, contiguous unregistered shm ->
TMEM), and asks the transport (``smc_abi``; later ``ffa_abi``) to run them.

Protected buffers arrive here already resolved by the TEE core (linux_uapi.md §8): a dynamic
pool's buffer as its lent chunk shm (DYNAMIC, so RMEM {chunk offset + offset, size, lend
cookie}), a static pool's as its DMA_BUF shm (not DYNAMIC, so TMEM {carveout PA + buffer
offset + offset, size, shm cookie}).
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
from linux_side.optee.smc_abi import SmcAbi
from linux_side.tee.tee_shm import ShmIdTable, TeeShm

if TYPE_CHECKING:
    from linux_side.kernel import Kernel

RPC_NUM_PARAMS = 4
PAGELIST_ENTRIES = PAGE_SIZE // 8 - 1


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
        if backend != "smc":
            raise LinuxError(errno.ENODEV, f"optee: unknown backend {backend!r}")
        self.ops = SmcAbi(self)
        self.sessions: dict[int, Any] = {}     # session id -> owning context
        self.teedev: Any = None                # the TeeDevice, set by the kernel before probe

    def probe(self):
        return self.ops.probe()

    def gen_caps(self) -> int:
        return self.ops.gen_caps()

    # --- kernel shared memory ----------------------------------------------------------------
    def alloc_priv_shm(self, size: int, flags: int | None = None) -> TeeShm:
        """Driver-private, physically contiguous kernel memory (TEE_SHM_PRIV)."""
        c = self.c
        size = max(size, 1)
        pa = self.kernel.pages.alloc(size)
        self.kernel.conduit.write(pa, bytes(page_align(size)))
        npages = page_align(size) // PAGE_SIZE
        shm = TeeShm(None, size, c.TEE_SHM_PRIV if flags is None else flags,
                     tuple(pa + i * PAGE_SIZE for i in range(npages)), 0, pa)
        self.shm_table.new_cookie(shm)
        shm.release_cb.append(lambda s: self.kernel.pages.free(s.paddr))
        return shm

    def register_shm(self, shm: TeeShm) -> Generator:
        """Register a buffer with the secure world (OPTEE_MSG_CMD_REGISTER_SHM, NONCONTIG)."""
        c = self.c
        npages = len(shm.pages)
        list_pages = (npages + PAGELIST_ENTRIES - 1) // PAGELIST_ENTRIES
        lst = self.alloc_priv_shm(list_pages * PAGE_SIZE)
        try:
            for i in range(list_pages):
                chunk = shm.pages[i * PAGELIST_ENTRIES:(i + 1) * PAGELIST_ENTRIES]
                nxt = lst.paddr + (i + 1) * PAGE_SIZE if i + 1 < list_pages else 0
                raw = b"".join(p.to_bytes(8, "little") for p in chunk)
                raw = raw.ljust(PAGELIST_ENTRIES * 8, b"\0") + nxt.to_bytes(8, "little")
                self.kernel.conduit.write(lst.paddr + i * PAGE_SIZE, raw)
            param = MsgParam(c.OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT | c.OPTEE_MSG_ATTR_NONCONTIG,
                             lst.paddr | (shm.page_offset & (PAGE_SIZE - 1)), shm.size, shm.cookie)
            arg = yield from self.do_msg(None, MsgArg(cmd=c.OPTEE_MSG_CMD_REGISTER_SHM,
                                                      params=[param]))
        finally:
            self.shm_table.put(lst)
        if arg.ret != c.TEEC_SUCCESS:
            raise LinuxError(errno.EINVAL, f"optee: REGISTER_SHM refused with {arg.ret:#x}")
        shm.flags |= c.TEE_SHM_DYNAMIC

    def unregister_shm(self, shm: TeeShm) -> Generator:
        c = self.c
        param = MsgParam(c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT, 0, 0, shm.cookie)
        arg = yield from self.do_msg(None, MsgArg(cmd=c.OPTEE_MSG_CMD_UNREGISTER_SHM,
                                                  params=[param]))
        shm.flags &= ~c.TEE_SHM_DYNAMIC
        return arg.ret

    # --- messages ------------------------------------------------------------------------------
    def do_msg(self, ctx: Any, arg: MsgArg) -> Generator[Any, Any, MsgArg]:
        """Write ``arg`` to kernel memory, run the call, read the answer back."""
        n = len(arg.params)
        size = self.msg.size(n) + self.msg.size(RPC_NUM_PARAMS)
        shm = self.alloc_priv_shm(size)
        try:
            self.kernel.conduit.write(shm.paddr, self.msg.pack(arg))
            self.stats["calls"] += 1
            try:
                yield from self.ops.do_call_with_arg(ctx, shm, shm_rpc_view(shm, self.msg.size(n)))
            except LinuxError:
                return MsgArg(arg.cmd, arg.func, arg.session, arg.cancel_id,
                              self.c.TEEC_ERROR_COMMUNICATION, self.c.TEEC_ORIGIN_COMMS, arg.params)
            raw = self.kernel.conduit.read(shm.paddr, self.msg.size(n))
            return self.msg.unpack(raw, n)
        finally:
            self.shm_table.put(shm)

    def to_msg_params(self, params: list[TeeParam]) -> list[MsgParam]:
        """optee_to_msg_param: registered shm -> RMEM, contiguous kernel shm -> TMEM."""
        c = self.c
        out = []
        for p in params:
            t = p.attr & c.TEE_IOCTL_PARAM_ATTR_TYPE_MASK
            if t == c.TEE_IOCTL_PARAM_ATTR_TYPE_NONE:
                out.append(MsgParam(c.OPTEE_MSG_ATTR_TYPE_NONE))
            elif c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT <= t <= c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT:
                out.append(MsgParam(c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT + t - 1, p.a, p.b, p.c))
            else:
                k = t - c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT
                if p.shm is None:
                    out.append(MsgParam(c.OPTEE_MSG_ATTR_TYPE_TMEM_INPUT + k, 0, p.size, 0))
                elif p.shm.flags & c.TEE_SHM_DYNAMIC:
                    out.append(MsgParam(c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT + k, p.offset, p.size,
                                        p.shm.cookie))
                else:
                    cache = c.OPTEE_MSG_ATTR_CACHE_PREDEFINED << c.OPTEE_MSG_ATTR_CACHE_SHIFT
                    out.append(MsgParam((c.OPTEE_MSG_ATTR_TYPE_TMEM_INPUT + k) | cache,
                                        p.shm.pa_of(p.offset), p.size, p.shm.cookie))
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
    """The RPC argument that follows the message in the same buffer (CALL_WITH_RPC_ARG)."""
    return TeeShm(None, shm.size - offset, shm.flags, (), 0, shm.paddr + offset, cookie=0)
