"""Signed OP-TEE .ta files (issue 11 §1; optee_ta_format.md §1): tee_os.signed_ta's rules with
the TEE code of each refusal, ta.sign's layout, and end to end through tee-supplicant."""
from __future__ import annotations

import hashlib
import logging
import struct
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

import tzemu
import tee_os.signed_ta as signed_ta
from linux_side.teec import (TEEC_MEMREF_PARTIAL_INOUT, TEEC_MEMREF_PARTIAL_INPUT,
                             TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_TEMP_INOUT,
                             TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE,
                             TEEC_VALUE_INOUT, Operation, RegMemref, TeecError, TempMemref, Value,
                             dma_heap_alloc)
from ta.build import TA_DIR, build_signed_tas, builtin_tas, load_manifest, main as build_main
import ta.sign as sign
from ta.sign import ALGOS, pack_signed, public_pem, sign_ta
from tee_os.signed_ta import (SHDR_BOOTSTRAP_TA, SHDR_TA, load_signed_ta, load_signed_ta_info,
                              parse_signed_ta)
from tee_os.ta_loader import TaLoadError

SECURITY, NOT_SUPPORTED = 0xFFFF000F, 0xFFFF000A
ECHO = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")
SDP_BASIC = uuid.UUID("12345678-5b69-11e4-9dbb-101f74f00099")
NEW_ECHO = uuid.UUID("a0a0a0a0-1111-4222-8333-444444444401")
NEW_SDP = uuid.UUID("a0a0a0a0-1111-4222-8333-444444444402")
NONE3 = (TEEC_NONE,) * 3


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return sign.test_key()


@pytest.fixture(scope="module")
def pub(key) -> bytes:
    return public_pem(key)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def echo_elf() -> bytes:
    return builtin_tas()[ECHO][1]


def load(data: bytes, pub: bytes, expected=ECHO, **kw):
    return load_signed_ta(data, expected_uuid=expected, public_key_pem=pub, name="t.ta", **kw)


def refused(data: bytes, pub: bytes, code: int = SECURITY, expected=ECHO, **kw) -> str:
    with pytest.raises(TaLoadError) as e:
        load(data, pub, expected, **kw)
    assert e.value.tee_error == code, e.value
    return e.value.message


# --- layout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["pss", "pkcs1"])
def test_good_signature_loads_and_layout_matches_sign_encrypt(algo, key, pub):
    elf = echo_elf()
    data = sign_ta(elf, ECHO, key, ta_version=7, algo=algo)
    magic, img_type, img_size, algo_id, hash_size, sig_size = struct.unpack_from("<IIIIHH", data)
    assert (magic, img_type, img_size, algo_id, hash_size, sig_size) == (
        0x4F545348, 1, len(elf), ALGOS[algo], 32, 256)
    assert data[:4] == b"HSTO"
    assert data[0x148 - 20:0x148] == ECHO.bytes + struct.pack("<I", 7)   # subheader at 0x134
    assert data[0x148:] == elf and len(data) == 0x148 + len(elf)          # ELF at 0x148 (2048)
    assert data[20:52] == hashlib.sha256(data[:20] + data[0x134:]).digest()
    image, hdr = load_signed_ta_info(data, expected_uuid=ECHO, public_key_pem=pub)
    assert image.uuid == ECHO and hdr.verified and hdr.ta_version == 7
    assert hdr.img_type == SHDR_BOOTSTRAP_TA and hdr.digest_hex == data[20:52].hex()


def test_pss_signature_is_over_the_prehashed_digest(key, pub):
    data = sign_ta(echo_elf(), ECHO, key)
    key.public_key().verify(data[52:52 + 256], data[20:52],
                            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                            utils.Prehashed(hashes.SHA256()))


def test_4096_bit_key_moves_the_elf_to_0x248():
    big = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    data = sign_ta(echo_elf(), ECHO, big)
    assert struct.unpack_from("<H", data, 18)[0] == 512 and data[0x248:] == echo_elf()
    assert load(data, public_pem(big)).uuid == ECHO


def test_private_key_pem_is_accepted_as_the_verification_key(key):
    from cryptography.hazmat.primitives import serialization
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    assert load(sign_ta(echo_elf(), ECHO, key), pem).uuid == ECHO


# --- refusals ------------------------------------------------------------------------------
def test_bad_digest_flipped_elf_byte(key, pub):
    data = bytearray(sign_ta(echo_elf(), ECHO, key))
    data[0x148 + 0x1010] ^= 1                   # a code byte of the ELF
    assert "digest mismatch" in refused(bytes(data), pub)


