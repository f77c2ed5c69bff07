"""The Linux kernel model: files and device nodes, one user process, the OP-TEE driver.

System calls mirror the real ones: ``open(path)`` gives an fd, ``ioctl(fd, request, arg)``
takes the real request number and argument bytes and returns the bytes the kernel copies back
(with the syscall's return value in ``.ret``) or raises :class:`LinuxError` with an errno,
``mmap``, ``close``. Several callers can run interleaved with :meth:`Kernel.run_concurrently`.

Protected memory: ``cma`` is the CMA area (``KernelConfig.cma_base/cma_size``), ``heaps`` the
DMA heaps by name (/dev/dma_heap/<name>), ``tee_dma_heaps`` the TEE protected heaps by use
case. ``remove_optee`` (alias ``teardown``) unbinds the OP-TEE driver; ``probe_optee`` again
rebinds the heaps that outlived it.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Sequence

from emu.abi import AbiSet, linux_abi
from emu.faults import FaultInjector
from linux_side.cma import CmaArea
from linux_side.conduit import NsConduit
from linux_side.dma_heap import DmaHeap, DmaHeapRegistry
from linux_side.errors import LinuxError
from linux_side.mm import PageAllocator, UserSpace, page_align
from linux_side.optee.optee import OpteeDriver
from linux_side.pgtable import PageTableBuilder
from linux_side.sched import Task, run_sync, run_tasks
from linux_side.supplicant import Supplicant
from linux_side.tee.tee_core import TeeDevice
from linux_side.tee.tee_heap import TeeDmaHeap

FIRST_FD = 3
PAGE_OFFSET = 0xFFFF_0000_0000_0000     # linear map: VA = PAGE_OFFSET + PA (48-bit VA, TTBR1)
IOREMAP_BASE = 0xFFFF_8000_0000_0000    # window for mappings of arbitrary physical pages
BLOCK_2M = 0x20_0000


class IoctlResult(bytes):
    """The argument bytes as copied back to user space, plus the syscall's return value."""

    ret: int = 0

    def __new__(cls, data: bytes, ret: int = 0) -> "IoctlResult":
        obj = super().__new__(cls, data)
        obj.ret = ret
        return obj


@dataclass
class OpenFile:
    obj: Any
    name: str
    refs: int = 1


@dataclass
class KernelConfig:
    kernel_pool_base: int
    kernel_pool_size: int
    ram_base: int = 0x4000_0000            # normal-world DRAM the kernel owns
    ram_size: int = 0
    text_base: int = 0x4000_0000           # where the kernel's NS-EL1 code (the stubs) lives
    ta_dirs: Sequence[str] = ()
    clock_epoch: int = 1_700_000_000     # deterministic wall clock start (seconds)
    cma_base: int = 0                      # the CMA area (memory_map.cma_base / cma_size);
    cma_size: int = 0                      # size 0: no CMA, dynamic protmem cannot lend
    # TEE protected heaps to bring up, by use case (= TEE_DMA_HEAP_* id). Linux v6.18 only
    # registers secure-video (1); tzemu lets a platform ask for 2 and 3 as well.
    protmem_use_cases: tuple[int, ...] = (1,)
    # How the OP-TEE driver reaches the secure world: "smc" (the OP-TEE SMC ABI) or "ffa"
    # (FF-A direct messages and memory sharing through the arm_ffa bus driver).
    optee_abi: str = "smc"
    # issue 10 part 4: named fault-injection points of the normal world (emu/faults.py);
    # the platform builds this world's own injector from the boot spec.
    faults: FaultInjector = field(default_factory=FaultInjector)


