"""The S-EL1 SPMC core's ABI as the normal world sees it (tee_os.spmc.Spmc.handle): version
negotiation, features, ids, RX/TX buffers, partition information, direct requests and whole
memory-transaction lifecycles, against an in-memory normal world."""
from __future__ import annotations

import uuid

import pytest

from emu.events import EventBus
from tee_os.spmc import OPTEE_UUID, Spmc, SpmcConfig, build_mem_region, parse_mem_region
from tee_os.spmc.descriptors import (c, parse_partition_info, uuid_to_regs, version_tuple,
                                     version_word)

BASE, SIZE = 0x8000_0000, 0x80_0000
TX, RX = BASE, BASE + 0x1_0000
DATA = BASE + 0x10_0000
PAGE = c.FFA_PAGE_SIZE
OPTEE, NS = 0x8001, 0
RW = c.FFA_MEM_ACC_RW
NORMAL = c.FFA_NORMAL_MEM_REG_ATTR
M32 = 0xFFFFFFFF
NOT_SUPPORTED = c.FFA_NOT_SUPPORTED & M32


class World:
    def __init__(self, version=(1, 2), map_rxtx=True, **cfg):
        self.mem = bytearray(SIZE)
        self.log: list[tuple] = []
        self.bus = EventBus(record=10_000)
        self.spmc = Spmc(SpmcConfig(**cfg), read_ns=self.read, write_ns=self.write,
                         ns_ddr_range=lambda a, n: BASE <= a and a + n <= BASE + SIZE,
                         on_lend=self.on_lend, on_reclaim=self.on_reclaim,
                         direct_request=self.service, bus=self.bus)
        if version:
            assert self.call(c.FFA_VERSION, version_word(version))[0] == c.FFA_VERSION_1_2
        if map_rxtx:
            assert self.call(c.FFA_RXTX_MAP_64, TX, RX, 1)[0] == c.FFA_SUCCESS_32

    def read(self, a, n):
        return bytes(self.mem[a - BASE:a - BASE + n])

    def write(self, a, d):
        self.mem[a - BASE:a - BASE + len(d)] = d

    def on_lend(self, tx):
        self.log.append(("lend", tx.handle, tx.complete, tx.total_pages))

    def on_reclaim(self, tx):
        still = self.spmc.lookup(tx.handle) is tx
        self.log.append(("reclaim", tx.handle, still, tx.clear_on_reclaim, tx.retrieved))

    def service(self, regs):
        self.log.append(("direct", regs))
        return (0x1_0000_0001, regs[4] + 1, 3, 4, 5)

    def call(self, *regs):
        return self.spmc.handle(tuple(regs))

    def put(self, data, at=TX):
        self.mem[at - BASE:at - BASE + len(data)] = data

    def send(self, fid, desc, frag=None, addr=0, pages=0):
        self.put(desc, addr or TX)
        return self.call(fid, len(desc), len(desc) if frag is None else frag, addr, pages)


def ok(r, w2=None):
    assert r[0] == c.FFA_SUCCESS_32, [hex(v) for v in r]
    if w2 is not None:
        assert r[2] == w2
    return r


def err(r):
    assert r[0] == c.FFA_ERROR
    return r[2] - (1 << 32)


def handle(r):
    return ok(r)[2] | (r[3] << 32)


# ---- version, features, ids -----------------------------------------------------------------

@pytest.mark.parametrize("asked,recorded", [((1, 0), (1, 0)), ((1, 1), (1, 1)),
                                            ((1, 2), (1, 2)), ((1, 3), (1, 2))])
def test_version_negotiation(asked, recorded):
    w = World(version=None)
    r = w.call(c.FFA_VERSION, version_word(asked))
    assert r == (c.FFA_VERSION_1_2,) + (0,) * 7
    assert w.spmc.caller_version == recorded


@pytest.mark.parametrize("asked", [version_word((2, 0)), version_word((0, 9)),
                                   c.FFA_VERSION_BIT31_MASK | c.FFA_VERSION_1_1])
