"""End to end with a secure OS that provides protected memory (``tzemu.boot(protmem=...)``):
static carveout and dynamic (lent CMA) pools, the sdp_basic TA on registered dma-bufs, the NS
CPU faulting on protected pages, lend on first allocation and reclaim (with scrubbing) on the
last free.

Each group is skipped while the secure side does not report the capability it needs: the boot
option does not exist yet (PlatformError) or the probed sec caps lack PROTMEM (bit 8) /
DYNAMIC_PROTMEM (bit 9). The check boots a platform and reads the caps it really probed.
"""
from __future__ import annotations

import errno

import pytest

import tzemu
from linux_side.dma_buf import (dma_buf_attach, dma_buf_detach, dma_buf_get,
                                dma_buf_map_attachment, dma_buf_put)
from linux_side.dma_mapping import Device
from linux_side.errors import LinuxError
from linux_side.optee.protmem import OpteeProtmemDynPool
from linux_side.teec import (TEEC_MEMREF_PARTIAL_INOUT, TEEC_MEMREF_PARTIAL_INPUT,
                             TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_TEMP_INPUT,
                             TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, Operation, RegMemref,
                             TempMemref, dma_heap_alloc)

PROTMEM, DYNAMIC_PROTMEM = 1 << 8, 1 << 9
SV = "/dev/dma_heap/protected,secure-video"
SDP_BASIC = "12345678-5b69-11e4-9dbb-101f74f00099"
ECHO = "7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31"
PAGE = 0x1000
NONE2 = (TEEC_NONE, TEEC_NONE)


def boot(mode: str):
    """A platform with protected memory in the given configuration (the secure side answers)."""
    return tzemu.boot(protmem=mode, record_events=100_000)


def needs_static(fn):            # both configurations exist now: kept as readable markers
    return fn


needs_dynamic = needs_static
MODES = ["static", "dynamic"]


def buffer_pa(k, fd: int) -> int:
    """Where a device would find the buffer: attach, map, read the DMA address."""
    buf = dma_buf_get(k, fd)
    att = dma_buf_attach(buf, Device("display"))
    pa = dma_buf_map_attachment(att).sgl[0].dma_address
    dma_buf_detach(buf, att)                     # unmaps first
    dma_buf_put(buf)
    return pa


def sdp_round_trip(p, size: int = 5000, offset: int = 7) -> tuple[bytes, bytes]:
    """xtest's NS -> TA flow once: inject, transform, dump through a registered dma-buf."""
    k = p.kernel
    ctx = p.linux.teec()
    s = ctx.open_session(SDP_BASIC)
    fd = dma_heap_alloc(k, SV, size)
    shm = ctx.register_shared_memory_fd(fd)
    k.close(fd)
    ref = bytes((i * 37 + 11) & 0xFF for i in range(size - 255))
    n = len(ref)
    s.invoke(0, Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT) + NONE2,
                          [TempMemref(ref), RegMemref(shm, offset, n), None, None]))
    s.invoke(1, Operation((TEEC_MEMREF_PARTIAL_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE),
                          [RegMemref(shm, offset, n), None, None, None]))
    out = TempMemref(size=n)
    s.invoke(2, Operation((TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_TEMP_OUTPUT) + NONE2,
                          [RegMemref(shm, offset, n), out, None, None]))
    ctx.release_shared_memory(shm)
    s.close()
    return ref, out.out


@pytest.mark.parametrize("mode", MODES)
def test_sdp_basic_inject_transform_dump(mode):
    p = boot(mode)
    assert p.kernel.optee.ops.info.protmem.get(1) == mode
    ref, dumped = sdp_round_trip(p)
    assert dumped == bytes((-b) & 0xFF for b in ref)


@pytest.mark.parametrize("mode", MODES)
def test_the_ns_cpu_faults_on_a_protected_buffer(mode):
    p = boot(mode)
    k = p.kernel
    fd = dma_heap_alloc(k, SV, PAGE)
    pa = buffer_pa(k, fd)
    with pytest.raises(tzemu.ProtectionFault):
        p.ns_read(pa, 16)
    with pytest.raises(tzemu.ProtectionFault):
        p.ns_write(pa, b"leak")
    k.close(fd)


