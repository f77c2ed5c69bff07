"""The OP-TEE driver's FF-A transport (drivers/tee/optee/ffa_abi.c; optee_ffa.md).

Probe (§5): the FF-A bus driver (``linux_side.arm_ffa``, once per kernel) finds OP-TEE by UUID;
32-bit direct requests GET_API_VERSION (1.0), GET_OS_VERSION, EXCHANGE_CAPABILITIES; then
/dev/tee0 and, with sec cap PROTMEM, a dynamic protected-memory pool per configured use case.
Shared memory goes out with FFA_MEM_SHARE (0x2F, OP-TEE RW) and is known by its FF-A handle
(``sec_world_id``, key of ``global_ids``); it comes back with UNREGISTER_SHM + FFA_MEM_RECLAIM.
Messages live in the argument cache (shared pages; slots at offsets with sec cap ARG_OFFSET).
Calls (§4): YIELDING_CALL_WITH_ARG / RESUME with RPC (SHM_ALLOC/FREE answered here as FMEM),
interrupt and BUSY handling; memrefs travel as FMEM (§6.5). Protected memory (§6): FFA_MEM_LEND
of the chunk + MSG ASSIGN_PROTMEM; RELEASE_PROTMEM + FFA_MEM_RECLAIM; the chunk's secure-world
id and cookie are the FF-A handle; errors unwind as the kernel does (§6.2).
"""
from __future__ import annotations

import errno
import struct
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator

from linux_side.arm_ffa import (FfaDevice, FfaDriver, FfaMemOpsArgs, FfaMemRegionAttributes,
                                FfaPartitionInfo, ffa_init)
from linux_side.errors import LinuxError, einval
from linux_side.mm import PAGE_SIZE, page_align
from linux_side.optee.optee_msg import MsgArg, MsgParam
from linux_side.optee.protmem import optee_protmem_alloc_dyn_pool, optee_protmem_pool_init
from linux_side.optee.smc_abi import ProbeInfo
from linux_side.sched import Resched, Sleep, WaitQueue
from linux_side.tee.tee_shm import TeeShm

if TYPE_CHECKING:
    from linux_side.optee.optee import OpteeDriver, TeeParam

M32 = 0xFFFFFFFF


@dataclass
class FfaProbeInfo(ProbeInfo):
    """What the FF-A probe learnt (``api_revision`` is OP-TEE's FF-A protocol version)."""

    ffa_version: int = 0
    vm_id: int = 0
    partition: FfaPartitionInfo | None = None
    rpc_param_count: int = 0
    max_notif_value: int = 0


@dataclass
class ArgCacheEntry:
    shm: TeeShm
    used: set[int] = field(default_factory=set)       # busy slots


def optee_ffa_uuid(c: Any) -> uuidlib.UUID:
    """The OP-TEE partition UUID (= the OP-TEE OS UUID, optee_msg.h's big-endian words)."""
    words = (c.OPTEE_MSG_OS_OPTEE_UUID_0, c.OPTEE_MSG_OS_OPTEE_UUID_1,
             c.OPTEE_MSG_OS_OPTEE_UUID_2, c.OPTEE_MSG_OS_OPTEE_UUID_3)
    return uuidlib.UUID(bytes=b"".join(w.to_bytes(4, "big") for w in words))


def shm_sg(shm: TeeShm) -> list[tuple[int, int]]:
    """sg_alloc_table_from_pages: the shm's whole pages, contiguous runs merged."""
    pages = shm.pages or tuple(shm.paddr + off for off in range(0, page_align(shm.size),
                                                                 PAGE_SIZE))
    sg: list[tuple[int, int]] = []
    for pa in pages:
        if sg and sg[-1][0] + sg[-1][1] == pa:
            sg[-1] = (sg[-1][0], sg[-1][1] + PAGE_SIZE)
        else:
            sg.append((pa, PAGE_SIZE))
    return sg


