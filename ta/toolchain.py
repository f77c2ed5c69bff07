"""Build C Trusted Applications with the GNU AArch64 cross toolchain (issue 11 item 6).

A manifest entry with ``toolchain = "gcc"`` (ta/tas.toml) is a C source compiled together with
the project's own minimal TA runtime (``ta/runtime``: entry, ``ta_head``, syscall stubs, string
helpers) and linked as a PIE by GNU ld with ``ta/runtime/ta.ld``. The constants and structures
come from the secure world's header copy (``tee_os/include``), like the assembly TAs'.

The result must be what OP-TEE's ldelf accepts and what :func:`tee_os.ta_loader.load_ta_elf`
accepts: ET_DYN, two PT_LOADs, only ``R_AARCH64_RELATIVE`` relocations, split over
``.rela.dyn`` (RX) and ``.rela.got`` (RW). Every build is checked with that loader.

Builds are cached under ``<cache>/ta-gcc/`` (the cache directory of :func:`ta.sign.cache_dir`)
by a hash of every input: sources, headers, linker script, flags, the manifest entry and the
compiler's identity. The cross prefix is ``$TZEMU_CROSS_COMPILE`` (default
``aarch64-linux-gnu-``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid as uuid_mod
from pathlib import Path
from typing import Any, Mapping

TA_DIR = Path(__file__).resolve().parent
REPO = TA_DIR.parent
RUNTIME_DIR = TA_DIR / "runtime"
RUNTIME_INCLUDE = RUNTIME_DIR / "include"
SECURE_INCLUDE = REPO / "tee_os" / "include"
LINKER_SCRIPT = RUNTIME_DIR / "ta.ld"
RUNTIME_SOURCES = ("ta_entry.c", "ta_head.c", "string.c", "utee_syscalls.S")

CROSS_ENV = "TZEMU_CROSS_COMPILE"
DEFAULT_CROSS = "aarch64-linux-gnu-"
DEBIAN_PACKAGE = "gcc-aarch64-linux-gnu"

# -fPIE: TAs are position independent (loaded at any base, relocated by RELATIVE entries).
# -ffreestanding -nostdinc -nostdlib: no libc, no system headers; the runtime provides mem*.
# -fno-builtin -fno-tree-loop-distribute-patterns: keep the runtime's mem* loops as loops.
# -fno-stack-protector: no __stack_chk_guard/TLS canary (the runtime has neither).
# -mgeneral-regs-only: no FP/SIMD registers. S-EL0 has FP/SIMD enabled (CPACR_EL1.FPEN), but
#   the runtime saves nothing across entries and the TAs need none; this keeps code simple.
# -mbranch-protection=none: no PAC/BTI hints (the loader does not model GNU_PROPERTY BTI).
# -fno-asynchronous-unwind-tables -fno-unwind-tables: no .eh_frame (no unwinder); -g keeps
#   DWARF in non-allocated sections for gdb.
CFLAGS = ("-O2", "-g", "-std=gnu11", "-fPIE", "-ffreestanding", "-nostdinc", "-nostdlib",
          "-fno-builtin", "-fno-tree-loop-distribute-patterns", "-fno-stack-protector",
          "-fno-common", "-mgeneral-regs-only", "-mbranch-protection=none", "-mstrict-align",
          "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-Wall", "-Wextra",
          "-Wno-unused-parameter", "-Werror=implicit-function-declaration")
# -pie with our script; ta_head must be a dynamic symbol (ldelf finds it in .dynsym); no
# RELRO (TAs map RW as RW), 4 KiB pages (the default 64 KiB would pad the file), SysV .hash
# only (the loader ignores .gnu.hash), no PT_INTERP, no build-id note.
LDFLAGS = ("-pie", f"-Wl,-T,{LINKER_SCRIPT}", "-Wl,--export-dynamic-symbol=ta_head",
           "-Wl,-z,norelro", "-Wl,-z,max-page-size=4096", "-Wl,-z,common-page-size=4096",
           "-Wl,--hash-style=sysv", "-Wl,--build-id=none", "-Wl,--no-dynamic-linker",
           "-Wl,-z,noexecstack", "-Wl,-z,text", "-Wl,--no-undefined")


class TaToolchainError(RuntimeError):
    """A C TA could not be built (compiler error, link error, or an image the loader refuses)."""


class TaToolchainMissing(TaToolchainError):
    """The cross compiler is not installed."""


def cross_prefix() -> str:
    return os.environ.get(CROSS_ENV, DEFAULT_CROSS)


def find_compiler() -> str | None:
    """Path of ``<prefix>gcc``, or None."""
    return shutil.which(cross_prefix() + "gcc")


def toolchain_available() -> bool:
    return find_compiler() is not None


def require_compiler() -> str:
    gcc = find_compiler()
    if gcc is None:
        raise TaToolchainMissing(
            f"C TAs need the AArch64 cross compiler '{cross_prefix()}gcc', which was not found "
            f"on PATH: install the Debian package {DEBIAN_PACKAGE} (apt-get install "
            f"{DEBIAN_PACKAGE}), or set {CROSS_ENV} to another toolchain's prefix")
    return gcc


@functools.lru_cache(maxsize=8)
def _compiler_identity(gcc: str) -> str:
    try:
        out = subprocess.run([gcc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise TaToolchainError(f"{gcc} --version failed: {exc}") from None
    return f"{gcc}\n{out.stdout.splitlines()[0] if out.stdout else ''}"


def uuid_initializer(u: uuid_mod.UUID) -> str:
    """A C initializer of TEE_UUID {timeLow, timeMid, timeHiAndVersion, {clockSeqAndNode}}."""
    node = ", ".join(f"0x{b:02x}" for b in u.bytes[8:])
    return f"{{0x{u.time_low:08x}, 0x{u.time_mid:04x}, 0x{u.time_hi_version:04x}, {{{node}}}}}"


def ta_defines(entry: Mapping[str, Any]) -> list[str]:
    """The -D flags carrying the manifest entry's ta_head fields."""
    u = uuid_mod.UUID(str(entry["uuid"]))
    return [f"-DTA_UUID_INIT={uuid_initializer(u)}",
            f"-DTA_STACK_SIZE={int(entry['stack_size']):#x}",
            f"-DTA_FLAGS={int(entry['flags']):#x}"]