def test_version_bad_major_or_bit31(asked):
    w = World(version=(1, 1))
    assert w.call(c.FFA_VERSION, asked) == (NOT_SUPPORTED,) + (0,) * 7
    assert w.spmc.caller_version == (1, 1)


def test_version_through_the_spmd_framework_message():
    w = World(version=None)
    r = w.call(c.FFA_MSG_SEND_DIRECT_REQ_32,
               (c.SPMD_DIRECT_MSG_ENDPOINT_ID << 16) | 0x8000,
               c.FFA_MSG_FLAG_FRAMEWORK | c.FFA_MSG_VERSION_REQ, c.FFA_VERSION_1_1)
    assert r[:4] == (c.FFA_MSG_SEND_DIRECT_RESP_32, (0x8000 << 16) | 0xFFFF,
                     c.FFA_MSG_FLAG_FRAMEWORK | c.FFA_MSG_VERSION_RESP, c.FFA_VERSION_1_2)
    assert w.spmc.caller_version == (1, 1)


@pytest.mark.parametrize("version", [(1, 0), (1, 1), (1, 2)])
def test_features(version):
    w = World(version=version)
    rxtx = ok(w.call(c.FFA_FEATURES, c.FFA_RXTX_MAP_64))[2]
    assert rxtx & c.FFA_FEAT_RXTX_MIN_SZ_MASK == c.FFA_FEAT_RXTX_MIN_SZ_4K
    assert rxtx >> c.FFA_FEAT_RXTX_MAX_PAGES_SHIFT == (63 if version >= (1, 2) else 0)
    for fid in (c.FFA_MEM_SHARE_64, c.FFA_MEM_SHARE_32, c.FFA_MEM_LEND_64, c.FFA_MEM_DONATE_32):
        ok(w.call(c.FFA_FEATURES, fid), c.FFA_FEATURES_MEM_DYNAMIC_BUFFER_SUPPORT)
    retrieve = {(1, 0): 0, (1, 1): c.FFA_FEATURES_MEM_RETRIEVE_REQ_NS_SUPPORT,
                (1, 2): c.FFA_FEATURES_MEM_RETRIEVE_REQ_NS_SUPPORT |
                c.FFA_FEATURES_MEM_RETRIEVE_REQ_HYPERVISOR_SUPPORT}[version]
    ok(w.call(c.FFA_FEATURES, c.FFA_MEM_RETRIEVE_REQ_64), retrieve)
    for fid in (c.FFA_MEM_FRAG_TX, c.FFA_MEM_RECLAIM, c.FFA_MSG_SEND_DIRECT_REQ_32,
                c.FFA_PARTITION_INFO_GET, c.FFA_RX_RELEASE, c.FFA_VERSION, c.FFA_ERROR,
                c.FFA_SUCCESS_32, c.FFA_ID_GET, c.FFA_MEM_FRAG_RX):
        ok(w.call(c.FFA_FEATURES, fid), 0)
    for q in (c.FFA_MSG_WAIT, c.FFA_MSG_SEND2, c.FFA_MSG_SEND_DIRECT_REQ2_64, 0x8400_00FF,
              c.FFA_FEATURE_NOTIF_PEND_INTR, c.FFA_FEATURE_SCHEDULE_RECV_INTR):
        assert err(w.call(c.FFA_FEATURES, q)) == c.FFA_NOT_SUPPORTED


def test_features_like_optee():
    w = World(optee_features=True)
    assert err(w.call(c.FFA_FEATURES, c.FFA_MEM_LEND_64)) == c.FFA_NOT_SUPPORTED
    ok(w.call(c.FFA_FEATURES, c.FFA_MEM_SHARE_64), c.FFA_FEATURES_MEM_DYNAMIC_BUFFER_SUPPORT)


def test_id_get_and_spm_id_get():
    w = World()
    assert w.call(c.FFA_ID_GET) == (c.FFA_SUCCESS_32, 0, NS, 0, 0, 0, 0, 0)
    assert w.call(c.FFA_SPM_ID_GET) == (c.FFA_SUCCESS_32, 0, 0x8000, 0, 0, 0, 0, 0)
    assert err(World(version=(1, 0)).call(c.FFA_SPM_ID_GET)) == c.FFA_NOT_SUPPORTED


