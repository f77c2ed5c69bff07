"""TEE_IOC_SHM_REGISTER_FD and memrefs on registered dma-bufs (linux_uapi.md §7, §8).

Everything here happens before any world switch (checked with the monitor's SMC count), or
goes to the echo TA through an unfenced hand-made static pool, which the secure OS sees as
ordinary TMEM in normal-world memory.
"""
from __future__ import annotations

import errno
import struct

import pytest

from linux_side.errors import LinuxError
from linux_side.optee.optee_msg import MsgArg
from linux_side.teec import (TEEC_MEM_INPUT, TEEC_MEM_OUTPUT, TEEC_MEMREF_PARTIAL_INOUT,
                             TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT,
                             TEEC_MEMREF_WHOLE, TEEC_NONE, Operation, RegMemref, TeecError,
                             dma_heap_alloc)
from linux_side.tee.tee_core import TeeDevice
from linux_side.tee.tee_heap import tee_device_register_dma_heap
from linux_side.tee.tee_protmem_pool import tee_protmem_static_pool_alloc

REGISTER_FD, INVOKE, OPEN = 0xC018A408, 0x8010A403, 0x8010A402
SV = "/dev/dma_heap/protected,secure-video"
ECHO = "7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31"
PAGE = 0x1000


def register(lx, tee_fd, fd, flags=0):
    return lx.ioctl(tee_fd, REGISTER_FD, struct.pack("<qQIi", fd, 0, flags, 0))


def invoke_raw(lx, tee_fd, session, func, params):
    body = struct.pack("<6I", func, session, 0, 0, 0, len(params))
    body += b"".join(struct.pack("<4Q", *prm) for prm in params)
    va = lx.user_alloc(len(body))
    lx.user_write(va, body)
    lx.ioctl(tee_fd, INVOKE, struct.pack("<QQ", va, len(body)))
    return lx.user_read(va, len(body))


def open_echo(lx, tee_fd):
    import uuid
    body = uuid.UUID(ECHO).bytes + bytes(16) + struct.pack("<6I", 0, 0, 0, 0, 0, 0)
    va = lx.user_alloc(len(body))
    lx.user_write(va, body)
    lx.ioctl(tee_fd, OPEN, struct.pack("<QQ", va, len(body)))
    return struct.unpack_from("<I", lx.user_read(va, len(body)), 40)[0]


def test_register_fd_returns_size_flags_id_and_a_new_fd(static_sv):
    p, pool = static_sv
    k, lx = p.kernel, p.linux
    tee = lx.open("/dev/tee0")
    buf = dma_heap_alloc(k, SV, 5000)
    smcs = p.monitor.smc_count
    out = register(lx, tee, buf)
    fd, size, flags, shm_id = struct.unpack("<qQIi", out)
    assert (fd, size, flags) == (buf, 8192, 0x10) and shm_id >= 1
    assert out.ret >= 3 and out.ret not in (tee, buf) and k.files[out.ret].name == "tee_shm"
    assert p.monitor.smc_count == smcs                     # no secure-world call
    shm = k.files[out.ret].obj.shm
    assert shm.refcount == 1 and shm.paddr == pool.pa_base     # static: update_shm sets paddr
    with pytest.raises(LinuxError) as e:
        lx.mmap(out.ret, PAGE)
    assert e.value.errno == errno.EINVAL
    lx.close(buf)                                          # the shm keeps the buffer alive
    assert pool.avail() == pool.size - 2 * PAGE
    lx.close(out.ret)                                      # ... until its fd is closed
    assert pool.avail() == pool.size
    assert shm_id not in k.optee.shm_table.by_id
    assert p.monitor.smc_count == smcs


def test_every_registration_failure_is_einval_with_the_reason(static_sv):
    p, _pool = static_sv
    k, lx = p.kernel, p.linux
    tee = lx.open("/dev/tee0")
    buf = dma_heap_alloc(k, SV, PAGE)
    cases = [(register, (buf, 1), "flags must be 0"),
             (register, (99, 0), "EBADF"),
             (register, (tee, 0), "not a dma-buf")]
    for fn, (fd, flags), words in cases:
        users = k.tee0.num_users
        with pytest.raises(LinuxError, match=words) as e:
            fn(lx, tee, fd, flags)
        assert e.value.errno == errno.EINVAL
        assert k.tee0.num_users == users and k.files[buf].obj.dmabuf.refcount == 1
    closed = dma_heap_alloc(k, SV, PAGE)
    lx.close(closed)
    with pytest.raises(LinuxError, match="EBADF") as e:
        register(lx, tee, closed)
    assert e.value.errno == errno.EINVAL
    assert not k.optee.shm_table.by_id