def test_bad_digest_flipped_subheader_version(key, pub):
    data = bytearray(sign_ta(echo_elf(), ECHO, key, ta_version=1))
    data[0x144] ^= 2
    assert "digest mismatch" in refused(bytes(data), pub)


@pytest.mark.parametrize("algo", ["pss", "pkcs1"])
def test_bad_signature(algo, key, pub):
    data = bytearray(sign_ta(echo_elf(), ECHO, key, algo=algo))
    data[52 + 100] ^= 0x40
    assert "does not verify" in refused(bytes(data), pub)


def test_algo_switched_after_signing_fails_the_signature(key, pub):
    data = bytearray(sign_ta(echo_elf(), ECHO, key, algo="pss"))
    struct.pack_into("<I", data, 12, ALGOS["pkcs1"])   # the digest covers shdr: recompute it
    data[20:52] = hashlib.sha256(bytes(data[:20]) + bytes(data[0x134:])).digest()
    assert "does not verify" in refused(bytes(data), pub)


def test_wrong_key(key, other_key):
    data = sign_ta(echo_elf(), ECHO, other_key)
    assert "does not verify" in refused(data, public_pem(key))


def test_wrong_key_size(key):
    big = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    assert "sig_size" in refused(sign_ta(echo_elf(), ECHO, key), public_pem(big))


@pytest.mark.parametrize("cut", [0, 10, 19, 20, 60, 0x148, -1])
def test_truncated_file(cut, key, pub):
    data = sign_ta(echo_elf(), ECHO, key)
    msg = refused(data[:cut] if cut >= 0 else data[:-1], pub)
    assert "truncated" in msg


def test_extra_trailing_byte_breaks_the_exact_size_rule(key, pub):
    data = sign_ta(echo_elf(), ECHO, key)
    assert "trailing" in refused(data + b"\0", pub)


def test_bad_magic(key, pub):
    data = bytearray(sign_ta(echo_elf(), ECHO, key))
    data[0] ^= 1
    assert "magic" in refused(bytes(data), pub)


def test_requested_uuid_differs_from_the_signed_header(key, pub):
    data = sign_ta(echo_elf(), ECHO, key)
    other = uuid.UUID("99999999-2222-3333-4444-555555555555")
    assert "differs from the requested" in refused(data, pub, expected=other)


def test_signed_header_uuid_differs_from_ta_head(key, pub):
    data = sign_ta(echo_elf(), NEW_ECHO, key)      # validly signed, but ta_head says ECHO
    assert "ta_head UUID" in refused(data, pub, expected=NEW_ECHO)


def test_uuid_byte_order_is_octets_not_the_tee_uuid_struct(key, pub):
    data = bytearray(sign_ta(echo_elf(), ECHO, key))
    assert data[0x134:0x144] == bytes.fromhex("7a1f0c8e3d4b4c6a9e2f5b8d1c0e7f31")


def test_legacy_type_0_loads_and_binds_uuid_through_ta_head(key, pub):
    data = sign_ta(echo_elf(), ECHO, key, img_type=SHDR_TA)
    assert data[52 + 256:] == echo_elf()
    image, hdr = load_signed_ta_info(data, expected_uuid=ECHO, public_key_pem=pub)
    assert image.uuid == ECHO and hdr.img_type == SHDR_TA and hdr.uuid is None
    assert "ta_head UUID" in refused(data, pub, expected=NEW_ECHO)


def _sign_raw(key, elf: bytes, *, img_type: int, subheader: bytes, algo_id=ALGOS["pss"],
              hash_size=32) -> bytes:
    pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return pack_signed(elf, img_type=img_type, algo_id=algo_id, sig_size=256,
                       subheader=subheader, hash_size=hash_size,
                       sign=lambda d: key.sign(d[:32].ljust(32, b"\0"), pad,
                                               utils.Prehashed(hashes.SHA256())),
                       digest=None if hash_size == 32 else bytes(hash_size))


@pytest.mark.parametrize("img_type,name", [(2, "SHDR_ENCRYPTED_TA"), (3, "SHDR_SUBKEY")])
def test_unsupported_image_types(img_type, name, key, pub):
    data = _sign_raw(key, echo_elf(), img_type=img_type, subheader=ECHO.bytes + bytes(4))
    msg = refused(data, pub, code=NOT_SUPPORTED)
    assert name in msg and f"img_type {img_type}" in msg