def test_unknown_and_secure_only_calls():
    w = World()
    for fid in (0x8400_00FE, c.FFA_MSG_WAIT, c.FFA_YIELD, c.FFA_MEM_OP_RESUME, 0xC400_0064):
        assert err(w.call(fid)) == c.FFA_NOT_SUPPORTED
    assert len(w.call()) == 8 and len(w.call(*range(20))) == 8      # never raises


# ---- RX/TX ----------------------------------------------------------------------------------

def test_rxtx_map_errors_and_unmap():
    w = World(map_rxtx=False)
    inval, denied = c.FFA_INVALID_PARAMETERS, c.FFA_DENIED
    assert err(w.call(c.FFA_RXTX_MAP_64, TX + 8, RX, 1)) == inval        # unaligned
    assert err(w.call(c.FFA_RXTX_MAP_64, TX, RX, 0)) == inval            # no pages
    assert err(w.call(c.FFA_RXTX_MAP_64, TX, RX, 1 << 6)) == inval       # w3 bits 31:6
    assert err(w.call(c.FFA_RXTX_MAP_64, TX, TX + PAGE, 2)) == inval     # overlap
    assert err(w.call(c.FFA_RXTX_MAP_64, 0x1000, RX, 1)) == inval        # not NS DDR
    assert err(World(map_rxtx=False, rxtx_max_pages=2).call(c.FFA_RXTX_MAP_64, TX, RX, 3)) \
        == inval
    assert err(w.call(c.FFA_RXTX_UNMAP)) == inval                        # nothing mapped
    ok(w.call(c.FFA_RXTX_MAP_32, (1 << 32) | TX, (1 << 32) | RX, 1))     # SMC32: w registers
    assert (w.spmc.mailbox.tx, w.spmc.mailbox.rx, w.spmc.mailbox.size) == (TX, RX, PAGE)
    assert err(w.call(c.FFA_RXTX_MAP_64, TX, RX, 1)) == denied           # double map
    assert err(w.call(c.FFA_RXTX_UNMAP, 5 << 16)) == inval               # another VM
    ok(w.call(c.FFA_RXTX_UNMAP))
    assert err(w.call(c.FFA_RXTX_UNMAP)) == inval


def test_rxtx_map_over_lent_memory_is_denied():
    w = World()
    h = handle(w.send(c.FFA_MEM_LEND_64, build_mem_region((1, 2), NS, [(OPTEE, RW)], 0, 0, 0,
                                                          [(DATA, 4)])))
    ok(w.call(c.FFA_RXTX_UNMAP))
    assert err(w.call(c.FFA_RXTX_MAP_64, DATA + PAGE, RX, 1)) == c.FFA_DENIED
    assert w.spmc.lookup(h).complete


# ---- partition information ------------------------------------------------------------------

@pytest.mark.parametrize("version,size", [((1, 0), 8), ((1, 1), 24), ((1, 2), 24)])
def test_partition_info_get(version, size):
    other = uuid.UUID("11111111-2222-3333-4444-555555555555")
    w = World(version=version, other_partitions=((0x8002, other, 0),))
    r = ok(w.call(c.FFA_PARTITION_INFO_GET, 0, 0, 0, 0))
    assert r[2] == 2 and r[3] == (size if version >= (1, 1) else 0)
    (optee, second) = parse_partition_info(w.read(RX, 2 * size), version, 2)
    assert (optee["id"], optee["execution_context"]) == (OPTEE, 1)
    assert optee["partition_properties"] == (c.FFA_PART_PROP_DIRECT_REQ_RECV |
                                             c.FFA_PART_PROP_DIRECT_REQ_SEND |
                                             c.FFA_PART_PROP_AARCH64_STATE)
    assert optee["uuid"] == (OPTEE_UUID if version >= (1, 1) else None)
    assert second["id"] == 0x8002
    ok(w.call(c.FFA_RX_RELEASE))
    r = ok(w.call(c.FFA_PARTITION_INFO_GET, *uuid_to_regs(OPTEE_UUID)))
    assert r[2] == 1 and parse_partition_info(w.read(RX, size), version, 1)[0]["id"] == OPTEE
    ok(w.call(c.FFA_RX_RELEASE))
    assert err(w.call(c.FFA_PARTITION_INFO_GET, 1, 2, 3, 4)) == c.FFA_INVALID_PARAMETERS
    assert not w.spmc.mailbox.caller_owns_rx


