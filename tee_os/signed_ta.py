"""Signed OP-TEE ``.ta`` files: parse ``struct shdr``, apply the TA store's rules, verify.

Format and rules: ../shared/abi/optee_ta_format.md §1 (OP-TEE ``core/include/signed_hdr.h``,
``core/crypto/signed_hdr.c``, ``core/kernel/ree_fs_ta.c``). A ``.ta`` file is::

    struct shdr {u32 magic, img_type, img_size, algo; u16 hash_size, sig_size}   20 bytes
    digest[hash_size] signature[sig_size]
    subheader(s)            (type 1: struct shdr_bootstrap_ta {u8 uuid[16]; u32 ta_version})
    ELF                     (img_size bytes, the last bytes of the file)

Image types: 0 ``SHDR_TA`` (legacy, no UUID in the header) and 1 ``SHDR_BOOTSTRAP_TA`` (what
``sign_encrypt.py`` produces) are loaded; 2 ``SHDR_ENCRYPTED_TA`` and 3 ``SHDR_SUBKEY`` are
refused with TEE_ERROR_NOT_SUPPORTED naming them; any other type is TEE_ERROR_SECURITY (rule 7).

Every other refusal is TEE_ERROR_SECURITY (0xFFFF000F), as OP-TEE's TA store reports it:
magic, RSA algorithm, weak hash, key >= 2048 bits, hash_size, exact file size, bootstrap UUID =
requested UUID, digest recomputed over shdr ‖ subheader ‖ ELF, RSASSA signature (PSS with
MGF1-SHA256 and a 32-byte salt, or PKCS#1 v1.5, both SHA-256, over the digest as a pre-hashed
value) with the configured public key.

tzemu additions (documented in docs/tas.md):

* the bootstrap UUID must also equal the ELF's ``ta_head`` UUID (OP-TEE does not compare them);
  a legacy type-0 image has no header UUID, so its ``ta_head`` UUID must equal the requested one;
* ``verify=False`` (``--no-verify-ta``) skips the digest and signature checks (real OP-TEE cannot
  skip them) but keeps every format rule (magic, algorithm, sizes, image type, UUIDs); it logs a
  warning once per process;
* rollback protection (rule 10, ``ta_version`` against a secure-storage database) is not
  implemented: ``ta_version`` is reported, never compared.
"""
from __future__ import annotations

import hashlib
import logging
import struct
import uuid as uuid_mod
from dataclasses import dataclass

from tee_os.ta_loader import TaImage, TaLoadError, load_ta_elf

log = logging.getLogger(__name__)

TEE_ERROR_SECURITY = 0xFFFF000F
TEE_ERROR_NOT_SUPPORTED = 0xFFFF000A

SHDR_MAGIC = 0x4F545348
SHDR_SIZE = 20
SHDR_FORMAT = "<IIIIHH"
SHDR_TA, SHDR_BOOTSTRAP_TA, SHDR_ENCRYPTED_TA, SHDR_SUBKEY = 0, 1, 2, 3
IMG_TYPE_NAMES = {SHDR_TA: "SHDR_TA", SHDR_BOOTSTRAP_TA: "SHDR_BOOTSTRAP_TA",
                  SHDR_ENCRYPTED_TA: "SHDR_ENCRYPTED_TA", SHDR_SUBKEY: "SHDR_SUBKEY"}
BOOTSTRAP_SIZE = 20                      # struct shdr_bootstrap_ta {u8 uuid[16]; u32 ta_version}

TEE_ALG_RSASSA_PKCS1_PSS_MGF1_SHA256 = 0x70414930
TEE_ALG_RSASSA_PKCS1_V1_5_SHA256 = 0x70004830
ACCEPTED_ALGOS = {TEE_ALG_RSASSA_PKCS1_PSS_MGF1_SHA256: "RSASSA-PSS-MGF1-SHA256",
                  TEE_ALG_RSASSA_PKCS1_V1_5_SHA256: "RSASSA-PKCS1-v1_5-SHA256"}
TEE_MAIN_ALGO_RSA = 0x30
# TEE_ALG_GET_DIGEST_HASH (bits 12..15 of the algorithm id): hash id -> (name, digest size).
_HASHES = {1: ("MD5", 16), 2: ("SHA-1", 20), 3: ("SHA-224", 28), 4: ("SHA-256", 32),
           5: ("SHA-384", 48), 6: ("SHA-512", 64), 0xF: ("MD5SHA1", 36)}
_WEAK_HASHES = {1, 2, 3, 0xF}
MIN_KEY_BITS = 2048
PSS_SALT_LEN = 32
ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class SignedTa:
    """What the signed header says, and what was checked."""

    img_type: int
    algo: int
    digest: bytes                 # the header's digest field
    computed_digest: bytes        # SHA-256 over shdr ‖ subheader(s) ‖ ELF, as read
    signature: bytes
    uuid: uuid_mod.UUID | None    # bootstrap UUID (None for the legacy type 0)
    ta_version: int | None
    elf: bytes
    verified: bool                # digest and signature checked against the configured key
    elf_offset: int

    @property
    def digest_hex(self) -> str:
        return self.computed_digest.hex()