def test_unknown_image_type_is_a_security_error(key, pub):
    data = _sign_raw(key, echo_elf(), img_type=9, subheader=ECHO.bytes + bytes(4))
    assert "image type 9" in refused(data, pub)


def test_1024_bit_key_refused(key):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    msg = refused(sign_ta(echo_elf(), ECHO, small), public_pem(small))
    assert "1024 bits" in msg and "2048" in msg


@pytest.mark.parametrize("algo_id,hash_name,hash_size", [
    (0x70002830, "SHA-1", 20),        # TEE_ALG_RSASSA_PKCS1_V1_5_SHA1
    (0x70001830, "MD5", 16),          # TEE_ALG_RSASSA_PKCS1_V1_5_MD5
    (0x70313930, "SHA-224", 28),      # TEE_ALG_RSASSA_PKCS1_PSS_MGF1_SHA224
    (0x7000F830, "MD5SHA1", 36)])     # TEE_ALG_RSASSA_PKCS1_V1_5_MD5SHA1
def test_weak_hash_algorithms_refused(algo_id, hash_name, hash_size, key, pub):
    data = _sign_raw(key, echo_elf(), img_type=1, subheader=ECHO.bytes + bytes(4),
                     algo_id=algo_id, hash_size=hash_size)
    msg = refused(data, pub)
    assert "weak" in msg and hash_name in msg


def test_non_rsa_algorithm_refused(key, pub):
    data = _sign_raw(key, echo_elf(), img_type=1, subheader=ECHO.bytes + bytes(4),
                     algo_id=0x70414941)       # TEE_ALG_ECDSA_SHA256's main algorithm 0x41
    assert "not an RSA" in refused(data, pub)


def test_hash_size_must_match_the_algorithm(key, pub):
    data = _sign_raw(key, echo_elf(), img_type=1, subheader=ECHO.bytes + bytes(4),
                     hash_size=48)
    assert "hash_size 48" in refused(data, pub)


def test_unsupported_strong_rsa_algorithm_refused(key, pub):
    data = _sign_raw(key, echo_elf(), img_type=1, subheader=ECHO.bytes + bytes(4),
                     algo_id=0x70515930, hash_size=48)   # PSS-SHA384: not accepted
    assert "not supported" in refused(data, pub)


def test_no_key_configured_is_refused(key):
    assert "no TA public key" in refused(sign_ta(echo_elf(), ECHO, key), None)


def test_bad_elf_inside_a_good_signature_is_the_loaders_error(key, pub):
    data = sign_ta(echo_elf()[:0x2000], ECHO, key)       # ELF cut short, then signed
    assert refused(data, pub, code=0xFFFF0005)    # TEE_ERROR_BAD_FORMAT from load_ta_elf


def test_garbage_never_escapes_as_another_exception(pub):
    import random
    rnd = random.Random(11)
    for n in (0, 1, 20, 52, 400, 2000):
        blob = bytearray(rnd.randbytes(n))
        if n >= 4:
            blob[:4] = b"HSTO"
        with pytest.raises(TaLoadError):
            load(bytes(blob), pub)


# --- verify=False --------------------------------------------------------------------------
def test_verify_false_skips_signature_and_digest_but_keeps_format_rules(key, other_key, pub,
                                                                         monkeypatch, caplog):
    monkeypatch.setattr(signed_ta, "_warned", set())
    data = bytearray(sign_ta(echo_elf(), ECHO, other_key))
    data[0x148 + 0x1010] ^= 1                   # wrong key and bad digest
    with caplog.at_level(logging.WARNING, logger="tee_os.signed_ta"):
        hdr = parse_signed_ta(bytes(data), expected_uuid=ECHO, public_key_pem=None,
                              verify=False)
        parse_signed_ta(bytes(data), expected_uuid=ECHO, public_key_pem=pub, verify=False)
    assert not hdr.verified and hdr.digest != hdr.computed_digest
    warnings = [r for r in caplog.records if "verification is disabled" in r.message]
    assert len(warnings) == 1
    assert "truncated" in refused(bytes(data[:-1]), None, verify=False)
    assert "requested" in refused(bytes(data), None, expected=NEW_ECHO, verify=False)
    enc = _sign_raw(key, echo_elf(), img_type=2, subheader=ECHO.bytes + bytes(4))
    refused(enc, None, code=NOT_SUPPORTED, verify=False)


