"""The secure OS over the OP-TEE SMC ABI, driven at register level (no Linux model)."""
from __future__ import annotations

import struct

import pytest

import tzemu
from smc_helpers import (CALL_WITH_ARG, CALL_WITH_REGD_ARG, CALL_WITH_RPC_ARG, CMD_CLOSE,
                         CMD_INVOKE, CMD_OPEN, ECHO, META, ORIGIN_TEE, RETURN_FROM_RPC,
                         RMEM_IN, RPC_ALLOC, RPC_CMD, RPC_FREE, TEE_ERROR_BAD_PARAMETERS,
                         TEE_ERROR_ITEM_NOT_FOUND, TMEM_IN, TMEM_INOUT, VALUE_IN, VALUE_INOUT,
                         VALUE_OUT, RawCaller, msg_arg, open_params, parse_arg)

OK, ETHREAD_LIMIT, ERESUME, EBADADDR, EBADCMD = 0, 1, 3, 4, 5
UID = (0x384FB3E0, 0xE7F811E3, 0xAF630002, 0xA5D5C51B)
OS_UUID = (0x486178E0, 0xE7F811E3, 0xBC5E0002, 0xA5D5C51B)


# --- fast calls ------------------------------------------------------------------------------
def test_calls_uid_and_revision(shared_platform):
    p = shared_platform
    assert p.smc(0xBF00FF01)[:4] == UID
    assert p.smc(0xBF00FF03)[:2] == (2, 0)
    assert p.smc(0xB2000000)[:4] == OS_UUID
    assert p.smc(0xB2000001)[:3] == (4, 9, 0)


def test_exchange_capabilities_reports_dynamic_shm_and_four_rpc_params(shared_platform):
    r = shared_platform.smc(0xB2000009, 1)
    assert r[0] == OK
    assert r[1] & (1 << 2) and r[1] & (1 << 4) and r[1] & (1 << 6)   # DYNAMIC_SHM, MEMREF_NULL, RPC_ARG
    assert not r[1] & 1, "no reserved shm is claimed"
    assert r[3] & 0xFF == 4


def test_thread_count_follows_the_boot_option():
    assert tzemu.boot(threads=3).smc(0xB200000F)[:2] == (OK, 3)


def test_shm_cache_and_shm_config(shared_platform):
    p = shared_platform
    assert p.smc(0xB200000A)[0] == 7          # DISABLE_SHM_CACHE: nothing cached -> ENOTAVAIL
    assert p.smc(0xB200000B)[0] == OK         # ENABLE_SHM_CACHE
    assert p.smc(0xB2000007)[0] == 7          # GET_SHM_CONFIG: no reserved shm


# --- optee_msg_arg address checks ---------------------------------------------------------------
def test_misaligned_arg_is_ebadaddr(platform):
    rc = RawCaller(platform)
    assert rc.start(msg_arg(CMD_OPEN, open_params(ECHO)), pa=rc.page + 4)[0] == EBADADDR


@pytest.mark.parametrize("pa", [0x0E000000, 0x0E100000, 0x09000000, 0x2000_0000, 0xFFFF_FFFF_F000])
def test_arg_outside_normal_world_ram_is_ebadaddr(shared_platform, pa):
    r = shared_platform.smc(CALL_WITH_ARG, pa >> 32, pa & 0xFFFFFFFF)
    assert r[0] == EBADADDR
    assert all(t.state.value == "free" for t in shared_platform.secure_os.std.threads)


def test_arg_whose_params_run_past_ram_is_ebadaddr(platform):
    end = platform.memory_map.region("ns_dram").end
    pa = end - 64
    platform.physmem.write(pa, msg_arg(CMD_INVOKE, [(0, 0, 0, 0)] * 1)[:64])
    platform.physmem.write_u32(pa + 28, 3)           # claims 3 params: runs past the end
    assert platform.smc(CALL_WITH_ARG, pa >> 32, pa & 0xFFFFFFFF)[0] == EBADADDR


def test_unknown_command_is_ebadcmd(platform):
    rc = RawCaller(platform)
    assert rc.start(msg_arg(0x77))[0] == EBADCMD
    assert all(t.state.value == "free" for t in platform.secure_os.std.threads)


