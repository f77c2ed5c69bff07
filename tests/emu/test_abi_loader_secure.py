"""ABI header loader: golden numbers of the secure OS, TA format and firmware fact sheets
(secure_os.md, optee_ta_format.md, and the rest), as test_abi_loader.py does for the others."""
from __future__ import annotations

import os

import pytest

from emu.abi import AbiSet
from abi_expect import check_constants, check_layout


# --- secure_os.md / optee_ta_format.md ---------------------------------------------------

GP_CODES = {"SUCCESS": 0, "ERROR_CORRUPT_OBJECT": 0xF0100001, "ERROR_CORRUPT_OBJECT_2": 0xF0100002,
            "ERROR_STORAGE_NOT_AVAILABLE": 0xF0100003, "ERROR_STORAGE_NOT_AVAILABLE_2": 0xF0100004,
            "ERROR_UNSUPPORTED_VERSION": 0xF0100005, "ERROR_CIPHERTEXT_INVALID": 0xF0100006,
            "ERROR_GENERIC": 0xFFFF0000, "ERROR_ACCESS_DENIED": 0xFFFF0001,
            "ERROR_CANCEL": 0xFFFF0002, "ERROR_ACCESS_CONFLICT": 0xFFFF0003,
            "ERROR_EXCESS_DATA": 0xFFFF0004, "ERROR_BAD_FORMAT": 0xFFFF0005,
            "ERROR_BAD_PARAMETERS": 0xFFFF0006, "ERROR_BAD_STATE": 0xFFFF0007,
            "ERROR_ITEM_NOT_FOUND": 0xFFFF0008, "ERROR_NOT_IMPLEMENTED": 0xFFFF0009,
            "ERROR_NOT_SUPPORTED": 0xFFFF000A, "ERROR_NO_DATA": 0xFFFF000B,
            "ERROR_OUT_OF_MEMORY": 0xFFFF000C, "ERROR_BUSY": 0xFFFF000D,
            "ERROR_COMMUNICATION": 0xFFFF000E, "ERROR_SECURITY": 0xFFFF000F,
            "ERROR_SHORT_BUFFER": 0xFFFF0010, "ERROR_EXTERNAL_CANCEL": 0xFFFF0011,
            "ERROR_TIMEOUT": 0xFFFF3001, "ERROR_OVERFLOW": 0xFFFF300F,
            "ERROR_TARGET_DEAD": 0xFFFF3024, "ERROR_STORAGE_NO_SPACE": 0xFFFF3041,
            "ERROR_MAC_INVALID": 0xFFFF3071, "ERROR_SIGNATURE_INVALID": 0xFFFF3072,
            "ERROR_TIME_NOT_SET": 0xFFFF5000, "ERROR_TIME_NEEDS_RESET": 0xFFFF5001}
TA_FLAGS = {"USER_MODE": 0, "EXEC_DDR": 0, "SINGLE_INSTANCE": 4, "MULTI_SESSION": 8,
            "INSTANCE_KEEP_ALIVE": 0x10, "SECURE_DATA_PATH": 0x20, "REMAP_SUPPORT": 0,
            "CACHE_MAINTENANCE": 0x80, "CONCURRENT": 0x100, "DEVICE_ENUM": 1 << 9,
            "DEVICE_ENUM_SUPP": 1 << 10, "DONT_CLOSE_HANDLE_ON_CORRUPT_OBJECT": 1 << 11,
            "DEVICE_ENUM_TEE_STORAGE_PRIVATE": 1 << 12, "INSTANCE_KEEP_CRASHED": 1 << 13}