# --- build and key ---------------------------------------------------------------------------
def test_test_key_is_cached_rsa_2048(key):
    assert key.key_size == 2048 and sign.test_key_path().is_file()
    assert sign.test_key() is key                 # cached in-process too
    assert sign.test_public_key_pem() == public_pem(key)


def _manifest(tmp_path: Path) -> Path:
    """echo and sdp_basic under new UUIDs (not built in)."""
    lines = []
    for entry in load_manifest():
        new = {"echo": NEW_ECHO, "sdp_basic": NEW_SDP}.get(entry["name"])
        if new is None:
            continue
        lines += ["[[ta]]", f'name = "{entry["name"]}_signed"',
                  f'source = "{(TA_DIR / entry["source"]).as_posix()}"', f'uuid = "{new}"',
                  f'flags = {entry["flags"]}', f'stack_size = {entry["stack_size"]}',
                  f'bss_size = {entry.get("bss_size", 0)}',
                  f'relative_relocs_labels = {list(entry.get("relative_relocs_labels", []))!r}'
                  .replace("'", '"'), ""]
    path = tmp_path / "tas.toml"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def signed_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("signed_tas")
    assert build_main([str(out), "--signed", "--manifest", str(_manifest(out))]) == 0
    return out


def test_build_signed_writes_elf_and_ta(signed_dir, pub):
    for new in (NEW_ECHO, NEW_SDP):
        ta = (signed_dir / f"{new}.ta").read_bytes()
        elf = (signed_dir / f"{new}.elf").read_bytes()
        assert ta[0x148:] == elf
        assert load(ta, pub, expected=new).uuid == new


def test_build_signed_tas_of_the_builtin_manifest(tmp_path, pub):
    written = build_signed_tas(tmp_path, algo="pkcs1")
    assert set(written) == set(builtin_tas())
    for ta_uuid, path in written.items():
        assert load(path.read_bytes(), pub, expected=ta_uuid).uuid == ta_uuid


# --- end to end --------------------------------------------------------------------------------
def test_e2e_signed_echo_from_the_ta_dir(signed_dir):
    p = tzemu.boot(ta_dirs=[signed_dir], record_events=100_000)
    s = p.linux.teec().open_session(NEW_ECHO)
    op = Operation((TEEC_VALUE_INOUT,) + NONE3, [Value(41, 0), None, None, None])
    s.invoke(0, op)
    assert op.params[0].a == 42
    s.close()
    assert p.secure_os.ta_manager.loaded_from_ree[NEW_ECHO] == f"{NEW_ECHO}.ta"
    data = (signed_dir / f"{NEW_ECHO}.ta").read_bytes()
    ev = [e.fields for e in p.bus.of_kind("ta_load") if e.fields["uuid"] == str(NEW_ECHO)]
    assert ev and ev[0]["file"] == f"{NEW_ECHO}.ta" and ev[0]["digest"] == data[20:52].hex()


def test_e2e_signed_sdp_basic_round_trip_from_the_ta_dir(signed_dir):
    p = tzemu.boot(ta_dirs=[signed_dir], protmem="static", record_events=100_000)
    k = p.kernel
    ctx = p.linux.teec()
    s = ctx.open_session(NEW_SDP)
    size, offset = 4096, 5
    fd = dma_heap_alloc(k, "/dev/dma_heap/protected,secure-video", size)
    shm = ctx.register_shared_memory_fd(fd)
    k.close(fd)
    ref = bytes((i * 37 + 11) & 0xFF for i in range(1000))
    n = len(ref)
    s.invoke(0, Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_NONE,
                           TEEC_NONE), [TempMemref(ref), RegMemref(shm, offset, n), None, None]))
    s.invoke(1, Operation((TEEC_MEMREF_PARTIAL_INOUT,) + NONE3,
                          [RegMemref(shm, offset, n), None, None, None]))
    out = TempMemref(size=n)
    s.invoke(2, Operation((TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE,
                           TEEC_NONE), [RegMemref(shm, offset, n), out, None, None]))
    assert out.out == bytes((-b) & 0xFF for b in ref)
    # TRANSFORM on a non-secure buffer: the TA itself answers ACCESS_DENIED
    op = Operation((TEEC_MEMREF_TEMP_INOUT,) + NONE3, [TempMemref(b"abc"), None, None, None])
    assert s.invoke(1, op, check=False) == (0xFFFF0001, 4)
    ctx.release_shared_memory(shm)
    s.close()


