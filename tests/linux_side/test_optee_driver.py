"""The OP-TEE driver model: probe, call loop, RPCs, thread limits, supplicant, TEEC facade."""
from __future__ import annotations

import pytest

import tzemu
from linux_side.teec import (TEEC_MEMREF_TEMP_INOUT, TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT,
                             TEEC_NONE, TEEC_VALUE_INPUT, TEEC_VALUE_INOUT, TEEC_VALUE_OUTPUT,
                             Operation, TeecError, TempMemref, Value)
from smc_helpers import ECHO, ECHO_MULTI, echo_ta_file

NONE3 = (TEEC_NONE,) * 3


def value_op(t, a=0, b=0):
    return Operation((t,) + NONE3, [Value(a, b), None, None, None])


def test_probe_sequence_follows_the_kernel(platform):
    smcs = [e.fields["fid"] for e in platform.bus.of_kind("smc")]
    assert smcs[:4] == [0xBF00FF01, 0xB2000001, 0xBF00FF03, 0xB2000009]
    assert 0xB200000F in smcs and 0xB200000A in smcs and 0xB200000B in smcs
    info = platform.probe_info
    assert info.api_revision == (2, 0) and info.thread_count == 4


def test_ta_panic_kills_the_session_but_not_the_platform(platform):
    ctx = platform.linux.teec()
    s1 = ctx.open_session(ECHO_MULTI)
    s2 = ctx.open_session(ECHO_MULTI)
    assert s1.invoke(3, check=False) == (0xFFFF3024, 3)
    assert s1.invoke(0, value_op(TEEC_VALUE_INOUT), check=False) == (0xFFFF3024, 3)
    op = value_op(TEEC_VALUE_INOUT, 1)
    assert s2.invoke(0, op) == (0, 4) and op.params[0].a == 2
    s1.close()
    s2.close()


def test_ta_data_abort_is_a_fault_event_and_target_dead(platform):
    ctx = platform.linux.teec()
    s = ctx.open_session(ECHO_MULTI)
    platform.bus.clear()
    assert s.invoke(5, check=False) == (0xFFFF3024, 3)
    faults = platform.bus.of_kind("fault")
    assert faults and faults[0].world == "S-EL0" and "abort" in faults[0].fields["kind"]


def test_single_instance_shares_state_multi_instance_does_not(platform):
    ctx = platform.linux.teec()

    def counter(s):
        op = value_op(TEEC_VALUE_OUTPUT)
        s.invoke(2, op)
        return op.params[0].a
    a, b = ctx.open_session(ECHO), ctx.open_session(ECHO)
    assert [counter(a), counter(b), counter(a)] == [1, 2, 3]
    c, d = ctx.open_session(ECHO_MULTI), ctx.open_session(ECHO_MULTI)
    assert [counter(c), counter(d), counter(c)] == [1, 1, 2]


def test_temp_memrefs_and_short_buffer(platform):
    ctx = platform.linux.teec()
    s = ctx.open_session(ECHO)
    op = Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE),
                   [TempMemref(b"0123456789"), TempMemref(size=4), None, None])
    assert s.invoke(1, op, check=False) == (0xFFFF0010, 4)
    assert op.params[1].size == 10              # the TA says how much it needs


def test_access_rights_of_shared_memory_seen_from_the_ta(platform):
    ctx = platform.linux.teec()
    s = ctx.open_session(ECHO)
    READ, WRITE, ANY, NSEC, SEC = 1, 2, 4, 0x10000000, 0x20000000

    def check(flags):
        op = Operation((TEEC_MEMREF_TEMP_INOUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE),
                       [TempMemref(b"x" * 100), Value(flags), None, None])
        return s.invoke(7, op, check=False)[0]
    assert check(READ | WRITE | ANY | NSEC) == 0
    assert check(READ | ANY | SEC) == 0xFFFF0001          # shm is mapped non-secure
    assert check(READ | ANY) == 0
    assert check(READ) == 0xFFFF0001                      # not TA-private
    assert check(SEC | NSEC | ANY) == 0xFFFF0001
    op = value_op(TEEC_VALUE_OUTPUT)
    s.invoke(10, op)
    assert op.params[0].a == 0                            # its own .data is private


def test_ree_time_comes_from_the_kernel_clock_over_rpc(platform):
    ctx = platform.linux.teec()
    s = ctx.open_session(ECHO)
    op = value_op(TEEC_VALUE_OUTPUT)
    s.invoke(8, op)
    assert op.params[0].a == platform.kernel.config.clock_epoch
    assert platform.kernel.optee.stats["rpc_cmd_3"] == 1