def test_fd_high_bits_are_ignored_like_an_int_fd(static_sv):
    p, _pool = static_sv
    lx = p.linux
    tee = lx.open("/dev/tee0")
    buf = dma_heap_alloc(p.kernel, SV, PAGE)
    out = register(lx, tee, buf + (1 << 32))
    assert struct.unpack("<qQIi", out)[0] == buf + (1 << 32)


def test_foreign_exporters_and_other_tee_devices_are_refused(static_sv):
    p, _pool = static_sv
    k, lx = p.kernel, p.linux
    from linux_side.dma_buf import DmaBufOps, dma_buf_export, dma_buf_fd
    from linux_side.dma_mapping import SgTable

    class SystemHeapOps(DmaBufOps):            # an ordinary exporter, like the system heap
        def map_dma_buf(self, attachment):
            return SgTable.one(0x4100_0000, PAGE)

        def unmap_dma_buf(self, attachment, sgt):
            pass

        def release(self, dmabuf):
            pass
    sysbuf = dma_buf_fd(k, dma_buf_export(PAGE, SystemHeapOps(), object(), "system"))
    tee = lx.open("/dev/tee0")
    with pytest.raises(LinuxError, match="not exported by a TEE protected heap") as e:
        register(lx, tee, sysbuf)
    assert e.value.errno == errno.EINVAL
    # a second TEE device with its own heap: its buffers are not tee0's
    tee1 = TeeDevice(k, "tee1", k.optee)
    tee1.register()
    cv = p.memory_map.carveout("trusted-ui")
    tee_device_register_dma_heap(tee1, 2, tee_protmem_static_pool_alloc(k, cv.base, cv.size))
    other = dma_heap_alloc(k, "/dev/dma_heap/protected,trusted-ui", PAGE)
    with pytest.raises(LinuxError, match="belongs to tee1, not tee0") as e:
        register(lx, tee, other)
    assert e.value.errno == errno.EINVAL
    t1 = lx.open("/dev/tee1")
    assert struct.unpack("<qQIi", register(lx, t1, other))[2] == 0x10


@pytest.mark.parametrize("a, b", [(0, PAGE + 1), (PAGE, 1), (2**64 - 1, 2), (1, 2**64 - 1)])
def test_out_of_bounds_memrefs_fail_before_any_world_switch(static_sv, a, b):
    p, _pool = static_sv
    lx = p.linux
    tee = lx.open("/dev/tee0")
    session = open_echo(lx, tee)
    reg = register(lx, tee, dma_heap_alloc(p.kernel, SV, 100))
    shm_id = struct.unpack("<qQIi", reg)[3]
    smcs = p.monitor.smc_count
    with pytest.raises(LinuxError, match="outside shm") as e:
        invoke_raw(lx, tee, session, 1, [(6, a, b, shm_id)])
    assert e.value.errno == errno.EINVAL
    assert p.monitor.smc_count == smcs


def capture_msgs(p):
    drv = p.kernel.optee
    sent: list[MsgArg] = []
    real = drv.do_msg

    def do_msg(ctx, arg):
        sent.append(arg)
        return (yield from real(ctx, arg))
    drv.do_msg = do_msg
    return sent


def test_static_pool_buffer_travels_as_tmem_at_its_carveout_address(static_sv):
    p, pool = static_sv
    k, lx = p.kernel, p.linux
    ctx = lx.teec()
    session = ctx.open_session(ECHO)
    first = dma_heap_alloc(k, SV, PAGE)               # so the second buffer is at +1 page
    shm = ctx.register_shared_memory_fd(dma_heap_alloc(k, SV, 2 * PAGE))
    inp = ctx.allocate_shared_memory(16)
    k.copy_to_user(inp.va, b"ping")
    sent = capture_msgs(p)
    op = Operation((TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_NONE, TEEC_NONE),
                   [RegMemref(inp, 0, 4), RegMemref(shm, 0x30, 16), None, None])
    assert session.invoke(1, op) == (0, 4)
    m = sent[-1].params[1]
    dmabuf_shm = k.optee.shm_table.by_id[shm.id]
    assert (m.attr, m.a, m.b, m.c) == (0xA, pool.pa_base + PAGE + 0x30, 16, dmabuf_shm.cookie)
    assert p.physmem.read(pool.pa_base + PAGE + 0x30, 4) == b"ping"
    assert op.params[1].size == 4
    k.close(first)