def _inputs(source: Path) -> list[Path]:
    files = {source}
    files.update(p for p in RUNTIME_DIR.rglob("*") if p.is_file())
    files.update(SECURE_INCLUDE.glob("**/*.h"))
    files.update(source.parent.glob("*.h"))
    return sorted(files)


def build_key(entry: Mapping[str, Any], source: Path, gcc: str) -> str:
    """Hash of everything the ELF is made from."""
    h = hashlib.sha256()
    for path in _inputs(source):
        h.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(json.dumps(dict(entry), sort_keys=True, default=str).encode())
    h.update("\0".join(CFLAGS + LDFLAGS).encode())
    h.update(_compiler_identity(gcc).encode())
    return h.hexdigest()[:20]


def cache_root() -> Path:
    from ta.sign import cache_dir
    return cache_dir() / "ta-gcc"


def compile_command(entry: Mapping[str, Any], source: Path, gcc: str, out: Path) -> list[str]:
    sources = [str(RUNTIME_DIR / name) for name in RUNTIME_SOURCES] + [str(source)]
    return [gcc, *CFLAGS, f"-I{RUNTIME_INCLUDE}", f"-I{SECURE_INCLUDE}", f"-I{source.parent}",
            *ta_defines(entry), "-o", str(out), *sources, *LDFLAGS]


def _check(elf: bytes, name: str) -> None:
    """The linked image must load with the project's ldelf-like loader."""
    from tee_os.ta_loader import TaLoadError, load_ta_elf
    try:
        load_ta_elf(elf, name=name)
    except TaLoadError as exc:
        raise TaToolchainError(f"{name}: the linked TA is refused by the loader: "
                               f"{exc.message}") from None


def build_c_ta(entry: Mapping[str, Any], source: Path) -> bytes:
    """Compile and link one ``toolchain = "gcc"`` manifest entry into TA ELF bytes (cached)."""
    gcc = require_compiler()
    source = Path(source).resolve()
    if not source.is_file():
        raise TaToolchainError(f"C TA source {source} not found")
    name = str(entry.get("name", source.stem))
    target = cache_root() / f"{name}-{build_key(entry, source, gcc)}.elf"
    if target.is_file():
        return target.read_bytes()
    with tempfile.TemporaryDirectory(prefix="tzemu-cta-") as tmp:
        out = Path(tmp) / f"{name}.elf"
        cmd = compile_command(entry, source, gcc, out)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp)
        except (OSError, subprocess.SubprocessError) as exc:
            raise TaToolchainError(f"{name}: running {gcc} failed: {exc}") from None
        if proc.returncode != 0:
            raise TaToolchainError(f"{name}: {Path(gcc).name} failed (exit {proc.returncode}) "
                                   f"building {source.name}:\n{proc.stderr.strip()}")
        elf = out.read_bytes()
    _check(elf, name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_target = target.with_suffix(f".{os.getpid()}.tmp")
        tmp_target.write_bytes(elf)
        os.replace(tmp_target, target)
        _prune(target)
    except OSError:
        pass                       # an unwritable cache only costs a rebuild next time
    return elf


def _prune(keep: Path, newest: int = 4) -> None:
    """Drop all but the ``newest`` cached builds of the same TA name."""
    name = keep.name.rsplit("-", 1)[0]
    old = sorted((p for p in keep.parent.glob(f"{name}-*.elf") if p != keep
                  and p.name.rsplit("-", 1)[0] == name),
                 key=lambda p: p.stat().st_mtime, reverse=True)
    for path in old[newest - 1:]:
        path.unlink(missing_ok=True)