def test_random_bytes_are_deterministic_per_seed():
    def draw(seed):
        p = tzemu.boot(seed=seed)
        s = p.linux.teec().open_session(ECHO)
        op = Operation((TEEC_MEMREF_TEMP_OUTPUT,) + NONE3, [TempMemref(size=32), None, None, None])
        s.invoke(9, op)
        return op.params[0].out
    assert draw(1) == draw(1) != draw(2)


def test_foreign_interrupt_exits_to_linux_and_the_call_resumes(platform):
    ctx = platform.linux.teec()
    s = ctx.open_session(ECHO)
    platform.gic.raise_ns(27)
    op = value_op(TEEC_VALUE_INOUT, 5)
    s.invoke(0, op)
    assert op.params[0].a == 6
    assert platform.kernel.interrupts_taken == [27]
    assert not platform.gic.ns_pending()


def test_thread_limit_makes_a_second_caller_wait_then_succeed():
    p = tzemu.boot(threads=1)
    k = p.kernel
    ctx = p.linux.teec()
    s = ctx.open_session(ECHO)
    p.gic.raise_ns(30)       # the first call will be pre-empted by it, holding the only thread
    ops = [value_op(TEEC_VALUE_INOUT, 10), value_op(TEEC_VALUE_INOUT, 20)]

    def call(op):
        import struct
        lay = ctx.s["tee_ioctl_invoke_arg"]
        body = lay.pack({"func": 0, "session": s.id, "num_params": 4}) + ctx._params(op, [])
        va = k.user_alloc(len(body))
        k.copy_to_user(va, body)
        buf = ctx.s["tee_ioctl_buf_data"].pack({"buf_ptr": va, "buf_len": len(body)})
        yield from k.ioctl_gen(ctx.fd, ctx.c.TEE_IOC_INVOKE, buf)
        raw = k.copy_from_user(va, len(body))
        return struct.unpack_from("<Q", raw, lay.size + 8)[0]
    tasks = k.run_concurrently([("a", call(ops[0])), ("b", call(ops[1]))])
    assert [t.error for t in tasks] == [None, None]
    assert [t.result for t in tasks] == [11, 21]
    assert k.optee.stats["ethread_limit"] >= 1


def test_load_ta_from_the_ta_directory_through_tee_supplicant(tmp_path):
    import uuid
    new = uuid.UUID("11111111-2222-3333-4444-555555555555")
    echo_ta_file(tmp_path, new)
    p = tzemu.boot(ta_dirs=[tmp_path])
    s = p.linux.teec().open_session(new)
    op = value_op(TEEC_VALUE_INOUT, 1)
    s.invoke(0, op)
    assert op.params[0].a == 2
    st = p.kernel.optee.stats
    assert st["rpc_cmd_0"] == 2 and st["rpc_cmd_6"] == 1 and st["rpc_cmd_7"] == 1   # LOAD_TA x2, SHM_ALLOC, SHM_FREE
    assert p.secure_os.ta_manager.loaded_from_ree[new] == f"{new}.ta"


def test_a_ta_file_with_the_wrong_uuid_is_refused(tmp_path):
    import uuid
    from ta.build import builtin_tas
    from ta.sign import sign_ta
    fake = uuid.UUID("99999999-2222-3333-4444-555555555555")
    (tmp_path / f"{fake}.ta").write_bytes(sign_ta(builtin_tas()[ECHO][1], fake))  # ta_head: ECHO
    p = tzemu.boot(ta_dirs=[tmp_path])
    with pytest.raises(TeecError) as e:
        p.linux.teec().open_session(fake)
    assert e.value.code == 0xFFFF000F and e.value.origin == 3     # TEE_ERROR_SECURITY


def test_cancel_reaches_the_secure_world(platform):
    ctx = platform.linux.teec()
    s = ctx.open_session(ECHO)
    s.cancel(0)
    assert platform.secure_os.ta_manager.sessions[s.id].cancel_requested


def test_an_unsigned_bare_elf_ta_file_is_refused_unless_verification_is_off(tmp_path):
    """Dropping the signed header must not bypass signing (real OP-TEE refuses it too)."""
    import uuid
    from ta.build import build_ta, load_manifest
    entry = dict(load_manifest()[0])
    new = uuid.UUID("11111111-2222-3333-4444-555555555556")
    entry["uuid"] = str(new)
    (tmp_path / f"{new}.ta").write_bytes(build_ta(entry))
    p = tzemu.boot(ta_dirs=[tmp_path])
    with pytest.raises(TeecError) as e:
        p.linux.teec().open_session(new)
    assert e.value.code == 0xFFFF000F and e.value.origin == 3     # TEE_ERROR_SECURITY
    p = tzemu.boot(ta_dirs=[tmp_path], verify_ta=False)
    p.linux.teec().open_session(new).close()
