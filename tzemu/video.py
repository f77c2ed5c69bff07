"""Raw video frames: sizes, a colour-bar generator and conversion to PNG.

Why: the protected-video scenarios move real frames (decrypted into protected buffers, scanned
out by the display, written by the camera), and a human wants to *see* what the display showed.
Layouts follow GStreamer's ``GstVideoInfo`` defaults so that a frame size here is the
``size`` of the matching caps (e.g. NV12 1920x1080 = 3110400 bytes):

========  =====================================================================================
format    layout (default strides; RU4 = round up to 4, RU2 = round up to 2)
========  =====================================================================================
NV12      Y: stride RU4(w), RU2(h) rows; then interleaved UV (Cb, Cr): same stride, RU2(h)/2 rows
I420      Y: stride RU4(w), RU2(h) rows; U then V: stride RU4(RU2(w)/2), RU2(h)/2 rows each
RGBA      one plane, 4 bytes per pixel (R, G, B, A), stride 4w
RGB16     RGB565 little-endian (R in bits 15..11), stride RU4(2w)
========  =====================================================================================

An explicit ``stride`` is the stride of the first plane (of the only plane for RGB); chroma planes
then use ``stride`` (NV12) or ``stride // 2`` (I420, V4L2's rule: the stride must be even).
YUV is limited range with GStreamer 1.22's defaults: BT.601 and centred chroma up to 576 lines,
BT.709 and co-sited chroma above (``matrix=`` overrides the matrix), so frames from
``videotestsrc`` convert to the right colours and our bars match its bytes.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

FORMATS = ("NV12", "I420", "RGBA", "RGB16")

# The top bars of ``videotestsrc pattern=smpte`` (100% bars), left to right: white, yellow,
# cyan, green, magenta, red, blue; bar i covers x in [i*w//7, (i+1)*w//7) as there.
SMPTE_BARS: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255), (255, 0, 0),
    (0, 0, 255))
_BLACK, _WHITE = (0, 0, 0), (255, 255, 255)


@dataclass(frozen=True)
class Plane:
    """One plane: byte offset in the frame, stride, bytes used per row, rows."""

    offset: int
    stride: int
    row_bytes: int
    rows: int


@dataclass(frozen=True)
class FrameLayout:
    fmt: str
    width: int
    height: int
    planes: tuple[Plane, ...]

    @property
    def size(self) -> int:
        last = self.planes[-1]
        return last.offset + last.stride * last.rows


def _ru(v: int, n: int) -> int:
    return (v + n - 1) // n * n


def _format(fmt: str) -> str:
    name = fmt.upper()
    if name not in FORMATS:
        raise ValueError(f"unsupported format {fmt!r}: use one of {', '.join(FORMATS)}")
    return name


def layout(fmt: str, width: int, height: int, stride: int | None = None) -> FrameLayout:
    """Planes of a ``width`` x ``height`` frame (ValueError for a bad size or stride)."""
    fmt = _format(fmt)
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size {width}x{height} must be positive")
    cw, ch, h2 = _ru(width, 2) // 2, _ru(height, 2) // 2, _ru(height, 2)
    if fmt in ("RGBA", "RGB16"):
        bpp = 4 if fmt == "RGBA" else 2
        s = stride if stride is not None else (4 * width if bpp == 4 else _ru(2 * width, 4))
        _check_stride(s, bpp * width)
        return FrameLayout(fmt, width, height, (Plane(0, s, bpp * width, height),))
    s0 = stride if stride is not None else _ru(width, 4)
    _check_stride(s0, width)
    y = Plane(0, s0, width, h2)
    if fmt == "NV12":
        return FrameLayout(fmt, width, height, (y, Plane(s0 * h2, s0, 2 * cw, ch)))
    if stride is not None and stride % 2:
        raise ValueError(f"I420 stride {stride} must be even (chroma stride = stride / 2)")
    s1 = stride // 2 if stride is not None else _ru(cw, 4)
    _check_stride(s1, cw)
    u = Plane(s0 * h2, s1, cw, ch)
    return FrameLayout(fmt, width, height, (y, u, Plane(u.offset + s1 * ch, s1, cw, ch)))


def _check_stride(stride: int, row_bytes: int) -> None:
    if stride < row_bytes:
        raise ValueError(f"stride {stride} is shorter than a row ({row_bytes} bytes)")


def frame_size(fmt: str, width: int, height: int, stride: int | None = None) -> int:
    """Bytes of one frame (GStreamer's ``GstVideoInfo.size`` for default strides)."""
    return layout(fmt, width, height, stride).size


# ---- colour conversion (limited range; BT.601 for SD, BT.709 for HD like GStreamer) ----------
_MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}      # (Kr, Kb)


