"""The sdp_basic TA on the real secure OS: NS -> TA, TA -> TA (a second instance of itself) and
TA -> PTA (invoke_tests) on protected memory, for both the lent and the static configuration."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings, strategies as st

import tzemu
from smc_helpers import TMEM_IN, TMEM_INOUT, TMEM_OUT, VALUE_IN, RawCaller, msg_arg

SDP = uuid.UUID("12345678-5b69-11e4-9dbb-101f74f00099")
COOKIE = 0xC00C1E
TARGETS = {"ns_to_ta": (0, 1, 2), "ta_to_ta": (3, 4, 5), "ta_to_pta": (6, 7, 8)}


def setup(mode):
    p = tzemu.boot(protmem=mode, record_events=0)
    rc = RawCaller(p)
    if mode == "dynamic":
        pa = p.memory_map.cma_base
        assert rc.call(msg_arg(8, [(VALUE_IN, 1, 0, 0), (TMEM_IN, pa, 0x100000, COOKIE)]))["ret"] == 0

        def mem(off, n, t):        # RMEM {offset in the lent chunk, size, cookie}
            return (t - 4, off, n, COOKIE)
    else:
        pa = p.memory_map.carveout("secure-video").base

        def mem(off, n, t):        # TMEM {physical address in the carveout}
            return (t, pa + off, n, 1)
    return p, rc, pa, mem


@pytest.fixture(scope="module", params=["dynamic", "static"])
def sdp(request):
    p, rc, pa, mem = setup(request.param)
    return p, rc, pa, mem, rc.open(SDP), p.kernel.pages.alloc(0x4000)


def roundtrip(sdp, cmds, data, offset):
    p, rc, pa, mem, sid, ns = sdp
    n = len(data)
    p.physmem.write(ns, data)
    out = rc.call(msg_arg(1, [(TMEM_IN, ns, n, 0), mem(offset, n, TMEM_OUT)], func=cmds[0], session=sid))
    assert (out["ret"], out["origin"]) == (0, 4)
    assert p.physmem.read(pa + offset, n) == data, "inject wrote the protected buffer"
    out = rc.call(msg_arg(1, [mem(offset, n, TMEM_INOUT)], func=cmds[1], session=sid))
    assert (out["ret"], out["origin"]) == (0, 4)
    p.physmem.write(ns + 0x2000, bytes(n))
    out = rc.call(msg_arg(1, [mem(offset, n, TMEM_IN), (TMEM_OUT, ns + 0x2000, n, 0)],
                          func=cmds[2], session=sid))
    assert (out["ret"], out["origin"]) == (0, 4)
    return p.physmem.read(ns + 0x2000, n)


@pytest.mark.parametrize("target", TARGETS)
def test_inject_transform_dump(sdp, target):
    data = bytes(range(256)) * 3
    assert roundtrip(sdp, TARGETS[target], data, 0x80) == bytes((-b) & 0xFF for b in data)


@settings(max_examples=10, deadline=None)
@given(data=st.binary(min_size=1, max_size=600), offset=st.integers(0, 255),
       target=st.sampled_from(sorted(TARGETS)))
def test_roundtrip_property(sdp, data, offset, target):
    assert roundtrip(sdp, TARGETS[target], data, offset) == bytes((-b) & 0xFF for b in data)


def test_transform_on_normal_memory_is_access_denied(sdp):
    p, rc, _pa, _mem, sid, ns = sdp
    out = rc.call(msg_arg(1, [(TMEM_INOUT, ns, 16, 0)], func=1, session=sid))
    assert (out["ret"], out["origin"]) == (0xFFFF0001, 4)
    assert "TEE_CheckMemoryAccessRights" in p.secure_os.ta_log[-1].text


def test_ta_to_ta_runs_in_a_second_instance_and_keeps_its_session(sdp):
    p = sdp[0]
    roundtrip(sdp, TARGETS["ta_to_ta"], b"abc", 0)
    sessions = len(p.secure_os.ta_manager.sessions)
    roundtrip(sdp, TARGETS["ta_to_ta"], b"def", 0)
    assert len(p.secure_os.ta_manager.sessions) == sessions, "the callee session is reused"
    callers = [s for s in p.secure_os.ta_manager.sessions.values() if s.caller is not None]
    assert any(s.instance is not None for s in callers) and any(s.pta for s in callers) or \
        any(s.instance is not None for s in callers)
