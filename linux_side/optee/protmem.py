"""The OP-TEE dynamic protected-memory pool (drivers/tee/optee/protmem.c, linux_uapi.md §12).

Created at probe from MSG GET_PROTMEM_CONFIG (a size query, then one retry with a buffer on
SHORT_BUFFER); it holds no memory until the first allocation. Then it takes ONE physically
contiguous ``min_size`` chunk from CMA (``tee_shm_alloc_dma_mem``, zeroed by kernel writes
before anything else happens), lends it through the backend (``lend_protmem``), marks the chunk
shm DYNAMIC and carves every buffer from it. It never grows: beyond the chunk, ``-ENOMEM``.
When the last buffer goes, it reclaims the chunk (``reclaim_protmem``) and gives the pages back
to CMA. The alignment the secure world reports (p0.b) is ignored, like the kernel does.

Failures keep both worlds consistent:
- a refused lend frees the chunk back to CMA (the secure world never took it) and leaves the
  pool empty and usable; the allocation fails with the lend's error (``-EINVAL``).
- a refused reclaim: the kernel ignores RECLAIM's result and frees the pages anyway, which
  would hand pages the secure world still protects back to CMA. tzemu deliberately diverges:
  the chunk stays lent and owned by the pool (the next allocation reuses it without a new
  lend, the next last free retries the reclaim), and ``destroy_pool`` tries once more; if that
  fails too the chunk is quarantined (kept out of CMA for good) and logged.
"""
from __future__ import annotations

import errno
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generator, Protocol

from linux_side.dma_mapping import SgTable, dma_bit_mask, dma_coerce_mask_and_coherent
from linux_side.errors import LinuxError, einval
from linux_side.genalloc import PAGE_SHIFT, GenPool
from linux_side.mm import PAGE_SIZE, page_align
from linux_side.optee.optee_msg import MsgArg
from linux_side.tee.tee_heap import tee_device_register_dma_heap
from linux_side.tee.tee_protmem_pool import TeeProtmemPool
from linux_side.tee.tee_shm import TeeShm, tee_shm_alloc_dma_mem

if TYPE_CHECKING:
    from linux_side.optee.optee import OpteeDriver
    from linux_side.tee.tee_core import TeeDevice


class ProtmemBackend(Protocol):
    """What the pool needs from the transport (``optee_ops.lend_protmem/reclaim_protmem``)."""

    def lend_protmem(self, protmem: TeeShm, mem_attrs: tuple[int, ...],
                     use_case: int) -> Generator: ...

    def reclaim_protmem(self, protmem: TeeShm) -> Generator: ...


@dataclass
class ProtmemConfig:
    min_size: int
    alignment: int          # reported by the secure world, ignored by Linux
    pa_width: int
    mem_attrs: tuple[int, ...]