def _security(name: str, message: str) -> TaLoadError:
    return TaLoadError(TEE_ERROR_SECURITY, f"{name}: {message}")


def _unsupported(name: str, message: str) -> TaLoadError:
    return TaLoadError(TEE_ERROR_NOT_SUPPORTED, f"{name}: {message}")


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def _public_key(public_key_pem: bytes | str, name: str):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (load_pem_private_key,
                                                              load_pem_public_key)
    pem = public_key_pem.encode() if isinstance(public_key_pem, str) else bytes(public_key_pem)
    try:
        key = load_pem_public_key(pem)
    except ValueError:
        try:                      # a private key PEM is accepted too (its public half is used)
            key = load_pem_private_key(pem, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise _security(name, f"the configured TA public key is not a PEM key ({exc})") \
                from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise _security(name, f"the configured TA key is not an RSA key ({type(key).__name__})")
    if key.key_size < MIN_KEY_BITS:
        raise _security(name, f"the configured TA key has {key.key_size} bits; at least "
                              f"{MIN_KEY_BITS} are required")
    return key


def check_ta_public_key(public_key_pem: bytes | str) -> None:
    """Raise :class:`TaLoadError` unless the PEM holds an RSA key of at least 2048 bits."""
    _public_key(public_key_pem, "TA key")


def _verify_signature(key, algo: int, digest: bytes, signature: bytes, name: str) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils
    if len(signature) != (key.key_size + 7) // 8:
        raise _security(name, f"sig_size {len(signature)} does not match the {key.key_size}-bit "
                              f"verification key (wrong key?)")
    if algo == TEE_ALG_RSASSA_PKCS1_PSS_MGF1_SHA256:
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_LEN)
    else:
        pad = padding.PKCS1v15()
    try:
        key.verify(signature, digest, pad, utils.Prehashed(hashes.SHA256()))
    except InvalidSignature:
        raise _security(name, f"{ACCEPTED_ALGOS[algo]} signature does not verify with the "
                              f"configured TA public key (wrong key or tampered header)") from None


def parse_signed_ta(data: bytes, *, expected_uuid: uuid_mod.UUID | None,
                    public_key_pem: bytes | str | None, verify: bool = True,
                    name: str = "<ta>") -> SignedTa:
    """Apply the TA store's rules to a ``.ta`` file and return the header and the ELF.

    Raises :class:`TaLoadError` (TEE_ERROR_SECURITY, or NOT_SUPPORTED for image types 2/3).
    """
    data = bytes(data)
    if len(data) < SHDR_SIZE:
        raise _security(name, f"truncated file: {len(data)} bytes, shorter than struct shdr "
                              f"({SHDR_SIZE})")
    magic, img_type, img_size, algo, hash_size, sig_size = struct.unpack_from(SHDR_FORMAT, data)
    if magic != SHDR_MAGIC:                                                      # rule 1
        raise _security(name, f"bad signed-header magic {magic:#010x} (expected "
                              f"{SHDR_MAGIC:#010x} 'HSTO')")
    if algo & 0xFF != TEE_MAIN_ALGO_RSA:                                         # rule 2
        raise _security(name, f"signature algorithm {algo:#010x} is not an RSA algorithm")
    hash_id = (algo >> 12) & 0xF
    hash_name, hash_len = _HASHES.get(hash_id, (f"unknown hash {hash_id}", 0))
    if hash_id in _WEAK_HASHES or hash_len == 0:                                 # rule 3
        raise _security(name, f"signature algorithm {algo:#010x} uses the weak or unknown "
                              f"hash {hash_name}")
    if hash_size != hash_len:                                                    # rule 5
        raise _security(name, f"hash_size {hash_size} does not match the {hash_len}-byte "
                              f"{hash_name} digest of algorithm {algo:#010x}")
    if algo not in ACCEPTED_ALGOS:
        raise _security(name, f"signature algorithm {algo:#010x} not supported (accepted: "
                        + ", ".join(f"{v} {k:#010x}" for k, v in ACCEPTED_ALGOS.items()) + ")")
    key = _public_key(public_key_pem, name) if verify and public_key_pem is not None else None
    if verify and key is None:
        raise _security(name, "no TA public key configured (pass --ta-key PEM, or "
                              "--no-verify-ta to skip verification)")
    if img_type == SHDR_ENCRYPTED_TA:                                             # rule 7
        raise _unsupported(name, "encrypted TAs (img_type 2, SHDR_ENCRYPTED_TA) are not "
                                 "supported")
    if img_type == SHDR_SUBKEY:
        raise _unsupported(name, "subkey-signed TAs (img_type 3, SHDR_SUBKEY) are not supported")
    if img_type not in (SHDR_TA, SHDR_BOOTSTRAP_TA):
        raise _security(name, f"unknown signed-header image type {img_type}")
    hdr_end = SHDR_SIZE + hash_size + sig_size
    elf_offset = hdr_end + (BOOTSTRAP_SIZE if img_type == SHDR_BOOTSTRAP_TA else 0)
    if len(data) != elf_offset + img_size:                                        # rule 9
        what = "truncated" if len(data) < elf_offset + img_size else "trailing bytes in"
        raise _security(name, f"{what} file: {len(data)} bytes, the header says exactly "
                              f"{elf_offset + img_size} ({elf_offset} of headers + img_size "
                              f"{img_size})")
    digest = data[SHDR_SIZE:SHDR_SIZE + hash_size]
    signature = data[SHDR_SIZE + hash_size:hdr_end]
    ta_uuid = ta_version = None
    if img_type == SHDR_BOOTSTRAP_TA:
        ta_uuid = uuid_mod.UUID(bytes=data[hdr_end:hdr_end + 16])
        ta_version = struct.unpack_from("<I", data, hdr_end + 16)[0]
        if expected_uuid is not None and ta_uuid != expected_uuid:               # rule 8
            raise _security(name, f"signed header UUID {ta_uuid} differs from the requested "
                                  f"UUID {expected_uuid}")
    h = hashlib.sha256()                                                          # rule 11
    h.update(data[:SHDR_SIZE])
    h.update(data[hdr_end:elf_offset])
    h.update(data[elf_offset:])
    computed = h.digest()
    if verify:
        if computed != digest:
            raise _security(name, f"digest mismatch: header {digest.hex()}, image "
                                  f"{computed.hex()} (the file was modified)")
        _verify_signature(key, algo, digest, signature, name)                    # rules 4, 6
    else:
        _warn_once("no-verify", "TA signature verification is disabled (--no-verify-ta): "
                                "digests and signatures of .ta files are NOT checked")
    return SignedTa(img_type=img_type, algo=algo, digest=digest, computed_digest=computed,
                    signature=signature, uuid=ta_uuid, ta_version=ta_version,
                    elf=data[elf_offset:], verified=verify, elf_offset=elf_offset)