def test_return_from_rpc_with_bad_thread_is_eresume(shared_platform):
    assert shared_platform.smc(RETURN_FROM_RPC, 0, 0, 7)[0] == ERESUME
    assert shared_platform.smc(RETURN_FROM_RPC, 0, 0, 0)[0] == ERESUME   # not suspended


# --- sessions ----------------------------------------------------------------------------------
def test_open_invoke_close_over_call_with_arg(platform):
    rc = RawCaller(platform)
    sid = rc.open()
    out = rc.call(msg_arg(CMD_INVOKE, [(VALUE_INOUT, 9, 20, 0)], func=0, session=sid))
    assert (out["ret"], out["origin"]) == (0, 4)
    assert out["params"][0][1:3] == (10, 21)
    out = rc.call(msg_arg(CMD_CLOSE, session=sid))
    assert out["ret"] == 0 and not platform.secure_os.ta_manager.sessions


def test_rpc_alloc_cmd_free_sequence_without_preallocated_rpc_arg(platform):
    rc = RawCaller(platform)
    sid = rc.open()
    out = rc.call(msg_arg(CMD_INVOKE, [(VALUE_OUT, 0, 0, 0)], func=8, session=sid))
    assert out["ret"] == 0
    assert out["params"][0][1:3] == (1234, 567)         # seconds, millis from the RPC answer
    assert rc.rpcs == [RPC_ALLOC, RPC_CMD, RPC_FREE]
    assert rc.rpc_cmds == [3]                            # OPTEE_RPC_CMD_GET_TIME
    assert not rc.allocs, "the secure OS freed what it allocated"


def test_rpc_uses_the_preallocated_arg_with_call_with_rpc_arg(platform):
    rc = RawCaller(platform)
    sid = rc.open()
    out = rc.call(msg_arg(CMD_INVOKE, [(VALUE_OUT, 0, 0, 0)], func=8, session=sid),
                  fid=CALL_WITH_RPC_ARG)
    assert out["ret"] == 0 and rc.rpcs == [RPC_CMD]


def test_call_with_regd_arg_finds_the_arg_in_registered_shm(platform):
    ctx = platform.linux.teec()
    shm = ctx.allocate_shared_memory(0x2000)
    cookie = platform.kernel.optee.shm_table.by_id[shm.id].cookie
    mobj = platform.secure_os.shm.lookup(cookie)
    assert mobj is not None
    pa = mobj.pages[0] + 0x100
    platform.physmem.write(pa, msg_arg(CMD_OPEN, open_params(ECHO)))
    r = platform.smc(CALL_WITH_REGD_ARG, cookie >> 32, cookie & 0xFFFFFFFF, 0x100)
    assert r[0] == OK
    assert parse_arg(platform.physmem.read(pa, 96))["ret"] == 0
    bad = cookie + 1
    assert platform.smc(CALL_WITH_REGD_ARG, bad >> 32, bad & 0xFFFFFFFF, 0)[0] == EBADADDR


def test_thread_limit_and_resume(platform):
    p = tzemu.boot(threads=1)
    rc = RawCaller(p)
    sid = rc.open()
    r = rc.start(msg_arg(CMD_INVOKE, [(VALUE_OUT, 0, 0, 0)], func=8, session=sid))
    assert r[0] & 0xFFFF == RPC_ALLOC and r[3] == 0          # thread 0 suspended in an RPC
    other = p.kernel.pages.alloc(0x1000)
    p.physmem.write(other, msg_arg(CMD_OPEN, open_params(ECHO)))
    busy = p.smc(CALL_WITH_ARG, other >> 32, other & 0xFFFFFFFF, 0x5A5A)
    assert busy[:4] == (ETHREAD_LIMIT, other >> 32, other & 0xFFFFFFFF, 0x5A5A)
    r = rc.serve(r)
    assert r[0] == OK
    assert p.smc(CALL_WITH_ARG, other >> 32, other & 0xFFFFFFFF)[0] == OK


