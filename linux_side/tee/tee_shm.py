"""``struct tee_shm``: shared memory objects of the TEE core, with ids and refcounts.

Ids come from the device's id table and start at 1; an id is never handed out again while the
object lives. The cookie a backend sends to the secure world is a kernel-pointer-like value
unique to the object (the real driver sends the ``struct tee_shm *``).

Two protected-memory kinds (tee_shm.c, linux_uapi.md §7, §12.3): a DMA_BUF shm wraps a dma-buf
from a TEE protected heap (``tee_shm_register_fd``), a DMA_MEM shm is the dynamic pool's chunk
(``tee_shm_alloc_dma_mem``). Neither registration nor release makes a secure-world call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from linux_side.dma_buf import DmaBuf, dma_buf_get, dma_buf_put
from linux_side.dma_mapping import dma_alloc_pages, dma_free_pages
from linux_side.errors import einval
from linux_side.mm import PAGE_SIZE

if TYPE_CHECKING:
    from linux_side.tee.tee_core import TeeDevice

COOKIE_BASE = 0xFFFF_0000_1000_0000


@dataclass(eq=False)
class TeeShm:
    ctx: object | None
    size: int
    flags: int
    pages: tuple[int, ...] = ()       # physical pages backing the buffer
    page_offset: int = 0              # offset of byte 0 in pages[0]
    paddr: int = 0                    # physical address when contiguous
    id: int = -1
    cookie: int = 0
    refcount: int = 1
    user_va: int = 0
    release_cb: list[Callable[["TeeShm"], None]] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def contiguous(self) -> bool:
        return all(b == a + PAGE_SIZE for a, b in zip(self.pages, self.pages[1:]))

    def pa_of(self, offset: int) -> int:
        if not self.pages:                 # contiguous by construction (paddr only)
            return self.paddr + offset
        idx, inpage = divmod(self.page_offset + offset, PAGE_SIZE)
        return self.pages[idx] + inpage


@dataclass(eq=False)
class TeeShmDmabufRef(TeeShm):
    """``struct tee_shm_dmabuf_ref``: a DMA_BUF shm, its dma-buf reference and, for the
    dynamic pool, the parent shm and the buffer's offset in it (memref substitution)."""

    dmabuf: DmaBuf | None = None
    parent: TeeShm | None = None
    offset: int = 0


class ShmIdTable:
    """The device's idr of shared-memory objects."""

    def __init__(self) -> None:
        self.by_id: dict[int, TeeShm] = {}
        self.by_cookie: dict[int, TeeShm] = {}
        self._next_id = 1
        self._next_cookie = COOKIE_BASE

    def new_cookie(self, shm: TeeShm) -> int:
        shm.cookie = self._next_cookie
        self._next_cookie += 0x100
        self.by_cookie[shm.cookie] = shm
        return shm.cookie

    def assign_id(self, shm: TeeShm) -> int:
        shm.id = self._next_id
        self._next_id += 1
        self.by_id[shm.id] = shm
        return shm.id

    def get(self, shm: TeeShm) -> TeeShm:
        shm.refcount += 1
        return shm

    def put(self, shm: TeeShm) -> None:
        shm.refcount -= 1
        if shm.refcount == 0:
            self.by_id.pop(shm.id, None)
            self.by_cookie.pop(shm.cookie, None)
            for cb in reversed(shm.release_cb):
                cb(shm)
            shm.release_cb.clear()


def tee_shm_register_fd(teedev: "TeeDevice", ctx: Any, fd: int) -> TeeShmDmabufRef:
    """A DMA_BUF shm for the dma-buf behind ``fd`` (steps 3-9 of linux_uapi.md §7.1).

    Raises LinuxError with the real cause (the ioctl collapses all of them to EINVAL):
    ``-EINVAL`` device going away; ``-EBADF`` fd not open; ``-EINVAL`` not a dma-buf, not from
    a TEE protected heap, or from a heap of another TEE device. The shm holds its own dma-buf
    reference and a device reference until its last put.
    """
    from linux_side.tee.tee_heap import tee_heap_update_from_dma_buf

    if not teedev.get():
        raise einval(f"{teedev.name} is being unregistered")
    table = teedev.driver.shm_table
    shm = TeeShmDmabufRef(ctx, 0, teedev.c.TEE_SHM_DMA_BUF)
    try:
        shm.dmabuf = dma_buf_get(teedev.kernel, fd)
        try:
            shm.parent, shm.offset = tee_heap_update_from_dma_buf(teedev, shm.dmabuf, shm)
        except BaseException:
            dma_buf_put(shm.dmabuf)
            raise
    except BaseException:
        teedev.put()
        raise
    table.assign_id(shm)
    table.new_cookie(shm)

    def release(s: TeeShm) -> None:
        assert isinstance(s, TeeShmDmabufRef) and s.dmabuf is not None
        dma_buf_put(s.dmabuf)
        teedev.put()
    shm.release_cb.append(release)
    return shm


def tee_shm_alloc_dma_mem(teedev: "TeeDevice", ctx: Any, page_count: int) -> TeeShm:
    """A DMA_MEM shm of ``page_count`` contiguous, zeroed pages from dma_alloc_pages (CMA),
    never in the id table; its cookie is what the backend lends. ``-EINVAL`` if the device is
    going away, ``-ENOMEM`` when no contiguous run is free."""
    if not teedev.get():
        raise einval(f"{teedev.name} is being unregistered")
    size = page_count * PAGE_SIZE
    try:
        pa = dma_alloc_pages(teedev.kernel, teedev.dev, size)
    except BaseException:
        teedev.put()
        raise
    shm = TeeShm(ctx, size, teedev.c.TEE_SHM_DMA_MEM, (), 0, pa)
    teedev.driver.shm_table.new_cookie(shm)

    def release(s: TeeShm) -> None:
        dma_free_pages(teedev.kernel, teedev.dev, s.size, s.paddr)
        teedev.put()
    shm.release_cb.append(release)
    return shm