def load_signed_ta_info(data: bytes, *, expected_uuid: uuid_mod.UUID | None,
                        public_key_pem: bytes | str | None, verify: bool = True,
                        name: str = "<ta>") -> tuple[TaImage, SignedTa]:
    """:func:`load_signed_ta`, also returning the parsed header (digest for the trace)."""
    hdr = parse_signed_ta(data, expected_uuid=expected_uuid, public_key_pem=public_key_pem,
                          verify=verify, name=name)
    image = load_ta_elf(hdr.elf, name=name)
    want = hdr.uuid if hdr.uuid is not None else expected_uuid
    if want is not None and image.uuid != want:       # tzemu's extra check (docs/tas.md)
        src = "signed header" if hdr.uuid is not None else "requested"
        raise _security(name, f"ta_head UUID {image.uuid} differs from the {src} UUID {want}")
    return image, hdr


def load_signed_ta(data: bytes, *, expected_uuid: uuid_mod.UUID | None,
                   public_key_pem: bytes | str | None, verify: bool = True,
                   name: str = "<ta>") -> TaImage:
    """Check a signed ``.ta`` file and load its ELF (:func:`tee_os.ta_loader.load_ta_elf`)."""
    return load_signed_ta_info(data, expected_uuid=expected_uuid,
                               public_key_pem=public_key_pem, verify=verify, name=name)[0]


def is_plain_elf(data: bytes) -> bool:
    """A bare ELF (tzemu's pre-signing ``.ta`` files), not a signed image."""
    return bytes(data[:4]) == ELF_MAGIC


def load_plain_elf_ta(data: bytes, *, expected_uuid: uuid_mod.UUID | None,
                      name: str = "<ta>", verify: bool = True) -> tuple[TaImage, str]:
    """A bare ELF given where a ``.ta`` is expected. Real OP-TEE refuses it (no signed header),
    and so does tzemu unless verification is off (``--no-verify-ta``): otherwise dropping the
    header would bypass signing. Without verification it loads with a warning (once); returns
    the image and the SHA-256 of the file for the trace. The ta_head UUID must equal the
    requested UUID."""
    if verify:
        raise _security(name, "unsigned TA file (a bare ELF, no signed header): sign it with "
                              "ta/sign.py, or load it with --no-verify-ta")
    _warn_once("plain-elf", f"{name}: loading an UNSIGNED bare-ELF TA file (tzemu "
                            f"compatibility; real OP-TEE refuses it). Sign it with ta/sign.py.")
    image = load_ta_elf(data, name=name)
    if expected_uuid is not None and image.uuid != expected_uuid:
        raise _security(name, f"TA file for {expected_uuid} carries UUID {image.uuid}")
    return image, hashlib.sha256(bytes(data)).hexdigest()