class OpteeProtmemDynPool(TeeProtmemPool):
    kind = "dynamic"

    def __init__(self, teedev: "TeeDevice", backend: ProtmemBackend, use_case: int,
                 page_count: int, mem_attrs: tuple[int, ...] = ()):
        self.teedev, self.backend = teedev, backend
        self.kernel = teedev.kernel
        self.use_case, self.page_count, self.mem_attrs = use_case, page_count, mem_attrs
        self.refcount = 0
        self.gen_pool: GenPool | None = None
        self.protmem: TeeShm | None = None           # the lent chunk
        self.quarantined: list[TeeShm] = []
        self.lends = self.reclaims = 0

    # --- the chunk ------------------------------------------------------------------------
    def _init_dyn_protmem(self) -> Generator:
        c, table = self.teedev.c, self.teedev.driver.shm_table
        shm = tee_shm_alloc_dma_mem(self.teedev, None, self.page_count)
        try:
            yield from self.backend.lend_protmem(shm, self.mem_attrs, self.use_case)
        except BaseException:
            table.put(shm)                  # never lent: the pages go straight back to CMA
            raise
        self.lends += 1
        shm.flags |= c.TEE_SHM_DYNAMIC
        self.protmem = shm
        self.gen_pool = GenPool(PAGE_SHIFT)
        self.gen_pool.add(shm.paddr, shm.size)

    def _get(self) -> Generator:
        if self.refcount == 0 and self.gen_pool is None:
            yield from self._init_dyn_protmem()
        self.refcount += 1

    def _reclaim(self) -> bool:
        assert self.protmem is not None
        try:
            self.kernel.run(self.backend.reclaim_protmem(self.protmem))
        except LinuxError as exc:
            self.kernel.log(f"optee: RECLAIM_PROTMEM of use case {self.use_case} chunk "
                            f"{self.protmem.paddr:#x} failed ({exc.message}); chunk kept lent")
            return False
        self.reclaims += 1
        return True

    def _release_chunk(self) -> None:
        shm = self.protmem
        assert shm is not None and self.gen_pool is not None
        self.gen_pool.destroy()
        self.gen_pool = None
        shm.flags &= ~self.teedev.c.TEE_SHM_DYNAMIC
        self.protmem = None
        self.teedev.driver.shm_table.put(shm)       # dma_free_pages: back to CMA

    def _put(self) -> None:
        self.refcount -= 1
        if self.refcount == 0 and self.gen_pool is not None and self._reclaim():
            self._release_chunk()

    # --- pool ops ---------------------------------------------------------------------------
    def alloc(self, size: int) -> Generator[Any, Any, tuple[SgTable, int]]:
        """A buffer from the chunk: lends it first if needed (``-ENOMEM`` without CMA pages,
        ``-EINVAL`` if the lend is refused), ``-ENOMEM`` when the chunk is full. Like the
        kernel, a first allocation too big for the chunk still lends and reclaims it."""
        yield from self._get()
        assert self.gen_pool is not None and self.protmem is not None
        pa = self.gen_pool.alloc(page_align(size))
        if not pa:
            avail = self.gen_pool.avail()
            self._put()
            raise LinuxError(errno.ENOMEM, f"dynamic protmem pool (use case {self.use_case}): "
                                           f"no {size:#x} bytes left in its "
                                           f"{self.page_count * PAGE_SIZE:#x}-byte chunk "
                                           f"({avail:#x} free); the pool never grows")
        return SgTable.one(pa, size), pa - self.protmem.paddr

    def free(self, sgt: SgTable) -> None:
        assert self.gen_pool is not None
        for sg in sgt.sgl:
            self.gen_pool.free(sg.phys, page_align(sg.length))
        sgt.sgl.clear()
        self._put()

    def update_shm(self, sgt: SgTable, offs: int, shm: TeeShm) -> TeeShm | None:
        return self.protmem

    def destroy_pool(self) -> None:
        """Only reached with no buffer live; a chunk still lent (failed reclaim) gets one last
        reclaim attempt, else it is quarantined."""
        if self.protmem is not None:
            if self._reclaim():
                self._release_chunk()
            else:
                shm = self.protmem
                self.quarantined.append(shm)
                self.protmem, self.gen_pool = None, None
                self.teedev.put()           # the chunk's device reference; pages stay out
                self.kernel.log(f"optee: chunk {shm.paddr:#x}+{shm.size:#x} quarantined: the "
                                "secure world refused to give it back")

    def held_device_users(self) -> int:
        return 1 if self.protmem is not None and self.refcount == 0 else 0

    @property
    def chunk(self) -> TeeShm | None:
        return self.protmem