def test_dynamic_pool_buffer_travels_as_rmem_of_the_lent_chunk(dyn_sv):
    p, pool, backend = dyn_sv
    k, lx = p.kernel, p.linux
    tee = lx.open("/dev/tee0")
    session = open_echo(lx, tee)
    a = dma_heap_alloc(k, SV, PAGE)
    b = dma_heap_alloc(k, SV, 2 * PAGE)
    reg = register(lx, tee, b)
    shm_id = struct.unpack("<qQIi", reg)[3]
    dshm = k.optee.shm_table.by_id[shm_id]
    assert dshm.parent is pool.chunk and dshm.offset == PAGE
    sent = capture_msgs(p)
    invoke_raw(lx, tee, session, 1, [(7, 0x20, 0x10, shm_id)])   # whatever the TA answers
    m = sent[-1].params[0]
    assert (m.attr, m.a, m.b, m.c) == (7, PAGE + 0x20, 0x10, backend.calls[0][3])
    assert pool.chunk.refcount == 1                    # the param's reference was dropped
    k.close(a)


def test_libteec_checks_partial_memrefs_without_calling_the_kernel(static_sv):
    p, _pool = static_sv
    k = p.kernel
    ctx = p.linux.teec()
    session = ctx.open_session(ECHO)
    shm = ctx.register_shared_memory_fd(dma_heap_alloc(k, SV, 5000))
    assert (shm.size, shm.buffer, shm.registered_fd) == (8192, None, True)
    out_only = ctx.register_shared_memory_fd(dma_heap_alloc(k, SV, PAGE), TEEC_MEM_OUTPUT)
    smcs = p.monitor.smc_count
    ioctls = []
    real = k.ioctl_gen
    k.ioctl_gen = lambda *a: (ioctls.append(a), (yield from real(*a)))[1]
    cases = [(TEEC_MEMREF_PARTIAL_OUTPUT, 8191, 2), (TEEC_MEMREF_PARTIAL_OUTPUT, 8191, 5000),
             (TEEC_MEMREF_PARTIAL_OUTPUT, 8192, 1), (TEEC_MEMREF_PARTIAL_INOUT, 8192, 4096),
             (TEEC_MEMREF_PARTIAL_INPUT, 2, 2**64 - 1)]
    for t, off, size in cases:
        op = Operation((t,) + (TEEC_NONE,) * 3, [RegMemref(shm, off, size)] + [None] * 3)
        assert session.invoke(0, op, check=False) == (0xFFFF0006, 1)
        with pytest.raises(TeecError) as e:
            session.invoke(0, op)
        assert (e.value.code, e.value.origin) == (0xFFFF0006, 1)
    op = Operation((TEEC_MEMREF_PARTIAL_INPUT,) + (TEEC_NONE,) * 3,
                   [RegMemref(out_only, 0, 1)] + [None] * 3)
    assert session.invoke(0, op, check=False) == (0xFFFF0006, 1)    # direction not allowed
    assert not ioctls and p.monitor.smc_count == smcs
    op = Operation((TEEC_MEMREF_WHOLE,) + (TEEC_NONE,) * 3, [RegMemref(shm)] + [None] * 3)
    session.invoke(0, op, check=False)                  # reaches the kernel and the TA
    assert ioctls and p.monitor.smc_count > smcs


def test_teec_register_fd_refusals_are_bad_parameters_from_the_api(static_sv):
    p, _pool = static_sv
    ctx = p.linux.teec()
    for fd, flags in ((-1, TEEC_MEM_INPUT), (3, 0), (3, 4), (99, TEEC_MEM_INPUT)):
        with pytest.raises(TeecError) as e:
            ctx.register_shared_memory_fd(fd, flags)
        assert (e.value.code, e.value.origin) == (0xFFFF0006, 1)
