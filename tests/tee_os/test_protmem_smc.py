"""Protected memory in the secure OS over the SMC ABI, driven at register level:
GET_PROTMEM_CONFIG, LEND_PROTMEM / RECLAIM_PROTMEM validation, scrubbing, static carveouts,
and who may receive an SDP memref."""
from __future__ import annotations

import struct
import uuid

import pytest

import tzemu
from protection_helpers import assert_ns_accessible, assert_protected
from smc_helpers import (CMD_INVOKE, CMD_OPEN, ECHO, ORIGIN_TEE, RMEM_IN, RMEM_INOUT, TMEM_IN,
                         TMEM_INOUT, TMEM_OUT, VALUE_IN, VALUE_INOUT, RawCaller, msg_arg,
                         open_params)

CMD_REGISTER_SHM, CMD_LEND, CMD_RECLAIM, CMD_GET_CONFIG = 4, 8, 9, 10
BAD, BUSY = 0xFFFF0006, 0xFFFF000D
SV, TUI, REC = 1, 2, 3
PTA = uuid.UUID("d96a5b40-c3e5-21e3-8794-1002a5d5c61b")
SENTINEL = 0x77


def boot(mode, **kw):
    return tzemu.boot(protmem=mode, protmem_use_cases=("secure-video", "trusted-ui"),
                      record_events=100_000, **kw)


@pytest.fixture
def dyn():
    return boot("dynamic")


def call(rc, cmd, params, origin=SENTINEL, **kw):
    raw = bytearray(msg_arg(cmd, params, **kw))
    struct.pack_into("<I", raw, 24, origin)          # what the normal world left in ret_origin
    return rc.call(bytes(raw))


def chunk(p, n=0x100000, at=0):
    return p.memory_map.cma_base + at, n


def lend(rc, pa, size, cookie=0xC00C1E, use_case=SV):
    return call(rc, CMD_LEND, [(VALUE_IN, use_case, 0, 0), (TMEM_IN, pa, size, cookie)])


def reclaim(rc, cookie=0xC00C1E, form="rmem"):
    param = (RMEM_IN, 0, 0, cookie) if form == "rmem" else (VALUE_IN, cookie, 0, 0)
    return call(rc, CMD_RECLAIM, [param])


def tzc_regions(p):
    return [(r["base"], r["top"]) for r in p.tzc.to_json()["regions"] if r["enabled"]]


def test_capabilities_follow_the_configuration():
    assert tzemu.boot().smc(0xB2000009, 0)[1] & (3 << 8) == 0
    assert boot("static").smc(0xB2000009, 0)[1] & (3 << 8) == 1 << 8
    assert boot("dynamic").smc(0xB2000009, 0)[1] & (3 << 8) == 1 << 9


def test_get_protmem_config_message(dyn):
    rc = RawCaller(dyn)
    out = call(rc, CMD_GET_CONFIG, [(VALUE_INOUT, SV, 0, 0), (TMEM_OUT, 0, 0, 0)])
    assert (out["ret"], out["origin"]) == (0, ORIGIN_TEE)
    assert out["params"][0][1:] == (0x100000, 0x1000, 64)
    assert out["params"][1][2] == 0, "the SMC ABI returns no attribute array"
    for use_case in (REC, 0, 9):
        out = call(rc, CMD_GET_CONFIG, [(VALUE_INOUT, use_case, 0, 0), (TMEM_OUT, 0, 0, 0)])
        assert (out["ret"], out["origin"]) == (BAD, ORIGIN_TEE)
    out = call(rc, CMD_GET_CONFIG, [(VALUE_INOUT, SV, 0, 0)])
    assert (out["ret"], out["origin"]) == (BAD, ORIGIN_TEE)


