"""EL3: SMCCC decoding, routing, arch calls, unknown ids, and the world switch."""
from __future__ import annotations

import pytest

from emu.abi import firmware_abi
from firmware.smccc import SmcccDecoder

FW = firmware_abi().c
UNK32 = 0xFFFFFFFF


@pytest.mark.parametrize("fid, fast, smc64, owner, number", [
    (0xBF00FF01, True, False, 63, 0xFF01),
    (0x32000004, False, False, 50, 4),
    (0x84000063, True, False, 4, 0x63),
    (0xC4000065, True, True, 4, 0x65),
    (0x80000000, True, False, 0, 0),
])
def test_function_ids_decode_into_smccc_fields(fid, fast, smc64, owner, number):
    d = SmcccDecoder().decode(fid | 0xDEAD_0000_0000_0000)   # upper half of x0 is ignored
    assert (d.raw, d.fast, d.smc64, d.owner, d.number) == (fid, fast, smc64, owner, number)


def test_smccc_version_is_1_2(shared_platform):
    assert shared_platform.smc(FW.SMCCC_VERSION)[0] == 0x10002


def test_arch_features_reports_known_and_unknown_calls(shared_platform):
    p = shared_platform
    assert p.smc(FW.SMCCC_ARCH_FEATURES, FW.SMCCC_VERSION)[0] == 0
    assert p.smc(FW.SMCCC_ARCH_FEATURES, FW.SMCCC_ARCH_FEATURES)[0] == 0
    assert p.smc(FW.SMCCC_ARCH_FEATURES, 0x8000FFFF)[0] & UNK32 == UNK32


@pytest.mark.parametrize("fid", [0x82000001, 0x83000010, 0x86000000, 0xB1000000, 0x30000000])
def test_unknown_smc32_ids_return_0xffffffff(shared_platform, fid):
    assert shared_platform.smc(fid)[0] == UNK32


def test_unknown_smc64_id_returns_all_ones(shared_platform):
    assert shared_platform.smc(0xC2000001)[0] == 0xFFFFFFFFFFFFFFFF


def test_unknown_trusted_os_function_is_answered_by_the_secure_os(shared_platform):
    p = shared_platform
    before = p.monitor.contexts
    assert p.smc(0xB2000FFF)[0] == UNK32        # fast, unknown to OP-TEE
    assert p.smc(0x32000FFF)[0] == UNK32        # yielding, unknown
    assert before is p.monitor.contexts


def test_fast_call_preserves_x4_to_x7(shared_platform):
    r = shared_platform.smc(0xBF00FF01, 1, 2, 3, 0x44, 0x55, 0x66, 0x77)
    assert r[4:] == (0x44, 0x55, 0x66, 0x77)


def test_every_switch_goes_through_the_event_bus(platform):
    p = platform
    p.bus.clear()
    p.smc(0xBF00FF01)
    kinds = [(e.kind, e.fields.get("frm"), e.fields.get("to")) for e in p.bus.recorded]
    assert kinds == [("smc", None, None), ("world_switch", "NS-EL1", "S-EL1"),
                     ("world_switch", "S-EL1", "NS-EL1"), ("smc_return", None, None)]
    assert [e.seq for e in p.bus.recorded] == sorted(e.seq for e in p.bus.recorded)


def test_the_secure_os_entered_through_its_vector_table(shared_platform):
    p = shared_platform
    vt = p.secure_os.image.sym("thread_vector_table")
    assert p.opteed.vectors.base == vt
    assert p.opteed.vectors.entry("fast_smc") == vt + 4