SYSCALLS = """RETURN LOG PANIC GET_PROPERTY GET_PROPERTY_NAME_TO_INDEX OPEN_TA_SESSION
CLOSE_TA_SESSION INVOKE_TA_COMMAND CHECK_ACCESS_RIGHTS GET_CANCELLATION_FLAG UNMASK_CANCELLATION
MASK_CANCELLATION WAIT GET_TIME SET_TA_TIME CRYP_STATE_ALLOC CRYP_STATE_COPY CRYP_STATE_FREE
HASH_INIT HASH_UPDATE HASH_FINAL CIPHER_INIT CIPHER_UPDATE CIPHER_FINAL CRYP_OBJ_GET_INFO
CRYP_OBJ_RESTRICT_USAGE CRYP_OBJ_GET_ATTR CRYP_OBJ_ALLOC CRYP_OBJ_CLOSE CRYP_OBJ_RESET
CRYP_OBJ_POPULATE CRYP_OBJ_COPY CRYP_DERIVE_KEY CRYP_RANDOM_NUMBER_GENERATE AUTHENC_INIT
AUTHENC_UPDATE_AAD AUTHENC_UPDATE_PAYLOAD AUTHENC_ENC_FINAL AUTHENC_DEC_FINAL ASYMM_OPERATE
ASYMM_VERIFY STORAGE_OBJ_OPEN STORAGE_OBJ_CREATE STORAGE_OBJ_DEL STORAGE_OBJ_RENAME
STORAGE_ENUM_ALLOC STORAGE_ENUM_FREE STORAGE_ENUM_RESET STORAGE_ENUM_START STORAGE_ENUM_NEXT
STORAGE_OBJ_READ STORAGE_OBJ_WRITE STORAGE_OBJ_TRUNC STORAGE_OBJ_SEEK
CRYP_OBJ_GENERATE_KEY""".split()


def test_secure_gp_and_ta_constants(secure: AbiSet) -> None:
    exp = {f"TEE_{k}": v for k, v in GP_CODES.items()}
    origins = ["API", "COMMS", "TEE", "TRUSTED_APP"]
    exp.update({f"TEE_ORIGIN_{k}": i + 1 for i, k in enumerate(origins)})
    exp.update({f"TEE_LOGIN_{k}": v for k, v in {
        "PUBLIC": 0, "USER": 1, "GROUP": 2, "APPLICATION": 4, "APPLICATION_USER": 5,
        "APPLICATION_GROUP": 6, "TRUSTED_APP": 0xF0000000}.items()})
    exp.update({f"TEE_PARAM_TYPE_{k}": v for k, v in {
        "NONE": 0, "VALUE_INPUT": 1, "VALUE_OUTPUT": 2, "VALUE_INOUT": 3, "MEMREF_INPUT": 5,
        "MEMREF_OUTPUT": 6, "MEMREF_INOUT": 7}.items()})
    exp.update({f"TEE_MEMORY_ACCESS_{k}": v for k, v in {
        "READ": 1, "WRITE": 2, "ANY_OWNER": 4, "NONSECURE": 0x10000000,
        "SECURE": 0x20000000}.items()})
    exp.update({"TEE_HANDLE_NULL": 0, "TEE_TIMEOUT_INFINITE": 0xFFFFFFFF, "TEE_NUM_PARAMS": 4,
                "TEE_PROPSET_TEE_IMPLEMENTATION": 0xFFFFFFFD,
                "TEE_PROPSET_CURRENT_CLIENT": 0xFFFFFFFE,
                "TEE_PROPSET_CURRENT_TA": 0xFFFFFFFF, "TEE_CACHECLEAN": 0, "TEE_CACHEFLUSH": 1,
                "TEE_CACHEINVALIDATE": 2, "TA_FLAGS_MASK": 0x3FFF,
                "MOBJ_USE_CASE_NS_SHM": 0, "MOBJ_USE_CASE_SEC_VIDEO_PLAY": 1,
                "MOBJ_USE_CASE_TRUSED_UI": 2, "MOBJ_USE_CASE_TRUSTED_UI": 2})
    exp.update({f"TA_FLAG_{k}": v for k, v in TA_FLAGS.items()})
    exp.update({f"TEE_SCN_{k}": i for i, k in enumerate(SYSCALLS)})
    exp.update({"TEE_SCN_CACHE_OPERATION": 70, "TEE_SCN_MAX": 70})
    exp.update({f"UTEE_ENTRY_FUNC_{k}": i for i, k in enumerate(
        ["OPEN_SESSION", "CLOSE_SESSION", "INVOKE_COMMAND", "DUMP_MEMSTATS"])})
    exp.update({f"UTEE_TIME_CAT_{k}": i for i, k in enumerate(["SYSTEM", "TA_PERSISTENT", "REE"])})
    exp.update({f"USER_TA_PROP_TYPE_{k}": i for i, k in enumerate(
        ["BOOL", "U32", "UUID", "IDENTITY", "STRING", "BINARY_BLOCK", "U64", "INVALID"])})
    check_constants(secure, exp)
    assert secure.call_macro("TEE_PARAM_TYPES", 5, 6, 0, 0) == 0x65
    assert secure.call_macro("TEE_PARAM_TYPES", 7, 0, 0, 0) == 0x0007
    assert [secure.call_macro("TEE_PARAM_TYPE_GET", 0x65, i) for i in range(4)] == [5, 6, 0, 0]
    assert not secure.unsupported


