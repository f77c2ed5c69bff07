"""The OP-TEE driver's SMC ABI transport (drivers/tee/optee/smc_abi.c).

Probe: API UID, OS revision, API revision, capability exchange, thread count, /dev/tee0,
protected memory, shm cache.
Calls: ``optee_smc_do_call_with_arg`` picks CALL_WITH_RPC_ARG (the driver's message buffers are
contiguous kernel pages that are not registered, so it has an RPC arg but no registered arg),
sleeps on the call queue on ETHREAD_LIMIT, and serves RPCs until the secure world answers.

Protected memory (optee_smc_msg.md §9): with sec cap PROTMEM, the fast call GET_PROTMEM_CONFIG
gives a static carveout per use case; with DYNAMIC_PROTMEM (or when the static query fails),
MSG GET_PROTMEM_CONFIG sets up a dynamic pool, lent with MSG LEND_PROTMEM and reclaimed with
MSG RECLAIM_PROTMEM. One heap per use case in ``KernelConfig.protmem_use_cases`` (the kernel
registers only secure-video). Use case 1 asks the fast call with a1 = 0, exactly as Linux
v6.18 does; tzemu's use cases 2 and 3 put the use case in a1 (a tzemu extension).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator

from linux_side.errors import LinuxError, einval
from linux_side.mm import PAGE_SIZE
from linux_side.optee.optee_msg import MsgArg, MsgParam
from linux_side.optee.protmem import (optee_protmem_alloc_dyn_pool, optee_protmem_pool_init,
                                      optee_set_dma_mask)
from linux_side.sched import Resched, Sleep, WaitQueue
from linux_side.tee.tee_protmem_pool import TeeProtmemPool, tee_protmem_static_pool_alloc
from linux_side.tee.tee_shm import TeeShm

if TYPE_CHECKING:
    from linux_side.optee.optee import OpteeDriver, TeeParam

PAGELIST_ENTRIES = PAGE_SIZE // 8 - 1


@dataclass
class ProbeInfo:
    api_uid: tuple[int, int, int, int] = (0, 0, 0, 0)
    api_revision: tuple[int, int] = (0, 0)
    os_revision: tuple[int, int, int] = (0, 0, 0)
    sec_caps: int = 0
    thread_count: int = 0
    protmem: dict[int, str] = field(default_factory=dict)   # use case -> "static"/"dynamic"
    log: list[str] = field(default_factory=list)


def reg_pair(value: int) -> tuple[int, int]:
    return (value >> 32) & 0xFFFFFFFF, value & 0xFFFFFFFF


def reg_pair_to(hi: int, lo: int) -> int:
    return ((hi & 0xFFFFFFFF) << 32) | (lo & 0xFFFFFFFF)


class SmcAbi:
    """SMC-ABI backend operations used by the generic OP-TEE driver code."""

    name = "smc"

    def __init__(self, driver: "OpteeDriver"):
        self.drv = driver
        self.c = driver.c
        self.kernel = driver.kernel
        self.call_queue = WaitQueue("optee call queue")
        self.info = ProbeInfo()
        self.rpc_param_count = 0

    def smc(self, *args: int) -> tuple[int, ...]:
        regs = tuple(args) + (0,) * (8 - len(args))
        return self.kernel.conduit.smc(*regs)

    def log(self, line: str) -> None:
        self.info.log.append(line)
        self.kernel.log(line)

    # --- probe ---------------------------------------------------------------------------------
    def probe(self) -> ProbeInfo:
        c, info = self.c, self.info
        r = self.smc(c.OPTEE_SMC_CALLS_UID)
        info.api_uid = tuple(x & 0xFFFFFFFF for x in r[:4])
        if info.api_uid != (c.OPTEE_MSG_UID_0, c.OPTEE_MSG_UID_1, c.OPTEE_MSG_UID_2,
                            c.OPTEE_MSG_UID_3):
            raise LinuxError(errno.ENODEV, "optee: api uid mismatch")
        r = self.smc(c.OPTEE_SMC_CALL_GET_OS_REVISION)
        info.os_revision = (r[0] & 0xFFFFFFFF, r[1] & 0xFFFFFFFF, r[2] & 0xFFFFFFFF)
        self.log("optee: revision %d.%d" % info.os_revision[:2])
        r = self.smc(c.OPTEE_SMC_CALLS_REVISION)
        info.api_revision = (r[0] & 0xFFFFFFFF, r[1] & 0xFFFFFFFF)
        if info.api_revision[0] != c.OPTEE_MSG_REVISION_MAJOR or \
                info.api_revision[1] < c.OPTEE_MSG_REVISION_MINOR:
            raise LinuxError(errno.ENODEV, "optee: api revision mismatch")
        r = self.smc(c.OPTEE_SMC_EXCHANGE_CAPABILITIES, c.OPTEE_SMC_NSEC_CAP_UNIPROCESSOR)
        if r[0] & 0xFFFFFFFF != c.OPTEE_SMC_RETURN_OK:
            raise LinuxError(errno.EINVAL, "optee: capabilities mismatch")
        info.sec_caps = r[1] & 0xFFFFFFFF
        self.rpc_param_count = r[3] & 0xFF
        if not info.sec_caps & c.OPTEE_SMC_SEC_CAP_DYNAMIC_SHM:
            raise LinuxError(errno.EINVAL, "optee: neither reserved nor dynamic shared memory")
        r = self.smc(c.OPTEE_SMC_GET_THREAD_COUNT)
        info.thread_count = r[1] & 0xFFFFFFFF if r[0] & 0xFFFFFFFF == c.OPTEE_SMC_RETURN_OK else 0
        if self.drv.teedev is not None:
            self.drv.teedev.register()
            self.protmem_pool_init()
        self.disable_shm_cache()
        self.smc(c.OPTEE_SMC_ENABLE_SHM_CACHE)
        self.log("optee: dynamic shared memory is enabled")
        return info

    def disable_shm_cache(self) -> None:
        c = self.c
        for _ in range(1024):
            r = self.smc(c.OPTEE_SMC_DISABLE_SHM_CACHE)
            if r[0] & 0xFFFFFFFF == c.OPTEE_SMC_RETURN_ENOTAVAIL:
                return
            if r[0] & 0xFFFFFFFF == c.OPTEE_SMC_RETURN_OK:
                shm = self.drv.shm_table.by_cookie.get(reg_pair_to(r[1], r[2]))
                if shm is not None:
                    self.drv.shm_table.put(shm)

    def remove(self) -> None:
        self.disable_shm_cache()

    # --- shared memory and messages ---------------------------------------------------------------
    def pool_op_alloc(self, shm: TeeShm) -> None:
        """Driver-private memory is never registered over SMC (passed as TMEM by address)."""

    def shm_register(self, shm: TeeShm) -> Generator:
        """OPTEE_MSG_CMD_REGISTER_SHM with a NONCONTIG page list; ``-EINVAL`` if refused."""
        c, drv = self.c, self.drv
        npages = len(shm.pages)
        list_pages = (npages + PAGELIST_ENTRIES - 1) // PAGELIST_ENTRIES
        lst = drv.alloc_priv_shm(list_pages * PAGE_SIZE)
        try:
            for i in range(list_pages):
                chunk = shm.pages[i * PAGELIST_ENTRIES:(i + 1) * PAGELIST_ENTRIES]
                nxt = lst.paddr + (i + 1) * PAGE_SIZE if i + 1 < list_pages else 0
                raw = b"".join(p.to_bytes(8, "little") for p in chunk)
                raw = raw.ljust(PAGELIST_ENTRIES * 8, b"\0") + nxt.to_bytes(8, "little")
                self.kernel.conduit.write(lst.paddr + i * PAGE_SIZE, raw)
            param = MsgParam(c.OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT | c.OPTEE_MSG_ATTR_NONCONTIG,
                             lst.paddr | (shm.page_offset & (PAGE_SIZE - 1)), shm.size, shm.cookie)
            arg = yield from drv.do_msg(None, MsgArg(cmd=c.OPTEE_MSG_CMD_REGISTER_SHM,
                                                     params=[param]))
        finally:
            drv.shm_table.put(lst)
        if arg.ret != c.TEEC_SUCCESS:
            raise LinuxError(errno.EINVAL, f"optee: REGISTER_SHM refused with {arg.ret:#x}")
        shm.flags |= c.TEE_SHM_DYNAMIC

    def shm_unregister(self, shm: TeeShm) -> Generator:
        c = self.c
        param = MsgParam(c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT, 0, 0, shm.cookie)
        arg = yield from self.drv.do_msg(None, MsgArg(cmd=c.OPTEE_MSG_CMD_UNREGISTER_SHM,
                                                      params=[param]))
        shm.flags &= ~c.TEE_SHM_DYNAMIC
        return arg.ret

    def get_msg_arg(self, num_params: int) -> tuple[TeeShm, int]:
        """A fresh private buffer per call: the message and, after it, the RPC argument."""
        from linux_side.optee.optee import RPC_NUM_PARAMS
        msg = self.drv.msg
        return self.drv.alloc_priv_shm(msg.size(num_params) + msg.size(RPC_NUM_PARAMS)), 0

    def free_msg_arg(self, shm: TeeShm, offs: int) -> None:
        self.drv.shm_table.put(shm)

    def to_msg_memref(self, p: "TeeParam", k: int) -> MsgParam:
        """Registered shm -> RMEM {offset, size, cookie}; contiguous kernel shm -> TMEM {PA,
        size, cookie}; no shm -> a NULL TMEM."""
        c = self.c
        if p.shm is None:
            return MsgParam(c.OPTEE_MSG_ATTR_TYPE_TMEM_INPUT + k, 0, p.size, 0)
        if p.shm.flags & c.TEE_SHM_DYNAMIC:
            return MsgParam(c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT + k, p.offset, p.size, p.shm.cookie)
        cache = c.OPTEE_MSG_ATTR_CACHE_PREDEFINED << c.OPTEE_MSG_ATTR_CACHE_SHIFT
        return MsgParam((c.OPTEE_MSG_ATTR_TYPE_TMEM_INPUT + k) | cache, p.shm.pa_of(p.offset),
                        p.size, p.shm.cookie)

    def rpc_param_for_supp(self, p: MsgParam) -> MsgParam:
        """What tee-supplicant sees of an RPC parameter: TMEM already carries the address."""
        return p

    # --- protected memory -----------------------------------------------------------------
    def protmem_pool_init(self) -> None:
        """optee_protmem_pool_init, once per configured use case. A failure only logs
        "Protected memory service not available" and leaves that heap unregistered."""
        c, info, drv = self.c, self.info, self.drv
        protm = info.sec_caps & c.OPTEE_SMC_SEC_CAP_PROTMEM
        dyn = info.sec_caps & c.OPTEE_SMC_SEC_CAP_DYNAMIC_PROTMEM
        if not (protm or dyn):
            return

        def make_pool(use_case: int) -> TeeProtmemPool:
            """The static carveout when the secure world has one, else a dynamic pool."""
            error: LinuxError | None = None
            if protm:
                try:
                    return self.static_protmem_pool_init(use_case)
                except LinuxError as exc:
                    error = exc
            if dyn:
                return optee_protmem_alloc_dyn_pool(drv, use_case)
            raise error or einval("no pool")

        optee_protmem_pool_init(drv, self.kernel.config.protmem_use_cases, make_pool,
                                info.protmem, self.log)

    def static_protmem_pool_init(self, use_case: int) -> TeeProtmemPool:
        """Fast call GET_PROTMEM_CONFIG -> DMA mask -> static pool over [a1, a1 + a2).
        ``-EINVAL`` when a0 is not OK. (The kernel memremaps the range write-combined only to
        get struct pages; it never touches it, so nothing is mapped here.)"""
        c = self.c
        a1 = 0 if use_case == c.TEE_DMA_HEAP_SECURE_VIDEO_PLAY else use_case
        r = [x & 0xFFFFFFFF for x in self.smc(c.OPTEE_SMC_GET_PROTMEM_CONFIG, a1)]
        status, start, size, pa_width = r[:4]
        if status != c.OPTEE_SMC_RETURN_OK:
            raise einval(f"GET_PROTMEM_CONFIG(a1={a1}) returned {status:#x}")
        optee_set_dma_mask(self.drv, pa_width)
        return tee_protmem_static_pool_alloc(self.kernel, start, size)

    def lend_protmem(self, protmem: TeeShm, mem_attrs: tuple[int, ...], use_case: int) -> Generator:
        """MSG LEND_PROTMEM: p0 VALUE_INPUT a = use case, p1 TMEM_INPUT {chunk PA, size,
        cookie}; the attributes are not sent over SMC. ``-EINVAL`` unless ret is SUCCESS."""
        c = self.c
        arg = MsgArg(cmd=c.OPTEE_MSG_CMD_LEND_PROTMEM, params=[
            MsgParam(c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT, use_case),
            MsgParam(c.OPTEE_MSG_ATTR_TYPE_TMEM_INPUT, protmem.paddr, protmem.size,
                     protmem.cookie)])
        back = yield from self.drv.do_msg(None, arg)
        if back.ret != c.TEEC_SUCCESS:
            raise einval(f"optee: LEND_PROTMEM of {protmem.paddr:#x}+{protmem.size:#x} refused "
                         f"({back.ret:#x})")
        protmem.extra["sec_world_id"] = protmem.cookie

    def reclaim_protmem(self, protmem: TeeShm) -> Generator:
        """MSG RECLAIM_PROTMEM as Linux sends it: RMEM_INPUT {offs 0, size 0, shm_ref =
        cookie}. ``-EINVAL`` unless ret is SUCCESS."""
        c = self.c
        arg = MsgArg(cmd=c.OPTEE_MSG_CMD_RECLAIM_PROTMEM, params=[
            MsgParam(c.OPTEE_MSG_ATTR_TYPE_RMEM_INPUT, 0, 0, protmem.cookie)])
        back = yield from self.drv.do_msg(None, arg)
        if back.ret != c.TEEC_SUCCESS:
            raise einval(f"optee: RECLAIM_PROTMEM of cookie {protmem.cookie:#x} refused "
                         f"({back.ret:#x})")
        protmem.extra.pop("sec_world_id", None)

    # --- gen caps ------------------------------------------------------------------------------
    def gen_caps(self) -> int:
        c = self.c
        caps = c.TEE_GEN_CAP_GP
        if self.info.sec_caps & c.OPTEE_SMC_SEC_CAP_DYNAMIC_SHM:
            caps |= c.TEE_GEN_CAP_REG_MEM
        if self.info.sec_caps & c.OPTEE_SMC_SEC_CAP_MEMREF_NULL:
            caps |= c.TEE_GEN_CAP_MEMREF_NULL
        return caps

    # --- calls -----------------------------------------------------------------------------------
    def do_call_with_arg(self, ctx: Any, shm: TeeShm, offs: int) -> Generator:
        """Issue one yielding call for the message at ``offs`` in ``shm`` (its RPC argument
        right after it); returns 0 or raises on a transport failure."""
        from linux_side.optee.optee import shm_rpc_view
        c, drv = self.c, self.drv
        num = drv.msg.num_params(self.kernel.conduit.read(shm.paddr + offs, drv.msg.header))
        arg_shm = shm_rpc_view(shm, offs) if offs else shm
        rpc_shm: TeeShm | None = shm_rpc_view(shm, offs + drv.msg.size(num))
        if rpc_shm is not None:
            fid = c.OPTEE_SMC_CALL_WITH_RPC_ARG
        else:
            fid = c.OPTEE_SMC_CALL_WITH_ARG
        hi, lo = reg_pair(arg_shm.paddr)
        args = [fid, hi, lo, 0, 0, 0, 0, 0]
        held_rpc_shms: list[TeeShm] = []
        try:
            while True:
                r = self.smc(*args)
                a0 = r[0] & 0xFFFFFFFF
                if a0 == c.OPTEE_SMC_RETURN_ETHREAD_LIMIT:
                    drv.stats["ethread_limit"] += 1
                    yield Sleep(self.call_queue)
                    continue
                if (a0 & c.OPTEE_SMC_RETURN_RPC_PREFIX_MASK) == c.OPTEE_SMC_RETURN_RPC_PREFIX \
                        and a0 != c.OPTEE_SMC_RETURN_UNKNOWN_FUNCTION:
                    args = yield from self._handle_rpc(ctx, r, rpc_shm, held_rpc_shms)
                    continue
                if a0 != c.OPTEE_SMC_RETURN_OK:
                    drv.stats["call_errors"] += 1
                    raise LinuxError(errno.EIO, f"optee: yielding call returned {a0:#x}")
                return 0
        finally:
            self.call_queue.wake_one()

    def _handle_rpc(self, ctx: Any, r: tuple[int, ...], rpc_shm: TeeShm | None,
                    held: list[TeeShm]) -> Generator:
        """optee_handle_rpc: serve one RPC and build the RETURN_FROM_RPC registers."""
        c, drv = self.c, self.drv
        func = r[0] & c.OPTEE_SMC_RETURN_RPC_FUNC_MASK
        out = [c.OPTEE_SMC_CALL_RETURN_FROM_RPC, 0, 0, r[3], r[4], r[5], r[6], r[7]]
        drv.stats["rpc"] += 1
        if func == c.OPTEE_SMC_RPC_FUNC_ALLOC:
            try:
                shm = drv.alloc_priv_shm(r[1] & 0xFFFFFFFF)
            except LinuxError:
                shm = None
            if shm is not None:
                out[1], out[2] = reg_pair(shm.paddr)
                out[4], out[5] = reg_pair(shm.cookie)
                held.append(shm)
            else:
                out[1] = out[2] = out[4] = out[5] = 0
        elif func == c.OPTEE_SMC_RPC_FUNC_FREE:
            shm = drv.shm_table.by_cookie.get(reg_pair_to(r[1], r[2]))
            if shm is not None:
                if shm in held:
                    held.remove(shm)
                drv.shm_table.put(shm)
        elif func == c.OPTEE_SMC_RPC_FUNC_FOREIGN_INTR:
            self.kernel.take_interrupts()
            yield Resched()
        elif func == c.OPTEE_SMC_RPC_FUNC_CMD:
            if rpc_shm is not None:
                arg_shm = rpc_shm
            else:
                arg_shm = drv.shm_table.by_cookie.get(reg_pair_to(r[1], r[2]))
            if arg_shm is not None:
                drv.rpc.handle_cmd(ctx, arg_shm)
        else:
            drv.kernel.log(f"optee: unknown RPC func {func:#x}")
        return out
