"""Sign TA ELFs into OP-TEE ``.ta`` files, byte for byte like OP-TEE's ``scripts/sign_encrypt.py``.

``sign_ta(elf, uuid, key)`` produces a bootstrap TA (``img_type`` 1)::

    shdr {magic 0x4f545348, img_type 1, img_size = len(elf), algo, hash_size 32, sig_size}
    digest = SHA-256(shdr ‖ {uuid octets, u32 ta_version} ‖ elf)
    signature = RSASSA-PSS (MGF1-SHA256, salt 32) or PKCS#1 v1.5 over the digest (pre-hashed)
    file = shdr ‖ digest ‖ signature ‖ uuid ‖ ta_version ‖ elf

The project's **test key** (:func:`test_key`) is an RSA-2048 key generated on first use into a
cache directory (``$TZEMU_CACHE_DIR`` or ``$XDG_CACHE_HOME/tzemu`` or ``~/.cache/tzemu``, file
``keys/tzemu_test_ta_key.pem``); no private key is committed (ta/keys/README.md). It is for tests
and demos only: like OP-TEE's public default key, a signature made with it proves nothing. The
secure OS verifies with its public half unless ``--ta-key`` names another key.

Command line::

    python -m ta.sign ELF UUID OUT.ta [--key PEM] [--algo pss|pkcs1] [--ta-version N]
    python -m ta.sign --print-test-key-path
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import os
import struct
import sys
import tempfile
import uuid as uuid_mod
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

SHDR_MAGIC = 0x4F545348
SHDR_TA, SHDR_BOOTSTRAP_TA = 0, 1
ALGOS = {"pss": 0x70414930, "pkcs1": 0x70004830}     # TEE_ALG_RSASSA_PKCS1_{PSS_MGF1,V1_5}_SHA256
SHDR = struct.Struct("<IIIIHH")       # magic, img_type, img_size, algo, hash_size, sig_size
TEST_KEY_BITS = 2048
TEST_KEY_NAME = "tzemu_test_ta_key.pem"


def cache_dir() -> Path:
    """Where generated artefacts (the test key) live."""
    if os.environ.get("TZEMU_CACHE_DIR"):
        return Path(os.environ["TZEMU_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "tzemu"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:                              # read-only home (some CI runners)
        path = Path(tempfile.gettempdir()) / f"tzemu-cache-{os.getuid()}"
    return path


def test_key_path() -> Path:
    return cache_dir() / "keys" / TEST_KEY_NAME


def test_key(bits: int = TEST_KEY_BITS) -> rsa.RSAPrivateKey:
    """The project's TEST-ONLY signing key, generated once and cached (see module doc).

    Concurrent first uses are safe: the first key written (hard link, never replaced) wins and
    every process reads that one back.
    """
    path = test_key_path() if bits == TEST_KEY_BITS else \
        test_key_path().with_name(f"tzemu_test_ta_key_{bits}.pem")
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)          # atomic, fails if another process got there first
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return _private_key_of(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _private_key_of(path: str, _mtime: int) -> rsa.RSAPrivateKey:
    return load_private_key(Path(path))


def test_public_key_pem() -> bytes:
    """PEM (SubjectPublicKeyInfo) of the test key: the secure OS's default TA key."""
    test_key()                                   # generate on first use
    path = test_key_path()
    return _public_pem_of(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _public_pem_of(path: str, _mtime: int) -> bytes:
    return public_pem(load_private_key(Path(path)))


def public_pem(key: Any) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(key: Any) -> rsa.RSAPrivateKey:
    """A private key from an object, PEM bytes/str or a PEM file path."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    if isinstance(key, Path) or (isinstance(key, str) and "-----BEGIN" not in key):
        key = Path(key).read_bytes()
    if isinstance(key, str):
        key = key.encode()
    loaded = serialization.load_pem_private_key(bytes(key), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"not an RSA private key: {type(loaded).__name__}")
    return loaded


def pack_signed(elf: bytes, *, img_type: int, algo_id: int, sig_size: int, subheader: bytes,
                sign: Any, hash_size: int = 32, digest: bytes | None = None) -> bytes:
    """Low-level layout: shdr ‖ digest ‖ signature ‖ subheader ‖ elf (tests vary the fields).
    ``sign(digest) -> bytes``; ``digest`` overrides the computed one."""
    shdr = SHDR.pack(SHDR_MAGIC, img_type, len(elf), algo_id, hash_size, sig_size)
    if digest is None:
        digest = hashlib.sha256(shdr + subheader + elf).digest()
    signature = sign(digest)
    return shdr + digest + signature + subheader + elf


def header_digest(data: bytes) -> bytes:
    """The digest a signed ``.ta`` file's header carries (``hash_size`` bytes after the shdr)."""
    hash_size = SHDR.unpack_from(data)[4]
    return bytes(data[SHDR.size:SHDR.size + hash_size])


def sign_ta(elf: bytes, uuid: uuid_mod.UUID | str, private_key: Any = None, *,
            ta_version: int = 0, algo: str = "pss", img_type: int = SHDR_BOOTSTRAP_TA) -> bytes:
    """Sign a TA ELF as ``sign_encrypt.py sign-enc`` does (bootstrap TA, type 1).

    ``private_key``: an RSA private key, PEM bytes, or a PEM path; None = :func:`test_key`.
    ``img_type=0`` writes the legacy ``SHDR_TA`` layout (no subheader, UUID unused).
    """
    if algo not in ALGOS:
        raise ValueError(f"algo must be one of {sorted(ALGOS)}, not {algo!r}")
    key = test_key() if private_key is None else load_private_key(private_key)
    ta_uuid = uuid_mod.UUID(str(uuid))
    if img_type == SHDR_BOOTSTRAP_TA:
        subheader = ta_uuid.bytes + struct.pack("<I", ta_version)
    elif img_type == SHDR_TA:
        subheader = b""
    else:
        raise ValueError(f"img_type {img_type} not produced by ta.sign (0 or 1)")
    pad = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if algo == "pss"
           else padding.PKCS1v15())
    return pack_signed(bytes(elf), img_type=img_type, algo_id=ALGOS[algo],
                       sig_size=(key.key_size + 7) // 8, subheader=subheader,
                       sign=lambda d: key.sign(d, pad, utils.Prehashed(hashes.SHA256())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ta.sign", description=__doc__.splitlines()[0])
    ap.add_argument("elf", nargs="?")
    ap.add_argument("uuid", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--key", help="RSA private key PEM (default: the project's test key)")
    ap.add_argument("--algo", choices=sorted(ALGOS), default="pss")
    ap.add_argument("--ta-version", type=int, default=0)
    ap.add_argument("--print-test-key-path", action="store_true",
                    help="generate the test key if needed and print its path")
    args = ap.parse_args(argv)
    if args.print_test_key_path:
        test_key()
        print(test_key_path())
        return 0
    if not (args.elf and args.uuid and args.out):
        ap.error("ELF, UUID and OUT are required")
    data = sign_ta(Path(args.elf).read_bytes(), args.uuid, args.key,
                   ta_version=args.ta_version, algo=args.algo)
    Path(args.out).write_bytes(data)
    print(f"{args.out}: {len(data)} bytes, SHA-256 digest {header_digest(data).hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
