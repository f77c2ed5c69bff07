"""Typed addresses and identifiers (Hafnium's paddr_t / vaddr_t habit).

Distinct ``NewType``s make a physical address, a virtual address and an ID different things to a
type checker, so a VA is never passed where the TZC expects a PA.
"""
from __future__ import annotations

import enum
from typing import NewType

PhysAddr = NewType("PhysAddr", int)
VirtAddr = NewType("VirtAddr", int)


class World(enum.Enum):
    """A CPU view's world and exception level, named as traces show them."""

    NS_EL1 = "NS-EL1"
    EL3 = "EL3"
    S_EL1 = "S-EL1"
    S_EL0 = "S-EL0"

    @property
    def secure(self) -> bool:
        return self in (World.S_EL1, World.S_EL0, World.EL3)

    def __str__(self) -> str:
        return self.value
