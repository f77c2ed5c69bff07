"""OP-TEE over FF-A (linux_side.optee.ffa_abi; optee_ffa.md §1-§6, linux_uapi.md §8, §12).

Unit tests run the whole Linux model on a scripted secure side (``ffa_fake``) and check the
registers and bytes it sends. End-to-end tests boot ``tzemu.boot(abi="ffa", ...)``; they are
skipped only while that boot says the FF-A secure side is not there (PlatformError naming ffa).
"""
from __future__ import annotations

import errno
import struct

import pytest

import tzemu
from ffa_fake import (DIRECT_REQ, FUNC_INCREMENT, FUNC_INTERRUPT, FUNC_LOAD_TA, FUNC_RPC_SHM,
                      INVALID_GID, LEND64, PART_INFO, RECLAIM, RESUME, RX_RELEASE, SHARE64,
                      WITH_ARG, FakeFfaWorld, fake_kernel, fids, u32)
from linux_side.errors import LinuxError
from smc_helpers import echo_ta_file
from linux_side.optee.optee import TeeParam
from linux_side.tee.tee_shm import TeeShm
from linux_side.teec import (TEEC_MEMREF_PARTIAL_INOUT, Context, TEEC_MEMREF_PARTIAL_INPUT,
                             TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_TEMP_INPUT,
                             TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_VALUE_INOUT, Operation,
                             RegMemref, TempMemref, Value, dma_heap_alloc)

ECHO = "7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31"
SDP_BASIC = "12345678-5b69-11e4-9dbb-101f74f00099"
SV = "/dev/dma_heap/protected,secure-video"
ARG_OFFSET, PROTMEM = 1 << 0, 1 << 3
NONE3 = (TEEC_NONE,) * 3
NONE2 = (TEEC_NONE,) * 2


def booted(**kw):
    world = FakeFfaWorld(**kw)
    k = fake_kernel(world)
    k.probe_optee()
    return world, k


def directs(world, start=0):
    """(w3..w7) of every direct request from ``start`` on."""
    return [tuple(u32(v) for v in regs[3:8]) for regs, _ in world.calls[start:]
            if u32(regs[0]) == DIRECT_REQ]


def value_op(a):
    return Operation((TEEC_VALUE_INOUT,) + NONE3, [Value(a), None, None, None])


# --- probe ----------------------------------------------------------------------------------------
def test_probe_sequence():
    world, k = booted(caps=ARG_OFFSET)
    assert fids(world) == [0x84000063, 0x84000069, 0x84000064, 0xC4000066, 0x84000064,
                           0x84000064, PART_INFO, PART_INFO, RX_RELEASE,
                           DIRECT_REQ, DIRECT_REQ, DIRECT_REQ]
    assert [d[0] for d in directs(world)] == [0, 1, 2]          # API, OS version, caps
    ops = k.optee.ops
    info = ops.info
    assert ops.name == "ffa" and k.ffa.version == 0x10002
    assert info.api_revision == (1, 0) and info.os_revision == (4, 9, 0x1234ABCD)
    assert info.partition.id == 0x8001 and ops.dev.mode_32bit
    assert info.sec_caps == ARG_OFFSET and ops.rpc_param_count == 4
    assert info.max_notif_value == 255                              # 0 -> the default
    assert "/dev/tee0" in k.devices and not k.heaps
    c = k.c
    assert k.optee.gen_caps() == c.TEE_GEN_CAP_GP | c.TEE_GEN_CAP_REG_MEM | c.TEE_GEN_CAP_MEMREF_NULL
    assert "optee: revision 4.9 (1234abcd)" in k.dmesg


@pytest.mark.parametrize("version", [(2, 0), (0, 9)])
def test_an_incompatible_api_version_fails_the_probe(version):
    world = FakeFfaWorld(api_version=version)
    k = fake_kernel(world)
    with pytest.raises(LinuxError) as exc:
        k.probe_optee()
    assert exc.value.errno == errno.EINVAL and "/dev/tee0" not in k.devices
    assert k.optee is None and k.ffa is not None                    # the bus stays up