class Kernel:
    def __init__(self, conduit: NsConduit, config: KernelConfig, abi: AbiSet | None = None,
                 log: Callable[[str], None] | None = None):
        self.conduit = conduit
        self.config = config
        self.abi = abi or linux_abi()
        self.c = self.abi.c
        self.pages = PageAllocator(config.kernel_pool_base, config.kernel_pool_size)
        self.faults = config.faults
        self.cma = CmaArea(config.cma_base, config.cma_size, faults=self.faults)
        self.dma_heap_core = DmaHeapRegistry(self)
        self.tee_dma_heaps: dict[int, TeeDmaHeap] = {}
        self.user = UserSpace()
        self._anon: dict[int, tuple[int, int]] = {}     # user_alloc va -> (pa, size)
        self.files: dict[int, OpenFile] = {}
        self.devices: dict[str, Callable[["Kernel"], Any]] = {}
        self.supplicant = Supplicant(config.ta_dirs)
        self.dmesg: list[str] = []
        self._log = log
        self._clock_ns = 0
        self.interrupts_taken: list[int] = []
        self.optee: OpteeDriver | None = None
        self.ffa: Any = None                   # the FF-A bus driver (arm_ffa), once initialised
        self.tee0: TeeDevice | None = None
        self.kernel_pt: PageTableBuilder | None = None
        self.user_pt: PageTableBuilder | None = None
        self._ioremap_next = IOREMAP_BASE
        self._ioremap_free: dict[int, int] = {}

    # --- memory management -----------------------------------------------------------------
    def setup_mm(self) -> tuple[int, int]:
        """paging_init: the kernel linear map (TTBR1) and an identity map of the kernel text
        page (TTBR0, used while switching), in real VMSAv8-64 tables in NS memory.

        Like the real driver, nothing is removed from the linear map when memory is lent to
        the secure world: touching it must fault at the firewall, not here.
        """
        alloc = lambda: self.pages.alloc(0x1000)  # noqa: E731
        rd, wr = self.conduit.read, self.conduit.write
        self.kernel_pt = PageTableBuilder(alloc, wr, rd)
        self.user_pt = PageTableBuilder(alloc, wr, rd)
        cfg = self.config
        text = cfg.text_base & ~(BLOCK_2M - 1)
        for pa in range(cfg.ram_base, cfg.ram_base + cfg.ram_size, BLOCK_2M):
            self.kernel_pt.map_range(PAGE_OFFSET + pa, pa, BLOCK_2M, block=True, writable=True,
                                     executable=pa == text)
        self.user_pt.map_page(cfg.text_base, cfg.text_base, writable=False, executable=True)
        self.user.builder = self.user_pt
        return self.user_pt.root, self.kernel_pt.root

    def phys_to_virt(self, pa: int) -> int:
        return PAGE_OFFSET + pa

    def ioremap(self, pa: int, size: int) -> int:
        """Map physical pages (any, even ones the kernel should not touch) into a kernel VA
        window, as memremap//dev/mem would; returns the VA of ``pa``."""
        assert self.kernel_pt is not None, "setup_mm first"
        first = pa & ~0xFFF
        span = (pa + size - first + 0xFFF) & ~0xFFF
        va = self._ioremap_free.pop(span, None) or self._ioremap_next
        if va == self._ioremap_next:
            self._ioremap_next += span + 0x1000
        self.kernel_pt.map_range(va, first, span, writable=True)
        return va + (pa - first)

    def iounmap(self, va: int, size: int) -> None:
        first = va & ~0xFFF
        span = (va + size - first + 0xFFF) & ~0xFFF
        for off in range(0, span, 0x1000):
            self.kernel_pt.unmap_page(first + off)
        self._ioremap_free[span] = first

    # --- boot ----------------------------------------------------------------------------------
    def probe_optee(self) -> Any:
        """optee_probe: bring up the driver, register /dev/tee0 and the protected heaps."""
        if self.optee is not None:
            raise LinuxError(errno.EBUSY, "optee: driver already bound")
        drv = OpteeDriver(self, self.abi, self.config.optee_abi)
        tee0 = TeeDevice(self, "tee0", drv)
        drv.teedev = tee0
        self.optee, self.tee0 = drv, tee0
        try:
            return drv.probe()
        except BaseException:
            self.optee = self.tee0 = None
            self.devices.pop(tee0.path, None)
            raise

    def remove_optee(self) -> None:
        """optee_remove: unregister /dev/tee0 (putting every protected heap bound to it, whose
        pools are destroyed; the heap nodes stay), then the backend's own teardown
        (SMC: empty the secure world's shm cache; FF-A: free the message-argument cache).

        The kernel blocks in tee_device_unregister until the last buffer, shm and open file
        are released; this single-threaded model refuses instead with ``-EBUSY`` and changes
        nothing, so the caller can release them and try again.
        """
        if self.optee is None or self.tee0 is None:
            raise LinuxError(errno.ENODEV, "optee: no driver bound")
        self.tee0.unregister()
        self.optee.ops.remove()
        self.optee = self.tee0 = None

    teardown = remove_optee

    @property
    def heaps(self) -> dict[str, DmaHeap]:
        """DMA heaps by name; ``heap.priv`` is the TeeDmaHeap of a protected heap."""
        return self.dma_heap_core.heaps

    def log(self, line: str) -> None:
        self.dmesg.append(line)
        if self._log:
            self._log(line)

    def realtime(self) -> tuple[int, int]:
        """ktime_get_real_ts64 of a deterministic clock: advances 1 ms per reading."""
        self._clock_ns += 1_000_000
        total = self.config.clock_epoch * 1_000_000_000 + self._clock_ns
        return divmod(total, 1_000_000_000)

    def fsleep(self, usecs: int) -> None:
        """fsleep: nobody else runs in a synchronous path; the clock moves on."""
        self._clock_ns += usecs * 1000

    def take_interrupts(self) -> list[int]:
        taken = self.conduit.take_interrupts()
        self.interrupts_taken.extend(taken)
        return taken

    # --- files --------------------------------------------------------------------------------------
    def install_file(self, obj: Any, name: str) -> int:
        fd = FIRST_FD
        while fd in self.files:
            fd += 1
        self.files[fd] = OpenFile(obj, name)
        return fd

    def _file(self, fd: int) -> OpenFile:
        f = self.files.get(fd)
        if f is None:
            raise LinuxError(errno.EBADF, f"fd {fd} is not open")
        return f

    def open(self, path: str, flags: int = 2) -> int:
        factory = self.devices.get(path)
        if factory is None:
            raise LinuxError(errno.ENOENT, f"{path}: no such device")
        return self.install_file(factory(self), path)

    def close(self, fd: int) -> None:
        f = self._file(fd)
        del self.files[fd]
        f.refs -= 1
        if f.refs == 0:
            f.obj.release(self)

    def ioctl(self, fd: int, request: int, arg: bytes) -> IoctlResult:
        ret, out = self.run(self.ioctl_gen(fd, request, arg))
        return IoctlResult(out, ret)

    def ioctl_gen(self, fd: int, request: int, arg: bytes) -> Generator:
        f = self._file(fd)
        if not isinstance(arg, (bytes, bytearray, memoryview)):
            raise LinuxError(errno.EFAULT, "ioctl argument must be bytes")
        return (yield from f.obj.ioctl(self, request & 0xFFFFFFFF, bytes(arg)))

    def mmap(self, fd: int, length: int) -> int:
        return self._file(fd).obj.mmap(self, length)

    # --- running kernel paths ------------------------------------------------------------------
    def run(self, gen: Generator) -> Any:
        return run_sync(gen)

    def run_concurrently(self, calls: Sequence[tuple[str, Generator]]) -> list[Task]:
        """Interleave several syscalls at the driver's sleep/reschedule points."""
        queues = [self.optee.ops.call_queue] if self.optee else []
        return run_tasks([Task(name, gen) for name, gen in calls], queues)

    # --- user memory ---------------------------------------------------------------------------------
    def user_alloc(self, size: int) -> int:
        """Anonymous user memory (mmap MAP_ANONYMOUS), backed by NS pages."""
        pa = self.pages.alloc(page_align(max(size, 1)))
        self.conduit.write(pa, bytes(page_align(max(size, 1))))
        va = self.user.map(pa, size)
        self._anon[va] = (pa, max(size, 1))
        return va

    def user_free(self, va: int) -> None:
        """munmap of a whole user_alloc mapping: unmap it and give its pages back."""
        entry = self._anon.pop(va, None)
        if entry is None:
            raise LinuxError(errno.EINVAL, f"munmap: {va:#x} is not the start of an anonymous "
                                           f"mapping")
        pa, size = entry
        self.user.unmap(va, size)
        self.pages.free(pa)

    def copy_from_user(self, va: int, size: int) -> bytes:
        return b"".join(self.conduit.read(pa, n) for pa, n in self.user.resolve(va, size))

    def copy_to_user(self, va: int, data: bytes) -> None:
        pos = 0
        for pa, n in self.user.resolve(va, len(data)):
            self.conduit.write(pa, data[pos:pos + n])
            pos += n
