"""Build the built-in TAs listed in ``ta/tas.toml`` into TA ELF images.

The platform loads TAs from ELF bytes (as OP-TEE's ldelf does), so even our hand-written
assembly TAs go through a real ELF: assemble at base 0 with :func:`emu.asm.assemble`, then pack
with :func:`ta.elf_builder.build_ta_elf`. C TAs (``toolchain = "gcc"``) are compiled and linked
by the GNU cross toolchain (:mod:`ta.toolchain`); without it they are skipped with a warning.
``python -m ta.build OUTDIR`` writes ``<uuid>.elf``.
"""
from __future__ import annotations

import functools
import sys
import tomllib
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

from emu.asm import assemble
from ta.elf_builder import build_ta_elf

TA_DIR = Path(__file__).resolve().parent
TAS_TOML = TA_DIR / "tas.toml"

# The constants the assembly TAs use, read from the secure world's header copy
# (tee_os/include: tee_syscall_numbers.h, tee_api_defines.h, utee_types.h) like a TA dev kit.
TA_CONSTANT_PREFIXES = ("TEE_SCN_", "TEE_SUCCESS", "TEE_ERROR_", "TEE_PARAM_TYPE_",
                        "TEE_MEMORY_ACCESS_", "UTEE_ENTRY_FUNC_", "UTEE_TIME_CAT_",
                        "TEE_CACHE", "TEE_TIMEOUT_INFINITE", "TEE_ORIGIN_")

# tzemu extensions the TAs use that no OP-TEE header defines: the TA VA at which the secure OS
# maps the crypto engine's register frame for decrypt_ta, and the tzemu syscall that gives the
# physical address of a memref VA (x0 = va -> w0 result, x1 = pa, x2 = contiguous bytes).
TZEMU_TA_DEFINES = {"CRYPTO_ENGINE_VA": 0x7FF00000, "TZEMU_SCN_VA_TO_PA": 0x7000}


@functools.lru_cache(maxsize=1)
def ta_defines() -> dict[str, int]:
    """Constants passed to the assembler, from the secure header copy."""
    from emu.abi import secure_abi
    defines = {name: value for name, value in secure_abi().constants.items()
               if name.startswith(TA_CONSTANT_PREFIXES)}
    defines.update(TZEMU_TA_DEFINES)
    return defines


def load_manifest(path: Path = TAS_TOML) -> list[dict[str, Any]]:
    """The ``[[ta]]`` entries of the manifest."""
    with open(path, "rb") as fh:
        return list(tomllib.load(fh).get("ta", []))


def build_ta(entry: Mapping[str, Any]) -> bytes:
    """Build one manifest entry into a TA ELF: ``toolchain = "gcc"`` entries are C compiled and
    linked by the GNU cross toolchain (:mod:`ta.toolchain`); the others are assembled at base 0
    with keystone and packed by :mod:`ta.elf_builder`."""
    source = Path(entry["source"])
    if not source.is_absolute():
        source = TA_DIR / source
    if entry.get("toolchain", "keystone") == "gcc":
        from ta.toolchain import build_c_ta
        return build_c_ta(entry, source)
    program = assemble(source.read_text(), 0, name=source.name, defines=ta_defines(),
                       include_dir=source.parent)
    slots = [program.sym(label) for label in entry.get("relative_relocs_labels", [])]
    return build_ta_elf(program, uuid=uuid.UUID(str(entry["uuid"])), flags=int(entry["flags"]),
                        stack_size=int(entry["stack_size"]),
                        bss_size=int(entry.get("bss_size", 0)), relative_relocs=slots)


def buildable(entry: Mapping[str, Any]) -> bool:
    """Whether this machine can build the entry: C TAs need the cross compiler
    (``gcc-aarch64-linux-gnu``); the keystone-assembled ones always build."""
    if entry.get("toolchain", "keystone") != "gcc":
        return True
    from ta.toolchain import toolchain_available
    return toolchain_available()


def built_entries(manifest: Path = TAS_TOML) -> Iterator[tuple[dict[str, Any], uuid.UUID, bytes]]:
    """(entry, UUID, ELF) for every manifest entry this machine can build; a C TA without its
    cross compiler is skipped with one warning (booting and the other TAs must not need it)."""
    seen: set[uuid.UUID] = set()
    for entry in load_manifest(manifest):
        ta_uuid = uuid.UUID(str(entry["uuid"]))
        if ta_uuid in seen:
            raise ValueError(f"{manifest}: duplicate TA uuid {ta_uuid}")
        seen.add(ta_uuid)
        if not buildable(entry):
            warnings.warn(f"built-in TA {entry['name']} ({ta_uuid}) skipped: no C cross "
                          f"compiler (install gcc-aarch64-linux-gnu)", RuntimeWarning,
                          stacklevel=2)
            continue
        yield entry, ta_uuid, build_ta(entry)


@functools.lru_cache(maxsize=1)
def builtin_tas() -> dict[uuid.UUID, tuple[str, bytes]]:
    """UUID -> (name, ELF bytes) for every built-in TA; cached because every boot asks."""
    return {u: (str(e["name"]), elf) for e, u, elf in built_entries()}


def build_signed_tas(outdir: Path, manifest: Path = TAS_TOML, key: Any = None,
                     algo: str = "pss") -> dict[uuid.UUID, Path]:
    """issue 11: write every TA of ``manifest`` as a signed ``OUTDIR/<uuid>.ta`` (ta/sign.py,
    bootstrap TA; ``key`` None = the project's test key). Returns UUID -> path."""
    from ta.sign import sign_ta
    outdir.mkdir(parents=True, exist_ok=True)
    written: dict[uuid.UUID, Path] = {}
    for entry, ta_uuid, elf in built_entries(manifest):
        path = outdir / f"{ta_uuid}.ta"
        path.write_bytes(sign_ta(elf, ta_uuid, key,
                                 ta_version=int(entry.get("ta_version", 0)), algo=algo))
        written[ta_uuid] = path
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m ta.build OUTDIR [--signed [--key PEM] [--algo pss|pkcs1]] [--manifest TOML]``:
    write every TA as ``OUTDIR/<uuid>.elf``, and with ``--signed`` also as a signed
    ``OUTDIR/<uuid>.ta`` (the project's test key unless ``--key``)."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m ta.build")
    ap.add_argument("outdir")
    ap.add_argument("--signed", action="store_true",
                    help="also write signed <uuid>.ta files (OP-TEE bootstrap TA format)")
    ap.add_argument("--key", help="RSA private key PEM for --signed (default: the test key)")
    ap.add_argument("--algo", choices=["pss", "pkcs1"], default="pss")
    ap.add_argument("--manifest", default=str(TAS_TOML), help="TA manifest (default ta/tas.toml)")
    try:
        args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:                  # usage error: status 2, as before
        return int(exc.code or 0)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = Path(args.manifest)
    for entry, ta_uuid, elf in built_entries(manifest):
        path = outdir / f"{ta_uuid}.elf"
        path.write_bytes(elf)
        print(f"{entry['name']}: {path} ({len(elf)} bytes)")
    if args.signed:
        from ta.sign import header_digest
        for ta_uuid, path in build_signed_tas(outdir, manifest, args.key, args.algo).items():
            data = path.read_bytes()
            print(f"{ta_uuid}: {path} ({len(data)} bytes, digest {header_digest(data).hex()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
