"""DMA-BUF heaps (drivers/dma-buf/dma-heap.c): /dev/dma_heap/<name> and DMA_HEAP_IOCTL_ALLOC.

The ioctl is handled at byte level exactly as the core does it (linux_uapi.md §4.1): the
command is chosen by its number alone; the user's struct is copied in for its own size (an
older, shorter struct is zero-extended, a longer one truncated) and copied back for its own
size; then ``fd`` must be 0, ``fd_flags`` only O_CLOEXEC | O_ACCMODE, ``heap_flags`` 0, and
``len`` is page-aligned before the heap sees it (0, or a length that wraps to 0, is
``-EINVAL``). The new dma-buf fd comes back in ``fd``.

Heaps cannot be removed: the dma-heap core has no removal API, so a node stays for the life of
the kernel even after its driver is gone.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generator, Protocol

from linux_side.dma_buf import DmaBuf, dma_buf_fd, dma_buf_put
from linux_side.errors import LinuxError, einval
from linux_side.mm import PAGE_SIZE

if TYPE_CHECKING:
    from linux_side.kernel import Kernel

NUM_HEAP_MINORS = 128
DEV_DIR = "/dev/dma_heap/"


class DmaHeapOps(Protocol):
    def allocate(self, heap: "DmaHeap", length: int, fd_flags: int,
                 heap_flags: int) -> Generator[Any, Any, DmaBuf]:
        """Export a dma-buf of ``length`` (page aligned) bytes; raise LinuxError on failure."""


@dataclass(eq=False)
class DmaHeap:
    name: str
    ops: DmaHeapOps
    priv: Any
    minor: int

    @property
    def path(self) -> str:
        return DEV_DIR + self.name


class DmaHeapFile:
    """An open heap node; its only ioctl allocates."""

    def __init__(self, heap: DmaHeap, registry: "DmaHeapRegistry"):
        self.heap, self.registry = heap, registry

    def ioctl(self, kernel: "Kernel", request: int, arg: bytes) -> Generator:
        return (yield from self.registry.ioctl(self.heap, request, arg))

    def mmap(self, kernel: "Kernel", length: int) -> int:
        raise LinuxError(errno.ENODEV, f"{self.heap.path} has no mmap")

    def release(self, kernel: "Kernel") -> None:
        pass


class DmaHeapRegistry:
    """The dma-heap core of one kernel: the heap list and its device nodes."""

    def __init__(self, kernel: "Kernel"):
        self.kernel = kernel
        self.c = kernel.c
        self.heaps: dict[str, DmaHeap] = {}
        self.s_alloc = kernel.abi.structs["dma_heap_allocation_data"]
        self.cmds = (self.c.DMA_HEAP_IOCTL_ALLOC,)     # indexed by _IOC_NR

    def dma_heap_add(self, name: str, ops: DmaHeapOps, priv: Any) -> DmaHeap:
        """Create /dev/dma_heap/<name>; ``-EINVAL`` without a name or for a name in use."""
        if not name:
            raise einval("dma_heap: cannot add a heap without a name")
        if getattr(ops, "allocate", None) is None:
            raise einval("dma_heap: cannot add a heap with invalid ops")
        if len(self.heaps) >= NUM_HEAP_MINORS:
            raise LinuxError(errno.EBUSY, "dma_heap: no free minor number")
        if name in self.heaps:
            raise einval(f"dma_heap: already registered heap named {name}")
        heap = DmaHeap(name, ops, priv, len(self.heaps))
        self.heaps[name] = heap
        self.kernel.devices[heap.path] = lambda k, h=heap: DmaHeapFile(h, self)
        return heap

    # --- the ioctl ------------------------------------------------------------------------
    def ioctl(self, heap: DmaHeap, ucmd: int, arg: bytes) -> Generator:
        c = self.c
        nr = (ucmd >> c._IOC_NRSHIFT) & c._IOC_NRMASK
        if nr >= len(self.cmds):
            raise einval(f"{heap.path}: ioctl number {nr} unknown")
        kcmd = self.cmds[nr]
        drv_size = (kcmd >> c._IOC_SIZESHIFT) & c._IOC_SIZEMASK
        out_size = in_size = (ucmd >> c._IOC_SIZESHIFT) & c._IOC_SIZEMASK
        if not ucmd & kcmd & c.IOC_IN:
            in_size = 0
        if not ucmd & kcmd & c.IOC_OUT:
            out_size = 0
        ksize = max(in_size, out_size, drv_size)
        if len(arg) < max(in_size, out_size):
            raise LinuxError(errno.EFAULT, f"{heap.path}: argument of {len(arg)} bytes, the "
                                           f"request says {max(in_size, out_size)}")
        kdata = bytearray(arg[:in_size]) + bytes(ksize - in_size)
        if kcmd == c.DMA_HEAP_IOCTL_ALLOC:
            yield from self.ioctl_allocate(heap, kdata)
        else:  # pragma: no cover - one command today
            raise LinuxError(errno.ENOTTY, f"{heap.path}: ioctl {ucmd:#x}")
        return 0, bytes(kdata[:out_size]) + bytes(arg[out_size:])

    def ioctl_allocate(self, heap: DmaHeap, kdata: bytearray) -> Generator:
        c = self.c
        d = self.s_alloc.unpack(bytes(kdata[:self.s_alloc.size]))
        if d["fd"]:
            raise einval(f"{heap.path}: fd must be 0 on input (got {d['fd']})")
        if d["fd_flags"] & ~c.DMA_HEAP_VALID_FD_FLAGS:
            raise einval(f"{heap.path}: fd_flags {d['fd_flags']:#o} beyond O_CLOEXEC|O_ACCMODE")
        if d["heap_flags"] & ~c.DMA_HEAP_VALID_HEAP_FLAGS:
            raise einval(f"{heap.path}: heap_flags {d['heap_flags']:#x} must be 0")
        fd = yield from self.buffer_alloc(heap, d["len"], d["fd_flags"], d["heap_flags"])
        d["fd"] = fd
        kdata[:self.s_alloc.size] = self.s_alloc.pack(d)

    def buffer_alloc(self, heap: DmaHeap, length: int, fd_flags: int,
                     heap_flags: int) -> Generator:
        """dma_heap_buffer_alloc: page-align, let the heap export, install the fd."""
        length = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & ((1 << 64) - 1)
        if not length:
            raise einval(f"{heap.path}: len is 0 after page alignment")
        dmabuf = yield from heap.ops.allocate(heap, length, fd_flags, heap_flags)
        try:
            return dma_buf_fd(self.kernel, dmabuf, fd_flags)
        except LinuxError:
            dma_buf_put(dmabuf)
            raise
