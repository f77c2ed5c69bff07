"""RSP packet layer and target description (no gdb needed)."""
import xml.etree.ElementTree as ET

import pytest

from emu.gdb import rsp
from emu.gdb.target_xml import REGISTERS, documents


def test_checksum_and_frame():
    assert rsp.checksum(b"OK") == 0x9A
    assert rsp.frame(b"OK") == b"$OK#9a"


def test_escape_roundtrip():
    data = bytes(range(256))
    esc = rsp.escape(data)
    assert b"$" not in esc and b"#" not in esc
    assert rsp.unescape(esc) == data
    with pytest.raises(rsp.RspError):
        rsp.unescape(b"ab}")


def test_run_length():
    assert rsp.rle_decode(b"0* ") == b"0000"
    data = b"0" * 50 + b"12" + b"f" * 7
    assert rsp.rle_decode(rsp.rle_encode(data)) == data
    with pytest.raises(rsp.RspError):
        rsp.rle_decode(b"*!")


def test_reader_packets_acks_garbage():
    r = rsp.PacketReader()
    out = r.feed(b"+garbage$qSupported#37-\x03$m0,4#")
    assert [p.kind for p in out] == ["ack", "packet", "nack", "interrupt"]
    assert out[1].data == b"qSupported"
    assert [p.kind for p in r.feed(b"fd")] == ["packet"]       # split across reads


def test_reader_bad_checksum_and_rle():
    r = rsp.PacketReader()
    assert [p.kind for p in r.feed(b"$g#00$g#zz")] == ["bad", "bad"]
    out = r.feed(rsp.frame(b"X* "))
    assert out[0].data == b"XXXX"


def test_reader_drops_overlong_packet():
    r = rsp.PacketReader()
    assert [p.kind for p in r.feed(b"$" + b"a" * (rsp.MAX_PACKET + 10))] == ["bad"]
    assert [p.kind for p in r.feed(rsp.frame(b"?"))] == ["packet"]


def test_hex_helpers():
    assert rsp.hex_to_int(b"1f") == 31
    with pytest.raises(rsp.RspError):
        rsp.hex_to_int(b"zz")
    with pytest.raises(rsp.RspError):
        rsp.unhexlify(b"abc")


def test_target_xml_is_valid():
    docs = documents()
    root = ET.fromstring(docs["target.xml"].split("\n", 2)[2])
    assert root.find("architecture").text == "aarch64"
    names = {}
    for name, text in docs.items():
        if name == "target.xml":
            continue
        feat = ET.fromstring(text.split("\n", 2)[2])
        names[feat.get("name")] = [r.get("name") for r in feat.findall("reg")]
    assert names["org.gnu.gdb.aarch64.core"][-3:] == ["sp", "pc", "cpsr"]
    assert len(names["org.gnu.gdb.aarch64.fpu"]) == 34
    assert {"elr_el1", "spsr_el1", "esr_el1", "far_el1", "vbar_el1", "current_el"} <= set(
        names["org.tzemu.sysregs"])
    assert sum(map(len, names.values())) == len(REGISTERS)


def test_malformed_packets_get_error_replies():
    import tzemu
    from emu.gdb.server import GdbServer
    p = tzemu.boot(abi="smc")
    s = GdbServer(p, 0)
    try:
        for bad in (b"mzz,4", b"Pzz=00", b"M0,4:zz", b"Z0", b"Hgzz", b"qThreadExtraInfo,q"):
            try:
                reply = s.handle(bad)
            except (rsp.RspError, ValueError, IndexError):
                reply = b"E01"
            assert reply.startswith(b"E") or reply == b"", bad
        assert s.handle(b"unknown-packet") == b""
        assert s.handle(b"qfThreadInfo").startswith(b"m1,2")
    finally:
        s.close()


def test_cpu0_thread_and_read_only_contexts():
    """Thread 1 is the executing CPU; 2 (NS-EL1) and 3 (S-EL1) are read-only contexts."""
    import tzemu
    from emu.gdb.server import GdbServer, _Resume
    from emu.gdb.target_xml import REG_INDEX
    from emu.types import World
    p = tzemu.boot(abi="smc")
    s = GdbServer(p, 0)
    try:
        s.stop_view = p.views[World.S_EL1]                # as if stopped while S-EL1 executes
        assert s.handle(b"qfThreadInfo").startswith(b"m1,2,3")
        assert s.handle(b"qC") == b"QC1"
        names = {t: bytes.fromhex(s.handle(b"qThreadExtraInfo,%x" % t).decode()).decode()
                 for t in (1, 2, 3)}
        assert names == {1: "cpu0: S-EL1, EL1", 2: "NS-EL1 saved context",
                         3: "S-EL1 live, on cpu0"}
        scr = REG_INDEX["scr_el3"]
        for tid, value in ((1, 0x400), (2, 0x401), (3, 0x400)):
            s.handle(b"Hg%x" % tid)
            assert s.handle(b"p%x" % scr) == value.to_bytes(8, "little").hex().encode()
        s.handle(b"Hg2")
        x0 = REG_INDEX["x0"]
        try:
            s.handle(b"P%x=%s" % (x0, bytes(8).hex().encode()))
            raise AssertionError("a context thread accepted a register write")
        except rsp.RspError:
            pass
        # a step aimed at a context thread is refused with a stop reply naming that thread
        assert s.handle(b"vCont;s:3;c").startswith(b"T05thread:3;")
        assert s.handle(b"vCont;c:2").startswith(b"T00thread:2;")
        with pytest.raises(_Resume):
            s.handle(b"vCont;s:1;c")
        assert s.stepping
    finally:
        s.close()
