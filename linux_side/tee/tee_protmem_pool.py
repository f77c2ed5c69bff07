"""``struct tee_protmem_pool``: where a TEE protected heap gets its physical ranges.

The heap asks its pool for a range per buffer (``alloc``), gives it back on the buffer's last
reference (``free``), lets it describe a buffer to the TEE at TEE_IOC_SHM_REGISTER_FD time
(``update_shm``: a physical address, or a parent shm to substitute in memrefs) and destroys it
when the heap is unbound (``destroy_pool``). Two kinds exist (linux_uapi.md §9-§12): the static
carveout pool here (tee_heap.c in the kernel) and the OP-TEE dynamic pool (optee/protmem.py).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Generator

from linux_side.dma_mapping import SgTable
from linux_side.errors import LinuxError, einval
from linux_side.genalloc import PAGE_SHIFT, GenPool
from linux_side.mm import PAGE_SIZE, pfn_valid

if TYPE_CHECKING:
    from linux_side.kernel import Kernel
    from linux_side.tee.tee_shm import TeeShm


class TeeProtmemPool:
    """The four pool ops. ``alloc`` is a kernel path (a generator: the dynamic pool may make a
    yielding call to lend memory); the others run to completion."""

    kind = "abstract"

    def alloc(self, size: int) -> Generator[Any, Any, tuple[SgTable, int]]:
        """A range of ``size`` (page aligned) bytes: (sg_table, offset inside the pool)."""
        raise NotImplementedError

    def free(self, sgt: SgTable) -> None:
        raise NotImplementedError

    def update_shm(self, sgt: SgTable, offs: int, shm: "TeeShm") -> "TeeShm | None":
        """Describe the buffer to the TEE: set ``shm.paddr`` or return a parent shm."""
        raise NotImplementedError

    def destroy_pool(self) -> None:
        raise NotImplementedError

    def held_device_users(self) -> int:
        """TEE-device references the pool holds while no buffer is live (see the dynamic
        pool); the unbind path does not wait for these."""
        return 0


class TeeProtmemStaticPool(TeeProtmemPool):
    """A carveout reported by the secure world: page-granular first fit, no secure-world
    traffic at allocation or free; ``update_shm`` gives the buffer's carveout address."""

    kind = "static"

    def __init__(self, pa_base: int, size: int):
        self.pa_base, self.size = pa_base, size
        self.gen_pool: GenPool | None = GenPool(PAGE_SHIFT)
        self.gen_pool.add(pa_base, size)

    def alloc(self, size: int) -> Generator[Any, Any, tuple[SgTable, int]]:
        yield from ()
        assert self.gen_pool is not None, "allocation from a destroyed pool"
        pa = self.gen_pool.alloc(size)
        if not pa:
            raise LinuxError(errno.ENOMEM, f"static protmem pool {self.pa_base:#x}: no "
                                           f"{size:#x} free bytes ({self.gen_pool.avail():#x} "
                                           "available)")
        return SgTable.one(pa, size), pa - self.pa_base

    def free(self, sgt: SgTable) -> None:
        assert self.gen_pool is not None
        for sg in sgt.sgl:
            self.gen_pool.free(sg.phys, sg.length)
        sgt.sgl.clear()

    def update_shm(self, sgt: SgTable, offs: int, shm: "TeeShm") -> "TeeShm | None":
        shm.paddr = self.pa_base + offs
        return None

    def destroy_pool(self) -> None:
        if self.gen_pool is not None:
            self.gen_pool.destroy()
            self.gen_pool = None

    def avail(self) -> int:
        return self.gen_pool.avail() if self.gen_pool else 0


def tee_protmem_static_pool_alloc(kernel: "Kernel", paddr: int, size: int) -> TeeProtmemStaticPool:
    """A static pool over [paddr, paddr + size): ``-EINVAL`` unless both are page aligned and
    ``paddr`` has a struct page (lies in the kernel's RAM: pfn_valid)."""
    if (paddr | size) & (PAGE_SIZE - 1):
        raise einval(f"static protmem pool {paddr:#x}+{size:#x}: not page aligned")
    if not pfn_valid(kernel, paddr):
        raise einval(f"static protmem pool {paddr:#x}: no struct page (outside kernel RAM)")
    return TeeProtmemStaticPool(paddr, size)
