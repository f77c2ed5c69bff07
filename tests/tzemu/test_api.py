"""The public Python API: boot, smc, ns_read/ns_write with real NS-EL1 loads and stores."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

import tzemu


def test_boot_rejects_unknown_options_and_abis():
    with pytest.raises(tzemu.PlatformError, match="unknown boot option"):
        tzemu.boot(colour="blue")
    with pytest.raises(tzemu.PlatformError, match="not available"):
        tzemu.boot(abi="carrier-pigeon")


def test_ns_read_and_write_use_the_ns_view(shared_platform):
    p = shared_platform
    pa = p.kernel.pages.alloc(0x3000) + 0x123
    data = bytes(range(256)) * 40
    p.ns_write(pa, data)
    assert p.physmem.read(pa, len(data)) == data
    assert p.ns_read(pa, len(data)) == data


def test_ns_read_of_secure_dram_raises_protection_fault(shared_platform):
    p = shared_platform
    with pytest.raises(tzemu.ProtectionFault) as e:
        p.ns_read(0x0E100010, 16)
    f = e.value
    assert (f.address, f.direction, f.world) == (0x0E100010, "read", "NS-EL1")
    assert "TZC-400" in f.reason
    assert f.fail["FAIL_ADDRESS"] == 0x0E100010 and f.fail["direction"] == "read"
    assert not f.fail["secure"]


def test_ns_write_of_secure_dram_changes_nothing(shared_platform):
    p = shared_platform
    before = p.physmem.read(0x0E100000, 64)
    with pytest.raises(tzemu.ProtectionFault) as e:
        p.ns_write(0x0E100000, b"\xff" * 64)
    assert e.value.direction == "write" and e.value.address == 0x0E100000
    assert p.physmem.read(0x0E100000, 64) == before


@settings(max_examples=30, deadline=None)
@given(region=st.sampled_from(["secure_dram", "secure_sram"]), off=st.integers(0, 2**32),
       size=st.integers(1, 64))
def test_no_ns_access_to_secure_memory_ever_succeeds(shared_platform, region, off, size):
    p = shared_platform
    r = p.memory_map.region(region)
    pa = r.base + off % (r.size - size)
    before = p.physmem.read(pa, size)
    with pytest.raises(tzemu.ProtectionFault):
        p.ns_read(pa, size)
    with pytest.raises(tzemu.ProtectionFault):
        p.ns_write(pa, b"\xa5" * size)
    assert p.physmem.read(pa, size) == before


def test_deterministic_for_a_seed():
    a, b = tzemu.boot(seed=7, record_events=1000), tzemu.boot(seed=7, record_events=1000)
    for p in (a, b):
        p.linux.teec().open_session("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")
    strip = lambda evs: [(e.kind, e.world, {k: v for k, v in e.fields.items()}) for e in evs]  # noqa: E731
    assert strip(a.bus.recorded) == strip(b.bus.recorded)
