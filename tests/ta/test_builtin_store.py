"""ta/builtin.py: the built-in TAs are signed .ta files built at build time, and the secure OS
loads them through the signed-TA path (issue 11 item 6): digest and signature are checked with
the build key, a tampered file refuses only its own TA, and a changed input rebuilds the store."""
from __future__ import annotations

import hashlib
import struct
import uuid
from pathlib import Path

import pytest

import tzemu
from emu.abi import secure_abi
from ta import builtin
from linux_side.teec import TeecError
from ta.sign import SHDR_BOOTSTRAP_TA, SHDR_MAGIC, header_digest
from ta.sign import test_public_key_pem as build_key_pem
from tee_os.signed_ta import parse_signed_ta

C = secure_abi().constants
ECHO = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")
SDP_BASIC = uuid.UUID("12345678-5b69-11e4-9dbb-101f74f00099")


@pytest.fixture()
def private_store(tmp_path, monkeypatch) -> Path:
    """A store of the project's built-ins in tmp_path, used by the next boots of this test."""
    out = tmp_path / "store"
    monkeypatch.setenv("TZEMU_TA_BUILD_DIR", str(out))
    builtin.builtin_signed_tas.cache_clear()
    yield out
    builtin.builtin_signed_tas.cache_clear()


def test_every_builtin_ta_is_a_signed_bootstrap_ta_verified_by_the_build_key():
    store = builtin.ensure_store()
    index = builtin.read_index(store)
    assert ECHO in index and SDP_BASIC in index
    for ta_uuid in index:
        data = (store / f"{ta_uuid}.ta").read_bytes()
        magic, img_type, img_size = struct.unpack_from("<III", data)
        assert (magic, img_type) == (SHDR_MAGIC, SHDR_BOOTSTRAP_TA), ta_uuid
        hdr = parse_signed_ta(data, expected_uuid=ta_uuid, public_key_pem=build_key_pem())
        assert hdr.uuid == ta_uuid and len(hdr.elf) == img_size
        assert hdr.digest_hex == header_digest(data).hex()


def test_a_boot_loads_the_builtin_ta_from_its_signed_file_and_traces_the_digest():
    p = tzemu.boot(record_events=100_000)
    p.linux.teec().open_session(ECHO).close()
    ev = [e.fields for e in p.bus.of_kind("ta_load") if e.fields["uuid"] == str(ECHO)][0]
    data = (builtin.ensure_store() / f"{ECHO}.ta").read_bytes()
    assert ev["store"] == "builtin" and ev["file"] == f"{ECHO}.ta"
    assert ev["digest"] == header_digest(data).hex()
    # The digest covers shdr + subheader + ELF, as the signed header says.
    img_size, sig_size = struct.unpack_from("<I", data, 8)[0], struct.unpack_from("<H", data, 18)[0]
    body = 52 + sig_size
    assert hashlib.sha256(data[:20] + data[body:body + 20 + img_size]).hexdigest() == ev["digest"]


def test_the_builtin_store_ignores_the_user_ta_key_and_no_verify_flags(tmp_path):
    """--ta-key names the key of the user's TA directories; the built-ins keep the build key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "user_key.pem"
    pem.write_bytes(other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    p = tzemu.boot(ta_key=pem)
    p.linux.teec().open_session(ECHO).close()


def test_a_tampered_builtin_file_refuses_that_ta_with_security_and_the_others_still_open(
        private_store):
    builtin.ensure_store()
    path = private_store / f"{ECHO}.ta"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01                         # one bit of the ELF
    path.write_bytes(bytes(data))
    p = tzemu.boot(record_events=100_000)
    with pytest.raises(TeecError) as exc:
        p.linux.teec().open_session(ECHO)
    assert exc.value.code == C["TEE_ERROR_SECURITY"], exc.value
    failed = [e.fields for e in p.bus.of_kind("ta_load_failed")]
    assert failed and "digest" in failed[0]["detail"], failed
    p.linux.teec().open_session(SDP_BASIC).close()     # the rest of the store is intact


def test_a_store_whose_stamp_does_not_match_the_inputs_is_rebuilt(private_store):
    builtin.ensure_store()
    (private_store / builtin.STAMP_FILE).write_text("0123456789abcdef\n")
    (private_store / f"{ECHO}.ta").write_bytes(b"stale")
    builtin.ensure_store()
    assert (private_store / builtin.STAMP_FILE).read_text().strip() == builtin.stamp()
    data = (private_store / f"{ECHO}.ta").read_bytes()
    parse_signed_ta(data, expected_uuid=ECHO, public_key_pem=build_key_pem())


def test_the_stamp_changes_when_a_ta_source_changes(monkeypatch, tmp_path):
    before = builtin.stamp()
    fake = tmp_path / "ta"
    fake.mkdir()
    (fake / "x.S").write_text("nop\n")
    monkeypatch.setattr(builtin, "_INPUT_GLOBS", builtin._INPUT_GLOBS + ((fake, ("*.S",)),))
    changed = builtin.stamp()
    (fake / "x.S").write_text("nop\nnop\n")
    assert builtin.stamp() != changed
    assert before != changed


def test_the_cli_lists_every_builtin_ta_with_its_digest(capsys):
    assert builtin.main([]) == 0
    out = capsys.readouterr().out
    for ta_uuid in builtin.read_index(builtin.ensure_store()):
        assert f"{ta_uuid}.ta" in out
    assert "sha256 " in out


def test_only_stores_unused_for_a_week_are_pruned(monkeypatch, tmp_path):
    """Another checkout's store (a CI clone beside a work tree) must survive this one's build."""
    import os
    import time
    monkeypatch.setenv("TZEMU_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TZEMU_TA_BUILD_DIR", raising=False)
    root = tmp_path / "ta"
    recent, stale = root / "aaaaaaaaaaaaaaaa", root / "bbbbbbbbbbbbbbbb"
    for d in (recent, stale):
        d.mkdir(parents=True)
        (d / builtin.STAMP_FILE).write_text(d.name + "\n")
    week_ago = time.time() - builtin.PRUNE_AFTER_S - 60
    os.utime(stale / builtin.STAMP_FILE, (week_ago, week_ago))
    builtin.builtin_signed_tas.cache_clear()
    try:
        out = builtin.ensure_store()
    finally:
        builtin.builtin_signed_tas.cache_clear()
    assert out.parent == root and out.is_dir()
    assert recent.is_dir() and not stale.exists()
