"""ta/decrypt_ta.S error paths on a bare unicorn: bad padding, short outputs, key/IV state,
parameter checks, engine failures, position independence, and the bare-Unicorn throughput
figure. Harness: decrypt_harness.py."""
from __future__ import annotations

import os
import time

import pytest

from emu.devices import crypto_engine as E
from decrypt_harness import (ACCESS_DENIED, BAD_FORMAT, BAD_PAD_LOG, BAD_PARAMETERS, BAD_STATE,
                             BUF_SIZE, CRYPT_TYPES, DECRYPT, DECRYPT_ENGINE, DENIED_PA, DecryptTa,
                             ENCRYPT, FINAL, GENERIC, IV, KEY128, KEY256, KEY_VA, MEM_IN, MEM_OUT,
                             NOT_SUPPORTED, NS_VA, PAGE, PER_RECORD, SCN_VA_TO_PA, SEC_VA, SET_KEY,
                             SHORT_BUFFER, SUCCESS, VALUE_IN, cbc, keyed, pad, ref_encrypt)


# ------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("cmd", [DECRYPT, DECRYPT_ENGINE], ids=["cpu", "engine"])
def test_bad_padding(cmd: int) -> None:
    plain = os.urandom(3 * 4096)
    ct = bytearray(ref_encrypt(KEY128, IV, plain, 4096, PER_RECORD))
    ct[2 * 4112 - 1] ^= 0x55                         # the last block of record 2
    ta = keyed(KEY128, IV)
    ta.write(SEC_VA, b"\xEE" * 64)
    res, out, vals = ta.crypt(cmd, bytes(ct), 4112, PER_RECORD)
    assert res == BAD_FORMAT and ta.logs == [BAD_PAD_LOG]
    assert ta.read(SEC_VA, 64) == b"\xEE" * 64       # checked before anything was written
    assert SCN_VA_TO_PA not in ta.nrs()
    # The chain did not move: the intact first record still decrypts.
    good = ref_encrypt(KEY128, IV, plain[:4096], 4096, PER_RECORD)
    assert ta.crypt(cmd, good, 4112, PER_RECORD)[:2] == (SUCCESS, plain[:4096])


@pytest.mark.parametrize("last", [0x00, 0x11, 0xFF, 0x03])
def test_bad_final_padding_values(last: int) -> None:
    """Last byte p not in 1..16, or the last p bytes not all p."""
    block = bytes(13) + bytes([2, 2, last]) if last == 0x03 else bytes(15) + bytes([last])
    ct = cbc(KEY256, IV, block, False)
    ta = keyed(KEY256, IV)
    res, _, _ = ta.crypt(DECRYPT, ct, 0, FINAL)
    assert res == BAD_FORMAT and ta.logs == [BAD_PAD_LOG]


@pytest.mark.parametrize("cmd", [DECRYPT, DECRYPT_ENGINE, ENCRYPT])
def test_short_output_reports_needed(cmd: int) -> None:
    plain = os.urandom(5000)
    ta = keyed(KEY128, IV)
    if cmd == ENCRYPT:
        data, need, rec = plain, 5008, 0
    else:
        data, need, rec = ref_encrypt(KEY128, IV, plain, 0, PER_RECORD), 5000, 0
    ta.write(SEC_VA, b"\x77" * 32)
    ta.write(NS_VA + 0x10000, data)
    res, vals = ta.invoke(cmd, CRYPT_TYPES, (NS_VA + 0x10000, len(data), SEC_VA, need - 1,
                                             rec, PER_RECORD))
    assert res == SHORT_BUFFER and vals[6] == need and vals[3] == need
    assert ta.read(SEC_VA, 32) == b"\x77" * 32
    res, vals = ta.invoke(cmd, CRYPT_TYPES, (NS_VA + 0x10000, len(data), SEC_VA, need, rec,
                                             PER_RECORD))
    assert res == SUCCESS and vals[6] == need


def test_set_key_errors() -> None:
    ta = DecryptTa()
    for key, bits in ((bytes(15), 120), (bytes(24), 192), (bytes(16), 256), (bytes(32), 128),
                      (bytes(33), 264), (b"", 0)):
        assert ta.set_key(key, bits) == BAD_PARAMETERS
    assert ta.invoke(SET_KEY, (MEM_IN,), (KEY_VA, 16))[0] == BAD_PARAMETERS
    assert ta.set_iv(bytes(15)) == BAD_PARAMETERS and ta.set_iv(bytes(17)) == BAD_PARAMETERS
    # A key outside any memref is refused by the access check.
    assert ta.invoke(SET_KEY, (MEM_IN, VALUE_IN), (0x9000_0000, 16, 128, 0))[0] == ACCESS_DENIED


def test_key_and_iv_state() -> None:
    ta = DecryptTa()
    ct = cbc(KEY128, IV, pad(b"hello"), False)
    assert ta.crypt(DECRYPT, ct, 0, FINAL)[0] == BAD_STATE         # no key
    assert ta.crypt(ENCRYPT, b"x", 0, FINAL)[0] == BAD_STATE
    assert ta.set_iv(IV) == SUCCESS
    assert ta.crypt(DECRYPT, ct, 0, FINAL)[0] == BAD_STATE         # still no key
    assert ta.set_key(KEY128) == SUCCESS
    assert ta.crypt(DECRYPT_ENGINE, ct, 0, FINAL)[0] == BAD_STATE  # SET_KEY forgot the IV
    assert ta.set_iv(IV) == SUCCESS
    assert ta.crypt(DECRYPT, ct, 0, FINAL)[:2] == (SUCCESS, b"hello")
    assert ta.set_key(KEY256) == SUCCESS and ta.set_iv(IV) == SUCCESS
    assert ta.crypt(DECRYPT, cbc(KEY256, IV, pad(b"hi"), False), 0, FINAL)[1] == b"hi"