# --- bad parameters ---------------------------------------------------------------------------
@pytest.mark.parametrize("params", [
    [(VALUE_IN, 0, 0, 0)] * 5,                               # too many
    [(4, 0, 0, 0)],                                          # attribute type 4 does not exist
    [(0x20, 0, 0, 0)],                                       # unknown type
    [(VALUE_IN | META, 0, 0, 0)],                            # meta outside OPEN_SESSION
    [(TMEM_IN, 0x0E000000, 0x100, 0)],                       # secure memory as TMEM
    [(TMEM_IN, 0x09000000, 0x100, 0)],                       # MMIO as TMEM
    [(TMEM_IN, 0, 0x10, 0)],                                 # NULL with a size
    [(RMEM_IN, 0, 0x10, 0xDEAD_BEEF)],                       # unregistered cookie
])
def test_bad_params_are_refused_by_the_tee_before_entering_the_ta(platform, params):
    rc = RawCaller(platform)
    sid = rc.open()
    platform.bus.clear()
    out = rc.call(msg_arg(CMD_INVOKE, params, func=0, session=sid))
    assert (out["ret"], out["origin"]) == (TEE_ERROR_BAD_PARAMETERS, ORIGIN_TEE)
    assert not platform.bus.of_kind("ta_syscall"), "the TA must not be entered"


def test_rmem_past_the_end_of_registered_shm_is_refused(platform):
    ctx = platform.linux.teec()
    shm = ctx.allocate_shared_memory(0x1000)
    cookie = platform.kernel.optee.shm_table.by_id[shm.id].cookie
    rc = RawCaller(platform)
    sid = rc.open()
    for offs, size in ((0xFF0, 0x20), (0x1000, 1), (2**64 - 8, 16)):
        out = rc.call(msg_arg(CMD_INVOKE, [(RMEM_IN + 2, offs, size, cookie), (VALUE_IN, 0, 0, 0)],
                              func=7, session=sid))
        assert (out["ret"], out["origin"]) == (TEE_ERROR_BAD_PARAMETERS, ORIGIN_TEE)


def test_open_session_without_meta_params_is_refused(platform):
    rc = RawCaller(platform)
    out = rc.call(msg_arg(CMD_OPEN, [(VALUE_IN, 0, 0, 0)]))
    assert (out["ret"], out["origin"]) == (TEE_ERROR_BAD_PARAMETERS, ORIGIN_TEE)


def test_unknown_ta_is_item_not_found_after_asking_the_normal_world(platform):
    rc = RawCaller(platform)
    import uuid
    out = rc.call(msg_arg(CMD_OPEN, open_params(uuid.UUID(int=0x1234))))
    assert (out["ret"], out["origin"]) == (TEE_ERROR_ITEM_NOT_FOUND, ORIGIN_TEE)
    assert rc.rpc_cmds == [0]                        # OPTEE_RPC_CMD_LOAD_TA to tee-supplicant


def test_invoke_on_unknown_session_is_bad_parameters(platform):
    rc = RawCaller(platform)
    out = rc.call(msg_arg(CMD_INVOKE, [], func=0, session=999))
    assert (out["ret"], out["origin"]) == (TEE_ERROR_BAD_PARAMETERS, ORIGIN_TEE)


def test_tmem_noncontig_page_list_reaches_the_ta(platform):
    p = platform
    rc = RawCaller(p)
    sid = rc.open()
    a, b = p.kernel.pages.alloc(0x1000), p.kernel.pages.alloc(0x1000)
    lst = p.kernel.pages.alloc(0x1000)
    p.physmem.write(lst, struct.pack("<QQ", a, b) + bytes(0x1000 - 24) + struct.pack("<Q", 0))
    p.physmem.write(a + 0xF00, b"x" * 0x100)
    p.physmem.write(b, b"y" * 0x100)
    out = rc.call(msg_arg(CMD_INVOKE, [(TMEM_INOUT | 0x200, lst | 0xF00, 0x200, 0x99),
                                       (VALUE_IN, 0x1 | 0x4 | 0x10000000, 0, 0)],
                          func=7, session=sid))
    assert out["ret"] == 0, hex(out["ret"])           # READ|ANY_OWNER|NONSECURE on both pages