# --- calls ------------------------------------------------------------------------------------------
def test_invoke_goes_through_an_ffa_shared_argument_page():
    world, k = booted(caps=ARG_OFFSET)
    ctx = Context(k)
    start = len(world.calls)
    s = ctx.open_session(ECHO)
    op = value_op(41)
    s.invoke(FUNC_INCREMENT, op)
    assert op.params[0].a == 42
    share = world.calls[start]
    arg_page = world.mem_ops[-1]
    assert u32(share[0][0]) == SHARE64 and arg_page.kind == "share"
    assert arg_page.receivers == [(0x8001, 0x02, 0, 80)] and len(arg_page.constituents) == 1
    head = struct.unpack_from("<HHIQQ", arg_page.desc)
    assert head[1] == 0x2F and head[4] == 0                          # attributes, tag 0
    handle = u32(share[1][2]) | u32(share[1][3]) << 32
    calls = directs(world, start)
    assert calls[0][:4] == (WITH_ARG, u32(handle), handle >> 32, 0)
    # the two messages shared the page: the session is closed from the same slot
    assert calls[1][:4] == (WITH_ARG, u32(handle), handle >> 32, 0)
    assert [m["cmd"] for m in world.seen_msgs] == [0, 1]
    slot = k.optee.ops.msg_arg_size()
    assert slot == 32 + 6 * 32 + 32 + 4 * 32                          # 6 params + RPC arg
    shm0, offs0 = k.optee.ops.get_msg_arg(2)
    shm1, offs1 = k.optee.ops.get_msg_arg(2)
    assert shm0 is shm1 and (offs0, offs1) == (0, slot)              # ARG_OFFSET: one page
    k.optee.ops.free_msg_arg(shm0, offs0)
    k.optee.ops.free_msg_arg(shm1, offs1)


def test_without_arg_offset_each_slot_has_its_own_page():
    world, k = booted(caps=0)
    ops = k.optee.ops
    (a, oa), (b, ob) = ops.get_msg_arg(1), ops.get_msg_arg(1)
    assert a is not b and oa == ob == 0
    assert len([m for m in world.mem_ops if m.kind == "share"]) == 2


def test_rpc_shm_alloc_answers_fmem_and_free_unregisters_then_reclaims():
    world, k = booted(caps=ARG_OFFSET)
    s = Context(k).open_session(ECHO)
    start = len(world.calls)
    s.invoke(FUNC_RPC_SHM, value_op(1))                            # KERNEL type
    alloc, free = world.rpc_answers
    attr, offs, size, gid = alloc[0]
    assert attr == 6 and offs == 0 and size == 0x2000                # FMEM_OUTPUT
    shared = world.mem_ops[-1]
    assert gid in (0x1000_0000_0000 | i for i in range(world.slot))
    assert shared.constituents[0][1] == 2 and shared.kind == "share"
    seq = [(u32(r[0]), tuple(u32(v) for v in r[1:8])) for r, _ in world.calls[start:]]
    names = [f for f, _ in seq]
    i = names.index(SHARE64)
    assert names[i - 1] == DIRECT_REQ and seq[i - 1][1][2] == WITH_ARG
    w7 = u32(world.calls[start + i - 1][1][7])                      # the RPC reply's w7
    assert seq[i + 1][0] == DIRECT_REQ and seq[i + 1][1][2:] == (RESUME, 0, 0, 0, w7) and w7
    # SHM_FREE of a kernel buffer: UNREGISTER_SHM (w4/w5 handle) then MEM_RECLAIM
    j = names.index(RECLAIM)
    assert seq[j - 1][1][2:5] == (3, u32(gid), gid >> 32)
    assert seq[j][1][:3] == (u32(gid), gid >> 32, 0)
    assert gid not in world.objects and gid not in k.optee.ops.global_ids
    assert free[0][0] == 1                                           # the SHM_FREE answer