def test_secure_struct_layouts(secure: AbiSet) -> None:
    check_layout(secure, "ta_head", 32, {"uuid": 0, "uuid.timeLow": 0, "uuid.timeMid": 4,
                                    "uuid.timeHiAndVersion": 6, "uuid.clockSeqAndNode": 8,
                                    "stack_size": 16, "flags": 20, "depr_entry": 24})
    # optee_ta_format.md gives "u64 types, u64 vals[8]" and, inconsistently, 136 bytes; the
    # declared members (and OP-TEE's own header) make 8 + 8 * 8 = 72.
    check_layout(secure, "utee_params", 72, {"types": 0, "vals": 8})
    assert secure.structs["utee_params"].field("vals").count == 8
    check_layout(secure, "utee_attribute", 24, {"a": 0, "b": 8, "attribute_id": 16})
    check_layout(secure, "utee_object_info", 28, {"obj_type": 0, "handle_flags": 24})
    check_layout(secure, "TEE_UUID", 16, {"timeLow": 0, "timeMid": 4, "timeHiAndVersion": 6,
                                     "clockSeqAndNode": 8})
    check_layout(secure, "TEE_Identity", 20, {"login": 0, "uuid": 4})
    check_layout(secure, "TEE_Time", 8, {"seconds": 0, "millis": 4})
    check_layout(secure, "user_ta_property", 24, {"name": 0, "type": 8, "value": 16})
    assert secure.structs["user_ta_property"].field("name").kind == "pointer"


