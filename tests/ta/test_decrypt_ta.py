"""ta/decrypt_ta.S on a bare unicorn at EL0, entered the OP-TEE way, with a fake syscall layer
(CHECK_ACCESS_RIGHTS from a region table, LOG, and the tzemu VA_TO_PA extension 0x7000), and a
real CryptoEngine mapped at CRYPTO_ENGINE_VA for the engine path.

The TA's memref buffers are pages of a real PhysMem (so the engine's DMA sees the same bytes);
the VA -> PA page map is chosen per test, contiguous or scattered. Everything is compared with
the ``cryptography`` package. Harness: decrypt_harness.py; error paths: test_decrypt_ta_errors.py."""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from emu.devices import crypto_engine as E
from ta.build import load_manifest
from decrypt_harness import (ANY_OWNER, BUF_SIZE, C, CRYPT_TYPES, DECRYPT, DECRYPT_ENGINE,
                             DECRYPT_UUID, DecryptTa, ENCRYPT, FINAL, IV, KEY128, KEY256,
                             NOT_SUPPORTED, NS_PA, NS_VA, PAGE, PER_RECORD, READ, SCN_CHECK,
                             SCN_RETURN, SCN_VA_TO_PA, SEC_PA, SEC_VA, SUCCESS, WRITE, cbc, image,
                             keyed, pad, ref_decrypt, ref_encrypt)


# ------------------------------------------------------------------------------- the image

def test_manifest_entry_and_image() -> None:
    entry = next(e for e in load_manifest() if e["name"] == "decrypt")
    assert uuid.UUID(entry["uuid"]) == DECRYPT_UUID
    img = image()
    assert img.uuid == DECRYPT_UUID and img.stack_size == 0x2000
    assert img.flags == 0x2C == (C["TA_FLAG_SECURE_DATA_PATH"] | C["TA_FLAG_SINGLE_INSTANCE"]
                                 | C["TA_FLAG_MULTI_SESSION"])
    assert img.relocations == ()


def test_engine_register_offsets_match_the_device() -> None:
    """The TA's .equ copy of the register map is the device's."""
    src = (Path(__file__).resolve().parents[2] / "ta" / "decrypt_ta.S").read_text()
    equs = {m[1]: int(m[2], 0) for m in re.finditer(r"\.equ\s+ENG_(\w+),\s*(0x[0-9A-Fa-f]+|\d+)",
                                                       src)}
    for name in ("KEY_BITS", "SRC_LO", "SRC_HI", "DST_LO", "DST_HI", "LEN", "RECORD", "CTRL",
                 "STATUS", "ERR_CODE", "OUT_LEN", "KEY0", "IV0", "IV_OUT0"):
        assert equs[name] == getattr(E, name), name
    assert equs["CTRL_START"] == E.CTRL_START and equs["CTRL_DECRYPT"] == E.CTRL_DECRYPT
    assert equs["CTRL_PER_RECORD_PADDING"] == E.CTRL_PER_RECORD_PADDING
    assert (equs["STATUS_DONE"], equs["STATUS_ERROR"]) == (E.STATUS_DONE, E.STATUS_ERROR)
    assert equs["ERR_PADDING"] == E.ERR_PADDING


def test_entry_functions_and_unknown_command() -> None:
    ta = DecryptTa()
    assert ta.invoke(0, func=0)[0] == SUCCESS and ta.nrs() == [SCN_RETURN]
    assert ta.invoke(0, func=1)[0] == SUCCESS
    assert ta.invoke(0, func=3)[0] == NOT_SUPPORTED
    assert ta.invoke(5, CRYPT_TYPES)[0] == NOT_SUPPORTED


# ---------------------------------------------------------------------- bit-exact data paths

