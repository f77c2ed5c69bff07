"""What the Linux model may use of the machine: the NS-EL1 CPU and its view of memory.

Everything the kernel model does to the secure world goes through ``smc`` (real AArch64 code at
NS-EL1 issuing an ``smc``), and every access to memory through ``read``/``write``, which the
platform checks as NS CPU accesses. The platform (tzemu/) provides the implementation.
"""
from __future__ import annotations

from typing import Protocol


class NsConduit(Protocol):
    def smc(self, *args: int) -> tuple[int, ...]:
        """Issue ``smc #0`` at NS-EL1 with x0..x7 = args; return x0..x7 afterwards."""

    def read(self, pa: int, size: int) -> bytes:
        """A kernel (NS CPU) read of physical memory; raises on a protection fault."""

    def write(self, pa: int, data: bytes) -> None:
        """A kernel (NS CPU) write of physical memory; raises on a protection fault."""

    def take_interrupts(self) -> list[int]:
        """Acknowledge pending normal-world interrupts (the kernel's IRQ entry)."""
