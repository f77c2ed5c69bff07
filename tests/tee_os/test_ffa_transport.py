"""The FF-A configuration at register level: SPMD at EL3 routing into the S-EL1 SPMC, OP-TEE's
FF-A services, FFA_MEM_LEND of protected memory with ASSIGN / RELEASE / RECLAIM, FMEM params."""
from __future__ import annotations

import struct
import uuid

import pytest

import tzemu
from protection_helpers import assert_ns_accessible, assert_protected
from smc_helpers import CMD_INVOKE, CMD_OPEN, VALUE_IN, msg_arg, open_params, parse_arg

OPTEE, RW = 0x8001, 0x02
SHARE_ATTRS = 0x2F
DONE, RPC_CMD = 0, 1
NOT_SUPPORTED, INVALID, NO_MEMORY, BUSY, DENIED = -1, -2, -3, -4, -6
SDP = uuid.UUID("12345678-5b69-11e4-9dbb-101f74f00099")
FMEM_INOUT = 7
CMD_ASSIGN = 11


@pytest.fixture
def ffa():
    p = tzemu.boot(abi="ffa", probe_linux=False, protmem="dynamic", record_events=100_000)
    f = p.ffa
    assert f.version(1, 2) == (1, 2)
    assert f.map_rxtx().ok
    return p, f


def share_page(p, f) -> tuple[int, int]:
    pa = p.kernel.pages.alloc(0x2000)
    r = f.share(f.build([(OPTEE, RW)], [(pa, 2)], attributes=SHARE_ATTRS))
    assert r.ok, r.regs
    return pa, r.handle


def yielding(p, f, arg_pa: int, handle: int, arg: bytes) -> dict:
    p.physmem.write(arg_pa, arg)
    r = f.optee(0x80000000, handle & 0xFFFFFFFF, handle >> 32, 0)
    while f.w(r, 3) == 0 and f.w(r, 4) == RPC_CMD:
        r = f.optee(0x80000001, 0, 0, 0, f.w(r, 7))
    assert (f.w(r, 3), f.w(r, 4)) == (0, DONE), r.regs
    return parse_arg(p.physmem.read(arg_pa, 0x200))


def test_spmd_answers_routes_and_refuses(ffa):
    p, f = ffa
    c = f.c
    assert f.call(c.FFA_ID_GET).regs[:3] == (c.FFA_SUCCESS_32, 0, 0)
    assert f.call(c.FFA_SPM_ID_GET).regs[2] == 0x8000
    assert f.call(c.FFA_MSG_WAIT).error == NOT_SUPPORTED          # secure-only
    assert f.direct_req(OPTEE, 0, src=0x8005).error == INVALID      # secure source from NS
    assert p.smc(0x84000000)[0] == 0x10001                          # PSCI_VERSION 1.1
    r = f.optee(0)                                                  # GET_API_VERSION
    assert (r.regs[0], r.regs[1], f.w(r, 3), f.w(r, 4)) == (c.FFA_MSG_SEND_DIRECT_RESP_32,
                                                              OPTEE << 16, 1, 0)
    r = f.optee(2)                                                  # EXCHANGE_CAPABILITIES
    assert f.w(r, 4) == 4 and f.w(r, 5) & (1 << 3)                  # PROTMEM


def test_version_goes_to_the_spmc_as_a_framework_message(ffa):
    p, f = ffa
    p.bus.clear()
    assert f.version(1, 1) == (1, 2)
    switches = [e for e in p.bus.recorded if e.kind == "world_switch" and e.fields.get("to") == "S-EL1"]
    assert switches and "framework" in switches[0].fields["cause"]


def test_partition_info_names_optee(ffa):
    p, f = ffa
    r, data = f.partition_info()
    assert r.ok and f.w(r, 2) == 1
    assert struct.unpack_from("<H", data, 0)[0] == OPTEE
    assert f.rx_release().ok