def test_teesmc_opteed_and_firmware(secure: AbiSet, firmware: AbiSet) -> None:
    names = ["ENTRY", "ON", "OFF", "SUSPEND", "RESUME", "CALL", "FIQ", "SYSTEM_OFF", "SYSTEM_RESET"]
    exp = {f"TEESMC_OPTEED_RETURN_{k}_DONE": 0xBE000000 + i for i, k in enumerate(names)}
    check_constants(secure, exp)
    check_constants(firmware, exp)
    fw = {"SMCCC_VERSION": 0x80000000, "SMCCC_ARCH_FEATURES": 0x80000001,
          "SMCCC_ARCH_SOC_ID": 0x80000002, "SMCCC_ARCH_WORKAROUND_1": 0x80008000,
          "SMCCC_ARCH_WORKAROUND_2": 0x80007FFF, "SMCCC_ARCH_WORKAROUND_3": 0x80003FFF,
          "SMCCC_VERSION_1_2": 0x10002, "SMC_UNK": 0xFFFFFFFF, "SMC_PREEMPTED": -2,
          "SMC_DENIED": -3, "SMC_INVALID_PARAM": -4, "FUNCID_TYPE_SHIFT": 31,
          "FUNCID_CC_SHIFT": 30, "FUNCID_OEN_SHIFT": 24, "FUNCID_OEN_MASK": 0x3F,
          "FUNCID_NUM_MASK": 0xFFFF, "FUNCID_SVE_HINT_SHIFT": 16, "OEN_ARM_START": 0,
          "OEN_STD_START": 4, "OEN_TAP_START": 48, "OEN_TAP_END": 49, "OEN_TOS_START": 50,
          "OEN_TOS_END": 63, "FFA_FNUM_MIN_VALUE": 0x60, "FFA_FNUM_MAX_VALUE": 0x97,
          "FFA_FNUM_MIN": 0x60, "FFA_FNUM_MAX": 0x97, "FFA_ERROR": 0x84000060,
          "FFA_SUCCESS_SMC32": 0x84000061, "FFA_SUCCESS_SMC64": 0xC4000061,
          "FFA_VERSION": 0x84000063, "FFA_MSG_SEND_DIRECT_REQ_SMC32": 0x8400006F,
          "FFA_MSG_SEND_DIRECT_RESP_SMC64": 0xC4000070, "FFA_MEM_LEND_SMC64": 0xC4000072,
          "FFA_MEM_RECLAIM": 0x84000077, "FFA_MEM_FRAG_TX": 0x8400007B,
          "FFA_PARTITION_INFO_GET_REGS_SMC64": 0xC400008B,
          "FFA_MSG_SEND_DIRECT_REQ2_SMC64": 0xC400008D,
          "FFA_NS_ENDPOINT_ID": 0, "SPMD_DIRECT_MSG_ENDPOINT_ID": 0xFFFF,
          "SPMD_FWK_MSG_FFA_VERSION_REQ": 8, "SPMD_FWK_MSG_FFA_VERSION_RESP": 9,
          "FFA_FWK_MSG_BIT": 0x80000000, "FFA_VERSION_COMPILED": 0x10002}
    fw.update({f"FFA_ERROR_{k}": -(i + 1) for i, k in enumerate(
        ["NOT_SUPPORTED", "INVALID_PARAMETER", "NO_MEMORY", "BUSY", "INTERRUPTED", "DENIED",
         "RETRY", "ABORTED", "NO_DATA"])})
    check_constants(firmware, fw)
    assert firmware.call_macro("GET_SMC_OEN", 0xB2000014) == 50
    assert firmware.call_macro("FFA_FID", 1, 0x72) == 0xC4000072