def default_matrix(width: int, height: int) -> str:
    """GStreamer 1.22's default YUV matrix (measured with videotestsrc): BT.709 above 576
    lines (2160 included), BT.601 up to 576."""
    return "bt709" if height > 576 else "bt601"


def _cosited(height: int) -> bool:
    """GStreamer's default chroma siting: horizontally co-sited above 576 lines, else centred."""
    return height > 576


def _kr_kb(matrix: str) -> tuple[float, float]:
    try:
        return _MATRICES[matrix]
    except KeyError:
        raise ValueError(f"unknown matrix {matrix!r}: use bt601 or bt709") from None


def rgb_to_yuv(rgb: tuple[int, int, int], matrix: str = "bt601") -> tuple[int, int, int]:
    """Limited-range Y'CbCr of an 8-bit R'G'B' colour."""
    kr, kb = _kr_kb(matrix)
    r, g, b = (c / 255 for c in rgb)
    y = kr * r + (1 - kr - kb) * g + kb * b
    yuv = (16 + 219 * y, 128 + 224 * (b - y) / (2 * (1 - kb)),
           128 + 224 * (r - y) / (2 * (1 - kr)))
    return tuple(max(0, min(255, round(c))) for c in yuv)  # type: ignore[return-value]


def _yuv_to_rgb_matrix(matrix: str) -> tuple[float, ...]:
    """The 12-tuple for ``Image.convert("RGB", matrix)`` of a (Y, Cb, Cr) image."""
    kr, kb = _kr_kb(matrix)
    kg = 1 - kr - kb
    ys, cs = 255 / 219, 255 / 224
    rv, bu = 2 * (1 - kr) * cs, 2 * (1 - kb) * cs
    gu, gv = -bu * kb / kg, -rv * kr / kg
    return (ys, 0.0, rv, -16 * ys - 128 * rv,
            ys, gu, gv, -16 * ys - 128 * (gu + gv),
            ys, bu, 0.0, -16 * ys - 128 * bu)


