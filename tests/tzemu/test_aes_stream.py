"""tzemu.aes_stream: the aesenc/aesdec format of gst-plugins-bad 1.22.0 (gstreamer_aes.md):
the §5 reference sizes, the property-decoding quirks, writer -> reader round trips, clear errors,
and, where GStreamer with the aes plugin is installed, byte-identical output to the element."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings, strategies as st

from tzemu.aes_stream import (AesencWriter, AesStreamError, chunks, decrypt_stream,
                              encrypt_stream, parse_iv, parse_key, record_size, split_records)

KEY = "1f9423681beb9a79215820f6bda73d0f"
IV = "e9aa8e834d8d70b7e0d254ff670dd718"
KB, IVB = bytes.fromhex(KEY), bytes.fromhex(IV)
DATA = bytes((i * 131 + 17) & 0xFF for i in range(10000))


def cbc(key: bytes, iv: bytes, data: bytes, decrypt: bool = False) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


# ----------------------------------------------------------------- §5 reference output sizes

@pytest.mark.parametrize("n, pbp, ser, size", [
    (10000, True, False, 10048), (10000, True, True, 10064), (10000, False, False, 10016),
    (10000, False, True, 10064), (4096, True, False, 4112), (4096, False, False, 4112),
    (4096, True, True, 4128), (4096, False, True, 4128), (5, True, False, 16),
    (5, False, False, 16), (5, True, True, 32), (5, False, True, 32), (16, True, False, 32),
    (0, True, True, 0), (0, False, True, 0), (0, True, False, 0), (0, False, False, 0)])
def test_reference_sizes(n: int, pbp: bool, ser: bool, size: int) -> None:
    data = DATA[:n]
    out = encrypt_stream(data, KEY, IV, serialize_iv=ser, per_buffer_padding=pbp, chunk=4096)
    assert len(out) == size
    assert decrypt_stream(out, KEY, IV, serialize_iv=ser, per_buffer_padding=pbp,
                          chunk=4096) == data
    if ser and n:
        assert out[:16] == IVB


def test_reference_row_details() -> None:
    w = AesencWriter(KEY, IV)
    assert [len(w.push(c)) for c in chunks(DATA, 4096)] == [4112, 4112, 1824]
    assert w.finish() == b""
    plain_cbc = encrypt_stream(DATA, KEY, IV, per_buffer_padding=False)
    pad = 16 - len(DATA) % 16
    assert plain_cbc == cbc(KB, IVB, DATA + bytes([pad]) * pad)          # = openssl enc
    for pbp in (True, False):                # 4096 B: the last block encrypts 16 x 0x10
        out = encrypt_stream(DATA[:4096], KEY, IV, per_buffer_padding=pbp)
        assert cbc(KB, IVB, out, decrypt=True)[-16:] == b"\x10" * 16
    out = encrypt_stream(DATA[:16], KEY, IV)
    assert cbc(KB, IVB, out, decrypt=True)[16:] == b"\x10" * 16


def test_gstreamer_1_22_serialize_iv_bug() -> None:
    """10000 B, serialize-iv, no per-buffer padding: 10064 bytes with 2 x 16 garbage bytes
    (after the 2nd and 3rd data buffers); 10032 without the bug."""
    w = AesencWriter(KEY, IV, serialize_iv=True, per_buffer_padding=False,
                     garbage=b"\xAB" * 16)
    bufs = [w.push(c) for c in chunks(DATA, 4096)] + [w.finish()]
    assert [len(b) for b in bufs] == [4112, 4112, 1824, 16]
    assert bufs[1][-16:] == bufs[2][-16:] == b"\xAB" * 16
    out = b"".join(bufs)
    fixed = encrypt_stream(DATA, KEY, IV, serialize_iv=True, per_buffer_padding=False,
                           gst_1_22_bug=False)
    assert len(fixed) == 10032 and fixed == bufs[0] + bufs[1][:-16] + bufs[2][:-16] + bufs[3]
    for kw in ({"chunk": 4096}, {"buffer_sizes": [4096, 4096, 1808]}):
        assert decrypt_stream(out, KEY, IV, serialize_iv=True, per_buffer_padding=False,
                              **kw) == DATA
    with pytest.raises(AesStreamError, match="garbage"):
        decrypt_stream(out, KEY, IV, serialize_iv=True, per_buffer_padding=False)
    with pytest.raises(AesStreamError):                  # without the repair: not decodable
        decrypt_stream(out, KEY, IV, serialize_iv=True, per_buffer_padding=False,
                       gst_1_22_bug=False)
    assert decrypt_stream(fixed, KEY, IV, serialize_iv=True, per_buffer_padding=False,
                          gst_1_22_bug=False) == DATA


def test_bug_repair_with_small_tail_buffers() -> None:
    """A last buffer of fewer than 16 bytes yields no block, only the 16 garbage bytes."""
    for n, chunk in ((4096 + 5, 4096), (3 * 64 + 15, 64), (64, 64), (65, 64), (20, 64)):
        data = os.urandom(n)
        out = encrypt_stream(data, KEY, IV, serialize_iv=True, per_buffer_padding=False,
                             chunk=chunk)
        assert decrypt_stream(out, KEY, IV, serialize_iv=True, per_buffer_padding=False,
                              chunk=chunk) == data


# --------------------------------------------------------------------------- property quirks

def test_key_quirks() -> None:
    assert parse_key("ab12cd34zz56") == bytes.fromhex("ab12cd34") + bytes(12)
    assert parse_key("1f94") == bytes.fromhex("1f94") + bytes(14)
    assert parse_key("") == bytes(16) and parse_key("", "aes-256-cbc") == bytes(32)
    assert parse_key("abc") == b"\xab" + bytes(15)                       # odd nibble dropped
    assert parse_key("AbCd") == b"\xab\xcd" + bytes(14)                  # either case
    assert parse_key("a bcd") == bytes(16)                               # first pair invalid
    assert parse_key(KEY, 1) == KB + bytes(16) and parse_key(KEY, 0) == KB
    long = KEY + "00112233445566778899aabbccddeeff"
    assert parse_key(long, "aes-256-cbc") == bytes.fromhex(long)
    with pytest.raises(AesStreamError, match="decodes to 32 bytes"):
        parse_key(long)                                  # stricter than the element
    assert parse_key(long, truncate_long=True) == KB    # the element: first 16 bytes
    with pytest.raises(AesStreamError, match="overflow"):
        parse_key("00" * 65, truncate_long=True)
    with pytest.raises(AesStreamError, match="unknown cipher"):
        parse_key(KEY, "aes-192-cbc")
    for bad in ("ab12zz", "abc", "1f94"):
        with pytest.raises(AesStreamError):
            parse_key(bad, strict=True)
    assert parse_key(KEY, strict=True) == KB


def test_iv_quirks() -> None:
    assert parse_iv("e9aa") == b"\xe9\xaa" + bytes(14)
    assert parse_iv("") == bytes(16) and parse_iv(IV) == IVB
    assert parse_iv("E9AAz1") == b"\xe9\xaa" + bytes(14)
    with pytest.raises(AesStreamError, match="past the element's IV"):
        parse_iv(IV + "00")
    with pytest.raises(AesStreamError):
        parse_iv("e9aa", strict=True)
    with pytest.raises(AesStreamError):
        parse_iv("e9aq" + IV[4:], strict=True)


def test_bytes_keys_must_have_the_exact_length() -> None:
    with pytest.raises(AesStreamError, match="16-byte key"):
        AesencWriter(bytes(32), IVB)
    with pytest.raises(AesStreamError, match="32-byte key"):
        decrypt_stream(b"", bytes(16), IVB, "aes-256-cbc")
    with pytest.raises(AesStreamError, match="iv must be 16"):
        AesencWriter(KB, bytes(8))


# -------------------------------------------------------------------------- records, errors

def test_split_records() -> None:
    assert split_records(10048, 4096) == [4112, 4112, 1824]
    assert split_records(3 * 4112, 4096) == [4112] * 3
    assert split_records(0, 4096) == []
    frame = 1920 * 1080 * 3 // 2                        # an NV12 frame: records of frame + 16
    assert split_records(2 * record_size(frame), frame) == [frame + 16] * 2
    assert [record_size(n) for n in (1, 5, 15, 16, 17, 1808, 4095, 4096)] == \
        [16, 16, 16, 32, 32, 1824, 4096, 4112]
    with pytest.raises(AesStreamError, match="truncated"):
        split_records(10047, 4096)


def test_clear_errors() -> None:
    out = bytearray(encrypt_stream(DATA, KEY, IV))
    with pytest.raises(AesStreamError, match="record boundaries|chunk"):
        decrypt_stream(bytes(out), KEY, IV)
    with pytest.raises(AesStreamError, match="not a multiple of 16"):
        decrypt_stream(bytes(out[:-1]), KEY, IV, chunk=4096)
    with pytest.raises(AesStreamError, match="record sizes sum"):
        decrypt_stream(bytes(out), KEY, IV, record_sizes=[4112, 4112])
    with pytest.raises(AesStreamError, match=r"record 0 .*invalid PKCS#7"):
        decrypt_stream(bytes(out), KEY, IV, chunk=4096 - 16)     # wrong boundaries
    out[4112 + 4112 - 1] ^= 1                               # tamper with record 1's padding
    with pytest.raises(AesStreamError, match=r"record 1 \(bytes 4112\.\.8224\).*invalid PKCS#7"):
        decrypt_stream(bytes(out), KEY, IV, chunk=4096)
    with pytest.raises(AesStreamError, match="invalid PKCS#7"):
        decrypt_stream(encrypt_stream(DATA, KEY, IV), "00" * 16, IV, chunk=4096)
    with pytest.raises(AesStreamError, match="shorter than its 16-byte IV"):
        decrypt_stream(b"x" * 10, KEY, IV, serialize_iv=True)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), chunk=st.integers(1, 700), pbp=st.booleans(),
       ser=st.booleans(), aes256=st.booleans(), key=st.binary(min_size=32, max_size=32),
       iv=st.binary(min_size=16, max_size=16), bug=st.booleans())
def test_round_trip(data: bytes, chunk: int, pbp: bool, ser: bool, aes256: bool, key: bytes,
                    iv: bytes, bug: bool) -> None:
    cipher = "aes-256-cbc" if aes256 else "aes-128-cbc"
    k = key if aes256 else key[:16]
    w = AesencWriter(k, iv, cipher, ser, pbp, gst_1_22_bug=bug)
    bufs = [len(c) for c in chunks(data, chunk)]
    out = b"".join([w.push(c) for c in chunks(data, chunk)] + [w.finish()])
    assert decrypt_stream(out, k, iv, cipher, ser, pbp, buffer_sizes=bufs,
                          gst_1_22_bug=bug) == data
    if pbp:
        assert decrypt_stream(out, k, iv, cipher, ser, pbp, chunk=chunk) == data
        body = out[16:] if ser and out else out
        assert split_records(len(body), chunk) == [record_size(n) for n in bufs]
    # One chain: decrypting the IV-less body as plain CBC gives the padded records.
    if not (ser and bug and not pbp) and data:
        body = out[16:] if ser else out
        assert cbc(k, iv, body, decrypt=True)[:min(len(data), chunk)] == data[:chunk]


# --------------------------------------------------------------- differential: real GStreamer

def _gst_available() -> str | None:
    if not shutil.which("gst-launch-1.0") or not shutil.which("gst-inspect-1.0"):
        return "gst-launch-1.0 / gst-inspect-1.0 not installed"
    if subprocess.run(["gst-inspect-1.0", "aesenc"], capture_output=True).returncode:
        return "the aesenc element (gst-plugins-bad 'aes' plugin) is not installed"
    return None


_GST_MISSING = _gst_available()
needs_gst = pytest.mark.skipif(_GST_MISSING is not None, reason=_GST_MISSING or "")


def gst(tmp: Path, data: bytes, element: str, props: str, blocksize: int = 4096) -> bytes:
    src, dst = tmp / "in.bin", tmp / "out.bin"
    src.write_bytes(data)
    cmd = (["gst-launch-1.0", "-q", "filesrc", f"location={src}", f"blocksize={blocksize}",
            "!", element] + props.split() + ["!", "filesink", f"location={dst}"])
    run = subprocess.run(cmd, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()
    return dst.read_bytes()


@needs_gst
@pytest.mark.parametrize("pbp, ser", [(True, False), (True, True), (False, False),
                                      (False, True)])
def test_identical_to_gstreamer(tmp_path: Path, pbp: bool, ser: bool) -> None:
    props = f"key={KEY} iv={IV} per-buffer-padding={str(pbp).lower()} " \
            f"serialize-iv={str(ser).lower()}"
    theirs = gst(tmp_path, DATA, "aesenc", props)
    w = AesencWriter(KEY, IV, serialize_iv=ser, per_buffer_padding=pbp)
    bufs = [w.push(c) for c in chunks(DATA, 4096)] + [w.finish()]
    ours = b"".join(bufs)
    assert len(ours) == len(theirs)
    if ser and not pbp:                       # mask the uninitialised bytes of the 1.22.0 bug
        ends = [sum(len(b) for b in bufs[:i + 1]) for i in range(1, len(bufs) - 1)]
        mask = {i for e in ends for i in range(e - 16, e)}
        assert all(ours[i] == theirs[i] for i in range(len(ours)) if i not in mask)
        assert len(theirs) == 10064
    else:
        assert ours == theirs
    assert decrypt_stream(theirs, KEY, IV, serialize_iv=ser, per_buffer_padding=pbp,
                          chunk=4096) == DATA


@needs_gst
@pytest.mark.parametrize("props", ["key=ab12cd34zz56 iv=e9aa", "key=1f94 iv=" + IV,
                                   "key=AB12c iv=E9AAz1",
                                   f"key={KEY}00112233445566778899aabbccddeeff iv={IV} "
                                   "cipher=aes-256-cbc",
                                   f"key={KEY}00112233445566778899aabbccddeeff iv={IV}"])
def test_property_quirks_match_gstreamer(tmp_path: Path, props: str) -> None:
    data = DATA[:777]
    theirs = gst(tmp_path, data, "aesenc", props)
    kv = dict(p.split("=", 1) for p in props.split())
    cipher = kv.get("cipher", "aes-128-cbc")
    key, iv = parse_key(kv["key"], cipher, truncate_long=True), parse_iv(kv["iv"])
    assert encrypt_stream(data, key, iv, cipher) == theirs


@needs_gst
def test_aesdec_reads_our_stream(tmp_path: Path) -> None:
    """Our default-mode stream decodes with aesdec and filesrc blocksize=4112 (§4)."""
    ours = encrypt_stream(DATA, KEY, IV)
    plain = gst(tmp_path, ours, "aesdec", f"key={KEY} iv={IV}", blocksize=4112)
    assert plain == DATA