def test_remaining_sheet_numbers(linux: AbiSet, secure: AbiSet, firmware: AbiSet) -> None:
    """SMCCC owners/ids, framework messages, partition properties, access bits, TA limits."""
    owners = {"ARCH": 0, "CPU": 1, "SIP": 2, "OEM": 3, "STANDARD": 4, "TRUSTED_APP": 48,
              "TRUSTED_OS": 50, "TRUSTED_OS_OPTEED": 62, "TRUSTED_OS_API": 63}
    check_constants(secure, {f"OPTEE_SMC_OWNER_{k}": v for k, v in owners.items()})
    check_constants(secure, {"ARM_SMCCC_VERSION": 0x80000000, "ARM_SMCCC_ARCH_FEATURES": 0x80000001,
                    "ARM_SMCCC_ARCH_SOC_ID": 0x80000002, "ARM_SMCCC_ARCH_WORKAROUND_1": 0x80008000,
                    "ARM_SMCCC_ARCH_WORKAROUND_2": 0x80007FFF, "SMCCC_V_1_0": 0x10000,
                    "SMCCC_V_1_1": 0x10001, "SMCCC_V_1_2": 0x10002, "ARM_SMCCC_RET_SUCCESS": 0,
                    "ARM_SMCCC_RET_NOT_SUPPORTED": -1, "ARM_SMCCC_RET_NOT_REQUIRED": -2,
                    "ARM_SMCCC_RET_INVALID_PARAMETER": -3, "OPTEE_SMC_FAST_CALL": 0x80000000,
                    "OPTEE_SMC_64": 0x40000000, "FFA_MSG_FLAG_FRAMEWORK": 1 << 31,
                    "FFA_MSG_PSCI": 0, "FFA_MSG_SEND_VM_CREATED": 4, "FFA_MSG_RESP_VM_CREATED": 5,
                    "FFA_MSG_SEND_VM_DESTROYED": 6, "FFA_MSG_RESP_VM_DESTROYED": 7,
                    "FFA_MSG_VERSION_REQ": 8, "FFA_MSG_VERSION_RESP": 9,
                    "FFA_PART_PROP_DIRECT_REQ_RECV": 1, "FFA_PART_PROP_DIRECT_REQ_SEND": 2,
                    "FFA_PART_PROP_INDIRECT_MSGS": 4, "FFA_PART_PROP_RECV_NOTIF": 8,
                    "FFA_PART_PROP_AARCH64_STATE": 0x100, "FFA_MEM_ACC_RO": 1, "FFA_MEM_ACC_NX": 4,
                    "FFA_MEM_ACC_EXE": 8, "FFA_MEMORY_REGION_FLAG_CLEAR": 1,
                    "FFA_MEMORY_REGION_FLAG_TIME_SLICE": 2,
                    "FFA_MEMORY_REGION_FLAG_CLEAR_RELINQUISH": 4,
                    "FFA_MEMORY_REGION_TRANSACTION_TYPE_SHARE": 0x08,
                    "FFA_MEMORY_REGION_TRANSACTION_TYPE_LEND": 0x10,
                    "FFA_MEMORY_REGION_TRANSACTION_TYPE_DONATE": 0x18,
                    "TA_FRAMEWORK_STACK_SIZE": 2048, "TEE_SVC_MAX_ARGS": 8})
    check_constants(linux, {"ARM_SMCCC_ARCH_SOC_ID": 0x80000002, "ARM_SMCCC_ARCH_WORKAROUND_2": 0x80007FFF,
                   "ARM_SMCCC_ARCH_WORKAROUND_3": 0x80003FFF, "ARM_SMCCC_VERSION_1_0": 0x10000,
                   "ARM_SMCCC_VERSION_1_1": 0x10001, "SMCCC_RET_INVALID_PARAMETER": -3,
                   "FFA_MAJOR_VERSION_MASK": 0x7FFF0000, "FFA_MINOR_VERSION_MASK": 0xFFFF})
    oens = {"ARM": (0, 0), "CPU": (1, 1), "SIP": (2, 2), "OEM": (3, 3), "STD": (4, 4),
            "STD_HYP": (5, 5), "VEN_HYP": (6, 6), "VEN_EL3": (7, 7), "TAP": (48, 49),
            "TOS": (50, 63)}
    fw = {f"OEN_{k}_{e}": v for k, pair in oens.items() for e, v in zip(("START", "END"), pair)}
    fw.update({"OEN_LIMIT": 64, "SMC_64": 1, "SMC_32": 0, "SMC_TYPE_FAST": 1, "SMC_TYPE_YIELD": 0,
               "SMC_OK": 0, "SMC_ARCH_CALL_SUCCESS": 0, "SMC_ARCH_CALL_NOT_SUPPORTED": -1,
               "SMC_ARCH_CALL_NOT_REQUIRED": -2, "SMC_ARCH_CALL_INVAL_PARAM": -3,
               "SMCCC_MAJOR_VERSION": 1, "SMCCC_MINOR_VERSION": 5, "FUNCID_TYPE_MASK": 1,
               "FUNCID_CC_MASK": 1, "FUNCID_SVE_HINT_MASK": 1, "FUNCID_NUM_SHIFT": 0,
               "FFA_PM_MSG_WB_REQ": 1, "FFA_PM_MSG_PM_RESP": 2, "FFA_FWK_MSG_PSCI": 0,
               "FFA_FWK_MSG_MASK": 0xFF, "FFA_NS_RES_INFO_GET_SMC64": 0xC400008F,
               "FFA_ABORT_SMC32": 0x84000090, "FFA_ABORT_SMC64": 0xC4000090})
    check_constants(firmware, fw)
    assert firmware.call_macro("MAKE_SMCCC_VERSION", 1, 5) == 0x10005


