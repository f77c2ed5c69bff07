"""AArch64 assembly at build/load time with keystone.

keystone 0.9.2 has three gaps that this module closes, so the `.S` sources under
`firmware/`, `tee_os/` and `ta/` read like ordinary GNU-as AArch64:

* it cannot encode the crypto extension (`aese`, `aesd`, `aesmc`, `aesimc`): those lines are
  rewritten to `.long` encodings by :func:`crypto_encoding`;
* it does not report label addresses: every label is appended to a `.quad` table at the end of
  the unit (after an explicit ``.ltorg``, so literal pools stay before it), whose bytes give the
  addresses without moving any code;
* it has no preprocessor: ``.equ`` definitions are injected from a ``defines`` mapping (the
  constants that the owning side read from its own C headers), and ``#include``/``#define``
  lines are refused with a clear error rather than silently mis-assembled. GNU as's
  ``.include "file"`` is expanded here (relative to the including file's directory), so a
  long unit can be split into files without a build-system change.

Numeric local labels (``1:``) are rejected by keystone; a clear :class:`AsmError` says so.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from keystone import KS_ARCH_ARM64, KS_MODE_LITTLE_ENDIAN, Ks, KsError


class AsmError(Exception):
    """An assembly source could not be assembled; the message names file and line."""


# Crypto-extension opcodes (Arm ARM, "AESE/AESD/AESMC/AESIMC", 128-bit vector form).
_CRYPTO_OPCODES = {
    "aese": 0x4E284800,
    "aesd": 0x4E285800,
    "aesmc": 0x4E286800,
    "aesimc": 0x4E287800,
}
_CRYPTO_RE = re.compile(
    r"^\s*(aese|aesd|aesmc|aesimc)\s+v(\d+)\.16b\s*,\s*v(\d+)\.16b\s*$", re.IGNORECASE
)
_LABEL_RE = re.compile(r"^\s*([A-Za-z_.$][\w.$]*)\s*:")
_NUMERIC_LABEL_RE = re.compile(r"^\s*\d+\s*:")


def crypto_encoding(mnemonic: str, vd: int, vn: int) -> int:
    """Return the 32-bit encoding of an AES crypto-extension instruction."""
    try:
        base = _CRYPTO_OPCODES[mnemonic.lower()]
    except KeyError:
        raise AsmError(f"not a crypto-extension mnemonic: {mnemonic}") from None
    if not (0 <= vd < 32 and 0 <= vn < 32):
        raise AsmError(f"vector register out of range in {mnemonic} v{vd}, v{vn}")
    return base | (vn << 5) | vd


@dataclass(frozen=True)
class Program:
    """An assembled unit: code bytes loaded at ``base`` and its label addresses."""

    name: str
    base: int
    code: bytes
    symbols: Mapping[str, int] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.base + len(self.code)

    def sym(self, name: str) -> int:
        try:
            return self.symbols[name]
        except KeyError:
            raise KeyError(f"{self.name}: no label {name!r}") from None

    def symbolize(self, addr: int) -> str | None:
        """Return ``label+off`` for an address inside this program, or None."""
        if not (self.base <= addr < self.end):
            return None
        best = None
        for name, value in self.symbols.items():
            if value <= addr and (best is None or value > best[1]):
                best = (name, value)
        if best is None:
            return None
        off = addr - best[1]
        return best[0] if off == 0 else f"{best[0]}+{off:#x}"


@lru_cache(maxsize=1)
def _keystone() -> Ks:
    return Ks(KS_ARCH_ARM64, KS_MODE_LITTLE_ENDIAN)


def _strip_comment(line: str) -> str:
    for marker in ("//", ";"):
        pos = line.find(marker)
        if pos >= 0:
            line = line[:pos]
    return line.rstrip()


_INCLUDE_RE = re.compile(r'^\s*\.include\s+"([^"]+)"\s*$')
_MAX_INCLUDE_DEPTH = 8


def _preprocess(source: str, name: str, include_dir: Path | None = None,
                depth: int = 0) -> tuple[list[str], list[str]]:
    """Rewrite crypto instructions, collect labels, expand ``.include``, refuse what keystone
    mis-handles."""
    out: list[str] = []
    labels: list[str] = []
    in_block_comment = False
    for lineno, raw in enumerate(source.splitlines(), 1):
        line = raw
        if in_block_comment:
            end = line.find("*/")
            if end < 0:
                out.append("")
                continue
            line = line[end + 2:]
            in_block_comment = False
        while "/*" in line:
            start = line.find("/*")
            end = line.find("*/", start + 2)
            if end < 0:
                line = line[:start]
                in_block_comment = True
                break
            line = line[:start] + line[end + 2:]
        line = _strip_comment(line)
        stripped = line.strip()
        inc = _INCLUDE_RE.match(line)
        if inc:
            sub_out, sub_labels = _include(inc.group(1), name, lineno, include_dir, depth)
            out.extend(sub_out)
            labels.extend(sub_labels)
            continue
        if stripped.startswith("#"):
            raise AsmError(f"{name}:{lineno}: C preprocessor line not supported here "
                           f"(pass constants through 'defines'): {stripped}")
        if _NUMERIC_LABEL_RE.match(line):
            raise AsmError(f"{name}:{lineno}: numeric local labels are not supported by "
                           f"keystone; use a named label: {stripped}")
        if stripped.startswith(".section") or stripped in (".text", ".data", ".bss"):
            raise AsmError(f"{name}:{lineno}: sections are not supported; lay data out "
                           f"after code with .balign: {stripped}")
        m = _LABEL_RE.match(line)
        if m:
            labels.append(m.group(1))
        cm = _CRYPTO_RE.match(line.split(":", 1)[-1] if m else line)
        if cm:
            enc = crypto_encoding(cm.group(1), int(cm.group(2)), int(cm.group(3)))
            prefix = f"{m.group(1)}: " if m else ""
            line = f"{prefix}.long {enc:#010x}"
        out.append(line)
    return out, labels


def _include(file: str, name: str, lineno: int, include_dir: Path | None,
             depth: int) -> tuple[list[str], list[str]]:
    if include_dir is None:
        raise AsmError(f"{name}:{lineno}: .include needs a source file (assemble_file or "
                       f"include_dir)")
    if depth >= _MAX_INCLUDE_DEPTH:
        raise AsmError(f"{name}:{lineno}: .include nested deeper than {_MAX_INCLUDE_DEPTH}")
    path = include_dir / file
    try:
        text = path.read_text()
    except OSError as exc:
        raise AsmError(f"{name}:{lineno}: cannot .include {file}: {exc.strerror}") from None
    return _preprocess(text, path.name, path.parent, depth + 1)


def assemble(source: str, base: int, *, name: str = "<asm>",
             defines: Mapping[str, int] | None = None,
             include_dir: str | Path | None = None) -> Program:
    """Assemble ``source`` for address ``base``; return code and label addresses."""
    lines, labels = _preprocess(source, name, Path(include_dir) if include_dir else None)
    header = [f".equ {k}, {int(v):#x}" for k, v in sorted((defines or {}).items())]
    table = [".ltorg", ".balign 8", "__tzemu_symtab__:"] + [f".quad {lab}" for lab in labels]
    text = "\n".join(header + lines + table) + "\n"
    try:
        encoding, _count = _keystone().asm(text, base)
    except KsError as exc:
        raise AsmError(f"{name}: keystone could not assemble: {exc}") from None
    if encoding is None:
        raise AsmError(f"{name}: keystone produced no output")
    blob = bytes(encoding)
    ntab = len(labels) * 8
    values = struct.unpack_from(f"<{len(labels)}Q", blob, len(blob) - ntab) if labels else ()
    symbols = dict(zip(labels, values))
    # Drop the label table; the alignment padding before it stays (it is never executed).
    code = blob[:len(blob) - ntab]
    return Program(name=name, base=base, code=code, symbols=symbols)


def assemble_file(path: str | Path, base: int, *,
                  defines: Mapping[str, int] | None = None) -> Program:
    path = Path(path)
    return assemble(path.read_text(), base, name=path.name, defines=defines,
                    include_dir=path.parent)