def test_lend_protects_reclaim_scrubs_and_returns(dyn):
    p, rc = dyn, RawCaller(dyn)
    pa, size = chunk(p)
    p.physmem.write(pa, b"linux-data" * 100)
    before = tzc_regions(p)
    out = lend(rc, pa, size)
    assert out["ret"] == 0
    assert (pa, pa + size - 1) in tzc_regions(p)
    assert_protected(p, pa, size, readers=("display", "codec"), writers=("codec",))
    out = reclaim(rc)
    assert out["ret"] == 0
    assert tzc_regions(p) == before
    assert p.physmem.is_zero(pa, size), "reclaimed memory must be scrubbed"
    assert_ns_accessible(p, pa, size)


def test_reclaim_accepts_the_documented_value_form(dyn):
    rc = RawCaller(dyn)
    pa, size = chunk(dyn)
    assert lend(rc, pa, size, cookie=5)["ret"] == 0
    assert reclaim(rc, cookie=5, form="value")["ret"] == 0


@pytest.mark.parametrize("case", ["secure", "unaligned pa", "unaligned size", "zero size",
                                  "mmio", "use case", "past ns dram", "types"])
def test_bad_lends_fail_and_change_nothing(dyn, case):
    p, rc = dyn, RawCaller(dyn)
    pa, size = chunk(p)
    params = {"secure": (SV, 0x0E200000, 0x10000), "unaligned pa": (SV, pa + 8, size),
              "unaligned size": (SV, pa, 0x1800), "zero size": (SV, pa, 0),
              "mmio": (SV, 0x09000000, 0x1000), "use case": (9, pa, size),
              "past ns dram": (SV, p.memory_map.region("ns_dram").end - 0x1000, 0x2000),
              "types": None}[case]
    before = tzc_regions(p)
    if params is None:
        out = call(rc, CMD_LEND, [(VALUE_IN, SV, 0, 0), (RMEM_IN, 0, size, 1)])
    else:
        out = lend(rc, params[1], params[2], use_case=params[0])
    assert out["ret"] == BAD
    assert out["origin"] == SENTINEL, "LEND leaves ret_origin as the normal world wrote it"
    assert tzc_regions(p) == before and not p.secure_os.protmem.by_cookie(0xC00C1E)


def test_overlaps_with_shm_and_other_lends_are_refused(dyn):
    p, rc = dyn, RawCaller(dyn)
    pa, size = chunk(p)
    assert lend(rc, pa, size)["ret"] == 0
    assert lend(rc, pa + 0x80000, size, cookie=2)["ret"] == BAD          # overlaps the first
    ctx = p.linux.teec()
    shm = ctx.allocate_shared_memory(0x2000)
    k_shm = p.kernel.optee.shm_table.by_id[shm.id]
    assert lend(rc, k_shm.paddr, 0x2000, cookie=3)["ret"] == BAD        # registered shm
    lst = p.kernel.pages.alloc(0x1000)
    p.physmem.write(lst, struct.pack("<Q", pa) + bytes(0xFF0) + struct.pack("<Q", 0))
    out = call(rc, CMD_REGISTER_SHM, [(TMEM_OUT | 0x200, lst, 0x1000, 0x5151)])
    assert (out["ret"], out["origin"]) == (BAD, ORIGIN_TEE), "lent memory cannot become shm"


def test_reclaim_unknown_twice_and_busy(dyn):
    p, rc = dyn, RawCaller(dyn)
    assert reclaim(rc, cookie=0xDEAD)["ret"] == BAD
    pa, size = chunk(p)
    assert lend(rc, pa, size)["ret"] == 0
    assert reclaim(rc)["ret"] == 0
    assert reclaim(rc)["ret"] == BAD
    out = call(rc, CMD_RECLAIM, [(RMEM_IN, 0, 0, 1), (RMEM_IN, 0, 0, 2)])
    assert (out["ret"], out["origin"]) == (BAD, ORIGIN_TEE)
    assert lend(rc, pa, size)["ret"] == 0
    p.secure_os.protmem.by_cookie(0xC00C1E).mobj.refs += 1           # a TA still maps it
    assert reclaim(rc)["ret"] == BUSY
    assert p.secure_os.protmem.by_cookie(0xC00C1E) is not None
    p.secure_os.protmem.by_cookie(0xC00C1E).mobj.refs -= 1
    assert reclaim(rc)["ret"] == 0