def test_linux_smccc(linux: AbiSet) -> None:
    check_constants(linux, {"ARM_SMCCC_STD_CALL": 0, "ARM_SMCCC_FAST_CALL": 1, "ARM_SMCCC_TYPE_SHIFT": 31,
                   "ARM_SMCCC_SMC_32": 0, "ARM_SMCCC_SMC_64": 1, "ARM_SMCCC_CALL_CONV_SHIFT": 30,
                   "ARM_SMCCC_OWNER_MASK": 0x3F, "ARM_SMCCC_OWNER_SHIFT": 24,
                   "ARM_SMCCC_FUNC_MASK": 0xFFFF, "ARM_SMCCC_OWNER_ARCH": 0,
                   "ARM_SMCCC_OWNER_CPU": 1, "ARM_SMCCC_OWNER_SIP": 2, "ARM_SMCCC_OWNER_OEM": 3,
                   "ARM_SMCCC_OWNER_STANDARD": 4, "ARM_SMCCC_OWNER_STANDARD_HYP": 5,
                   "ARM_SMCCC_OWNER_VENDOR_HYP": 6, "ARM_SMCCC_OWNER_TRUSTED_APP": 48,
                   "ARM_SMCCC_OWNER_TRUSTED_APP_END": 49, "ARM_SMCCC_OWNER_TRUSTED_OS": 50,
                   "ARM_SMCCC_OWNER_TRUSTED_OS_END": 63, "ARM_SMCCC_VERSION_FUNC_ID": 0x80000000,
                   "ARM_SMCCC_ARCH_FEATURES_FUNC_ID": 0x80000001, "ARM_SMCCC_VERSION_1_2": 0x10002,
                   "SMCCC_RET_SUCCESS": 0, "SMCCC_RET_NOT_SUPPORTED": -1,
                   "SMCCC_RET_NOT_REQUIRED": -2, "ARM_SMCCC_RET_NOT_REQUIRED": -2,
                   "ARM_SMCCC_ARCH_WORKAROUND_1": 0x80008000})
    # arguments are C: a plain int 1 shifted to bit 31 is INT_MIN, as in C; 1U is not
    assert linux.call_macro("ARM_SMCCC_CALL_VAL", "1U", 1, 4, 0x72) == 0xC4000072
    assert linux.call_macro("ARM_SMCCC_CALL_VAL", 1, 1, 4, 0x72) == 0xC4000072 - 2**32
    assert linux.call_macro("GENMASK", 31, 16) == 0xFFFF0000
    assert linux.call_macro("GENMASK_ULL", 63, 0) == 2**64 - 1
    assert linux.call_macro("_IOC_SIZE", linux.c.TEE_IOC_SHM_REGISTER_FD) == 24


def test_namespace_locations_and_headers(linux: AbiSet) -> None:
    assert linux.c.TEE_IOC_VERSION == linux.constants["TEE_IOC_VERSION"]
    with pytest.raises(AttributeError, match="NO_SUCH_THING.*linux_side/include"):
        linux.c.NO_SUCH_THING
    with pytest.raises(AttributeError, match="call_macro"):
        linux.c.BIT
    file, line = linux.locations["TEE_IOC_SHM_REGISTER_FD"]
    assert file.endswith("uapi/linux/tee.h") and line > 0
    assert linux.locations["optee_msg_arg"][0].endswith("drivers/tee/optee/optee_msg.h")
    assert linux.locations["TEE_DMA_HEAP_TRUSTED_UI"][0].endswith("linux/tee_core.h")
    assert all(os.path.isabs(h) for h in linux.headers)
    assert any(h.endswith("uapi/asm-generic/ioctl.h") for h in linux.headers)  # nested include
    assert "OPTEE_MSG_GET_ARG_SIZE" in linux.macros and "TEE_IOC_VERSION" not in linux.macros
    assert linux.sizeof("struct tee_ioctl_param") == 32 and linux.sizeof("__u16") == 2
    assert not linux.unsupported
