"""The normal world's handles on the machine: the conduit the Linux model drives (NS-EL1 SMC
stub, NS physical accesses checked by the TZC-400 like the CPU's), and ``Platform.linux``, the
system calls a user program makes. Nothing here reaches the secure world except through them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from linux_side.kernel import Kernel
from linux_side.teec import Context as TeecContext

if TYPE_CHECKING:
    from tzemu.platform import Platform


class NsConduit:
    """The Linux model's access to the machine: NS-EL1 SMC stub and checked NS accesses."""

    def __init__(self, platform: "Platform"):
        self.p = platform

    def smc(self, *args: int) -> tuple[int, ...]:
        return self.p.smc(*args)

    def _check(self, pa: int, size: int, write: bool) -> None:
        self.p.access.check_access(pa, size, write=write, secure=False, nsaid=self.p.cpu_nsaid,
                                   world="NS-EL1")

    def read(self, pa: int, size: int) -> bytes:
        self._check(pa, size, False)
        return self.p.physmem.read(pa, size)

    def write(self, pa: int, data: bytes) -> None:
        self._check(pa, len(data), True)
        self.p.physmem.write(pa, data)

    def take_interrupts(self) -> list[int]:
        return self.p.gic.ack_ns()


class LinuxFacade:
    """``Platform.linux``: system calls of the Linux model (open / ioctl / close / mmap)."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.abi = kernel.abi
        self.c = kernel.c

    def open(self, path: str, flags: int = 2) -> int:
        return self.kernel.open(path, flags)

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes:
        return self.kernel.ioctl(fd, request, arg)

    def close(self, fd: int) -> None:
        self.kernel.close(fd)

    def mmap(self, fd: int, length: int) -> int:
        return self.kernel.mmap(fd, length)

    def user_alloc(self, size: int) -> int:
        return self.kernel.user_alloc(size)

    def user_read(self, va: int, size: int) -> bytes:
        return self.kernel.copy_from_user(va, size)

    def user_write(self, va: int, data: bytes) -> None:
        self.kernel.copy_to_user(va, data)

    def teec(self) -> TeecContext:
        return TeecContext(self.kernel)