def test_rpc_supplicant_memory_is_only_reclaimed():
    world, k = booted(caps=ARG_OFFSET)
    s = Context(k).open_session(ECHO)
    start = len(world.calls)
    s.invoke(FUNC_RPC_SHM, value_op(0))                            # APPL type
    assert 3 not in [d[0] for d in directs(world, start)]
    assert RECLAIM in fids(world, start)


def test_tee_supplicant_gets_an_fmem_buffer_by_address(tmp_path):
    import uuid
    world, k = booted()
    new = uuid.UUID("11111111-2222-3333-4444-555555555555")
    (tmp_path / f"{new}.ta").write_bytes(b"signed TA image")
    k.supplicant.ta_dirs = [tmp_path]
    s = Context(k).open_session(ECHO)
    a, b = struct.unpack("<QQ", new.bytes)
    s.invoke(FUNC_LOAD_TA, Operation((TEEC_VALUE_INOUT,) + NONE3, [Value(a, b), None, None,
                                                                     None]))
    assert world.loaded == (15, b"signed TA image")          # size back in the FMEM, bytes in
    assert k.supplicant.requests[-1] == (0, str(new))         # the buffer behind the handle
    assert world.rpc_answers[1][1][0] == 6                    # still an FMEM_OUTPUT


def test_interrupt_return_takes_interrupts_and_resumes():
    world, k = booted()
    s = Context(k).open_session(ECHO)
    start = len(world.calls)
    acks = world.irq_acks
    s.invoke(FUNC_INTERRUPT, value_op(0))
    calls = directs(world, start)
    assert [c[0] for c in calls] == [WITH_ARG, RESUME]
    assert calls[1][1:] == (0, 0, 0, calls[1][4]) and calls[1][4] != 0   # w7 = thread
    assert world.irq_acks == acks + 1 and k.optee.stats["rpc"] >= 1


def test_busy_retries_the_same_call_and_busy_to_resume_fails():
    world, k = booted()
    ctx = Context(k)
    s = ctx.open_session(ECHO)
    world.busy = 2
    start = len(world.calls)
    op = value_op(1)
    s.invoke(FUNC_INCREMENT, op)
    calls = directs(world, start)
    assert len(calls) == 3 and calls[0][:4] == calls[1][:4] == calls[2][:4]
    assert op.params[0].a == 2 and k.optee.stats["busy"] == 2
    world.busy_on_resume = True
    ret, origin = s.invoke(FUNC_INTERRUPT, value_op(0), check=False)
    assert (ret, origin) == (0xFFFF000E, 2)                         # COMMUNICATION, COMMS


def test_memref_conversion_to_fmem():
    world, k = booted()
    ops, c = k.optee.ops, k.c
    shm = TeeShm(None, 0x3000, 0, (0x4010_0000,), 0x123, 0x4010_0000)
    shm.extra["sec_world_id"] = 0x0000_1000_0000_0005
    p = ops.to_msg_memref(TeeParam(c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT, 0x1_2345_6789,
                                   0x40, 0, shm), 2)
    raw = struct.pack("<QQQQ", p.attr, p.a, p.b, p.c)
    assert raw == struct.pack("<QIHHQQ", 7, 0x2345_6789, 0x1, 0x123, 0x40, 0x1000_0000_0005)
    null = ops.to_msg_memref(TeeParam(c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, 0, 8), 1)
    assert (null.attr, null.a, null.b, null.c) == (6, 0, 8, INVALID_GID)
    with pytest.raises(LinuxError) as exc:
        ops.to_msg_memref(TeeParam(c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, 1 << 48, 1, 0,
                                   shm), 0)
    assert exc.value.errno == errno.EINVAL


def test_user_shm_is_shared_then_unregistered_and_reclaimed():
    world, k = booted()
    ctx = Context(k)
    start = len(world.calls)
    shm = ctx.allocate_shared_memory(0x2000)
    obj = world.mem_ops[-1]
    handle = next(h for h, o in world.objects.items() if o is obj)
    assert fids(world, start) == [SHARE64] and obj.constituents[0][1] == 2
    assert k.optee.ops.global_ids[handle].id == shm.id
    start = len(world.calls)
    ctx.release_shared_memory(shm)
    assert fids(world, start) == [DIRECT_REQ, RECLAIM]
    assert directs(world, start)[0][:3] == (3, u32(handle), handle >> 32)
    assert world.calls[-1][0][:4] == (RECLAIM, u32(handle), handle >> 32, 0)