@pytest.mark.parametrize("key", [KEY128, KEY256], ids=["aes128", "aes256"])
@pytest.mark.parametrize("cmd", [DECRYPT, DECRYPT_ENGINE], ids=["cpu", "engine"])
def test_per_record_padding_many_records(key: bytes, cmd: int) -> None:
    """filesrc blocksize=4096 -> aesenc: records of 4112 bytes, the last one shorter."""
    plain = bytes((i * 31 + 7) & 0xFF for i in range(4096 * 9 + 1234))
    ct = ref_encrypt(key, IV, plain, 4096, PER_RECORD)
    assert len(ct) == 9 * 4112 + 1248
    ta = keyed(key, IV)
    res, out, vals = ta.crypt(cmd, ct, 4112, PER_RECORD)
    assert res == SUCCESS and out == plain and vals[6] == len(plain)
    checks = [c for c in ta.calls if c[0] == SCN_CHECK]
    assert checks == [(SCN_CHECK, ANY_OWNER | READ, NS_VA, len(ct)),
                      (SCN_CHECK, ANY_OWNER | WRITE, SEC_VA, BUF_SIZE)]
    assert (SCN_VA_TO_PA in ta.nrs()) == (cmd == DECRYPT_ENGINE)
    if cmd == DECRYPT_ENGINE:
        assert ta.engine.operations == 10                   # one per record, contiguous buffers


@pytest.mark.parametrize("key", [KEY128, KEY256], ids=["aes128", "aes256"])
@pytest.mark.parametrize("cmd", [DECRYPT, DECRYPT_ENGINE], ids=["cpu", "engine"])
def test_stream_chain_continues_across_invokes(key: bytes, cmd: int) -> None:
    """per-buffer-padding=false: plain CBC; the chain lives in the TA between invokes, the
    padding is removed only from the buffer flagged final."""
    plain = os.urandom(10000)
    ct = ref_encrypt(key, IV, plain, 0, FINAL)
    assert len(ct) == 10016
    ta = keyed(key, IV)
    res1, out1, _ = ta.crypt(cmd, ct[:4096], 0, 0)
    res2, out2, _ = ta.crypt(cmd, ct[4096:8192], 0, 0, dst=SEC_VA + 0x10000)
    res3, out3, _ = ta.crypt(cmd, ct[8192:], 0, FINAL, dst=SEC_VA + 0x20000)
    assert (res1, res2, res3) == (SUCCESS,) * 3
    assert out1 + out2 + out3 == plain


@pytest.mark.parametrize("key", [KEY128, KEY256], ids=["aes128", "aes256"])
def test_per_record_chain_across_invokes_and_exact_output(key: bytes) -> None:
    """One frame per invoke into an exactly frame-sized output buffer (record = frame + 16)."""
    frames = [bytes([n]) * 4096 for n in range(3)]
    ct = ref_encrypt(key, IV, b"".join(frames), 4096, PER_RECORD)
    for cmd in (DECRYPT, DECRYPT_ENGINE):
        ta = keyed(key, IV)
        for n in range(3):
            res, out, _ = ta.crypt(cmd, ct[n * 4112:(n + 1) * 4112], 4112, PER_RECORD,
                                   dst=SEC_VA + 0x8000, out_size=4096)
            assert res == SUCCESS and out == frames[n]