def test_lend_assign_release_reclaim(ffa):
    p, f = ffa
    chunk = p.memory_map.cma_base
    p.physmem.write(chunk, b"linux data" * 64)
    r = f.lend(f.build([(OPTEE, RW)], [(chunk, 256)], tag=1))
    assert r.ok, r.regs
    handle = r.handle
    assert handle >> 44 & 1, "SPMC-allocated handle"
    assert_protected(p, chunk, 0x100000, readers=("display", "codec"), writers=("codec",))
    arg_pa, shm = share_page(p, f)
    out = yielding(p, f, arg_pa, shm, msg_arg(CMD_ASSIGN, [(VALUE_IN, handle, 1, 0)]))
    assert out["ret"] == 0
    out = yielding(p, f, arg_pa, shm, msg_arg(CMD_ASSIGN, [(VALUE_IN, handle, 1, 0)]))
    assert out["ret"] == 0xFFFF000D, "already assigned: BUSY"
    assert f.reclaim(handle).error == DENIED, "still assigned"
    assert f.w(f.release_protmem(handle), 3) == 0
    assert f.reclaim(handle).ok
    assert p.physmem.is_zero(chunk, 0x100000)
    assert_ns_accessible(p, chunk, 0x1000)
    assert f.reclaim(handle).error == INVALID, "unknown handle"


@pytest.mark.parametrize("case, expect", [
    ("unknown tag", NO_MEMORY), ("not contiguous", INVALID), ("secure memory", None),
    ("twice", None), ("bad permission", INVALID),
])
def test_bad_lends_are_refused(ffa, case, expect):
    p, f = ffa
    chunk = p.memory_map.cma_base
    regions = p.tzc.to_json()["regions"]
    if case == "twice":
        assert f.lend(f.build([(OPTEE, RW)], [(chunk, 16)], tag=1)).ok
        regions = p.tzc.to_json()["regions"]
    desc = {"unknown tag": f.build([(OPTEE, RW)], [(chunk, 16)], tag=7),
            "not contiguous": f.build([(OPTEE, RW)], [(chunk, 4), (chunk + 0x10000, 4)], tag=1),
            "secure memory": f.build([(OPTEE, RW)], [(0x0E200000, 4)], tag=1),
            "twice": f.build([(OPTEE, RW)], [(chunk, 16)], tag=1),
            "bad permission": f.build([(OPTEE, 0x01)], [(chunk, 16)], tag=1)}[case]
    r = f.lend(desc)
    assert not r.ok
    if expect is not None:
        assert r.error == expect
    assert p.tzc.to_json()["regions"] == regions


def test_sdp_ta_over_fmem(ffa):
    p, f = ffa
    chunk = p.memory_map.cma_base
    handle = f.lend(f.build([(OPTEE, RW)], [(chunk, 256)], tag=1)).handle
    arg_pa, shm = share_page(p, f)
    assert yielding(p, f, arg_pa, shm, msg_arg(CMD_ASSIGN, [(VALUE_IN, handle, 1, 0)]))["ret"] == 0
    out = yielding(p, f, arg_pa, shm, msg_arg(CMD_OPEN, open_params(SDP)))
    assert out["ret"] == 0
    sid = out["session"]
    p.physmem.write(chunk + 0x2000, bytes(range(1, 65)))
    out = yielding(p, f, arg_pa, shm, msg_arg(CMD_INVOKE, [(FMEM_INOUT, 0x2000, 64, handle)],
                                               func=1, session=sid))
    assert (out["ret"], out["origin"]) == (0, 4)
    assert p.physmem.read(chunk + 0x2000, 64) == bytes((-b) & 0xFF for b in range(1, 65))
    out = yielding(p, f, arg_pa, shm, msg_arg(CMD_INVOKE, [(FMEM_INOUT, 0x2000 | (1 << 48), 64,
                                                              handle)], func=1, session=sid))
    assert out["ret"] == 0xFFFF0006, "internal offset into protected memory is refused"
    assert f.reclaim(handle).error == DENIED
