"""The built-in TA store: every TA of ``ta/tas.toml`` as a signed ``<uuid>.ta`` file on disk.

OP-TEE's early TAs are signed images linked into the OS; tzemu's built-in TAs are the same kind
of object. They are built at build time (``make tas``, or on first boot) into a build directory
and signed with the project's build key (:func:`ta.sign.test_key`). The secure OS then loads
them through the same signed-TA path as a user's TA directory (shdr, SHA-256, RSA signature,
ldelf-style ELF loading), so every test that opens a built-in TA exercises the real loader.

The directory is ``$TZEMU_TA_BUILD_DIR`` if set, else ``<cache>/ta/<stamp>``, where the stamp
is a hash of everything the files are made from (the manifest, the TA sources and runtime, the
build scripts, the secure header copy the constants come from, and the build key's public
half). A stale directory is never reused: a changed input gives a new stamp.

``python -m ta.builtin [--out DIR]`` builds the store and lists the files with their digests.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import tempfile
import time
import uuid as uuid_mod
from pathlib import Path

from ta.build import TA_DIR, TAS_TOML, builtin_tas
from ta.sign import cache_dir, header_digest, sign_ta, test_key, test_public_key_pem

REPO = TA_DIR.parent
# What a built-in .ta is made of, besides the manifest and the key.
_INPUT_GLOBS = ((TA_DIR, ("*.S", "*.c", "*.h", "*.ld", "*.py", "*.toml")),
                (TA_DIR / "runtime", ("**/*",)),
                (TA_DIR / "c", ("**/*",)),
                (REPO / "tee_os" / "include", ("**/*.h",)),
                (REPO / "emu", ("asm.py",)))
STAMP_FILE = "STAMP"
INDEX_FILE = "INDEX"          # "<uuid> <name>" per built TA: read instead of rebuilding


def input_files() -> list[Path]:
    """Every file whose content the built-in TA files depend on, in a stable order."""
    found: set[Path] = set()
    for root, patterns in _INPUT_GLOBS:
        if root.is_dir():
            for pattern in patterns:
                found.update(p for p in root.glob(pattern) if p.is_file()
                             and "__pycache__" not in p.parts)
    return sorted(found)


def stamp() -> str:
    """Hash of the inputs and the build key's public half (hex, 16 digits)."""
    h = hashlib.sha256()
    for path in input_files():
        name = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        h.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(test_public_key_pem())
    # Whether the C cross compiler is here decides which TAs can be built at all.
    cross = os.environ.get("TZEMU_CROSS_COMPILE", "aarch64-linux-gnu-")
    h.update(b"cross:" + str(shutil.which(cross + "gcc")).encode())
    return h.hexdigest()[:16]


def store_dir() -> Path:
    """Where the signed built-in TAs live (see the module doc)."""
    if os.environ.get("TZEMU_TA_BUILD_DIR"):
        return Path(os.environ["TZEMU_TA_BUILD_DIR"])
    return cache_dir() / "ta" / stamp()


def build_store(outdir: Path) -> dict[uuid_mod.UUID, Path]:
    """Sign every built-in TA into ``outdir/<uuid>.ta`` with the build key, atomically (the
    files appear together with the stamp, or not at all). Returns UUID -> path."""
    outdir.parent.mkdir(parents=True, exist_ok=True)
    key = test_key()
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=outdir.parent))
    try:
        index = []
        for ta_uuid, (name, elf) in builtin_tas().items():
            (tmp / f"{ta_uuid}.ta").write_bytes(sign_ta(elf, ta_uuid, key))
            index.append(f"{ta_uuid} {name}\n")
        (tmp / INDEX_FILE).write_text("".join(index))
        (tmp / STAMP_FILE).write_text(stamp() + "\n")
        if outdir.exists():                      # an explicit --out / TZEMU_TA_BUILD_DIR
            shutil.rmtree(outdir)
        try:
            tmp.rename(outdir)
        except OSError:                          # another process won the race: use theirs
            if not (outdir / STAMP_FILE).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {u: outdir / f"{u}.ta" for u in read_index(outdir)}


def read_index(outdir: Path) -> dict[uuid_mod.UUID, str]:
    """UUID -> name of the TAs a store holds."""
    index = {}
    for line in (outdir / INDEX_FILE).read_text().splitlines():
        u, name = line.split(" ", 1)
        index[uuid_mod.UUID(u)] = name
    return index


PRUNE_AFTER_S = 7 * 24 * 3600     # a stamped store nobody booted from for a week goes


def _prune_old_stores(keep: Path) -> None:
    """Drop the cache's stamped stores unused for a week (only under the cache, never a user's
    dir). Not younger ones: another checkout (a CI clone beside a work tree) may be using them."""
    root = cache_dir() / "ta"
    if keep.parent != root:
        return
    now = time.time()
    for other in root.iterdir():
        if other == keep or not other.is_dir():
            continue
        try:
            age = now - (other / STAMP_FILE).stat().st_mtime
        except OSError:
            age = now - other.stat().st_mtime      # a half-built or stampless directory
        if age > PRUNE_AFTER_S:
            shutil.rmtree(other, ignore_errors=True)


def _fresh(outdir: Path) -> bool:
    try:
        return (outdir / STAMP_FILE).read_text().strip() == stamp() and all(
            (outdir / f"{u}.ta").is_file() for u in read_index(outdir))
    except (OSError, ValueError):
        return False


def ensure_store() -> Path:
    """The store directory, built first if missing or stale."""
    outdir = store_dir()
    if not _fresh(outdir):
        build_store(outdir)
        _prune_old_stores(outdir)
    else:
        try:
            os.utime(outdir / STAMP_FILE)          # in use: keeps it from being pruned
        except OSError:
            pass
    return outdir


@functools.lru_cache(maxsize=1)
def builtin_signed_tas() -> dict[uuid_mod.UUID, tuple[str, bytes]]:
    """UUID -> (name, signed .ta bytes) for every built-in TA, read from the store."""
    outdir = ensure_store()
    return {u: (name, (outdir / f"{u}.ta").read_bytes()) for u, name in read_index(outdir).items()}


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m ta.builtin",
                                 description="build the signed built-in TA store")
    ap.add_argument("--out", help=f"directory (default: the stamped cache store; manifest "
                                  f"{TAS_TOML.relative_to(REPO)})")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if args.out:
        outdir = Path(args.out)
        build_store(outdir)
    else:
        outdir = ensure_store()
    names = read_index(outdir)
    for u in sorted(names, key=str):
        data = (outdir / f"{u}.ta").read_bytes()
        print(f"{names[u]:12} {outdir / f'{u}.ta'}  {len(data)} bytes  "
              f"sha256 {header_digest(data).hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
