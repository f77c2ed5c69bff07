"""Fixtures for the protected-memory tests of the Linux model.

Until the secure OS reports protected memory, the Linux-side paths are exercised with pools
made by hand on a default boot: a static pool over the platform's secure-video carveout, or a
dynamic pool whose lend/reclaim go to a recording fake backend. Nothing secure is fenced in
those boots, which is fine for what they test (the normal world's bookkeeping and bytes).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generator

import pytest

import tzemu
from linux_side.cma import CmaArea
from linux_side.errors import einval
from linux_side.optee.protmem import OpteeProtmemDynPool
from linux_side.tee.tee_heap import tee_device_register_dma_heap
from linux_side.tee.tee_protmem_pool import tee_protmem_static_pool_alloc

SV_HEAP = "/dev/dma_heap/protected,secure-video"

sys.path.insert(0, str(Path(__file__).parent))   # ffa_fake, the scripted FF-A secure side


def give_cma(p: Any) -> CmaArea:
    """The CMA area of the platform's memory map (until the platform passes it itself)."""
    k = p.kernel
    if k.cma.count == 0:
        k.cma = CmaArea(p.memory_map.cma_base, p.memory_map.cma_size)
    return k.cma


@pytest.fixture
def static_sv(platform):
    """A default boot with heap 1 bound by hand to a static pool over the carveout."""
    k = platform.kernel
    cv = platform.memory_map.carveout("secure-video")
    pool = tee_protmem_static_pool_alloc(k, cv.base, cv.size)
    tee_device_register_dma_heap(k.tee0, 1, pool)
    return platform, pool


@dataclass
class FakeBackend:
    """Records LEND/RECLAIM as the pool asks for them; can be told to refuse."""

    physmem: Any
    refuse_lend: bool = False
    refuse_reclaim: bool = False
    calls: list[tuple] = field(default_factory=list)

    def lend_protmem(self, protmem, mem_attrs, use_case) -> Generator:
        yield from ()
        zero = self.physmem.read(protmem.paddr, protmem.size) == bytes(protmem.size)
        self.calls.append(("lend", protmem.paddr, protmem.size, protmem.cookie, use_case, zero))
        if self.refuse_lend:
            raise einval("fake: LEND_PROTMEM refused")

    def reclaim_protmem(self, protmem) -> Generator:
        yield from ()
        self.calls.append(("reclaim", protmem.cookie))
        if self.refuse_reclaim:
            raise einval("fake: RECLAIM_PROTMEM refused")


@pytest.fixture
def dyn_sv(platform):
    """A default boot with heap 1 bound by hand to a dynamic pool of 16 pages over CMA,
    lending to a fake backend."""
    k = platform.kernel
    give_cma(platform)
    backend = FakeBackend(platform.physmem)
    pool = OpteeProtmemDynPool(k.tee0, backend, 1, page_count=16)
    tee_device_register_dma_heap(k.tee0, 1, pool)
    return platform, pool, backend


def boot_protmem(mode: str) -> Any:
    """A platform booted with ``protmem=mode``, or None while the option does not exist."""
    try:
        return tzemu.boot(protmem=mode, record_events=100_000)
    except tzemu.PlatformError:
        return None
