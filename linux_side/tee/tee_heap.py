"""TEE protected DMA heaps (drivers/tee/tee_heap.c, linux_uapi.md §5, §10).

A TEE driver registers one heap per protected-memory use case with a pool behind it; the heap
appears as /dev/dma_heap/protected,<use case> and exports dma-bufs that no CPU may map (no
mmap, no vmap), only devices (through attach/map, by physical address) and the TEE (through
TEE_IOC_SHM_REGISTER_FD).

Refcount: 1 for the registration, +1 per live dma-buf. While it is non-zero the heap holds one
TEE-device user reference. ``tee_device_put_all_dma_heaps`` (called by the device's unbind)
drops the registration reference; at zero the pool is destroyed and the heap unbound. The
dma-heap core cannot remove a heap, so the node stays: allocating from an unbound heap is
``-EINVAL``, and registering the same id again (a re-probe) rebinds the same heap.

The registry of heaps by id is per kernel (``kernel.tee_dma_heaps``), like the kernel's global
xarray.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator

from linux_side.dma_buf import DmaBuf, DmaBufAttachment, DmaBufOps, dma_buf_export
from linux_side.dma_heap import DmaHeap
from linux_side.dma_mapping import Device, SgTable, dma_map_sgtable, dma_unmap_sgtable
from linux_side.errors import LinuxError, einval
from linux_side.tee.tee_protmem_pool import TeeProtmemPool

if TYPE_CHECKING:
    from linux_side.kernel import Kernel
    from linux_side.tee.tee_core import TeeDevice
    from linux_side.tee.tee_shm import TeeShm


def heap_id_2_name(kernel: "Kernel", heap_id: int) -> str | None:
    """The fixed heap names; any other id has none."""
    c = kernel.c
    return {c.TEE_DMA_HEAP_SECURE_VIDEO_PLAY: "protected,secure-video",
            c.TEE_DMA_HEAP_TRUSTED_UI: "protected,trusted-ui",
            c.TEE_DMA_HEAP_SECURE_VIDEO_RECORD: "protected,secure-video-record"}.get(heap_id)


@dataclass(eq=False)
class TeeDmaHeap:
    """``struct tee_dma_heap``."""

    id: int
    heap: DmaHeap | None = None
    refcount: int = 0
    pool: TeeProtmemPool | None = None
    teedev: "TeeDevice | None" = None
    shutting_down: bool = False

    @property
    def name(self) -> str:
        return self.heap.name if self.heap else ""

    @property
    def bound(self) -> bool:
        return self.teedev is not None

    @property
    def live_buffers(self) -> int:
        """Buffers still holding a heap reference (the registration's is not one)."""
        return max(self.refcount - (0 if self.shutting_down or not self.bound else 1), 0)

    def get(self) -> None:
        self.refcount += 1

    def put(self) -> None:
        """At zero: destroy the pool, drop the device reference, unbind."""
        self.refcount -= 1
        if self.refcount == 0:
            assert self.pool is not None and self.teedev is not None
            self.pool.destroy_pool()
            self.teedev.put()
            self.pool = None
            self.teedev = None


@dataclass(eq=False)
class TeeHeapBuffer:
    heap: TeeDmaHeap
    size: int
    offs: int = 0
    table: SgTable = field(default_factory=SgTable)


@dataclass(eq=False)
class TeeHeapAttachment:
    table: SgTable
    dev: Device


class TeeHeapBufOps(DmaBufOps):
    """The protected buffers' dma-buf ops: device access only (no mmap, no vmap)."""

    def attach(self, dmabuf: DmaBuf, attachment: DmaBufAttachment) -> None:
        buf: TeeHeapBuffer = dmabuf.priv
        attachment.priv = TeeHeapAttachment(buf.table.copy(), attachment.dev)

    def detach(self, dmabuf: DmaBuf, attachment: DmaBufAttachment) -> None:
        attachment.priv = None

    def map_dma_buf(self, attachment: DmaBufAttachment) -> SgTable:
        a: TeeHeapAttachment = attachment.priv
        dma_map_sgtable(a.dev, a.table)            # DMA_ATTR_SKIP_CPU_SYNC: no CPU caches
        return a.table

    def unmap_dma_buf(self, attachment: DmaBufAttachment, sgt: SgTable) -> None:
        a: TeeHeapAttachment = attachment.priv
        assert sgt is a.table
        dma_unmap_sgtable(a.dev, sgt)

    def release(self, dmabuf: DmaBuf) -> None:
        buf: TeeHeapBuffer = dmabuf.priv
        h = buf.heap
        assert h.pool is not None
        h.pool.free(buf.table)
        h.put()


TEE_HEAP_BUF_OPS = TeeHeapBufOps()


class TeeDmaHeapOps:
    """The heap's only op: allocate (tee_dma_heap_alloc)."""

    def allocate(self, heap: DmaHeap, length: int, fd_flags: int,
                 heap_flags: int) -> Generator[Any, Any, DmaBuf]:
        """``-EINVAL`` if the heap is unbound; the pool's error (``-ENOMEM``, or ``-EINVAL``
        for a refused lend) otherwise. Every failure gives the heap reference back."""
        h: TeeDmaHeap = heap.priv
        if h.teedev is None:
            raise einval(f"{heap.path}: heap is not bound to a TEE device")
        pool = h.pool
        assert pool is not None
        h.get()
        try:
            buf = TeeHeapBuffer(h, length)
            buf.table, buf.offs = yield from pool.alloc(length)
            try:
                return dma_buf_export(length, TEE_HEAP_BUF_OPS, buf, heap.name, fd_flags)
            except BaseException:
                pool.free(buf.table)
                raise
        except BaseException:
            h.put()
            raise


TEE_DMA_HEAP_OPS = TeeDmaHeapOps()


def tee_device_register_dma_heap(teedev: "TeeDevice", heap_id: int, pool: TeeProtmemPool) -> None:
    """Bind heap ``heap_id`` to ``teedev`` with ``pool`` (linux_uapi.md §10.1).

    Errors: ``-EINVAL`` device not registered or no name for the id (only 1..3 have one);
    ``-EBUSY`` the heap exists and is bound. Creates the heap and its node the first time,
    rebinds an unbound heap otherwise. On error the device reference is given back and the
    kernel logs "can't register DMA heap id N (name)"; the caller still owns ``pool``.
    """
    kernel = teedev.kernel
    if not teedev.get():
        raise einval(f"{teedev.name}: device is not registered")
    name = heap_id_2_name(kernel, heap_id)
    try:
        h = kernel.tee_dma_heaps.get(heap_id)
        if h is not None:
            if h.teedev is not None:
                raise LinuxError(errno.EBUSY, f"heap {name} is bound to {h.teedev.name}")
            h.refcount, h.shutting_down, h.teedev, h.pool = 1, False, teedev, pool
        else:
            if name is None:
                raise einval(f"no DMA heap name for id {heap_id}")
            h = TeeDmaHeap(heap_id, None, 1, pool, teedev)
            h.heap = kernel.dma_heap_core.dma_heap_add(name, TEE_DMA_HEAP_OPS, h)
            kernel.tee_dma_heaps[heap_id] = h
    except LinuxError:
        teedev.put()
        kernel.log(f"{teedev.name}: can't register DMA heap id {heap_id} ({name})")
        raise


def tee_device_put_all_dma_heaps(teedev: "TeeDevice") -> None:
    """Drop the registration reference of every heap bound to ``teedev`` (once each)."""
    for h in list(teedev.kernel.tee_dma_heaps.values()):
        if h.teedev is teedev and not h.shutting_down:
            h.shutting_down = True
            h.put()


def tee_heap_update_from_dma_buf(teedev: "TeeDevice", dmabuf: DmaBuf,
                                 shm: "TeeShm") -> tuple["TeeShm | None", int]:
    """REGISTER_FD steps 6-8: the dma-buf must come from a TEE heap bound to ``teedev``
    (``-EINVAL`` otherwise); sets ``shm.size`` and lets the pool describe the buffer.
    Returns (parent shm or None, the buffer's offset in the parent)."""
    if dmabuf.ops is not TEE_HEAP_BUF_OPS:
        raise einval(f"dma-buf from {dmabuf.exp_name!r} was not exported by a TEE protected heap")
    buf: TeeHeapBuffer = dmabuf.priv
    if buf.heap.teedev is not teedev:
        other = buf.heap.teedev.name if buf.heap.teedev else "no device"
        raise einval(f"dma-buf from heap {buf.heap.name} belongs to {other}, not {teedev.name}")
    shm.size = buf.size
    assert buf.heap.pool is not None
    parent = buf.heap.pool.update_shm(buf.table, buf.offs, shm)
    return parent, (buf.offs if parent is not None else 0)
