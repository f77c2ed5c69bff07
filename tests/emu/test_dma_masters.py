"""DMA masters behind the TZC-400: zero-copy reads, denied accesses, the display's scanout CRC."""
from __future__ import annotations

import zlib

import pytest

from emu import tzc400 as T
from emu.devices import DisplayController, DmaMaster, TestMaster
from emu.events import EventBus
from emu.physmem import PhysMem
from emu.platform_map import load_memory_map
from emu.protection import ProtectionFault
from emu.tzc400 import Tzc400, TzcResponse

MM = load_memory_map()
NS = MM.region("ns_dram").base
SEC = MM.region("secure_dram").base
SDP = NS + 0x01000000                      # a 1 MiB protected buffer inside NS DRAM
SDP_TOP = SDP + 0x000FFFFF
DISPLAY, CODEC, CPU, TEST = 3, 5, 0, 9


@pytest.fixture(scope="module")
def mem():
    return PhysMem(MM)


@pytest.fixture
def tzc():
    """Option A of the fact sheet: region 0 = NS background, secure DRAM and the SDP buffer
    in regions >= 1. ACTION = ERR as TF-A sets it."""
    t = Tzc400(filters=1, bus=EventBus(record=10_000))
    everyone = 0xFFFFFFFF
    t.write(T.REGION_ID_ACCESS(0), 4, everyone)
    t.write(T.REGION_BASE_LOW(1), 4, SEC)
    t.write(T.REGION_TOP_LOW(1), 4, SEC + MM.region("secure_dram").size - 1)
    t.write(T.REGION_ATTRIBUTES(1), 4, 0xC0000001)               # secure only
    t.write(T.REGION_BASE_LOW(3), 4, SDP)
    t.write(T.REGION_TOP_LOW(3), 4, SDP_TOP)
    t.write(T.REGION_ID_ACCESS(3), 4, 1 << DISPLAY | 1 << CODEC | 1 << (CODEC + 16))
    t.write(T.REGION_ATTRIBUTES(3), 4, 0xC0000001)
    t.write(T.ACTION, 4, T.TzcAction.ERR)
    t.write(T.GATE_KEEPER, 4, 1)
    return t


def test_allowed_read_is_zero_copy(mem, tzc):
    m = TestMaster("test", physmem=mem, tzc=tzc, nsaid=TEST, master_id=0x11)
    mem.write(NS + 0x3000, b"hello, dma")
    v = m.dma_read(NS + 0x3000, 10)
    assert isinstance(v, memoryview) and bytes(v) == b"hello, dma"
    mem.write(NS + 0x3000, b"J")                      # the view sees later stores: no copy
    assert bytes(v[:1]) == b"J"
    m.dma_write(NS + 0x3100, b"abc")
    assert mem.read(NS + 0x3100, 3) == b"abc"
    m.dma_copy(NS + 0x3000, NS + 0x3200, 10)
    assert mem.read(NS + 0x3200, 10) == b"Jello, dma"
    assert (m.stats.reads, m.stats.writes, m.stats.bytes_read, m.stats.bytes_written) == \
        (2, 2, 20, 13)
    assert not m.faults and tzc.int_status() == 0


def test_denied_read_raises_and_latches(mem, tzc):
    mem.write(SDP, b"secret frame")
    cpu = TestMaster("ns-dma", physmem=mem, tzc=tzc, nsaid=CPU, master_id=0x2A)
    with pytest.raises(ProtectionFault) as ei:
        cpu.dma_read(SDP + 4, 8)
    f = ei.value
    assert (f.address, f.size, f.direction, f.world) == (SDP + 4, 8, "read", "ns-dma")
    assert "NSAID 0 read not enabled in region 3" in f.reason
    assert f.fail["FAIL_ADDRESS"] == SDP + 4 and f.fail["FAIL_ID"] == 0x2A
    assert f.fail["direction"] == "read" and not f.fail["secure"] and f.fail["status"]
    assert f.verdict.response is TzcResponse.DECERR
    assert cpu.faults == [f] and cpu.stats.denied_reads == 1 and cpu.stats.reads == 0
    ev = tzc.bus.of_kind("dma_fault")[-1].fields
    assert ev["master"] == "ns-dma" and ev["response"] == "DECERR" and ev["address"] == SDP + 4


def test_denied_read_with_action_okay_still_returns_no_data(mem, tzc):
    """On the bus the master would get zeros and OKAY; tzemu raises so nobody misses it."""
    tzc.write(T.ACTION, 4, T.TzcAction.NONE)
    m = TestMaster("t", physmem=mem, tzc=tzc, nsaid=TEST)
    with pytest.raises(ProtectionFault) as ei:
        m.dma_read(SDP, 16)
    assert ei.value.verdict.response is TzcResponse.OKAY and len(m.faults) == 1
    assert tzc.fail_state(0)["status"]