def test_engine_path_with_scattered_pages_and_unaligned_buffers() -> None:
    """Physically discontiguous pages (a page boundary can cut a block): the TA splits the
    engine operations at every discontinuity and decrypts a cut block on the CPU; the output is
    the CPU path's."""
    import random
    pages = [NS_PA + i * PAGE for i in range(BUF_SIZE // PAGE)]
    random.Random(7).shuffle(pages)
    sec = [SEC_PA + i * PAGE for i in range(BUF_SIZE // PAGE)]
    sec = sec[1::2] + sec[0::2]
    plain = os.urandom(3 * 5000 + 77)
    for key, record, flags in ((KEY128, 5008, PER_RECORD), (KEY256, 5008, PER_RECORD),
                               (KEY128, 0, FINAL), (KEY256, 0, 0)):
        src_plain = plain if flags else plain[:len(plain) & ~15]
        ct = ref_encrypt(key, IV, src_plain, 5000, flags)
        outs = []
        for cmd, src_off, dst_off in ((DECRYPT, 0, 0), (DECRYPT_ENGINE, 0, 0),
                                      (DECRYPT_ENGINE, 0x3F5, 0x7), (DECRYPT_ENGINE, 8, 0xFF9)):
            ta = keyed(key, IV, ns_pages=pages, sec_pages=sec)
            res, out, _ = ta.crypt(cmd, ct, record, flags, src=NS_VA + src_off,
                                   dst=SEC_VA + dst_off)
            assert res == SUCCESS
            outs.append(out)
            if cmd == DECRYPT_ENGINE:
                assert ta.engine.operations > 3
        assert all(o == src_plain for o in outs)


@settings(max_examples=40, deadline=None)
@given(key=st.binary(min_size=16, max_size=16) | st.binary(min_size=32, max_size=32),
       iv=st.binary(min_size=16, max_size=16), plain=st.binary(max_size=700),
       record=st.integers(2, 20), flags=st.sampled_from([0, PER_RECORD, FINAL]),
       engine=st.booleans())
def test_random_decrypt_matches_cryptography(key: bytes, iv: bytes, plain: bytes, record: int,
                                             flags: int, engine: bool) -> None:
    rec = record * 16
    if flags == 0:
        plain = plain[:len(plain) & ~15]
    ct = ref_encrypt(key, iv, plain, rec - 16, flags)
    ta = keyed(key, iv)
    res, out, vals = ta.crypt(DECRYPT_ENGINE if engine else DECRYPT, ct, rec, flags)
    assert res == SUCCESS and out == ref_decrypt(key, iv, ct, rec, flags) == plain
    # The chain went on: the next buffer decrypts with IV = the last ciphertext block.
    nxt = ref_encrypt(key, ct[-16:] if ct else iv, b"next", 0, PER_RECORD)
    assert ta.crypt(DECRYPT, nxt, 0, PER_RECORD)[1] == b"next"


@settings(max_examples=40, deadline=None)
@given(key=st.binary(min_size=16, max_size=16) | st.binary(min_size=32, max_size=32),
       iv=st.binary(min_size=16, max_size=16), plain=st.binary(max_size=700),
       record=st.integers(0, 300), flags=st.sampled_from([0, PER_RECORD, FINAL]))
def test_random_encrypt_matches_cryptography(key: bytes, iv: bytes, plain: bytes, record: int,
                                             flags: int) -> None:
    if flags == 0:
        plain = plain[:len(plain) & ~15]
    ta = keyed(key, iv)
    res, out, vals = ta.crypt(ENCRYPT, plain, record, flags, src=SEC_VA, dst=NS_VA)
    want = ref_encrypt(key, iv, plain, record, flags) if plain or flags == FINAL else b""
    assert res == SUCCESS and out == want
    # ...and the TA decrypts its own stream (records of the ciphertext size).
    ta2 = keyed(key, iv)
    rec_ct = ((record or len(plain)) // 16 + 1) * 16
    res, back, _ = ta2.crypt(DECRYPT, out, rec_ct if flags == PER_RECORD else 0, flags)
    assert res == SUCCESS and back == plain


def test_encrypt_aesenc_sizes() -> None:
    """§5: 10000 bytes from 4096-byte chunks -> 10048 (per record) / 10016 (final only)."""
    plain = os.urandom(10000)
    ta = keyed(KEY128, IV)
    res, out, _ = ta.crypt(ENCRYPT, plain, 4096, PER_RECORD, src=SEC_VA, dst=NS_VA)
    assert res == SUCCESS and len(out) == 10048 == 4112 + 4112 + 1824
    assert out == ref_encrypt(KEY128, IV, plain, 4096, PER_RECORD)
    ta = keyed(KEY128, IV)
    res, out, _ = ta.crypt(ENCRYPT, plain, 0, FINAL, src=SEC_VA, dst=NS_VA)
    assert res == SUCCESS and out == cbc(KEY128, IV, pad(plain), False) and len(out) == 10016
    ta = keyed(KEY128, IV)
    assert ta.crypt(ENCRYPT, b"", 0, FINAL, src=SEC_VA, dst=NS_VA)[1] == \
        cbc(KEY128, IV, b"\x10" * 16, False)
    assert ta.crypt(ENCRYPT, b"", 4096, PER_RECORD, src=SEC_VA, dst=NS_VA)[1] == b""


def test_empty_input_writes_nothing() -> None:
    ta = keyed(KEY128, IV)
    for cmd in (DECRYPT, DECRYPT_ENGINE):
        for flags in (0, PER_RECORD, FINAL):
            res, out, vals = ta.crypt(cmd, b"", 0, flags)
            assert res == SUCCESS and out == b"" and vals[6] == 0
