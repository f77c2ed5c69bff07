"""The dynamic protected-memory pool (linux_uapi.md §12) against a recording fake backend:
lazy chunk, zeroed before the lend, never grows, reclaim on the last free, and both worlds left
consistent when a lend or a reclaim is refused."""
from __future__ import annotations

import errno

import pytest

from linux_side.errors import LinuxError
from linux_side.teec import dma_heap_alloc

SV = "/dev/dma_heap/protected,secure-video"
PAGE = 0x1000


def test_nothing_is_taken_before_the_first_allocation(dyn_sv):
    p, pool, backend = dyn_sv
    assert pool.chunk is None and p.kernel.cma.used_pages == 0 and not backend.calls


def test_first_allocation_lends_one_zeroed_chunk_and_later_ones_reuse_it(dyn_sv):
    p, pool, backend = dyn_sv
    k = p.kernel
    p.physmem.write(k.cma.base, b"\xa5" * (32 * PAGE))       # stale data in CMA
    a = dma_heap_alloc(k, SV, PAGE)
    b = dma_heap_alloc(k, SV, 3 * PAGE)
    chunk = pool.chunk
    assert backend.calls == [("lend", chunk.paddr, 16 * PAGE, chunk.cookie, 1, True)]
    assert chunk.flags == k.c.TEE_SHM_DMA_MEM | k.c.TEE_SHM_DYNAMIC and chunk.id == -1
    assert k.cma.used_pages == 16 and k.cma.contains(chunk.paddr, 16)
    bufs = [k.files[fd].obj.dmabuf.priv for fd in (a, b)]
    assert [(x.offs, x.size) for x in bufs] == [(0, PAGE), (PAGE, 3 * PAGE)]
    assert bufs[1].table.sgl[0].phys == chunk.paddr + PAGE
    k.close(a)
    assert len(backend.calls) == 1                             # b still lives
    k.close(b)
    assert backend.calls[1:] == [("reclaim", chunk.cookie)]
    assert pool.chunk is None and k.cma.used_pages == 0
    assert chunk.cookie not in k.optee.shm_table.by_cookie


def test_the_pool_never_grows(dyn_sv):
    p, pool, backend = dyn_sv
    k = p.kernel
    fd = dma_heap_alloc(k, SV, 16 * PAGE)
    with pytest.raises(LinuxError, match="never grows") as e:
        dma_heap_alloc(k, SV, PAGE)
    assert e.value.errno == errno.ENOMEM
    assert len(backend.calls) == 1 and k.cma.used_pages == 16
    assert k.tee_dma_heaps[1].refcount == 2                     # registration + one buffer
    k.close(fd)


def test_a_first_allocation_larger_than_the_chunk_lends_and_reclaims_for_nothing(dyn_sv):
    p, _pool, backend = dyn_sv
    with pytest.raises(LinuxError) as e:
        dma_heap_alloc(p.kernel, SV, 17 * PAGE)
    assert e.value.errno == errno.ENOMEM
    assert [c[0] for c in backend.calls] == ["lend", "reclaim"]   # as the kernel does
    assert p.kernel.cma.used_pages == 0


def test_a_refused_lend_returns_the_chunk_and_leaves_the_pool_usable(dyn_sv):
    p, pool, backend = dyn_sv
    k = p.kernel
    backend.refuse_lend = True
    files = dict(k.files)
    with pytest.raises(LinuxError, match="LEND_PROTMEM refused") as e:
        dma_heap_alloc(k, SV, PAGE)
    assert e.value.errno == errno.EINVAL
    assert k.cma.used_pages == 0 and pool.chunk is None and pool.refcount == 0
    assert k.tee_dma_heaps[1].refcount == 1 and k.files == files
    assert not [s for s in k.optee.shm_table.by_cookie.values() if s.flags & k.c.TEE_SHM_DMA_MEM]
    backend.refuse_lend = False
    fd = dma_heap_alloc(k, SV, PAGE)
    assert [c[0] for c in backend.calls] == ["lend", "lend"] and pool.chunk is not None
    k.close(fd)


def test_a_refused_reclaim_keeps_the_chunk_lent_and_retries(dyn_sv):
    p, pool, backend = dyn_sv
    k = p.kernel
    fd = dma_heap_alloc(k, SV, PAGE)
    chunk = pool.chunk
    backend.refuse_reclaim = True
    k.close(fd)
    assert pool.chunk is chunk and chunk.flags & k.c.TEE_SHM_DYNAMIC
    assert k.cma.used_pages == 16                    # never handed back while still protected
    assert "RECLAIM_PROTMEM" in k.dmesg[-1]
    fd = dma_heap_alloc(k, SV, PAGE)                 # reuses the lent chunk: no second lend
    assert [c[0] for c in backend.calls] == ["lend", "reclaim"]
    backend.refuse_reclaim = False
    k.close(fd)
    assert [c[0] for c in backend.calls] == ["lend", "reclaim", "reclaim"]
    assert pool.chunk is None and k.cma.used_pages == 0


def test_unbind_with_a_chunk_the_secure_world_keeps_quarantines_it(dyn_sv):
    p, pool, backend = dyn_sv
    k = p.kernel
    backend.refuse_reclaim = True
    k.close(dma_heap_alloc(k, SV, PAGE))
    k.teardown()                                     # the kept chunk does not block unbind
    assert [c[0] for c in backend.calls] == ["lend", "reclaim", "reclaim"]
    assert pool.quarantined and k.cma.used_pages == 16
    assert "quarantined" in k.dmesg[-1]


def test_unbind_reclaims_nothing_when_nothing_is_lent(dyn_sv):
    p, _pool, backend = dyn_sv
    k = p.kernel
    k.close(dma_heap_alloc(k, SV, PAGE))
    k.teardown()
    assert [c[0] for c in backend.calls] == ["lend", "reclaim"]


def test_no_cma_is_enomem_without_a_lend(dyn_sv):
    p, _pool, backend = dyn_sv
    k = p.kernel
    k.cma.alloc(k.cma.count - 8)                     # leave less than the chunk
    with pytest.raises(LinuxError) as e:
        dma_heap_alloc(k, SV, PAGE)
    assert e.value.errno == errno.ENOMEM and not backend.calls