@pytest.mark.parametrize("mode", MODES)
def test_a_ta_without_the_sdp_flag_never_sees_the_buffer(mode):
    p = boot(mode)
    k = p.kernel
    ctx = p.linux.teec()
    s = ctx.open_session(ECHO)
    shm = ctx.register_shared_memory_fd(dma_heap_alloc(k, SV, PAGE))
    op = Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_NONE, TEEC_NONE),
                   [TempMemref(b"ping"), RegMemref(shm, 0, 16), None, None])
    assert s.invoke(1, op, check=False) == (0xFFFF0006, 3)      # BAD_PARAMETERS, origin TEE


@needs_static
def test_static_heap_covers_the_carveout_the_secure_world_reports():
    p = boot("static")
    fids = [e.fields["fid"] for e in p.bus.of_kind("smc")]
    # probed at the end of probe: after the thread count, before the shm cache is enabled
    assert fids.index(0xB200000F) < fids.index(0xB2000014) < fids.index(0xB200000B)
    status, start, size = (x & 0xFFFFFFFF for x in p.smc(0xB2000014, 0)[:3])
    assert status == 0
    pool = p.kernel.heaps["protected,secure-video"].priv.pool
    assert (pool.kind, pool.pa_base, pool.size) == ("static", start, size)
    smcs = p.monitor.smc_count
    p.kernel.close(dma_heap_alloc(p.kernel, SV, PAGE))
    assert p.monitor.smc_count == smcs                   # no traffic for a static buffer


@needs_dynamic
def test_lend_on_first_allocation_reclaim_and_scrub_on_last_free():
    p = boot("dynamic")
    k = p.kernel
    pool = k.heaps["protected,secure-video"].priv.pool
    assert pool.chunk is None and k.cma.used_pages == 0
    ctx = p.linux.teec()
    s = ctx.open_session(SDP_BASIC)
    fd = dma_heap_alloc(k, SV, PAGE)
    chunk = pool.chunk
    assert pool.lends == 1 and k.cma.used_pages == pool.page_count
    with pytest.raises(tzemu.ProtectionFault):
        p.ns_read(chunk.paddr, 16)
    shm = ctx.register_shared_memory_fd(fd)
    k.close(fd)
    s.invoke(0, Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT) + NONE2,
                          [TempMemref(b"\x5a" * 64), RegMemref(shm, 0, 64), None, None]))
    s.close()
    ctx.release_shared_memory(shm)
    assert pool.reclaims == 1 and pool.chunk is None and k.cma.used_pages == 0
    assert p.ns_read(chunk.paddr, 64) == bytes(64)        # back to NS, scrubbed


@needs_dynamic
def test_the_lent_chunk_never_grows():
    p = boot("dynamic")
    k = p.kernel
    pool = k.heaps["protected,secure-video"].priv.pool
    fd = dma_heap_alloc(k, SV, pool.page_count * PAGE)
    with pytest.raises(LinuxError) as e:
        dma_heap_alloc(k, SV, PAGE)
    assert e.value.errno == errno.ENOMEM and pool.lends == 1
    k.close(fd)


@needs_dynamic
def test_a_lend_the_secure_world_refuses_leaves_both_sides_usable():
    p = boot("dynamic")
    k = p.kernel
    record = OpteeProtmemDynPool(k.tee0, k.optee.ops, 3, page_count=4)   # use case 3: never lent
    with pytest.raises(LinuxError) as e:
        k.run(record.alloc(PAGE))
    assert e.value.errno == errno.EINVAL
    assert record.chunk is None and k.cma.used_pages == 0
    ref, dumped = sdp_round_trip(p)                     # the secure-video pool still works
    assert dumped == bytes((-b) & 0xFF for b in ref)


@needs_dynamic
def test_the_platform_hands_the_kernel_its_cma_region():
    p = tzemu.boot(protmem="dynamic")
    assert (p.kernel.cma.base, p.kernel.cma.size) == (p.memory_map.cma_base, p.memory_map.cma_size)