def test_partition_info_count_only():
    w = World(map_rxtx=False)
    r = ok(w.call(c.FFA_PARTITION_INFO_GET, *uuid_to_regs(OPTEE_UUID),
                  c.FFA_PARTITION_INFO_GET_COUNT_FLAG))
    assert r[2:4] == (1, 0)
    assert err(w.call(c.FFA_PARTITION_INFO_GET)) == c.FFA_BUSY          # no RX to write into
    assert err(w.call(c.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 2)) == c.FFA_INVALID_PARAMETERS


# ---- direct requests ------------------------------------------------------------------------

def test_direct_request_routing_and_response_layout():
    w = World()
    r = w.call(c.FFA_MSG_SEND_DIRECT_REQ_32, (NS << 16) | OPTEE, 0, 2, 7)
    assert r == (c.FFA_MSG_SEND_DIRECT_RESP_32, (OPTEE << 16) | NS, 0, 1, 8, 3, 4, 5)
    assert w.log == [("direct", (c.FFA_MSG_SEND_DIRECT_REQ_32, OPTEE, 0, 2, 7, 0, 0, 0))]
    r = w.call(c.FFA_MSG_SEND_DIRECT_REQ_64, (NS << 16) | OPTEE, 0, 2, 1 << 40)
    assert r == (c.FFA_MSG_SEND_DIRECT_RESP_64, (OPTEE << 16) | NS, 0, 0x1_0000_0001,
                 (1 << 40) + 1, 3, 4, 5)


@pytest.mark.parametrize("w1,w2", [((NS << 16) | 0x8000, 0), ((NS << 16) | 0x8007, 0),
                                   ((0x8002 << 16) | OPTEE, 0), ((NS << 16) | OPTEE, 1),
                                   ((NS << 16) | OPTEE, c.FFA_MSG_FLAG_FRAMEWORK)])
def test_direct_request_wrong_destination_source_or_flags(w1, w2):
    w = World()
    assert err(w.call(c.FFA_MSG_SEND_DIRECT_REQ_32, w1, w2, 0)) == c.FFA_INVALID_PARAMETERS
    assert w.log == []


# ---- memory transactions --------------------------------------------------------------------

def test_lend_retrieve_relinquish_reclaim_lifecycle():
    w = World()
    d = build_mem_region((1, 2), NS, [(OPTEE, RW)], 0, 0, 1, [(DATA, 256)])
    h = handle(w.send(c.FFA_MEM_LEND_64, d))
    assert h == c.FFA_MEMORY_HANDLE_NON_SECURE_BIT                       # slot 0, bit 44
    assert w.log == [("lend", h, False, 256)]                            # before the commit
    tx = w.spmc.lookup(h)
    assert (tx.kind, tx.sender, tx.receivers, tx.tag, tx.constituents, tx.version) == \
        ("lend", NS, [(OPTEE, RW)], 1, [(DATA, 256)], (1, 2))
    [span] = w.spmc.ownership(DATA, 256 * PAGE)
    assert span.states == {NS: "Owner-NA", OPTEE: "!Owner-NA"} and span.handle == h
    assert w.spmc.retrieve_for_sp(h) is tx and tx.retrieved
    assert w.spmc.ownership(DATA, PAGE)[0].states[OPTEE] == "!Owner-EA"
    assert err(w.call(c.FFA_MEM_RECLAIM, h & M32, h >> 32, 0)) == c.FFA_DENIED
    w.spmc.relinquish_for_sp(h)
    assert w.spmc.ownership(DATA, PAGE)[0].states[OPTEE] == "!Owner-NA"
    assert len(w.log) == 1                                               # no reclaim yet
    ok(w.call(c.FFA_MEM_RECLAIM, h & M32, h >> 32, 0))
    assert w.log[1:] == [("reclaim", h, True, False, False)]             # before the commit
    assert w.spmc.lookup(h) is None and w.spmc.handles() == []
    assert w.spmc.ownership(DATA, PAGE)[0].states == {NS: "Owner-EA"}
    ops = [e.fields["op"] for e in w.bus.of_kind("ffa_mem")]
    assert ops == ["lend", "retrieve", "relinquish", "reclaim"]
    h2 = handle(w.send(c.FFA_MEM_LEND_64, d))
    assert h2 == h                                                       # slot free again