def test_remove_frees_the_argument_cache():
    world, k = booted()
    ctx = Context(k)
    ctx.open_session(ECHO).close()
    ctx.close()
    arg = k.optee.ops.arg_cache[0].shm.extra["sec_world_id"]
    start = len(world.calls)
    k.remove_optee()
    assert fids(world, start) == [DIRECT_REQ, RECLAIM] and arg not in world.objects
    k.probe_optee()                                   # the bus stays: no new version/map
    assert 0x84000063 not in fids(world, start)


# --- protected memory --------------------------------------------------------------------------------
def test_protmem_config_query_lend_assign_release_reclaim_order():
    world, k = booted(caps=ARG_OFFSET | PROTMEM)
    cfg = [m for m in world.seen_msgs if m["cmd"] == 10]
    assert len(cfg) == 2
    q0, q1 = cfg[0]["params"], cfg[1]["params"]
    assert q0[0][:2] == (3, 1) and q0[1] == (6, 0, 0, INVALID_GID)    # NULL FMEM_OUTPUT
    buf = next(m for m in world.mem_ops if m.handle == q1[1][3])   # a 4-byte shared buffer
    assert q1[1][:3] == (6, 0, 4) and buf.kind == "share" and buf.constituents[0][1] == 1
    pool = k.heaps["protected,secure-video"].priv.pool
    assert k.optee.ops.info.protmem == {1: "dynamic"}
    assert pool.page_count == 256 and pool.mem_attrs == (0x0002_8001,) and pool.chunk is None
    start = len(world.calls)
    fd = dma_heap_alloc(k, SV, 0x2000)
    chunk = pool.chunk
    lend = world.mem_ops[-1]
    handle = chunk.extra["sec_world_id"]
    assert lend.kind == "lend" and lend.desc == golden_lend(chunk.paddr)
    assert chunk.cookie == handle and k.optee.ops.global_ids[handle] is chunk
    seq = [(u32(r[0]), tuple(u32(v) for v in r[3:8])) for r, _ in world.calls[start:]]
    assert seq[0] == (LEND64, (0, 0, 0, 0, 0))
    assert seq[1][0] == DIRECT_REQ and seq[1][1][0] == WITH_ARG and len(seq) == 2
    assign = world.seen_msgs[-1]
    assert assign["cmd"] == 11 and assign["params"] == [(1, handle, 1, 0)]
    start = len(world.calls)
    k.close(fd)
    seq = [(u32(r[0]), tuple(u32(v) for v in r[1:8])) for r, _ in world.calls[start:]]
    assert [f for f, _ in seq] == [DIRECT_REQ, RECLAIM]
    assert seq[0][1][2:5] == (8, u32(handle), handle >> 32)           # RELEASE_PROTMEM
    assert seq[1][1][:3] == (u32(handle), handle >> 32, 0)
    assert pool.chunk is None and k.cma.used_pages == 0 and handle not in world.objects


def golden_lend(pa):
    """optee_ffa.md §11.4, v1.2 column: 112 bytes."""
    return (struct.pack("<HHIQQIII12x", 0, 0, 0, 0, 1, 32, 1, 48)
            + struct.pack("<HBBI", 0x8001, 2, 0, 80).ljust(32, b"\0")
            + struct.pack("<IIQ", 256, 1, 0) + struct.pack("<QII", pa, 256, 0))


