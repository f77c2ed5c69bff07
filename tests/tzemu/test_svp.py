"""Secure video playback end to end: aesenc stream -> decrypt TA -> protected dma-buf -> display."""
from __future__ import annotations

import shutil
import subprocess

import pytest

import tzemu
from protection_helpers import assert_protected
from tzemu import aes_stream, svp, video
from tzemu.cli import main

W, H, FMT = 64, 48, "NV12"


def boot(protmem):
    return tzemu.boot(protmem=protmem, protmem_min_size=0x100000)


@pytest.mark.parametrize("protmem", ["static", "dynamic"])
@pytest.mark.parametrize("crypto", ["cpu", "engine"])
def test_both_paths_show_the_plain_frames(protmem, crypto):
    p = boot(protmem)
    stream = svp.make_test_stream(FMT, W, H, 4)
    res = svp.play(p, stream, key=svp.SEED_KEY, iv=None, serialize_iv=True, fmt=FMT, width=W,
                   height=H, crypto=crypto)
    assert res.frames == 4 and res.crcs == svp.crc_of_frames(FMT, W, H, 4)
    assert res.ns_read_fault and "TZC-400" in res.ns_read_fault and not res.faults


@pytest.mark.parametrize("fmt", ["I420", "RGBA", "RGB16"])
def test_formats_and_aes_256_without_per_buffer_padding(fmt):
    p = boot("static")
    key = "00112233445566778899aabbccddeeff" * 2
    stream = svp.make_test_stream(fmt, W, H, 3, key=key, serialize_iv=False,
                                  cipher="aes-256-cbc", per_buffer_padding=False)
    res = svp.play(p, stream, key=key, iv=svp.SEED_IV, fmt=fmt, width=W, height=H,
                   cipher="aes-256-cbc", per_buffer_padding=False)
    assert res.crcs == svp.crc_of_frames(fmt, W, H, 3)


def test_frame_buffers_are_protected_while_playing():
    p = boot("static")
    cv = p.memory_map.carveout("secure-video")
    fsize = video.frame_size(FMT, W, H)
    checked = []

    def during(i, n):
        if i == 1:
            assert_protected(p, cv.base, (fsize + 0xFFF) & ~0xFFF, readers=("display", "codec"),
                             writers=("codec",))
            checked.append(i)
    svp.play(p, svp.make_test_stream(FMT, W, H, 2), key=svp.SEED_KEY, iv=None,
             serialize_iv=True, fmt=FMT, width=W, height=H, progress=during)
    assert checked == [1]


def test_a_display_without_the_nsaid_is_denied():
    p = boot("static")
    cv = p.memory_map.carveout("secure-video")
    with pytest.raises(tzemu.ProtectionFault):
        p.devices["test_master"].dma_read(cv.base, 64)


@pytest.mark.parametrize("damage, words", [
    ("padding", "bad PKCS#7 padding"), ("truncate", "truncated"), ("key", "key"),
])
def test_bad_streams_give_clear_errors(damage, words):
    p = boot("static")
    stream = bytearray(svp.make_test_stream(FMT, W, H, 2))
    key = svp.SEED_KEY
    if damage == "padding":
        stream[-1] ^= 0x55          # last byte of the last record's padding block
    elif damage == "truncate":
        del stream[-16:]
    else:
        key = svp.SEED_KEY + "00"   # 17 bytes for aes-128
    with pytest.raises((svp.SvpError, aes_stream.AesStreamError), match=words):
        svp.play(p, bytes(stream), key=key, iv=None, serialize_iv=True, fmt=FMT, width=W, height=H)


def test_svp_cli_reads_a_file_and_writes_the_scanout(tmp_path, capsys):
    stream = svp.make_test_stream(FMT, W, H, 3)
    (tmp_path / "in.aes").write_bytes(stream)
    out = tmp_path / "out.raw"
    rc = main(["svp", "--input", str(tmp_path / "in.aes"), "--key", svp.SEED_KEY, "--serialize-iv",
               "--width", str(W), "--height", str(H), "--format", FMT, "--output", str(out),
               "--png-dir", str(tmp_path / "png"), "--crypto", "engine"])
    assert rc == 0
    assert out.read_bytes() == b"".join(video.colour_bars(FMT, W, H, i) for i in range(3))
    assert len(list((tmp_path / "png").glob("*.png"))) == 3


def _gst_has_aesenc() -> bool:
    if not shutil.which("gst-launch-1.0") or not shutil.which("gst-inspect-1.0"):
        return False
    return subprocess.run(["gst-inspect-1.0", "aesenc"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _gst_has_aesenc(), reason="gst-launch-1.0 with the aesenc element "
                    "(gstreamer1.0-plugins-bad) is not installed")
def test_gstreamer_made_stream_decrypts_to_gstreamers_raw_output(tmp_path):
    caps = f"video/x-raw,format={FMT},width={W},height={H}"
    raw, enc = tmp_path / "raw", tmp_path / "enc"
    base = ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=3", "!", caps]
    subprocess.run(base + ["!", "filesink", f"location={raw}"], check=True, timeout=60)
    subprocess.run(base + ["!", "aesenc", f"key={svp.SEED_KEY}", f"iv={svp.SEED_IV}",
                           "serialize-iv=true", "!", "filesink", f"location={enc}"],
                   check=True, timeout=60, capture_output=True)
    p = boot("static")
    res = svp.play(p, enc.read_bytes(), key=svp.SEED_KEY, iv=None, serialize_iv=True, fmt=FMT,
                   width=W, height=H)
    data = raw.read_bytes()
    fsize = video.frame_size(FMT, W, H)
    import zlib
    assert res.crcs == [zlib.crc32(data[i * fsize:(i + 1) * fsize]) for i in range(3)]