def test_parameter_errors() -> None:
    ta = keyed(KEY128, IV)
    ct = ref_encrypt(KEY128, IV, bytes(100), 0, PER_RECORD)
    assert ta.crypt(DECRYPT, ct[:-1], 0, PER_RECORD)[0] == BAD_PARAMETERS    # not x16
    assert ta.crypt(DECRYPT, ct, 40, PER_RECORD)[0] == BAD_PARAMETERS        # record not x16
    assert ta.crypt(DECRYPT, ct, 0, 3)[0] == BAD_PARAMETERS                  # both flags
    assert ta.crypt(DECRYPT, ct, 0, 4)[0] == BAD_PARAMETERS                  # unknown flag
    assert ta.crypt(ENCRYPT, bytes(17), 0, 0)[0] == BAD_PARAMETERS           # plain CBC, not x16
    assert ta.invoke(DECRYPT, (MEM_IN, MEM_OUT, VALUE_IN), (NS_VA, 16, SEC_VA, 16))[0] == \
        BAD_PARAMETERS
    assert ta.invoke(DECRYPT, CRYPT_TYPES, (0x9000_0000, 16, SEC_VA, 16))[0] == ACCESS_DENIED
    assert ta.invoke(DECRYPT, CRYPT_TYPES, (NS_VA, 16, 0x9000_0000, 16))[0] == ACCESS_DENIED
    assert ta.crypt(DECRYPT, ct, 0, PER_RECORD)[:2] == (SUCCESS, bytes(100))  # state intact


def test_engine_with_a_secure_os_that_returns_no_run_length() -> None:
    """x2 left at 0: the TA assumes each VA is contiguous up to its page end, so it issues
    page-sized engine operations (and CPU blocks where a page boundary cuts one)."""
    plain = os.urandom(3 * 4096 + 100)
    ct = ref_encrypt(KEY256, IV, plain, 4096, PER_RECORD)
    for src_off in (0, 0x123):
        ta = keyed(KEY256, IV)
        ta.report_runs = False
        res, out, _ = ta.crypt(DECRYPT_ENGINE, ct, 4112, PER_RECORD, src=NS_VA + src_off)
        assert res == SUCCESS and out == plain
        assert ta.engine.operations > 4                    # more than one per record


def test_engine_bus_error_and_va_to_pa_failure() -> None:
    """The engine's write is refused by the TZC (secure writes closed on the destination):
    GENERIC with a LOG line, nothing written. A failing VA_TO_PA is returned as is."""
    npages = BUF_SIZE // PAGE
    ct = ref_encrypt(KEY128, IV, b"frame" * 100, 0, PER_RECORD)
    ta = keyed(KEY128, IV, sec_pages=[DENIED_PA + i * PAGE for i in range(npages)])
    ta.write(SEC_VA, b"\x42" * len(ct))
    res, _, _ = ta.crypt(DECRYPT_ENGINE, ct, 0, PER_RECORD)
    assert res == GENERIC and ta.logs == [b"decrypt: crypto engine error\n"]
    assert ta.read(SEC_VA, len(ct)) == b"\x42" * len(ct)
    assert ta.engine.mmio_read(E.ERR_CODE, 4) == E.ERR_BUS
    assert ta.engine.faults and ta.engine.faults[-1].direction == "write"
    ta = keyed(KEY128, IV)
    ta.va_to_pa_result = NOT_SUPPORTED
    assert ta.crypt(DECRYPT_ENGINE, ct, 0, PER_RECORD)[0] == NOT_SUPPORTED
    assert ta.logs == [b"decrypt: VA_TO_PA failed\n"]


def test_runs_at_another_base_and_instances_are_independent() -> None:
    a, b = keyed(KEY128, IV, base=0x7F000000), keyed(KEY256, IV)
    ct_a = ref_encrypt(KEY128, IV, b"A" * 50, 0, PER_RECORD)
    ct_b = ref_encrypt(KEY256, IV, b"B" * 50, 0, PER_RECORD)
    assert a.crypt(DECRYPT, ct_a, 0, PER_RECORD)[1] == b"A" * 50
    assert b.crypt(DECRYPT, ct_b, 0, PER_RECORD)[1] == b"B" * 50


def test_throughput_bare_unicorn(capsys: pytest.CaptureFixture[str]) -> None:
    """Measured, not judged hard: the CPU loop on a bare unicorn (reported in MB/s)."""
    n = BUF_SIZE - 4096
    rates = {}
    for key in (KEY128, KEY256):
        ta = keyed(key, IV)
        ct = cbc(key, IV, bytes(n), False)
        ta.write(NS_VA, ct)
        t0 = time.perf_counter()
        res, vals = ta.invoke(DECRYPT, CRYPT_TYPES, (NS_VA, n, SEC_VA, BUF_SIZE, 0, 0))
        rates[len(key) * 8] = n / (time.perf_counter() - t0) / 1e6
        assert res == SUCCESS and ta.read(SEC_VA + n - 16, 16) == bytes(16)
    with capsys.disabled():
        print(f"\ndecrypt_ta CPU path on bare unicorn: AES-128 {rates[128]:.1f} MB/s, "
              f"AES-256 {rates[256]:.1f} MB/s")
    assert rates[128] > 2 and rates[256] > 2
