"""ABI header loader: golden numbers from the fact sheets for the Linux side, OPTEE_SMC/MSG and
FF-A (the secure OS, TA and firmware sheets are in test_abi_loader_secure.py; the loader's
behaviour on small header sets is in test_abi_loader_rules.py).

Every number asserted in the golden part comes from /work/shared/abi/*.md; the C headers of
each world must reproduce them.  Where gcc is installed, layouts and constant values are
additionally compared with what a real compiler computes from the same headers.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from emu.abi import AbiSet
from emu.abi import cexpr
from abi_expect import check_constants, check_layout

# --- linux_uapi.md -------------------------------------------------------------------------

IOCTLS = {"TEE_IOC_VERSION": 0x800CA400, "TEE_IOC_SHM_ALLOC": 0xC010A401,
          "TEE_IOC_OPEN_SESSION": 0x8010A402, "TEE_IOC_INVOKE": 0x8010A403,
          "TEE_IOC_CANCEL": 0x8008A404, "TEE_IOC_CLOSE_SESSION": 0x8004A405,
          "TEE_IOC_SUPPL_RECV": 0x8010A406, "TEE_IOC_SUPPL_SEND": 0x8010A407,
          "TEE_IOC_SHM_REGISTER_FD": 0xC018A408, "TEE_IOC_SHM_REGISTER": 0xC018A409,
          "TEE_IOC_OBJECT_INVOKE": 0x8010A40A, "DMA_HEAP_IOCTL_ALLOC": 0xC0184800}


def test_linux_tee_constants(linux: AbiSet) -> None:
    check_constants(linux, IOCTLS)
    check_constants(linux, {
        "TEE_IOC_MAGIC": 0xA4, "TEE_IOC_BASE": 0, "TEE_MAX_ARG_SIZE": 4096,
        "TEE_IOCTL_UUID_LEN": 16, "TEE_MEMREF_NULL": 2**64 - 1, "TEE_OBJREF_NULL": 2**64 - 1,
        "TEE_OPTEE_CAP_TZ": 1, "TEE_GEN_CAP_GP": 1, "TEE_GEN_CAP_PRIVILEGED": 2,
        "TEE_GEN_CAP_REG_MEM": 4, "TEE_GEN_CAP_MEMREF_NULL": 8, "TEE_GEN_CAP_OBJREF": 16,
        "TEE_IMPL_ID_OPTEE": 1, "TEE_IMPL_ID_AMDTEE": 2, "TEE_IMPL_ID_TSTEE": 3,
        "TEE_IMPL_ID_QTEE": 4, "TEE_IOCTL_PARAM_ATTR_TYPE_MASK": 0xFF,
        "TEE_IOCTL_PARAM_ATTR_META": 0x100, "TEE_IOCTL_PARAM_ATTR_MASK": 0x1FF,
        "TEE_IOCTL_LOGIN_REE_KERNEL_MIN": 0x80000000, "TEE_IOCTL_LOGIN_REE_KERNEL_MAX": 0xBFFFFFFF,
        "TEE_IOCTL_LOGIN_REE_KERNEL": 0x80000000,
    })
    types = ["NONE", "VALUE_INPUT", "VALUE_OUTPUT", "VALUE_INOUT", None, "MEMREF_INPUT",
             "MEMREF_OUTPUT", "MEMREF_INOUT", "UBUF_INPUT", "UBUF_OUTPUT", "UBUF_INOUT",
             "OBJREF_INPUT", "OBJREF_OUTPUT", "OBJREF_INOUT"]
    check_constants(linux, {f"TEE_IOCTL_PARAM_ATTR_TYPE_{t}": i for i, t in enumerate(types) if t})
    logins = {"PUBLIC": 0, "USER": 1, "GROUP": 2, "APPLICATION": 4, "USER_APPLICATION": 5,
              "GROUP_APPLICATION": 6}
    check_constants(linux, {f"TEE_IOCTL_LOGIN_{k}": v for k, v in logins.items()})
    assert "TEE_IOCTL_SHM_MAPPED" not in linux.constants  # gone from the modern header


def test_linux_struct_layouts(linux: AbiSet) -> None:
    check_layout(linux, "tee_ioctl_shm_register_fd_data", 24,
            {"fd": 0, "size": 8, "flags": 16, "id": 20})
    check_layout(linux, "tee_ioctl_version_data", 12, {"impl_id": 0, "impl_caps": 4, "gen_caps": 8})
    check_layout(linux, "tee_ioctl_shm_alloc_data", 16, {"size": 0, "flags": 8, "id": 12})
    check_layout(linux, "tee_ioctl_buf_data", 16, {"buf_ptr": 0, "buf_len": 8})
    check_layout(linux, "tee_ioctl_shm_register_data", 24,
            {"addr": 0, "length": 8, "flags": 16, "id": 20})
    check_layout(linux, "tee_ioctl_param", 32, {"attr": 0, "a": 8, "b": 16, "c": 24})
    check_layout(linux, "tee_ioctl_open_session_arg", 56, {
        "uuid": 0, "clnt_uuid": 16, "clnt_login": 32, "cancel_id": 36, "session": 40, "ret": 44,
        "ret_origin": 48, "num_params": 52, "params": 56})
    check_layout(linux, "tee_ioctl_invoke_arg", 24, {
        "func": 0, "session": 4, "cancel_id": 8, "ret": 12, "ret_origin": 16, "num_params": 20,
        "params": 24})
    check_layout(linux, "tee_ioctl_cancel_arg", 8, {"cancel_id": 0, "session": 4})
    check_layout(linux, "tee_ioctl_close_session_arg", 4, {"session": 0})
    check_layout(linux, "tee_iocl_supp_recv_arg", 8, {"func": 0, "num_params": 4, "params": 8})
    check_layout(linux, "tee_iocl_supp_send_arg", 8, {"ret": 0, "num_params": 4, "params": 8})
    check_layout(linux, "tee_ioctl_object_invoke_arg", 24, {
        "id": 0, "op": 8, "ret": 12, "num_params": 16, "params": 24})
    check_layout(linux, "dma_heap_allocation_data", 24,
            {"len": 0, "fd": 8, "fd_flags": 12, "heap_flags": 16})
    params = linux.structs["tee_ioctl_open_session_arg"].field("params")
    assert (params.count, params.size, params.elem_size) == (0, 0, 32)
    assert params.type_name == "struct tee_ioctl_param"
    assert linux.structs["tee_ioctl_open_session_arg"].field("uuid").count == 16


def test_linux_optee_driver_private(linux: AbiSet) -> None:
    check_constants(linux, {"TEEC_SUCCESS": 0, "TEEC_ERROR_BAD_PARAMETERS": 0xFFFF0006,
                   "TEEC_ERROR_ITEM_NOT_FOUND": 0xFFFF0008, "TEEC_ERROR_NOT_SUPPORTED": 0xFFFF000A,
                   "TEEC_ERROR_OUT_OF_MEMORY": 0xFFFF000C, "TEEC_ERROR_BUSY": 0xFFFF000D,
                   "TEEC_ERROR_COMMUNICATION": 0xFFFF000E, "TEEC_ERROR_SHORT_BUFFER": 0xFFFF0010,
                   "TEEC_ORIGIN_COMMS": 2, "OPTEE_MAX_ARG_SIZE": 1024,
                   "OPTEE_DEFAULT_MAX_NOTIF_VALUE": 255})


def test_linux_dma_heap_and_core(linux: AbiSet) -> None:
    check_constants(linux, {"O_CLOEXEC": 0o2000000, "O_ACCMODE": 3, "O_RDONLY": 0, "O_WRONLY": 1,
                   "O_RDWR": 2, "DMA_HEAP_VALID_FD_FLAGS": 0o2000003,
                   "DMA_HEAP_VALID_HEAP_FLAGS": 0, "DMA_HEAP_IOC_MAGIC": ord("H"),
                   "TEE_DMA_HEAP_SECURE_VIDEO_PLAY": 1, "TEE_DMA_HEAP_TRUSTED_UI": 2,
                   "TEE_DMA_HEAP_SECURE_VIDEO_RECORD": 3, "TEE_SHM_DYNAMIC": 0x1,
                   "TEE_SHM_USER_MAPPED": 0x2, "TEE_SHM_POOL": 0x4, "TEE_SHM_PRIV": 0x8,
                   "TEE_SHM_DMA_BUF": 0x10, "TEE_SHM_DMA_MEM": 0x20,
                   "TEE_DEVICE_FLAG_REGISTERED": 1, "TEE_MAX_DEV_NAME_LEN": 32,
                   "TEE_DESC_PRIVILEGED": 1})


# --- optee_smc_msg.md --------------------------------------------------------------------

SMC_IDS = {"CALLS_COUNT": 0xBF00FF00, "CALLS_UID": 0xBF00FF01, "CALLS_REVISION": 0xBF00FF03,
           "CALL_GET_OS_UUID": 0xB2000000, "CALL_GET_OS_REVISION": 0xB2000001,
           "CALL_LOAD_IMAGE": 0xBF000002, "CALL_RETURN_FROM_RPC": 0x32000003,
           "CALL_WITH_ARG": 0x32000004, "GET_SHM_CONFIG": 0xB2000007, "L2CC_MUTEX": 0xB2000008,
           "EXCHANGE_CAPABILITIES": 0xB2000009, "DISABLE_SHM_CACHE": 0xB200000A,
           "ENABLE_SHM_CACHE": 0xB200000B, "BOOT_SECONDARY": 0xB200000C,
           "VM_CREATED": 0xB200000D, "VM_DESTROYED": 0xB200000E,
           "GET_THREAD_COUNT": 0xB200000F, "ENABLE_ASYNC_NOTIF": 0xB2000010,
           "GET_ASYNC_NOTIF_VALUE": 0xB2000011, "CALL_WITH_RPC_ARG": 0x32000012,
           "CALL_WITH_REGD_ARG": 0x32000013, "GET_PROTMEM_CONFIG": 0xB2000014}
SEC_CAPS = ["HAVE_RESERVED_SHM", "UNREGISTERED_SHM", "DYNAMIC_SHM", "VIRTUALIZATION",
            "MEMREF_NULL", "ASYNC_NOTIF", "RPC_ARG", "RPMB_PROBE", "PROTMEM", "DYNAMIC_PROTMEM"]
RETURNS = {"OK": 0, "ETHREAD_LIMIT": 1, "EBUSY": 2, "ERESUME": 3, "EBADADDR": 4, "EBADCMD": 5,
           "ENOMEM": 6, "ENOTAVAIL": 7, "UNKNOWN_FUNCTION": 0xFFFFFFFF}
MSG = {"OPTEE_MSG_UID_0": 0x384FB3E0, "OPTEE_MSG_UID_1": 0xE7F811E3,
       "OPTEE_MSG_UID_2": 0xAF630002, "OPTEE_MSG_UID_3": 0xA5D5C51B,
       "OPTEE_MSG_OS_OPTEE_UUID_0": 0x486178E0, "OPTEE_MSG_OS_OPTEE_UUID_1": 0xE7F811E3,
       "OPTEE_MSG_OS_OPTEE_UUID_2": 0xBC5E0002, "OPTEE_MSG_OS_OPTEE_UUID_3": 0xA5D5C51B,
       "OPTEE_MSG_IMAGE_LOAD_UUID_0": 0xA3FBEAB1, "OPTEE_MSG_IMAGE_LOAD_UUID_1": 0x1246315D,
       "OPTEE_MSG_IMAGE_LOAD_UUID_2": 0xC7C406B9, "OPTEE_MSG_IMAGE_LOAD_UUID_3": 0xC03CBEA4,
       "OPTEE_MSG_REVISION_MAJOR": 2, "OPTEE_MSG_REVISION_MINOR": 0,
       "OPTEE_MSG_FUNCID_CALLS_UID": 0xFF01, "OPTEE_MSG_FUNCID_CALLS_REVISION": 0xFF03,
       "OPTEE_MSG_FUNCID_GET_OS_UUID": 0, "OPTEE_MSG_FUNCID_GET_OS_REVISION": 1,
       "OPTEE_MSG_FUNCID_CALL_WITH_ARG": 4, "OPTEE_MSG_NONCONTIG_PAGE_SIZE": 4096,
       "OPTEE_MSG_FMEM_INVALID_GLOBAL_ID": 2**64 - 1, "OPTEE_MSG_ATTR_TYPE_MASK": 0xFF,
       "OPTEE_MSG_ATTR_META": 0x100, "OPTEE_MSG_ATTR_NONCONTIG": 0x200,
       "OPTEE_MSG_ATTR_CACHE_SHIFT": 16, "OPTEE_MSG_ATTR_CACHE_MASK": 7,
       "OPTEE_MSG_ATTR_CACHE_PREDEFINED": 0}
ATTRS = {"NONE": 0, "VALUE_INPUT": 1, "VALUE_OUTPUT": 2, "VALUE_INOUT": 3, "RMEM_INPUT": 5,
         "RMEM_OUTPUT": 6, "RMEM_INOUT": 7, "FMEM_INPUT": 5, "FMEM_OUTPUT": 6, "FMEM_INOUT": 7,
         "TMEM_INPUT": 9, "TMEM_OUTPUT": 0xA, "TMEM_INOUT": 0xB}
CMDS = ["OPEN_SESSION", "INVOKE_COMMAND", "CLOSE_SESSION", "CANCEL", "REGISTER_SHM",
        "UNREGISTER_SHM", "DO_BOTTOM_HALF", "STOP_ASYNC_NOTIF", "LEND_PROTMEM", "RECLAIM_PROTMEM",
        "GET_PROTMEM_CONFIG", "ASSIGN_PROTMEM"]
RPC_CMDS = {"LOAD_TA": 0, "RPMB": 1, "FS": 2, "GET_TIME": 3, "NOTIFICATION": 4, "SUSPEND": 5,
            "SHM_ALLOC": 6, "SHM_FREE": 7, "GPROF": 9, "SOCKET": 10, "FTRACE": 11,
            "SUPP_PLUGIN": 12, "BENCH_REG": 20, "I2C_TRANSFER": 21, "RPMB_PROBE_RESET": 22,
            "RPMB_PROBE_NEXT": 23, "RPMB_FRAMES": 24}


def _optee_expected() -> dict[str, int]:
    exp = {f"OPTEE_SMC_{k}": v for k, v in SMC_IDS.items()}
    exp.update({f"OPTEE_SMC_SEC_CAP_{k}": 1 << i for i, k in enumerate(SEC_CAPS)})
    exp.update({f"OPTEE_SMC_RETURN_{k}": v for k, v in RETURNS.items()})
    exp.update({"OPTEE_SMC_NSEC_CAP_UNIPROCESSOR": 1, "OPTEE_SMC_SHM_CACHED": 1,
                "OPTEE_SMC_ASYNC_NOTIF_VALUE_VALID": 1, "OPTEE_SMC_ASYNC_NOTIF_VALUE_PENDING": 2,
                "OPTEE_SMC_ASYNC_NOTIF_VALUE_DO_BOTTOM_HALF": 0,
                "OPTEE_SMC_RETURN_RPC_PREFIX_MASK": 0xFFFF0000,
                "OPTEE_SMC_RETURN_RPC_PREFIX": 0xFFFF0000, "OPTEE_SMC_RETURN_RPC_FUNC_MASK": 0xFFFF,
                "OPTEE_SMC_RPC_FUNC_ALLOC": 0, "OPTEE_SMC_RPC_FUNC_FREE": 2,
                "OPTEE_SMC_RPC_FUNC_FOREIGN_INTR": 4, "OPTEE_SMC_RPC_FUNC_CMD": 5,
                "OPTEE_SMC_RETURN_RPC_ALLOC": 0xFFFF0000, "OPTEE_SMC_RETURN_RPC_FREE": 0xFFFF0002,
                "OPTEE_SMC_RETURN_RPC_FOREIGN_INTR": 0xFFFF0004,
                "OPTEE_SMC_RETURN_RPC_CMD": 0xFFFF0005})
    exp.update(MSG)
    exp.update({f"OPTEE_MSG_ATTR_TYPE_{k}": v for k, v in ATTRS.items()})
    exp.update({f"OPTEE_MSG_CMD_{k}": i for i, k in enumerate(CMDS)})
    exp.update({f"OPTEE_MSG_LOGIN_{k}": v for k, v in {
        "PUBLIC": 0, "USER": 1, "GROUP": 2, "APPLICATION": 4, "APPLICATION_USER": 5,
        "APPLICATION_GROUP": 6}.items()})
    exp.update({f"OPTEE_MSG_PROTMEM_{k}": i for i, k in enumerate(
        ["RESERVED", "SECURE_VIDEO_PLAY", "TRUSTED_UI", "SECURE_VIDEO_RECORD"])})
    exp.update({f"OPTEE_RPC_CMD_{k}": v for k, v in RPC_CMDS.items()})
    exp.update({"OPTEE_RPC_NOTIFICATION_WAIT": 0, "OPTEE_RPC_NOTIFICATION_SEND": 1,
                "OPTEE_RPC_SHM_TYPE_APPL": 0, "OPTEE_RPC_SHM_TYPE_KERNEL": 1,
                "OPTEE_RPC_I2C_TRANSFER_RD": 0, "OPTEE_RPC_I2C_TRANSFER_WR": 1,
                "OPTEE_RPC_I2C_FLAGS_TEN_BIT": 1, "OPTEE_RPC_RPMB_EMMC": 0,
                "OPTEE_RPC_RPMB_UFS": 1, "OPTEE_RPC_RPMB_NVME": 2})
    return exp


@pytest.mark.parametrize("side", ["linux", "secure"])
def test_optee_smc_and_msg(side: str, request: pytest.FixtureRequest) -> None:
    abi = request.getfixturevalue(side)
    check_constants(abi, _optee_expected())
    assert abi.call_macro("OPTEE_MSG_GET_ARG_SIZE", 4) == 160
    assert abi.call_macro("OPTEE_MSG_GET_ARG_SIZE", 0) == 32
    assert abi.call_macro("OPTEE_SMC_RETURN_IS_RPC", 0xFFFF0005) == 1
    assert abi.call_macro("OPTEE_SMC_RETURN_IS_RPC", 0xFFFFFFFF) == 0
    check_layout(abi, "optee_msg_arg", 32, {"cmd": 0, "func": 4, "session": 8, "cancel_id": 12,
                                       "pad": 16, "ret": 20, "ret_origin": 24, "num_params": 28,
                                       "params": 32})
    check_layout(abi, "optee_msg_param", 32, {
        "attr": 0, "u": 8, "u.tmem.buf_ptr": 8, "u.tmem.size": 16, "u.tmem.shm_ref": 24,
        "u.rmem.offs": 8, "u.rmem.size": 16, "u.rmem.shm_ref": 24, "u.fmem.offs_low": 8,
        "u.fmem.offs_high": 12, "u.fmem.internal_offs": 14, "u.fmem.size": 16,
        "u.fmem.global_id": 24, "u.value.a": 8, "u.value.b": 16, "u.value.c": 24,
        "u.octets": 8})
    assert abi.structs["optee_msg_param"].field("u").is_struct.is_union


def test_sides_agree_on_shared_numbers(linux: AbiSet, secure: AbiSet) -> None:
    prefixes = ("OPTEE_SMC_", "OPTEE_MSG_", "OPTEE_RPC_", "OPTEE_FFA_")
    shared = [n for n in linux.constants if n.startswith(prefixes) and n in secure.constants]
    assert len(shared) > 150
    assert {n: linux.constants[n] for n in shared} == {n: secure.constants[n] for n in shared}
    for name in ("optee_msg_arg", "optee_msg_param", "optee_msg_param_fmem"):
        a, b = linux.structs[name], secure.structs[name]
        assert (a.size, [(f.name, f.offset, f.size) for f in a.fields]) == \
               (b.size, [(f.name, f.offset, f.size) for f in b.fields])


# --- optee_ffa.md / ffa_spec.md ------------------------------------------------------------

FFA_32 = {"ERROR": 0x60, "SUCCESS": 0x61, "INTERRUPT": 0x62, "VERSION": 0x63, "FEATURES": 0x64,
          "RX_RELEASE": 0x65, "RXTX_MAP": 0x66, "RXTX_UNMAP": 0x67, "PARTITION_INFO_GET": 0x68,
          "ID_GET": 0x69, "MSG_POLL": 0x6A, "MSG_WAIT": 0x6B, "YIELD": 0x6C, "RUN": 0x6D,
          "MSG_SEND": 0x6E, "MSG_SEND_DIRECT_REQ": 0x6F, "MSG_SEND_DIRECT_RESP": 0x70,
          "MEM_DONATE": 0x71, "MEM_LEND": 0x72, "MEM_SHARE": 0x73, "MEM_RETRIEVE_REQ": 0x74,
          "MEM_RETRIEVE_RESP": 0x75, "MEM_RELINQUISH": 0x76, "MEM_RECLAIM": 0x77,
          "MEM_OP_PAUSE": 0x78, "MEM_OP_RESUME": 0x79, "MEM_FRAG_RX": 0x7A, "MEM_FRAG_TX": 0x7B,
          "NORMAL_WORLD_RESUME": 0x7C, "NOTIFICATION_INFO_GET": 0x83, "RX_ACQUIRE": 0x84,
          "SPM_ID_GET": 0x85, "MSG_SEND2": 0x86, "MEM_PERM_GET": 0x88, "MEM_PERM_SET": 0x89,
          "CONSOLE_LOG": 0x8A, "EL3_INTR_HANDLE": 0x8C}
FFA_64 = {"SUCCESS": 0x61, "RXTX_MAP": 0x66, "MSG_SEND_DIRECT_REQ": 0x6F,
          "MSG_SEND_DIRECT_RESP": 0x70, "MEM_DONATE": 0x71, "MEM_LEND": 0x72, "MEM_SHARE": 0x73,
          "MEM_RETRIEVE_REQ": 0x74, "NOTIFICATION_INFO_GET": 0x83, "SECONDARY_EP_REGISTER": 0x87,
          "MEM_PERM_GET": 0x88, "MEM_PERM_SET": 0x89, "CONSOLE_LOG": 0x8A}
FFA_ERRORS = ["NOT_SUPPORTED", "INVALID_PARAMETERS", "NO_MEMORY", "BUSY", "INTERRUPTED",
              "DENIED", "RETRY", "ABORTED", "NO_DATA"]


def test_linux_ffa(linux: AbiSet) -> None:
    exp = {f"FFA_{k}": 0x84000000 | n for k, n in FFA_32.items()}
    exp.update({f"FFA_FN64_{k}": 0xC4000000 | n for k, n in FFA_64.items()})
    exp.update({"FFA_PARTITION_INFO_GET_REGS": 0xC400008B, "FFA_MSG_SEND_DIRECT_REQ2": 0xC400008D,
                "FFA_MSG_SEND_DIRECT_RESP2": 0xC400008E, "FFA_RET_SUCCESS": 0})
    exp.update({f"FFA_RET_{k}": -(i + 1) for i, k in enumerate(FFA_ERRORS)})
    exp.update({"FFA_VERSION_1_0": 0x10000, "FFA_VERSION_1_1": 0x10001, "FFA_VERSION_1_2": 0x10002,
                "FFA_PAGE_SIZE": 4096, "FFA_MEM_RO": 1, "FFA_MEM_RW": 2, "FFA_MEM_NO_EXEC": 4,
                "FFA_MEM_EXEC": 8, "FFA_MEM_RETRIEVE_SELF_BORROWER": 1, "FFA_MEM_NORMAL": 0x20,
                "FFA_MEM_DEVICE": 0x10, "FFA_MEM_WRITE_BACK": 0xC, "FFA_MEM_NON_CACHEABLE": 4,
                "FFA_DEV_nGnRnE": 0, "FFA_DEV_nGnRE": 4, "FFA_DEV_nGRE": 8, "FFA_DEV_GRE": 0xC,
                "FFA_MEM_NON_SHAREABLE": 0, "FFA_MEM_OUTER_SHAREABLE": 2,
                "FFA_MEM_INNER_SHAREABLE": 3, "FFA_MEM_CLEAR": 1, "FFA_TIME_SLICE_ENABLE": 2,
                "FFA_MEM_RETRIEVE_TYPE_IN_RESP": 0, "FFA_MEM_RETRIEVE_TYPE_SHARE": 0x08,
                "FFA_MEM_RETRIEVE_TYPE_LEND": 0x10, "FFA_MEM_RETRIEVE_TYPE_DONATE": 0x18,
                "FFA_MEM_RETRIEVE_ADDR_ALIGN_HINT": 0x200})
    check_constants(linux, exp)
    c = linux.c
    assert c.FFA_MEM_NORMAL | c.FFA_MEM_WRITE_BACK | c.FFA_MEM_INNER_SHAREABLE == 0x2F
    assert linux.call_macro("FFA_MEM_RETRIEVE_ADDR_ALIGN", 3) == 3 << 5
    check_layout(linux, "ffa_mem_region", 48, {"sender_id": 0, "attributes": 2, "flags": 4,
                                          "handle": 8, "tag": 16, "ep_mem_size": 24,
                                          "ep_count": 28, "ep_mem_offset": 32, "reserved": 36})
    check_layout(linux, "ffa_mem_region_attributes", 32, {"receiver": 0, "attrs": 2, "flag": 3,
                                                     "composite_off": 4, "impdef_val": 8,
                                                     "reserved": 24})
    check_layout(linux, "ffa_composite_mem_region", 16, {"total_pg_cnt": 0, "addr_range_cnt": 4,
                                                    "reserved": 8, "constituents": 16})
    check_layout(linux, "ffa_mem_region_addr_range", 16, {"address": 0, "pg_cnt": 8, "reserved": 12})


def test_optee_ffa_services(linux: AbiSet, secure: AbiSet) -> None:
    exp = {"OPTEE_FFA_GET_API_VERSION": 0, "OPTEE_FFA_GET_OS_VERSION": 1,
           "OPTEE_FFA_EXCHANGE_CAPABILITIES": 2, "OPTEE_FFA_UNREGISTER_SHM": 3,
           "OPTEE_FFA_ENABLE_ASYNC_NOTIF": 5, "OPTEE_FFA_RELEASE_PROTMEM": 8,
           "OPTEE_FFA_YIELDING_CALL_WITH_ARG": 0x80000000,
           "OPTEE_FFA_YIELDING_CALL_RESUME": 0x80000001,
           "OPTEE_FFA_YIELDING_CALL_RETURN_DONE": 0, "OPTEE_FFA_YIELDING_CALL_RETURN_RPC_CMD": 1,
           "OPTEE_FFA_YIELDING_CALL_RETURN_INTERRUPT": 2, "OPTEE_FFA_SEC_CAP_ARG_OFFSET": 1,
           "OPTEE_FFA_SEC_CAP_ASYNC_NOTIF": 2, "OPTEE_FFA_SEC_CAP_RPMB_PROBE": 4,
           "OPTEE_FFA_SEC_CAP_PROTMEM": 8, "OPTEE_FFA_MAX_ASYNC_NOTIF_VALUE": 64,
           "OPTEE_FFA_VERSION_MAJOR": 1, "OPTEE_FFA_VERSION_MINOR": 0}
    check_constants(linux, exp)
    check_constants(secure, exp)


def test_secure_ffa(secure: AbiSet) -> None:
    exp = {f"FFA_{k}": 0x84000000 | n for k, n in FFA_32.items() if k not in FFA_64}
    for k, n in FFA_64.items():
        if k != "SECONDARY_EP_REGISTER":
            exp[f"FFA_{k}_32"] = 0x84000000 | n
        exp[f"FFA_{k}_64"] = 0xC4000000 | n
    exp.update({"FFA_OK": 0, "FFA_MEM_ACC_RW": 2, "FFA_NORMAL_MEM_REG_ATTR": 0x2F,
                "FFA_MEMORY_HANDLE_NON_SECURE_BIT": 1 << 44,
                "FFA_MEMORY_HANDLE_SECURE_BIT": 1 << 45,
                "FFA_MEMORY_HANDLE_HYPERVISOR_BIT": 1 << 63, "FFA_VERSION_1_2": 0x10002})
    exp.update({f"FFA_{k}": -(i + 1) for i, k in enumerate(FFA_ERRORS)})
    check_constants(secure, exp)
    check_layout(secure, "ffa_mem_transaction_1_1", 48, {
        "sender_id": 0, "mem_reg_attr": 2, "flags": 4, "global_handle": 8, "tag": 16,
        "mem_access_size": 24, "mem_access_count": 28, "mem_access_offs": 32, "reserved": 36})
    check_layout(secure, "ffa_mem_transaction_1_0", 32, {
        "mem_reg_attr": 2, "reserved0": 3, "reserved1": 24, "mem_access_count": 28,
        "mem_access_array": 32})
    check_layout(secure, "ffa_mem_access", 16, {"access_perm.endpoint_id": 0, "access_perm.perm": 2,
                                           "access_perm.flags": 3, "region_offs": 4})
    check_layout(secure, "ffa_mem_access_1_2", 32, {"region_offs": 4, "impdef": 8, "reserved": 24})
    check_layout(secure, "ffa_mem_region", 16, {"total_page_count": 0, "address_range_count": 4,
                                           "address_range_array": 16})
    check_layout(secure, "ffa_address_range", 16, {"address": 0, "page_count": 8})
    check_layout(secure, "ffa_partition_info_x", 24, {"id": 0, "execution_context": 2,
                                                 "partition_properties": 4, "uuid": 8})


# --- cross-check with a real compiler ------------------------------------------------------

def _gcc_run(abi: AbiSet, body: list[str], tmp: Path) -> list[str]:
    src = tmp / "probe.c"
    src.write_text("\n".join(["int printf(const char *, ...);"]
                             + [f"#include <{h}>" for h in abi.requested]
                             + ["int main(void) {"] + body + ["return 0; }"]))
    inc = [a for d in abi.include_dirs for a in ("-I", d)]
    subprocess.run(["gcc", "-std=gnu11", "-w", "-nostdinc", *inc, str(src), "-o",
                    str(tmp / "probe")], check=True, capture_output=True)
    return subprocess.run([str(tmp / "probe")], check=True, capture_output=True,
                          text=True).stdout.splitlines()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
@pytest.mark.parametrize("which", ["linux", "secure", "firmware", "basic"])
def test_gcc_agrees(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Every constant (value, sign, type size) and every member offset, as gcc computes them."""
    abi: AbiSet = request.getfixturevalue(which)
    sizes = {t.name: t.size for t in vars(cexpr).values() if isinstance(t, cexpr.CInt)}
    body, expect = [], []
    for n, v in abi.constants.items():
        body.append(f'printf("%d %llu %d\\n", ({n}) < 0, (unsigned long long)({n}), '
                    f'(int)sizeof({n}));')
        expect.append((n, v, sizes[abi.constant_types[n]]))
    for n, s in abi.structs.items():
        t = next((f"{kw} {n}" for kw in ("struct", "union") if f"{kw} {n}" in abi._types.tags), n)
        body.append(f'printf("%zu %zu\\n", sizeof({t}), _Alignof({t}));')
        expect.append((n, s.size, s.align))
        for f in s.fields:
            if f.name and f.bit_width is None:
                body.append(f'printf("%zu\\n", __builtin_offsetof({t}, {f.name}));')
                expect.append((f"{n}.{f.name}", f.offset))
    got = _gcc_run(abi, body, tmp_path)
    mismatches = []
    for exp, line in zip(expect, got):
        nums = [int(x) for x in line.split()]
        if len(nums) == 3:
            nums = [nums[1] - (1 << 64) if nums[0] else nums[1], nums[2]]
        if tuple(nums) != exp[1:]:
            mismatches.append((exp, nums))
    assert len(got) == len(expect) and not mismatches