class FfaAbi:
    """FF-A backend operations used by the generic OP-TEE driver code."""

    name = "ffa"

    def __init__(self, driver: "OpteeDriver"):
        self.drv = driver
        c = self.c = driver.c
        self.kernel = driver.kernel
        self.call_queue = WaitQueue("optee call queue")
        self.info = FfaProbeInfo()
        self.rpc_param_count = 0
        self.ffa: FfaDriver | None = None
        self.dev: FfaDevice | None = None
        self.global_ids: dict[int, TeeShm] = {}       # FF-A handle -> shm (optee->ffa.global_ids)
        self.arg_cache: list[ArgCacheEntry] = []
        self.arg_cache_flags = 0
        self.s_fmem = driver.abi.structs["optee_msg_param_fmem"]
        driver.rpc.handlers[c.OPTEE_RPC_CMD_SHM_ALLOC] = self.rpc_cmd_shm_alloc
        driver.rpc.handlers[c.OPTEE_RPC_CMD_SHM_FREE] = self.rpc_cmd_shm_free

    def log(self, line: str) -> None:
        self.info.log.append(line)
        self.kernel.log(line)

    def _send(self, *data: int) -> list[int]:
        assert self.dev is not None, "optee: FF-A transport used before probe"
        return self.dev.sync_send_receive(data)

    # --- probe ---------------------------------------------------------------------------------
    def probe(self) -> FfaProbeInfo:
        c, info, k = self.c, self.info, self.kernel
        if k.ffa is None:
            k.ffa = ffa_init(k)
        ffa = self.ffa = k.ffa
        info.ffa_version, info.vm_id = ffa.version, ffa.vm_id
        uuid = optee_ffa_uuid(c)
        parts = ffa.ffa_partition_probe(uuid)
        if not parts:
            raise LinuxError(errno.ENODEV, f"optee: no FF-A partition with UUID {uuid}")
        info.partition = parts[0]
        self.dev = FfaDevice(ffa, parts[0])
        self.dev.uuid = uuid
        self.dev.mode_32bit_set()
        self.optee_ffa_api_is_compatible()
        self.optee_ffa_exchange_caps()
        if info.sec_caps & c.OPTEE_FFA_SEC_CAP_ARG_OFFSET:
            self.arg_cache_flags |= c.OPTEE_SHM_ARG_SHARED
        if self.drv.teedev is not None:
            self.drv.teedev.register()
            self.log("optee: initialized driver")
            self.protmem_pool_init()
        return info

    def optee_ffa_api_is_compatible(self) -> None:
        c, info = self.c, self.info
        try:
            d = self._send(c.OPTEE_FFA_GET_API_VERSION)
            if d[0] != c.OPTEE_FFA_VERSION_MAJOR or d[1] < c.OPTEE_FFA_VERSION_MINOR:
                raise einval(f"optee: Incompatible OP-TEE API version {d[0]}.{d[1]}")
            info.api_revision = (d[0], d[1])
            d = self._send(c.OPTEE_FFA_GET_OS_VERSION)
        except LinuxError as exc:
            raise einval(f"optee: FF-A API check failed: {exc.message}") from exc
        info.os_revision = (d[0], d[1], d[2])
        build = f" ({d[2]:08x})" if d[2] else ""
        self.log(f"optee: revision {d[0]}.{d[1]}{build}")

    def optee_ffa_exchange_caps(self) -> None:
        c, info = self.c, self.info
        try:
            d = self._send(c.OPTEE_FFA_EXCHANGE_CAPABILITIES)
        except LinuxError as exc:
            raise einval(f"optee: EXCHANGE_CAPABILITIES failed: {exc.message}") from exc
        if d[0]:
            raise einval(f"optee: Unexpected exchange error {d[0]:#x}")
        self.rpc_param_count = info.rpc_param_count = d[1] & 0xFF
        info.sec_caps = d[2]
        info.max_notif_value = d[3] or c.OPTEE_DEFAULT_MAX_NOTIF_VALUE

    def gen_caps(self) -> int:
        c = self.c
        return c.TEE_GEN_CAP_GP | c.TEE_GEN_CAP_REG_MEM | c.TEE_GEN_CAP_MEMREF_NULL

    def remove(self) -> None:
        """optee_shm_arg_cache_uninit: the argument pages go (unregistered, reclaimed)."""
        for entry in self.arg_cache:
            self.drv.shm_table.put(entry.shm)
        self.arg_cache.clear()

    # --- shared memory ----------------------------------------------------------------------------
    def optee_shm_add_ffa_handle(self, shm: TeeShm, handle: int) -> None:
        if handle in self.global_ids:
            raise LinuxError(errno.EEXIST, f"optee: FF-A handle {handle:#x} already known")
        self.global_ids[handle] = shm

    def _reclaim(self, handle: int) -> int:
        assert self.ffa is not None
        try:
            self.ffa.ffa_memory_reclaim(handle, 0)
        except LinuxError as exc:
            self.log(f"optee: mem_reclaim: {handle:#x} {-exc.errno} ({exc.message})")
            return -exc.errno
        return 0

    def optee_ffa_shm_register(self, shm: TeeShm) -> None:
        """FFA_MEM_SHARE of the shm's pages to OP-TEE (RW) through the TX buffer."""
        assert self.ffa is not None and self.dev is not None
        attr = FfaMemRegionAttributes(self.dev.vm_id, self.c.FFA_MEM_RW)
        handle = self.ffa.ffa_memory_share(FfaMemOpsArgs(shm_sg(shm), [attr], use_txbuf=True))
        try:
            self.optee_shm_add_ffa_handle(shm, handle)
        except LinuxError:
            self._reclaim(handle)
            raise
        shm.extra["sec_world_id"] = handle

    def optee_ffa_shm_unregister(self, shm: TeeShm, supp: bool = False) -> int:
        """OPTEE_FFA_UNREGISTER_SHM (its w3 is not looked at), then FFA_MEM_RECLAIM. ``supp``:
        supplicant memory freed at OP-TEE's request, whose id OP-TEE already retired."""
        handle = shm.extra.pop("sec_world_id", None)
        if handle is None:
            return 0
        self.global_ids.pop(handle, None)
        try:
            if not supp:
                self._send(self.c.OPTEE_FFA_UNREGISTER_SHM, handle & M32, handle >> 32)
        except LinuxError as exc:
            self.log(f"optee: Unregister SHM id {handle:#x} rc {-exc.errno}")
        return self._reclaim(handle)

    def pool_op_alloc(self, shm: TeeShm) -> None:
        """The FF-A pool registers every driver-private buffer (pool_ffa_op_alloc); buffers
        for user space (TEE_SHM_POOL) are registered by the TEE core's ``register_shm``."""
        if not shm.flags & self.c.TEE_SHM_PRIV:
            return
        self.optee_ffa_shm_register(shm)
        shm.release_cb.append(lambda s: self.optee_ffa_shm_unregister(s, s.extra.get("supp")))

    def shm_register(self, shm: TeeShm) -> Generator:
        yield from ()
        self.optee_ffa_shm_register(shm)
        shm.flags |= self.c.TEE_SHM_DYNAMIC

    def shm_unregister(self, shm: TeeShm) -> Generator:
        yield from ()
        rc = self.optee_ffa_shm_unregister(shm)
        shm.flags &= ~self.c.TEE_SHM_DYNAMIC
        return rc

    # --- the argument cache ----------------------------------------------------------------------
    def msg_arg_size(self) -> int:
        """optee_msg_arg_size: a MAX_ARG_PARAM_COUNT message plus the RPC argument."""
        msg = self.drv.msg
        sz = msg.size(self.c.MAX_ARG_PARAM_COUNT)
        return sz + (msg.size(self.rpc_param_count) if self.rpc_param_count else 0)

    def get_msg_arg(self, num_params: int) -> tuple[TeeShm, int]:
        """optee_get_msg_arg: a zeroed slot, in an existing entry if one has a free slot."""
        c = self.c
        if num_params > c.MAX_ARG_PARAM_COUNT:
            raise einval(f"optee: {num_params} message parameters (at most "
                         f"{c.MAX_ARG_PARAM_COUNT})")
        sz = self.msg_arg_size()
        per_entry = PAGE_SIZE // sz if self.arg_cache_flags & c.OPTEE_SHM_ARG_SHARED else 1
        for entry in self.arg_cache:
            bit = next((b for b in range(per_entry) if b not in entry.used), None)
            if bit is not None:
                break
        else:
            entry, bit = ArgCacheEntry(self.drv.alloc_priv_shm(PAGE_SIZE)), 0
            self.arg_cache.append(entry)
        entry.used.add(bit)
        self.kernel.conduit.write(entry.shm.paddr + bit * sz, bytes(sz))
        return entry.shm, bit * sz

    def free_msg_arg(self, shm: TeeShm, offs: int) -> None:
        for entry in self.arg_cache:
            if entry.shm is shm:
                entry.used.discard(offs // self.msg_arg_size())

    # --- parameters --------------------------------------------------------------------------------
    def fmem(self, attr: int, offs: int, internal_offs: int, size: int, global_id: int) -> MsgParam:
        raw = self.s_fmem.pack({"offs_low": offs & M32, "offs_high": (offs >> 32) & 0xFFFF,
                                "internal_offs": internal_offs, "size": size,
                                "global_id": global_id})
        return MsgParam(attr, *struct.unpack("<QQQ", raw))

    def fmem_fields(self, p: MsgParam) -> dict[str, int]:
        return self.s_fmem.unpack(struct.pack("<QQQ", p.a, p.b, p.c))

    def to_msg_memref(self, p: "TeeParam", k: int) -> MsgParam:
        """to_msg_param_ffa_mem: FMEM {offset (48 bits at most, else EINVAL), offset of the
        shm in its first page, size, the shm's FF-A handle}; no shm -> the invalid id."""
        c = self.c
        attr = c.OPTEE_MSG_ATTR_TYPE_FMEM_INPUT + k
        if p.shm is None:
            return self.fmem(attr, 0, 0, p.size, c.OPTEE_MSG_FMEM_INVALID_GLOBAL_ID)
        if p.offset >> 48:
            raise einval(f"optee: memref offset {p.offset:#x} does not fit in 48 bits")
        return self.fmem(attr, p.offset, p.shm.page_offset, p.size,
                         p.shm.extra.get("sec_world_id", 0))

    def rpc_param_for_supp(self, p: MsgParam) -> MsgParam:
        """from_msg_param_ffa_mem for tee-supplicant: an FMEM resolves through its handle."""
        c = self.c
        t = p.attr & c.OPTEE_MSG_ATTR_TYPE_MASK
        if not c.OPTEE_MSG_ATTR_TYPE_FMEM_INPUT <= t <= c.OPTEE_MSG_ATTR_TYPE_FMEM_INOUT:
            return p
        f = self.fmem_fields(p)
        shm = self.global_ids.get(f["global_id"])
        pa = shm.pa_of(f["offs_low"] | f["offs_high"] << 32) if shm is not None else 0
        return MsgParam(p.attr, pa, f["size"], 0)

    # --- calls -----------------------------------------------------------------------------------
    def do_call_with_arg(self, ctx: Any, shm: TeeShm, offs: int) -> Generator:
        """optee_ffa_do_call_with_arg: the message at ``offs`` of the FF-A shared ``shm``."""
        from linux_side.optee.optee import shm_rpc_view
        c, msg = self.c, self.drv.msg
        handle = shm.extra.get("sec_world_id")
        if shm.page_offset or handle is None:
            raise einval("optee: the argument shm is not page aligned FF-A shared memory")
        num = msg.num_params(self.kernel.conduit.read(shm.paddr + offs, msg.header))
        rpc_shm = shm_rpc_view(shm, offs + msg.size(num))
        return (yield from self.optee_ffa_yielding_call(
            ctx, [c.OPTEE_FFA_YIELDING_CALL_WITH_ARG, handle & M32, handle >> 32, offs, 0],
            rpc_shm))

    def optee_ffa_yielding_call(self, ctx: Any, data: list[int], rpc_shm: TeeShm) -> Generator:
        c, drv = self.c, self.drv
        cmd, w4, w5, w6 = data[:4]
        try:
            while True:
                data = self._send(*data)
                ret = data[0] & M32
                if ret == c.TEEC_ERROR_BUSY:
                    if cmd == c.OPTEE_FFA_YIELDING_CALL_RESUME:
                        raise LinuxError(errno.EIO, "optee: secure world BUSY on a RESUME")
                    drv.stats["busy"] += 1
                    yield Sleep(self.call_queue)
                    data = [cmd, w4, w5, w6, data[4]]
                    continue
                if ret != c.TEEC_SUCCESS:
                    drv.stats["call_errors"] += 1
                    raise LinuxError(errno.EIO, f"optee: yielding call returned {ret:#x}")
                if data[1] == c.OPTEE_FFA_YIELDING_CALL_RETURN_DONE:
                    return 0
                yield from self.optee_handle_ffa_rpc(ctx, data[1], rpc_shm)
                cmd = c.OPTEE_FFA_YIELDING_CALL_RESUME
                data = [cmd, 0, 0, 0, data[4]]
        finally:
            self.call_queue.wake_one()

    def optee_handle_ffa_rpc(self, ctx: Any, cmd: int, rpc_shm: TeeShm) -> Generator:
        c, drv = self.c, self.drv
        drv.stats["rpc"] += 1
        if cmd == c.OPTEE_FFA_YIELDING_CALL_RETURN_RPC_CMD:
            drv.rpc.handle_cmd(ctx, rpc_shm)
        elif cmd == c.OPTEE_FFA_YIELDING_CALL_RETURN_INTERRUPT:
            self.kernel.take_interrupts()
            yield Resched()
        else:
            self.log(f"optee: Unknown RPC func {cmd:#x}")

    # --- RPCs the FF-A transport serves itself ----------------------------------------------------
    def rpc_cmd_shm_alloc(self, arg: MsgArg) -> None:
        """SHM_ALLOC -> FMEM_OUTPUT {size, global_id = the new shm's handle}."""
        c = self.c
        if len(arg.params) != 1 or arg.params[0].attr != c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT:
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        shm_type, size = arg.params[0].a, arg.params[0].b
        if shm_type not in (c.OPTEE_RPC_SHM_TYPE_APPL, c.OPTEE_RPC_SHM_TYPE_KERNEL):
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        try:
            if size == 0:
                raise einval("zero-sized RPC shm")
            if self.drv.kernel.faults.hit("supplicant.shm_alloc"):
                raise LinuxError(errno.ENOMEM, "injected fault: RPC shm allocation failed")
            shm = self.drv.alloc_priv_shm(size)
        except LinuxError:
            arg.ret = c.TEEC_ERROR_OUT_OF_MEMORY
            return
        shm.extra["rpc_type"] = shm_type
        shm.extra["supp"] = shm_type == c.OPTEE_RPC_SHM_TYPE_APPL
        arg.params[0] = self.fmem(c.OPTEE_MSG_ATTR_TYPE_FMEM_OUTPUT, 0, shm.page_offset, shm.size,
                                  shm.extra["sec_world_id"])
        arg.ret = c.TEEC_SUCCESS

    def rpc_cmd_shm_free(self, arg: MsgArg) -> None:
        c = self.c
        if len(arg.params) != 1 or arg.params[0].attr != c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT:
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        shm = self.global_ids.get(arg.params[0].b)
        if shm is None or shm.extra.get("rpc_type") != arg.params[0].a:
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        self.drv.shm_table.put(shm)
        arg.ret = c.TEEC_SUCCESS

    # --- protected memory -------------------------------------------------------------------------
    def protmem_pool_init(self) -> None:
        """optee_ffa_protmem_pool_init per configured use case; a failure only logs."""
        drv, info = self.drv, self.info
        if not info.sec_caps & self.c.OPTEE_FFA_SEC_CAP_PROTMEM:
            return
        optee_protmem_pool_init(drv, self.kernel.config.protmem_use_cases,
                                lambda use_case: optee_protmem_alloc_dyn_pool(drv, use_case),
                                info.protmem, self.log)

    def do_call_lend_protmem(self, handle: int, use_case: int) -> Generator:
        """MSG ASSIGN_PROTMEM {VALUE_INPUT a = handle, b = use case}; EINVAL unless SUCCESS."""
        c = self.c
        arg = MsgArg(cmd=c.OPTEE_MSG_CMD_ASSIGN_PROTMEM,
                     params=[MsgParam(c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT, handle, use_case)])
        back = yield from self.drv.do_msg(None, arg)
        if back.ret != c.TEEC_SUCCESS:
            raise einval(f"optee: ASSIGN_PROTMEM of handle {handle:#x} refused ({back.ret:#x})")

    def optee_ffa_release_protmem(self, handle: int) -> None:
        try:
            self._send(self.c.OPTEE_FFA_RELEASE_PROTMEM, handle & M32, handle >> 32)
        except LinuxError as exc:
            self.log(f"optee: Release SHM id {handle:#x} rc {-exc.errno}")

    def lend_protmem(self, protmem: TeeShm, mem_attrs: tuple[int, ...], use_case: int) -> Generator:
        """optee_ffa_lend_protmem: FFA_MEM_LEND (receiver = bits 15:0, permissions = bits 23:16
        of each attribute), ASSIGN_PROTMEM, record the handle; unwinds as the kernel does."""
        assert self.ffa is not None
        attrs = [FfaMemRegionAttributes(a & 0xFFFF, (a >> 16) & 0xFF) for a in mem_attrs]
        handle = self.ffa.ffa_memory_lend(FfaMemOpsArgs([(protmem.paddr, protmem.size)], attrs,
                                                        tag=use_case, use_txbuf=True))
        try:
            yield from self.do_call_lend_protmem(handle, use_case)
        except LinuxError:
            self._reclaim(handle)
            raise
        try:
            self.optee_shm_add_ffa_handle(protmem, handle)
        except LinuxError:
            self.optee_ffa_release_protmem(handle)
            self._reclaim(handle)
            raise
        protmem.extra["sec_world_id"] = handle
        table = self.drv.shm_table
        if table.by_cookie.get(protmem.cookie) is protmem:
            del table.by_cookie[protmem.cookie]
        protmem.cookie = handle
        table.by_cookie[handle] = protmem

    def reclaim_protmem(self, protmem: TeeShm) -> Generator:
        """optee_ffa_reclaim_protmem: forget the handle, RELEASE_PROTMEM (result only logged),
        FFA_MEM_RECLAIM (flags 0). A refused reclaim raises and keeps the handle, so the pool
        can try again (tzemu keeps such a chunk out of CMA, see protmem.py)."""
        yield from ()
        handle = protmem.extra.pop("sec_world_id", None)
        if handle is None:
            raise einval("optee: the chunk was never lent")
        self.global_ids.pop(handle, None)
        self.optee_ffa_release_protmem(handle)
        rc = self._reclaim(handle)
        if rc:
            protmem.extra["sec_world_id"] = handle
            self.global_ids[handle] = protmem
            raise LinuxError(-rc, f"optee: FFA_MEM_RECLAIM of handle {handle:#x} refused")
