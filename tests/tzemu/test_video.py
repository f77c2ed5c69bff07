"""tzemu.video (frame sizes, colour bars, PNG) and the camera device that writes frames into
protected memory through the TZC."""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from emu import tzc400 as T
from emu.devices.camera import Camera
from emu.events import EventBus
from emu.physmem import PhysMem
from emu.platform_map import load_memory_map
from emu.protection import ProtectionFault
from tzemu.video import (FORMATS, SMPTE_BARS, colour_bars, frame_size, layout, rgb_to_yuv,
                         to_image, to_png)


@pytest.mark.parametrize("fmt, w, h, size", [
    ("NV12", 1920, 1080, 3110400), ("I420", 1920, 1080, 3110400), ("RGBA", 1920, 1080, 8294400),
    ("RGB16", 1920, 1080, 4147200), ("NV12", 640, 480, 460800), ("I420", 320, 240, 115200),
    ("NV12", 7, 5, 8 * 6 + 8 * 3), ("I420", 7, 5, 8 * 6 + 2 * 4 * 3), ("RGBA", 7, 5, 140),
    ("RGB16", 7, 5, 80), ("I420", 1919, 1079, 3110400), ("nv12", 2, 2, 12)])
def test_frame_sizes(fmt: str, w: int, h: int, size: int) -> None:
    """GstVideoInfo sizes (strides rounded up to 4, chroma rounded up to even dimensions)."""
    assert frame_size(fmt, w, h) == size


def test_explicit_strides() -> None:
    assert frame_size("NV12", 1920, 1080, stride=2048) == 2048 * 1080 * 3 // 2
    assert frame_size("I420", 1920, 1080, stride=2048) == 2048 * 1080 + 2 * 1024 * 540
    assert frame_size("RGBA", 100, 10, stride=512) == 5120
    lay = layout("I420", 100, 10, stride=128)
    assert [(p.offset, p.stride) for p in lay.planes] == [(0, 128), (1280, 64), (1600, 64)]
    for bad in (dict(fmt="RGBA", width=100, height=10, stride=399),
                dict(fmt="I420", width=100, height=10, stride=101),
                dict(fmt="YUY2", width=2, height=2), dict(fmt="NV12", width=0, height=2)):
        with pytest.raises(ValueError):
            frame_size(**bad)                                          # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("w, h", [(640, 480), (97, 61), (8, 4)])
