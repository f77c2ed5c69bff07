"""A minimal interrupt controller: which normal-world interrupts are pending.

The secure OS consults it while a trusted thread runs (a pending NS interrupt makes the thread
exit with the FOREIGN_INTR RPC, as OP-TEE does when an IRQ arrives in the secure world); the
Linux model acknowledges interrupts in its IRQ entry.
"""
from __future__ import annotations


class InterruptController:
    def __init__(self) -> None:
        self._pending_ns: list[int] = []
        self.raised = 0

    def raise_ns(self, irq: int) -> None:
        """Assert a normal-world (Group 1 NS) interrupt."""
        if irq not in self._pending_ns:
            self._pending_ns.append(irq)
        self.raised += 1

    def ns_pending(self) -> bool:
        return bool(self._pending_ns)

    def ack_ns(self) -> list[int]:
        taken, self._pending_ns = self._pending_ns, []
        return taken
