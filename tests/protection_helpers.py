"""Shared assertion for every protected range: NS CPU and NS DMA masters cannot touch it.

Used by the TZC tests and by every later test that allocates protected memory (carveouts,
lent chunks, frame buffers): reads and writes by the NS CPU (real NS-EL1 loads/stores) and by
every NS DMA master outside the allowed lists fault, and memory is left unchanged.
"""
from __future__ import annotations

import tzemu


def assert_protected(p, pa: int, size: int, *, readers=(), writers=()) -> None:
    """``readers``/``writers``: names of the devices the range's use case lets through."""
    probe = sorted({pa, pa + size // 2 & ~7, pa + size - 8 if size >= 8 else pa})
    before = {a: p.physmem.read(a, 8 if size >= 8 else size) for a in probe}
    for a in probe:
        n = len(before[a])
        try:
            p.ns_read(a, n)
        except tzemu.ProtectionFault as f:
            assert f.world == "NS-EL1" and f.direction == "read" and f.address == a, f
            assert f.fail and f.fail["FAIL_ADDRESS"] == a and not f.fail["secure"]
        else:
            raise AssertionError(f"NS CPU read {a:#x} of a protected range")
        try:
            p.ns_write(a, b"\xee" * n)
        except tzemu.ProtectionFault as f:
            assert f.direction == "write" and f.address == a
        else:
            raise AssertionError(f"NS CPU wrote {a:#x} of a protected range")
        for name, dev in p.devices.items():
            if name in readers:
                assert bytes(dev.dma_read(a, n)) == before[a]
            else:
                try:
                    dev.dma_read(a, n)
                except tzemu.ProtectionFault:
                    pass
                else:
                    raise AssertionError(f"{name} read {a:#x} of a protected range")
            if name not in writers:
                try:
                    dev.dma_write(a, b"\xdd" * n)
                except tzemu.ProtectionFault:
                    pass
                else:
                    raise AssertionError(f"{name} wrote {a:#x} of a protected range")
    for a, data in before.items():
        assert p.physmem.read(a, len(data)) == data, f"protected memory at {a:#x} changed"


def assert_ns_accessible(p, pa: int, size: int) -> None:
    data = bytes((i * 7 + 3) & 0xFF for i in range(min(size, 64)))
    p.ns_write(pa, data)
    assert p.ns_read(pa, len(data)) == data