def test_png_dimensions_and_bars(fmt: str, w: int, h: int) -> None:
    data = colour_bars(fmt, w, h)
    assert len(data) == frame_size(fmt, w, h)
    im = Image.open(io.BytesIO(to_png(fmt, w, h, data)))
    assert im.format == "PNG" and im.size == (w, h) and im.mode == "RGB"
    if w < 14:
        return
    tol = 8 if fmt in ("RGBA", "RGB16") else 6
    samples = [im.getpixel(((2 * i + 1) * w // 14, h // 4)) for i in range(7)]
    assert len(set(samples)) == 7                                     # distinct per bar
    for got, want in zip(samples, SMPTE_BARS):
        assert all(abs(a - b) <= tol for a, b in zip(got, want)), (got, want)


@pytest.mark.parametrize("fmt", FORMATS)
def test_frames_differ_and_are_deterministic(fmt: str) -> None:
    a, b = colour_bars(fmt, 160, 120, 0), colour_bars(fmt, 160, 120, 1)
    assert a != b and a == colour_bars(fmt, 160, 120, 0)
    img = to_image(fmt, 160, 120, b)
    assert img.getpixel((16 + 2, 105)) == img.getpixel((16 + 6, 100)) != (0, 0, 0)  # marker
    assert max(img.getpixel((2, 105))) < 20                                         # black


def test_strided_frame_to_png() -> None:
    """A frame with padded rows converts like the packed one."""
    w, h, stride = 64, 32, 96
    packed = colour_bars("NV12", w, h)
    lay, play = layout("NV12", w, h, stride), layout("NV12", w, h)
    strided = bytearray(lay.size)
    for p, q in zip(lay.planes, play.planes):
        for r in range(p.rows):
            src = packed[q.offset + r * q.stride:q.offset + r * q.stride + q.row_bytes]
            strided[p.offset + r * p.stride:p.offset + r * p.stride + p.row_bytes] = src
    assert list(to_image("NV12", w, h, strided, stride).getdata()) == \
        list(to_image("NV12", w, h, packed).getdata())
    with pytest.raises(ValueError, match="needs"):
        to_png("NV12", w, h, packed[:-100])


def test_yuv_conversion_points() -> None:
    assert rgb_to_yuv((0, 0, 0)) == (16, 128, 128)
    assert rgb_to_yuv((255, 255, 255)) == (235, 128, 128)
    assert rgb_to_yuv((191, 191, 191))[1:] == (128, 128)
    assert rgb_to_yuv((255, 255, 0)) == (210, 16, 146)                    # BT.601
    assert rgb_to_yuv((255, 255, 0), "bt709") == (219, 16, 138)
    hd = to_image("NV12", 64, 720, colour_bars("NV12", 64, 720))        # BT.709 by default
    assert all(abs(a - b) <= 2 for a, b in zip(hd.getpixel((14, 10)), (255, 255, 0)))
    wrong = to_image("NV12", 64, 720, colour_bars("NV12", 64, 720), matrix="bt601")
    assert wrong.getpixel((40, 10))[0] < 240                     # magenta off with BT.601
    with pytest.raises(ValueError):
        rgb_to_yuv((0, 0, 0), "bt2020")


def _gst_missing() -> str | None:
    if not shutil.which("gst-launch-1.0"):
        return "gst-launch-1.0 not installed"
    if subprocess.run(["gst-inspect-1.0", "videotestsrc"], capture_output=True).returncode:
        return "videotestsrc not available"
    return None


_MISSING = _gst_missing()


@pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
@pytest.mark.parametrize("w, h", [(320, 240), (97, 61), (1280, 720)])
def test_matches_videotestsrc(tmp_path: Path, w: int, h: int) -> None:
    """GStreamer's frame sizes; our bars equal the first row of ``pattern=smpte``; its frames
    convert to the bar colours."""
    for fmt in FORMATS:
        out = tmp_path / f"{fmt}.raw"
        run = subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=1",
                              "pattern=smpte", "!", f"video/x-raw,format={fmt},width={w},"
                              f"height={h}", "!", "filesink", f"location={out}"],
                             capture_output=True, timeout=60)
        assert run.returncode == 0, run.stderr.decode()
        theirs = out.read_bytes()
        assert len(theirs) == frame_size(fmt, w, h)
        ours = colour_bars(fmt, w, h)
        for p in layout(fmt, w, h).planes:
            assert ours[p.offset:p.offset + p.row_bytes] == theirs[p.offset:p.offset + p.row_bytes]
        img = to_image(fmt, w, h, theirs)
        for i, want in enumerate(SMPTE_BARS):
            got = img.getpixel(((2 * i + 1) * w // 14, h // 8))
            assert all(abs(a - b) <= 2 for a, b in zip(got, want)), (fmt, i, got)


# ---------------------------------------------------------------------------------- camera

MM = load_memory_map()
REC = MM.carveout("secure-video-record").base


@pytest.fixture(scope="module")
def mem() -> PhysMem:
    return PhysMem(MM)


@pytest.fixture
def tzc() -> T.Tzc400:
    """The record carveout as the secure OS opens it: secure, camera NSAID write only."""
    t = T.Tzc400(filters=1, bus=EventBus(record=100))
    t.write(T.REGION_ID_ACCESS(0), 4, 0xFFFFFFFF)
    t.write(T.REGION_BASE_LOW(1), 4, REC)
    t.write(T.REGION_TOP_LOW(1), 4, REC + 0x3FFFFF)
    t.write(T.REGION_ID_ACCESS(1), 4, 1 << (MM.nsaid["camera"] + 16))
    t.write(T.REGION_ATTRIBUTES(1), 4, 0xC0000001)
    t.write(T.ACTION, 4, T.TzcAction.ERR)
    t.write(T.GATE_KEEPER, 4, 1)
    return t


def test_camera_captures_into_protected_buffer(mem: PhysMem, tzc: T.Tzc400) -> None:
    cam = Camera.from_platform(mem, tzc)
    assert cam.nsaid == MM.nsaid["camera"] == 5 and not cam.secure
    frame = colour_bars("NV12", 64, 48, 2)
    crc = cam.capture(REC, frame)
    assert mem.read(REC, len(frame)) == frame and cam.last_capture == (REC, len(frame), crc)
    assert tzc.bus.of_kind("camera_capture")[-1].fields["frame"] == 1
    with pytest.raises(ProtectionFault):                  # the camera may not read it back
        cam.dma_read(REC, 16)
    other = Camera("cam2", physmem=mem, tzc=tzc, nsaid=9)
    before = mem.read(REC, 64)
    with pytest.raises(ProtectionFault):                  # another NSAID may not write
        other.capture(REC, b"\xFF" * 64)
    assert mem.read(REC, 64) == before
    with pytest.raises(ValueError):
        Camera(physmem=mem, tzc=tzc, nsaid=5, secure=True)


def test_camera_test_pattern(mem: PhysMem, tzc: T.Tzc400) -> None:
    p0, p1 = Camera.test_pattern(5000, 0), Camera.test_pattern(5000, 1)
    assert len(p0) == 5000 and p0 != p1 and p0 == Camera.test_pattern(5000, 0)
    assert p1[:4] == (1).to_bytes(4, "little") and Camera.test_pattern(3, 7) == b"\x07\0\0"
    cam = Camera.from_platform(mem, tzc)
    first = cam.capture_pattern(REC + 0x1000, 4096)
    second = cam.capture_pattern(REC + 0x2000, 4096)
    assert first == Camera.test_pattern(4096, 0) and second == Camera.test_pattern(4096, 1)
    assert mem.read(REC + 0x2000, 4096) == second and cam.frames == 2