def test_e2e_tampered_file_is_refused_with_security(signed_dir, tmp_path):
    data = bytearray((signed_dir / f"{NEW_ECHO}.ta").read_bytes())
    data[0x148 + 0x1010] ^= 1
    (tmp_path / f"{NEW_ECHO}.ta").write_bytes(bytes(data))
    p = tzemu.boot(ta_dirs=[tmp_path], record_events=100_000)
    with pytest.raises(TeecError) as e:
        p.linux.teec().open_session(NEW_ECHO)
    assert e.value.code == SECURITY and e.value.origin == 3
    failed = p.bus.of_kind("ta_load_failed")
    assert failed and "digest mismatch" in failed[-1].fields["detail"]


def test_e2e_file_name_uuid_differs_from_the_signed_header(signed_dir, tmp_path):
    other = uuid.UUID("99999999-2222-3333-4444-555555555555")
    (tmp_path / f"{other}.ta").write_bytes((signed_dir / f"{NEW_ECHO}.ta").read_bytes())
    p = tzemu.boot(ta_dirs=[tmp_path])
    with pytest.raises(TeecError) as e:
        p.linux.teec().open_session(other)
    assert (e.value.code, e.value.origin) == (SECURITY, 3)


def test_e2e_ta_key_option_and_wrong_key(signed_dir, tmp_path, other_key):
    keyfile = tmp_path / "other.pem"
    keyfile.write_bytes(public_pem(other_key))
    p = tzemu.boot(ta_dirs=[signed_dir], ta_key=str(keyfile))
    with pytest.raises(TeecError) as e:
        p.linux.teec().open_session(NEW_ECHO)
    assert (e.value.code, e.value.origin) == (SECURITY, 3)
    # the same file with verification off loads
    p = tzemu.boot(ta_dirs=[signed_dir], ta_key=str(keyfile), verify_ta=False)
    p.linux.teec().open_session(NEW_ECHO).close()
    # and a TA signed with that key verifies with it
    elf = (signed_dir / f"{NEW_ECHO}.elf").read_bytes()
    d2 = tmp_path / "d2"
    d2.mkdir()
    (d2 / f"{NEW_ECHO}.ta").write_bytes(sign_ta(elf, NEW_ECHO, other_key, algo="pkcs1"))
    p = tzemu.boot(ta_dirs=[d2], ta_key=str(keyfile))
    p.linux.teec().open_session(NEW_ECHO).close()


def test_bad_ta_key_file_is_a_platform_error(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(tzemu.PlatformError, match="--ta-key"):
        tzemu.boot(ta_key=str(bad))
    with pytest.raises(tzemu.PlatformError, match="--ta-key"):
        tzemu.boot(ta_key=str(tmp_path / "missing.pem"))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "small.pem").write_bytes(public_pem(small))
    with pytest.raises(tzemu.PlatformError, match="1024 bits"):
        tzemu.boot(ta_key=str(tmp_path / "small.pem"))


def test_signed_image_in_extra_tas_is_verified(signed_dir, other_key):
    data = (signed_dir / f"{NEW_ECHO}.ta").read_bytes()
    p = tzemu.boot(extra_tas={NEW_ECHO: ("echo_signed", data)})
    assert NEW_ECHO in p.secure_os.ta_manager.images
    bad = sign_ta((signed_dir / f"{NEW_ECHO}.elf").read_bytes(), NEW_ECHO, other_key)
    with pytest.raises(TaLoadError) as e:
        tzemu.boot(extra_tas={NEW_ECHO: ("echo_bad", bad)})
    assert e.value.tee_error == SECURITY


def test_sign_command_line(signed_dir, tmp_path, pub, capsys):
    out = tmp_path / "x.ta"
    elf = signed_dir / f"{NEW_ECHO}.elf"
    assert sign.main([str(elf), str(NEW_ECHO), str(out), "--algo", "pkcs1",
                      "--ta-version", "3"]) == 0
    image, hdr = load_signed_ta_info(out.read_bytes(), expected_uuid=NEW_ECHO,
                                     public_key_pem=pub)
    assert hdr.algo == ALGOS["pkcs1"] and hdr.ta_version == 3
    assert sign.main(["--print-test-key-path"]) == 0
    assert capsys.readouterr().out.strip().endswith("tzemu_test_ta_key.pem")