# --- creation ----------------------------------------------------------------------------------
def get_protmem_config(drv: "OpteeDriver", use_case: int,
                       attr_count: int = 0) -> Generator[Any, Any, tuple[ProtmemConfig, int, bool]]:
    """MSG GET_PROTMEM_CONFIG: p0 VALUE_INOUT a = use case, p1 MEMREF_OUTPUT (NULL for a
    query, else a buffer of ``attr_count`` u32). Returns (config, attribute count, short):
    ``short`` when the answer was SHORT_BUFFER. ``-EINVAL`` for any other error or an answer
    with more attributes than the buffer holds."""
    from linux_side.optee.optee import TeeParam

    c = drv.c
    params = [TeeParam(c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, use_case),
              TeeParam(c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT)]
    buf = None
    if attr_count:
        buf = drv.alloc_priv_shm(attr_count * 4)
        params[1].shm, params[1].b = buf, attr_count * 4
    try:
        arg = MsgArg(cmd=c.OPTEE_MSG_CMD_GET_PROTMEM_CONFIG, params=drv.to_msg_params(params))
        back = yield from drv.do_msg(None, arg)
        if back.ret not in (c.TEEC_SUCCESS, c.TEEC_ERROR_SHORT_BUFFER):
            raise einval(f"GET_PROTMEM_CONFIG(use case {use_case}) returned {back.ret:#x}")
        drv.from_msg_params(params, back.params)
        count = params[1].b // 4
        short = back.ret == c.TEEC_ERROR_SHORT_BUFFER
        if not short and attr_count and count > attr_count:
            raise einval(f"GET_PROTMEM_CONFIG: {count} attributes for a buffer of {attr_count}")
        attrs: tuple[int, ...] = ()
        if buf is not None and not short and count:
            raw = drv.kernel.conduit.read(buf.paddr, count * 4)
            attrs = struct.unpack(f"<{count}I", raw)
        cfg = ProtmemConfig(params[0].a, params[0].b, params[0].c, attrs)
        return cfg, count, short
    finally:
        if buf is not None:
            drv.shm_table.put(buf)


def optee_set_dma_mask(drv: "OpteeDriver", pa_width: int) -> None:
    """The TEE device's DMA mask: min(64, pa_width) bits."""
    assert drv.teedev is not None
    dma_coerce_mask_and_coherent(drv.kernel, drv.teedev.dev, dma_bit_mask(min(64, pa_width)))


def optee_protmem_alloc_dyn_pool(drv: "OpteeDriver", use_case: int) -> OpteeProtmemDynPool:
    """Ask the secure world for the use case's configuration and build an empty pool."""
    run = drv.kernel.run
    cfg, count, short = run(get_protmem_config(drv, use_case))
    if short:
        cfg, count, short = run(get_protmem_config(drv, use_case, count))
        if short:
            raise LinuxError(errno.ENOSPC, "GET_PROTMEM_CONFIG still short with a buffer")
    optee_set_dma_mask(drv, cfg.pa_width)
    assert drv.teedev is not None
    return OpteeProtmemDynPool(drv.teedev, drv.ops, use_case, cfg.min_size // PAGE_SIZE,
                               cfg.mem_attrs)


def optee_protmem_pool_init(drv: "OpteeDriver", use_cases: tuple[int, ...],
                            make_pool: Callable[[int], TeeProtmemPool],
                            registered: dict[int, str], log: Callable[[str], None]) -> None:
    """Both ABIs' optee_protmem_pool_init loop: per use case, build its pool (``make_pool``,
    the ABI's own choice of static or dynamic) and register the ``protected,<name>`` heap on
    it; a pool whose heap cannot be registered is destroyed. A failure only logs "Protected
    memory service not available" and leaves that heap unregistered. ``registered`` gets
    use case -> pool kind."""
    assert drv.teedev is not None
    for use_case in use_cases:
        try:
            pool = make_pool(use_case)
            try:
                tee_device_register_dma_heap(drv.teedev, use_case, pool)
            except LinuxError:
                pool.destroy_pool()
                raise
            registered[use_case] = pool.kind
        except LinuxError as exc:
            log(f"optee: Protected memory service not available (use case {use_case}:"
                f" {exc.message})")

