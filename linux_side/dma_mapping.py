"""DMA mapping for devices (kernel/dma/): scatterlists, device DMA masks, dma_alloc_pages.

The model has no IOMMU and no bounce buffers: a device's DMA address is the physical address.
A mapping the device's mask cannot reach fails with ``-EIO`` (what dma-direct reports without
swiotlb) instead of bouncing, and the protected heaps map with skip-CPU-sync, which costs
nothing here because no caches are modelled.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from linux_side.cma import CMA_ALIGNMENT
from linux_side.errors import LinuxError
from linux_side.mm import PAGE_SIZE

if TYPE_CHECKING:
    from linux_side.kernel import Kernel


def dma_bit_mask(n: int) -> int:
    """DMA_BIT_MASK(n)."""
    return (1 << 64) - 1 if n >= 64 else (1 << n) - 1


@dataclass(eq=False)
class Device:
    """``struct device`` as far as DMA cares: a name and the mask of addresses it can reach."""

    name: str
    dma_mask: int = dma_bit_mask(32)
    coherent_dma_mask: int = dma_bit_mask(32)


@dataclass
class Scatterlist:
    """One contiguous piece of a buffer: its physical start and length, and once mapped for a
    device, the address that device uses."""

    phys: int
    length: int
    dma_address: int = 0
    dma_length: int = 0


@dataclass(eq=False)
class SgTable:
    sgl: list[Scatterlist] = field(default_factory=list)
    nents: int = 0                   # entries mapped for a device (0 while unmapped)

    @property
    def orig_nents(self) -> int:
        return len(self.sgl)

    @classmethod
    def one(cls, pa: int, length: int) -> "SgTable":
        """sg_alloc_table(1) + sg_set_page: a single contiguous range."""
        return cls([Scatterlist(pa, length)])

    def copy(self) -> "SgTable":
        """copy_sg_table: same pages, a private table to map for one device."""
        return SgTable([Scatterlist(s.phys, s.length) for s in self.sgl])


def dma_coerce_mask_and_coherent(kernel: "Kernel", dev: Device, mask: int) -> None:
    """Set both masks; ``-EIO`` when the mask cannot even reach the bottom of RAM (what
    dma_supported refuses)."""
    if mask < kernel.config.ram_base:
        raise LinuxError(errno.EIO, f"{dev.name}: DMA mask {mask:#x} does not reach RAM at "
                                    f"{kernel.config.ram_base:#x}")
    dev.dma_mask = dev.coherent_dma_mask = mask


def dma_map_sgtable(dev: Device, sgt: SgTable) -> None:
    """Map every entry for ``dev`` (direct mapping); ``-EIO`` if the mask cannot reach it."""
    for sg in sgt.sgl:
        if sg.phys + sg.length - 1 > dev.dma_mask:
            for s in sgt.sgl:
                s.dma_address = s.dma_length = 0
            raise LinuxError(errno.EIO, f"{dev.name}: {sg.phys:#x}+{sg.length:#x} beyond DMA "
                                        f"mask {dev.dma_mask:#x} (no swiotlb)")
        sg.dma_address, sg.dma_length = sg.phys, sg.length
    sgt.nents = len(sgt.sgl)


def dma_unmap_sgtable(dev: Device, sgt: SgTable) -> None:
    for sg in sgt.sgl:
        sg.dma_address = sg.dma_length = 0
    sgt.nents = 0


def get_order(size: int) -> int:
    """Smallest order with (PAGE_SIZE << order) >= size."""
    order = 0
    while (PAGE_SIZE << order) < size:
        order += 1
    return order


def dma_alloc_pages(kernel: "Kernel", dev: Device, size: int) -> int:
    """dma_alloc_pages: ``size`` bytes of contiguous, zeroed pages the device can reach.

    Taken from the CMA area only (no fallback to the buddy allocator: the chunks the
    protected-memory pools ask for are far above what it could give); aligned to
    min(order, CONFIG_CMA_ALIGNMENT) pages like dma_alloc_contiguous. The pages are zeroed
    with kernel (NS CPU) writes, as dma-direct clears what it hands out. ``-ENOMEM`` on failure.
    """
    count = (size + PAGE_SIZE - 1) // PAGE_SIZE
    pa = kernel.cma.alloc(count, min(get_order(size), CMA_ALIGNMENT))
    if pa + count * PAGE_SIZE - 1 > dev.coherent_dma_mask:
        kernel.cma.release(pa, count)
        raise LinuxError(errno.ENOMEM, f"{dev.name}: CMA pages at {pa:#x} beyond the DMA mask")
    kernel.conduit.write(pa, bytes(count * PAGE_SIZE))
    return pa


def dma_free_pages(kernel: "Kernel", dev: Device, size: int, pa: int) -> None:
    count = (size + PAGE_SIZE - 1) // PAGE_SIZE
    if not kernel.cma.release(pa, count):
        raise ValueError(f"{dev.name}: dma_free_pages of {pa:#x}: not CMA memory")