def test_a_protected_buffer_travels_as_fmem_of_the_chunk():
    world, k = booted(caps=ARG_OFFSET | PROTMEM)
    ctx = Context(k)
    s = ctx.open_session(ECHO)
    pad = dma_heap_alloc(k, SV, 0x3000)                 # first buffer: chunk offset 0
    fd = dma_heap_alloc(k, SV, 0x1000)
    shm = ctx.register_shared_memory_fd(fd)
    op = Operation((TEEC_MEMREF_PARTIAL_INOUT,) + NONE3, [RegMemref(shm, 0x10, 0x20), None,
                                                           None, None])
    s.invoke(100, op, check=False)                     # a command the fake TA ignores
    handle = k.heaps["protected,secure-video"].priv.pool.chunk.cookie
    assert world.seen_msgs[-1]["params"][0] == (7, 0x3010, 0x20, handle)   # FMEM_INOUT
    ctx.release_shared_memory(shm)
    k.close(fd)
    k.close(pad)


def test_a_refused_assign_reclaims_and_frees_the_chunk():
    world, k = booted(caps=PROTMEM)
    world.assign_ret = 0xFFFF0006
    start = len(world.calls)
    with pytest.raises(LinuxError):
        dma_heap_alloc(k, SV, 0x1000)
    assert fids(world, start) == [LEND64, DIRECT_REQ, RECLAIM]
    assert not [h for h, o in world.objects.items() if o.kind == "lend"]
    assert k.cma.used_pages == 0


def test_failing_to_record_the_handle_releases_then_reclaims():
    world, k = booted(caps=PROTMEM)
    ops = k.optee.ops
    ops.global_ids[0x1000_0000_0000 | world.slot] = TeeShm(None, 1, 0)    # the next handle
    start = len(world.calls)
    with pytest.raises(LinuxError) as exc:
        dma_heap_alloc(k, SV, 0x1000)
    assert exc.value.errno == errno.EEXIST
    assert fids(world, start) == [LEND64, DIRECT_REQ, DIRECT_REQ, RECLAIM]
    assert directs(world, start)[1][0] == 8 and k.cma.used_pages == 0


def test_a_refused_reclaim_keeps_the_chunk_lent_and_retries_later():
    world, k = booted(caps=PROTMEM)
    pool = k.heaps["protected,secure-video"].priv.pool
    fd = dma_heap_alloc(k, SV, 0x1000)
    handle = pool.chunk.cookie
    world.reclaim_error = -6                                           # DENIED
    k.close(fd)
    assert pool.chunk is not None and pool.chunk.extra["sec_world_id"] == handle
    world.reclaim_error = None
    start = len(world.calls)
    k.close(dma_heap_alloc(k, SV, 0x1000))                            # no new lend
    assert LEND64 not in fids(world, start) and pool.chunk is None
    assert world.calls[-1][0][:4] == (RECLAIM, u32(handle), handle >> 32, 0)


def test_no_protmem_cap_no_heap_and_a_config_failure_only_logs():
    world, k = booted(caps=0)
    assert not k.heaps and not [m for m in world.seen_msgs if m["cmd"] == 10]
    world = FakeFfaWorld(caps=PROTMEM)
    k = fake_kernel(world)
    world.direct_errors[WITH_ARG] = -2
    k.probe_optee()
    assert not k.heaps and "Protected memory service not available" in k.dmesg[-1]


# --- end to end on the emulated platform ----------------------------------------------------------
def boot_ffa(**kw):
    try:
        return tzemu.boot(abi="ffa", record_events=100_000, **kw)
    except tzemu.PlatformError as exc:
        if "ffa" in str(exc).lower():
            pytest.skip(f"the FF-A secure side is not there yet: {exc}")
        raise


def test_e2e_probe():
    p = boot_ffa(protmem="dynamic")
    k = p.kernel
    ops = k.optee.ops
    assert ops.name == "ffa" and k.ffa is not None
    assert ops.info.api_revision == (1, 0) and ops.info.partition.id & 0x8000
    assert ops.info.sec_caps & PROTMEM and ops.info.protmem == {1: "dynamic"}
    assert SV.rsplit("/", 1)[1] in k.heaps
    assert Context(k).version["gen_caps"] == k.optee.gen_caps() == 0xD   # GP|REG_MEM|NULL


def test_e2e_echo_session():
    p = boot_ffa()
    ctx = p.linux.teec()
    s = ctx.open_session(ECHO)
    op = value_op(41)
    assert s.invoke(0, op) == (0, 4) and op.params[0].a == 42
    s.close()