def test_sdp_memref_refused_for_a_ta_without_the_flag_and_for_ns_to_pta(dyn):
    p, rc = dyn, RawCaller(dyn)
    pa, size = chunk(p)
    assert lend(rc, pa, size)["ret"] == 0
    sid = rc.open(ECHO)
    p.bus.clear()
    out = rc.call(msg_arg(CMD_INVOKE, [(RMEM_INOUT, 0x1000, 0x100, 0xC00C1E), (VALUE_IN, 7, 0, 0)],
                          func=7, session=sid))
    assert (out["ret"], out["origin"]) == (BAD, ORIGIN_TEE)
    assert not p.bus.of_kind("ta_syscall"), "the TA must not be entered"
    pta = rc.open(PTA)
    ns_buf = p.kernel.pages.alloc(0x1000)
    out = rc.call(msg_arg(CMD_INVOKE, [(TMEM_IN, ns_buf, 0x100, 0), (RMEM_INOUT - 1, 0, 0x100, 0xC00C1E)],
                          func=3, session=pta))
    assert (out["ret"], out["origin"]) == (BAD, ORIGIN_TEE)
    assert p.physmem.read(pa, 16) == bytes(16)


def test_pta_from_ns_with_normal_memory_runs_and_checks_buffer_kinds(dyn):
    p, rc = dyn, RawCaller(dyn)
    pta = rc.open(PTA)
    a, b = p.kernel.pages.alloc(0x1000), p.kernel.pages.alloc(0x1000)
    out = rc.call(msg_arg(CMD_INVOKE, [(TMEM_IN, a, 0x10, 0), (TMEM_OUT, b, 0x10, 0)], func=3,
                          session=pta))
    assert (out["ret"], out["origin"]) == (BAD, 4), "destination must be SDP memory"
    out = rc.call(msg_arg(CMD_INVOKE, [(TMEM_INOUT, a, 0x10, 0)], func=4, session=pta))
    assert (out["ret"], out["origin"]) == (BAD, 4)


def test_static_carveouts_are_fenced_and_reported():
    p = boot("static")
    r = p.smc(0xB2000014, 0)
    cv = p.memory_map.carveout("secure-video")
    assert r[:4] == (0, cv.base, cv.size, 64)
    tui = p.memory_map.carveout("trusted-ui")
    assert p.smc(0xB2000014, TUI)[:3] == (0, tui.base, tui.size)
    assert p.smc(0xB2000014, REC)[0] == 7                         # not configured: ENOTAVAIL
    assert_protected(p, cv.base, cv.size, readers=("display", "codec"), writers=("codec",))
    assert_protected(p, tui.base, tui.size, readers=("display",))
    rc = RawCaller(p)
    assert lend(rc, *chunk(p))["ret"] == BAD, "no lending in the static configuration"
    out = call(rc, CMD_GET_CONFIG, [(VALUE_INOUT, SV, 0, 0), (TMEM_OUT, 0, 0, 0)])
    assert (out["ret"], out["origin"]) == (BAD, ORIGIN_TEE)
    sid = rc.open(ECHO)
    out = rc.call(msg_arg(CMD_INVOKE, [(TMEM_INOUT, cv.base + 0x100, 0x100, 1), (VALUE_IN, 7, 0, 0)],
                          func=7, session=sid))
    assert (out["ret"], out["origin"]) == (BAD, ORIGIN_TEE)


def test_arg_inside_protected_memory_is_ebadaddr():
    p = boot("static")
    cv = p.memory_map.carveout("secure-video")
    assert p.smc(0x32000004, cv.base >> 32, cv.base & 0xFFFFFFFF)[0] == 4