def _bar_rows(width: int, height: int, frame_index: int) -> list[list[tuple[int, int, int]]]:
    """Per-row pixel colours, as a list of row patterns (rows share pattern objects): seven
    bars in the top three quarters, below them black with a white square that moves with
    ``frame_index`` (so consecutive frames differ)."""
    bars = [SMPTE_BARS[i] for i in range(7) for _ in range(i * width // 7, (i + 1) * width // 7)]
    bar_h = max(1, height * 3 // 4)
    side = max(2, min(width, height) // 8) & ~1
    x0 = (frame_index * 16) % max(1, width - side + 1)
    marker = [_WHITE if x0 <= x < x0 + side else _BLACK for x in range(width)]
    black = [_BLACK] * width
    m0 = bar_h + max(0, (height - bar_h - side) // 2)
    return [bars if y < bar_h else marker if m0 <= y < m0 + side else black
            for y in range(height)]


def colour_bars(fmt: str, width: int, height: int, frame_index: int = 0,
                matrix: str | None = None) -> bytes:
    """A deterministic test frame in ``fmt`` with default strides (padding bytes zero): the top
    three quarters are byte-identical to the first row of ``videotestsrc pattern=smpte``."""
    lay = layout(fmt, width, height)
    mat = matrix or default_matrix(width, height)
    rows = _bar_rows(width, height, frame_index)
    cache: dict[tuple[int, int], bytes] = {}           # (plane, id(row pattern)) -> row bytes

    def encode(plane: int, row: list[tuple[int, int, int]]) -> bytes:
        key = (plane, id(row))
        if key not in cache:
            row_bytes = _encode_row(lay.fmt, plane, row, mat, _cosited(height))
            cache[key] = row_bytes.ljust(lay.planes[plane].stride, b"\0")
        return cache[key]

    out = bytearray(lay.size)
    for n, p in enumerate(lay.planes):
        step = 2 if n else 1                           # chroma rows: every second luma row
        if lay.fmt in ("RGBA", "RGB16"):
            step = 1
        plane = b"".join(encode(n, rows[r * step]) for r in range(p.rows)
                         if r * step < height)
        out[p.offset:p.offset + len(plane)] = plane
    return bytes(out)


def _encode_row(fmt: str, plane: int, row: list[tuple[int, int, int]], matrix: str,
                cosited: bool) -> bytes:
    if fmt == "RGBA":
        return b"".join(bytes((r, g, b, 255)) for r, g, b in row)
    if fmt == "RGB16":
        return b"".join(((r >> 3) << 11 | (g >> 2) << 5 | b >> 3).to_bytes(2, "little")
                        for r, g, b in row)
    yuv = [rgb_to_yuv(c, matrix) for c in row]
    if plane == 0:
        return bytes(y for y, _, _ in yuv)
    # Horizontal chroma subsampling as videotestsrc does it: centred siting averages the pixel
    # pair, co-sited siting filters [1 2 1] / 4 around the even pixel.
    last = len(yuv) - 1
    if cosited:
        uv = [tuple((yuv[max(x - 1, 0)][c] + 2 * yuv[x][c] + yuv[min(x + 1, last)][c] + 2) // 4
                    for c in (1, 2)) for x in range(0, len(yuv), 2)]
    else:
        uv = [tuple((yuv[x][c] + yuv[min(x + 1, last)][c] + 1) // 2 for c in (1, 2))
              for x in range(0, len(yuv), 2)]
    if fmt == "NV12":
        return bytes(c for pair in uv for c in pair)
    return bytes(c[plane - 1] for c in uv)             # I420: plane 1 = U, plane 2 = V


# ---- to RGB / PNG ------------------------------------------------------------------------------
def _plane_image(mode: str, size: tuple[int, int], data: memoryview, p: Plane,
                 rawmode: str) -> Image.Image:
    rows = min(p.rows, size[1])
    need = p.offset + p.stride * (rows - 1) + p.row_bytes
    if len(data) < need:
        raise ValueError(f"frame data is {len(data)} bytes, the layout needs {need}")
    chunk = bytes(data[p.offset:p.offset + p.stride * rows].tobytes().ljust(p.stride * rows,
                                                                            b"\0"))
    return Image.frombytes(mode, size, chunk, "raw", rawmode, p.stride)


def to_image(fmt: str, width: int, height: int, data: bytes | bytearray | memoryview,
             stride: int | None = None, matrix: str | None = None) -> Image.Image:
    """The frame as an RGB PIL image (YUV: limited range, ``matrix`` or GStreamer's default
    for the size; chroma repeated over its 2x2 pixels)."""
    lay = layout(fmt, width, height, stride)
    view = memoryview(data).cast("B")
    if lay.fmt == "RGBA":
        return _plane_image("RGBA", (width, height), view, lay.planes[0], "RGBA").convert("RGB")
    if lay.fmt == "RGB16":
        return _plane_image("RGB", (width, height), view, lay.planes[0], "BGR;16")
    y = _plane_image("L", (width, height), view, lay.planes[0], "L")
    csize = (lay.planes[1].row_bytes // (2 if lay.fmt == "NV12" else 1), lay.planes[1].rows)
    if lay.fmt == "NV12":
        u, v = _plane_image("LA", csize, view, lay.planes[1], "LA").split()
    else:
        u = _plane_image("L", csize, view, lay.planes[1], "L")
        v = _plane_image("L", csize, view, lay.planes[2], "L")
    full = (csize[0] * 2, csize[1] * 2)
    u, v = (c.resize(full, Image.NEAREST).crop((0, 0, width, height)) for c in (u, v))
    ycbcr = Image.merge("RGB", (y, u, v))              # channels only: the matrix converts
    return ycbcr.convert("RGB", _yuv_to_rgb_matrix(matrix or default_matrix(width, height)))


def to_png(fmt: str, width: int, height: int, data: bytes | bytearray | memoryview,
           stride: int | None = None, matrix: str | None = None) -> bytes:
    """PNG bytes of the frame (RGB, 8 bits per channel)."""
    buf = io.BytesIO()
    to_image(fmt, width, height, data, stride, matrix).save(buf, format="PNG")
    return buf.getvalue()