def test_e2e_sdp_round_trip_through_a_lent_chunk():
    p = boot_ffa(protmem="dynamic")
    k = p.kernel
    pool = k.heaps["protected,secure-video"].priv.pool
    ctx = p.linux.teec()
    s = ctx.open_session(SDP_BASIC)
    size, offset = 5000, 7
    fd = dma_heap_alloc(k, SV, size)
    chunk = pool.chunk
    assert pool.lends == 1 and chunk.cookie == chunk.extra["sec_world_id"]
    with pytest.raises(tzemu.ProtectionFault):
        p.ns_read(chunk.paddr, 16)
    shm = ctx.register_shared_memory_fd(fd)
    k.close(fd)
    ref = bytes((i * 37 + 11) & 0xFF for i in range(size - 255))
    n = len(ref)
    s.invoke(0, Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT) + NONE2,
                          [TempMemref(ref), RegMemref(shm, offset, n), None, None]))
    s.invoke(1, Operation((TEEC_MEMREF_PARTIAL_INOUT,) + NONE3,
                          [RegMemref(shm, offset, n), None, None, None]))
    out = TempMemref(size=n)
    s.invoke(2, Operation((TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_TEMP_OUTPUT) + NONE2,
                          [RegMemref(shm, offset, n), out, None, None]))
    assert out.out == bytes((-b) & 0xFF for b in ref)
    ctx.release_shared_memory(shm)
    s.close()
    assert pool.reclaims == 1 and pool.chunk is None and k.cma.used_pages == 0
    assert p.ns_read(chunk.paddr, 64) == bytes(64)            # back to NS (and scrubbed)


def test_e2e_a_normal_world_interrupt_during_a_call():
    p = boot_ffa()
    s = p.linux.teec().open_session(ECHO)
    p.gic.raise_ns(27)
    op = value_op(5)
    s.invoke(0, op)
    assert op.params[0].a == 6 and p.kernel.interrupts_taken == [27]


def test_e2e_thread_limit_makes_a_second_caller_wait_then_succeed():
    p = boot_ffa(threads=1)
    k = p.kernel
    ctx = p.linux.teec()
    s = ctx.open_session(ECHO)
    p.gic.raise_ns(30)        # the first call is pre-empted by it, holding the only thread
    ops = [value_op(10), value_op(20)]

    def call(op):
        lay = ctx.s["tee_ioctl_invoke_arg"]
        body = lay.pack({"func": 0, "session": s.id, "num_params": 4}) + ctx._params(op, [])
        va = k.user_alloc(len(body))
        k.copy_to_user(va, body)
        buf = ctx.s["tee_ioctl_buf_data"].pack({"buf_ptr": va, "buf_len": len(body)})
        yield from k.ioctl_gen(ctx.fd, ctx.c.TEE_IOC_INVOKE, buf)
        return struct.unpack_from("<Q", k.copy_from_user(va, len(body)), lay.size + 8)[0]
    tasks = k.run_concurrently([("a", call(ops[0])), ("b", call(ops[1]))])
    assert [t.error for t in tasks] == [None, None]
    assert [t.result for t in tasks] == [11, 21]
    assert k.optee.stats["busy"] >= 1


def test_e2e_load_ta_through_tee_supplicant(tmp_path):
    import uuid
    new = uuid.UUID("11111111-2222-3333-4444-555555555555")
    echo_ta_file(tmp_path, new)
    p = boot_ffa(ta_dirs=[tmp_path])
    s = p.linux.teec().open_session(new)
    op = value_op(1)
    s.invoke(0, op)
    assert op.params[0].a == 2
    st = p.kernel.optee.stats
    assert st["rpc_cmd_0"] == 2 and st["rpc_cmd_6"] == 1 and st["rpc_cmd_7"] == 1
    assert p.secure_os.ta_manager.loaded_from_ree[new] == f"{new}.ta"
    assert not p.kernel.optee.ops.global_ids.keys() - {
        e.shm.extra["sec_world_id"] for e in p.kernel.optee.ops.arg_cache}