def test_fragmented_lend_of_256_constituents():
    w = World()
    cons = [(DATA + i * 2 * PAGE, 1) for i in range(256)]
    d = build_mem_region((1, 2), NS, [(OPTEE, RW)], 0, 0, 0, cons)
    assert len(d) == 96 + 256 * 16
    first = PAGE
    w.put(d[:first])
    r = w.call(c.FFA_MEM_LEND_64, len(d), first, 0, 0)
    assert r[0] == c.FFA_MEM_FRAG_RX and r[3] == first
    h = r[1] | (r[2] << 32)
    assert w.log == [] and not w.spmc.lookup(h).complete
    assert w.spmc.ownership(DATA, PAGE)[0].handle is None               # not committed yet
    w.put(d[first:])
    r = w.call(c.FFA_MEM_FRAG_TX, h & M32, h >> 32, len(d) - first)
    assert handle(r) == h and w.log == [("lend", h, False, 256)]
    tx = w.spmc.lookup(h)
    assert tx.complete and tx.constituents == cons and tx.fragments == 2
    assert [s.handle for s in w.spmc.ownership(DATA, 512 * PAGE)] == [h, None] * 256


def test_fragmented_retrieve_response_through_frag_rx():
    w = World()
    cons = [(DATA + i * 2 * PAGE, 1) for i in range(256)]
    d = build_mem_region((1, 2), NS, [(OPTEE, RW)], 0, 0, 9, cons)
    w.put(d[:PAGE])
    r = w.call(c.FFA_MEM_LEND_64, len(d), PAGE, 0, 0)
    w.put(d[PAGE:])
    h = handle(w.call(c.FFA_MEM_FRAG_TX, r[1], r[2], len(d) - PAGE))
    req = build_mem_region((1, 2), 0, [], 0, 0, 0, None, handle=h)
    w.put(req)
    r = w.call(c.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req), 0, 0)
    assert r[:3] == (c.FFA_MEM_RETRIEVE_RESP, len(d), PAGE)
    got = w.read(RX, PAGE)
    assert err(w.call(c.FFA_MEM_FRAG_RX, h & M32, h >> 32, PAGE)) == c.FFA_BUSY
    ok(w.call(c.FFA_RX_RELEASE))
    assert err(w.call(c.FFA_MEM_FRAG_RX, h & M32, h >> 32, 16)) == c.FFA_INVALID_PARAMETERS
    r = w.call(c.FFA_MEM_FRAG_RX, h & M32, h >> 32, PAGE)
    assert r[:4] == (c.FFA_MEM_FRAG_TX, h & M32, h >> 32, len(d) - PAGE)
    desc = parse_mem_region(got + w.read(RX, len(d) - PAGE), (1, 2))
    assert desc.handle == h and desc.tag == 9 and desc.sender == NS
    assert desc.flags == c.FFA_MEMORY_REGION_TRANSACTION_TYPE_LEND
    assert [(k.address, k.page_count) for k in desc.constituents] == cons