def test_denied_write_changes_nothing(mem, tzc):
    mem.write(SDP + 0x100, b"\x55" * 32)
    disp = DisplayController("display", physmem=mem, tzc=tzc, nsaid=DISPLAY, master_id=3)
    with pytest.raises(ProtectionFault) as ei:
        disp.dma_write(SDP + 0x100, b"\xAA" * 32)           # display may only read
    assert mem.read(SDP + 0x100, 32) == b"\x55" * 32
    assert ei.value.direction == "write" and ei.value.fail["direction"] == "write"
    assert tzc.read(T.FAIL_CONTROL(0)) == 1 << 24 | 1 << 21 | 1 << 20
    # a write straddling into the buffer is refused as a whole
    m = TestMaster("t", physmem=mem, tzc=tzc, nsaid=TEST)
    before = mem.read(SDP - 4, 8)
    with pytest.raises(ProtectionFault):
        m.dma_write(SDP - 4, b"\xFF" * 8)
    assert mem.read(SDP - 4, 8) == before
    assert tzc.int_status() == 0x101                          # second failure: overrun


def test_secure_master_and_secure_dram(mem, tzc):
    s = TestMaster("crypto", physmem=mem, tzc=tzc, nsaid=0, secure=True)
    s.dma_write(SEC + 0x2000, b"key")
    s.dma_write(SDP + 0x10, b"plaintext")
    assert bytes(s.dma_read(SEC + 0x2000, 3)) == b"key"
    ns = TestMaster("t", physmem=mem, tzc=tzc, nsaid=TEST)
    with pytest.raises(ProtectionFault):
        ns.dma_read(SEC + 0x2000, 3)


def test_codec_reads_and_writes_the_buffer(mem, tzc):
    codec = DmaMaster("codec", physmem=mem, tzc=tzc, nsaid=CODEC)
    codec.dma_write(SDP + 0x200, b"decoded")
    assert bytes(codec.dma_read(SDP + 0x200, 7)) == b"decoded"


def test_display_scanout_crc(mem, tzc):
    frame = bytes(range(256)) * 64                          # 16 KiB
    mem.write(SDP + 0x8000, frame)
    disp = DisplayController("display", physmem=mem, tzc=tzc, nsaid=DISPLAY)
    crc = disp.scanout(SDP + 0x8000, len(frame))
    assert crc == zlib.crc32(frame) == disp.last_crc
    assert disp.last_frame == frame and disp.frames == 1
    assert tzc.bus.of_kind("display_scanout")[-1].fields["crc32"] == crc
    other = DisplayController("display2", physmem=mem, tzc=tzc, nsaid=7)
    with pytest.raises(ProtectionFault) as ei:
        other.scanout(SDP + 0x8000, len(frame))
    assert other.last_frame is None and other.frames == 0
    assert "NSAID 7 read" in ei.value.reason


def test_closed_gate_stops_dma_and_reprogramming_opens_it(mem, tzc):
    m = TestMaster("t", physmem=mem, tzc=tzc, nsaid=TEST)
    tzc.write(T.GATE_KEEPER, 4, 0)
    with pytest.raises(ProtectionFault) as ei:
        m.dma_read(NS + 0x5000, 4)
    assert ei.value.reason == "filter gate closed"
    # return the buffer (fact sheet 7.2): disable region 3, after which the test master may read
    tzc.write(T.REGION_ATTRIBUTES(3), 4, 0)
    tzc.write(T.REGION_ID_ACCESS(3), 4, 0)
    tzc.write(T.GATE_KEEPER, 4, 1)
    assert len(m.dma_read(SDP, 64)) == 64


def test_memory_outside_the_tzc_uses_the_static_firewall(mem, tzc):
    sram = [r for r in MM.regions if r.kind == "ram" and not getattr(r, "behind_tzc", True)]
    if not sram:
        pytest.skip("platform has no RAM outside the TZC")
    r = sram[0]
    m = TestMaster("t", physmem=mem, tzc=tzc, nsaid=TEST)
    if r.secure:
        with pytest.raises(ProtectionFault) as ei:
            m.dma_read(r.base, 4)
        assert "not behind the TZC" in ei.value.reason and tzc.int_status() == 0
    s = TestMaster("s", physmem=mem, tzc=tzc, nsaid=0, secure=True)
    s.dma_write(r.base, b"ok")
    assert bytes(s.dma_read(r.base, 2)) == b"ok"


def test_bad_nsaid_rejected(mem, tzc):
    with pytest.raises(ValueError):
        TestMaster("t", physmem=mem, tzc=tzc, nsaid=16)