@pytest.mark.parametrize("n", [1, 16])
def test_share_of_1_and_16_constituents(n):
    w = World()
    cons = [(DATA + i * 4 * PAGE, 3) for i in range(n)]
    d = build_mem_region((1, 2), NS, [(OPTEE, RW)], NORMAL, 0, 0, cons)
    h = handle(w.send(c.FFA_MEM_SHARE_32, d))
    tx = w.spmc.lookup(h)
    assert tx.kind == "share" and tx.total_pages == 3 * n and w.log == []   # no on_lend
    w.spmc.retrieve_for_sp(h)
    assert w.spmc.ownership(DATA, PAGE)[0].states == {NS: "Owner-SA", OPTEE: "!Owner-SA"}
    w.spmc.relinquish_for_sp(h)
    ok(w.call(c.FFA_MEM_RECLAIM, h & M32, h >> 32, 0))


def test_share_in_a_caller_allocated_buffer_with_fragments():
    w = World(version=(1, 1))
    buf = BASE + 0x4_0000
    cons = [(DATA + i * 2 * PAGE, 1) for i in range(600)]
    d = build_mem_region((1, 1), NS, [(OPTEE, RW)], NORMAL, 0, 0, cons)
    w.put(d[:2 * PAGE], buf)
    r = w.call(c.FFA_MEM_SHARE_64, len(d), 2 * PAGE, buf, 2)
    assert r[0] == c.FFA_MEM_FRAG_RX
    w.put(d[2 * PAGE:], buf)
    h = handle(w.call(c.FFA_MEM_FRAG_TX, r[1], r[2], len(d) - 2 * PAGE))
    assert [(a, n) for a, n in w.spmc.lookup(h).constituents] == cons


def test_donate_then_reclaim_or_retrieve():
    w = World()
    d = build_mem_region((1, 2), NS, [(OPTEE, 0)], 0, 0, 0, [(DATA, 2)])
    h = handle(w.send(c.FFA_MEM_DONATE_64, d))
    assert w.log == [("lend", h, False, 2)]
    ok(w.call(c.FFA_MEM_RECLAIM, h & M32, h >> 32, 0))                  # before any retrieve
    h = handle(w.send(c.FFA_MEM_DONATE_64, d))
    w.spmc.retrieve_for_sp(h)
    assert w.spmc.lookup(h) is None                                      # handle freed
    [span] = w.spmc.ownership(DATA, 2 * PAGE)
    assert (span.kind, span.owner, span.states[OPTEE]) == ("donated", OPTEE, "Owner-EA")
    assert err(w.call(c.FFA_MEM_RECLAIM, h & M32, h >> 32, 0)) == c.FFA_INVALID_PARAMETERS


def test_hypervisor_allocated_handle_is_used():
    w = World()
    hyp = c.FFA_MEMORY_HANDLE_HYPERVISOR_BIT | 0x42
    d = build_mem_region((1, 2), NS, [(OPTEE, RW)], 0, 0, 0, [(DATA, 1)], handle=hyp)
    assert handle(w.send(c.FFA_MEM_LEND_64, d)) == hyp
    assert err(w.send(c.FFA_MEM_LEND_64, build_mem_region(
        (1, 2), NS, [(OPTEE, RW)], 0, 0, 0, [(DATA + PAGE, 1)], handle=hyp))) == \
        c.FFA_NO_MEMORY
    ok(w.call(c.FFA_MEM_RECLAIM, hyp & M32, hyp >> 32, 0))


def test_v1_0_caller_lends_with_the_32_byte_header():
    w = World(version=(1, 0))
    d = build_mem_region((1, 0), NS, [(OPTEE, RW)], 0, 0, 1, [(DATA, 256)])
    assert len(d) == 80
    h = handle(w.send(c.FFA_MEM_LEND_32, d))
    assert w.spmc.lookup(h).version == (1, 0) and version_tuple(c.FFA_VERSION_1_0) == (1, 0)


def test_events_name_every_call():
    w = World()
    w.call(c.FFA_ID_GET)
    ev = w.bus.of_kind("ffa_call")[-1].fields
    assert (ev["name"], ev["result"], ev["error"]) == ("FFA_ID_GET", "FFA_SUCCESS_32", None)
    w.call(c.FFA_RX_RELEASE)
    ev = w.bus.of_kind("ffa_call")[-1].fields
    assert (ev["result"], ev["error"]) == ("FFA_ERROR", c.FFA_DENIED)
