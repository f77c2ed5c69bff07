"""Parse a TA ELF the way OP-TEE's ldelf does (optee_ta_format.md §3), without mapping it.

The result, :class:`TaImage`, is what the secure OS needs to instantiate a TA: page-aligned
segments with their permissions, the relocations to apply (``base + addend``), the ``ta_head``
fields and the entry offset. Every rejection is a :class:`TaLoadError` carrying the GP code
ldelf would report, because the open-session caller sees exactly that code.

The ELF and program headers are checked with ``struct`` first (ldelf reads them from the first
page itself); lief then provides sections, dynamic entries and symbols. Nothing malformed may
escape as another exception: lief is wrapped and its logging silenced.
"""
from __future__ import annotations

import struct
import uuid as uuid_mod
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import lief

TEE_ERROR_BAD_FORMAT = 0xFFFF0005
TEE_ERROR_NOT_SUPPORTED = 0xFFFF000A
TEE_ERROR_OUT_OF_MEMORY = 0xFFFF000C

PAGE = 0x1000
MAX_IMAGE_SIZE = 64 << 20        # far above any real TA; refuse absurd memsz like a full VA space
TA_FLAGS_MASK = 0x3FFF
TA_FLAG_CONCURRENT = 1 << 8
DEPR_ENTRY_NONE = 0xFFFF_FFFF_FFFF_FFFF

ET_DYN, EM_AARCH64 = 3, 183
PT_LOAD, PT_DYNAMIC, PT_TLS = 1, 2, 7
PF_X, PF_W, PF_R = 1, 2, 4
SHT_RELA, SHT_NOBITS = 4, 8
R_AARCH64_NONE, R_AARCH64_RELATIVE = 0, 1027
_RELOC_NAMES = {257: "R_AARCH64_ABS64", 1025: "R_AARCH64_GLOB_DAT",
                1026: "R_AARCH64_JUMP_SLOT", 1030: "R_AARCH64_TLS_TPREL",
                1031: "R_AARCH64_TLSDESC"}

if hasattr(lief, "logging") and hasattr(lief.logging, "disable"):
    lief.logging.disable()


class TaLoadError(Exception):
    """The TA image is refused; ``tee_error`` is the GP code the open-session caller gets."""

    def __init__(self, tee_error: int, message: str) -> None:
        super().__init__(f"{message} (TEE error {tee_error:#010x})")
        self.tee_error = tee_error
        self.message = message


@dataclass(frozen=True)
class TaSegment:
    """One mapping: ``vaddr`` (page aligned, relative to the load base), initial bytes from
    ``vaddr`` on (rest of ``memsz`` is zero), and permissions "r", "rx" or "rw"."""

    vaddr: int
    data: bytes
    memsz: int
    perms: str


@dataclass(frozen=True)
class TaImage:
    """Everything needed to instantiate a TA from its ELF (offsets relative to the load base)."""

    uuid: uuid_mod.UUID
    flags: int
    stack_size: int
    entry: int
    segments: tuple[TaSegment, ...]
    relocations: tuple[tuple[int, int], ...]
    symbols: Mapping[str, int] = field(default_factory=dict, compare=False)
    ta_head_offset: int = 0
    name: str = "<ta>"
    image_size: int = 0
    elf: bytes = field(default=b"", compare=False, repr=False)   # the file, for gdb symbols


def _bad(message: str) -> TaLoadError:
    return TaLoadError(TEE_ERROR_BAD_FORMAT, message)


def _unsupported(message: str) -> TaLoadError:
    return TaLoadError(TEE_ERROR_NOT_SUPPORTED, message)


def _check_header(data: bytes, name: str) -> list[tuple[int, ...]]:
    """Validate the ELF header and return the program headers (as ldelf reads the first page)."""
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise _bad(f"{name}: not an ELF file (bad magic or shorter than an ELF header)")
    if data[4] == 1:
        raise _unsupported(f"{name}: 32-bit (ELFCLASS32) TAs are not supported")
    if data[4] != 2:
        raise _unsupported(f"{name}: ELF class {data[4]} not supported (need ELFCLASS64)")
    if data[5] != 1:
        raise _unsupported(f"{name}: big-endian or unknown ELF data encoding {data[5]}")
    (e_type, e_machine, _ver, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
     shentsize, shnum, shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)
    if e_machine != EM_AARCH64:
        raise _unsupported(f"{name}: e_machine {e_machine} is not EM_AARCH64")
    if e_type != ET_DYN:
        raise _unsupported(f"{name}: e_type {e_type} is not ET_DYN (TAs are PIE)")
    if phentsize != 56 or phnum == 0:
        raise _bad(f"{name}: bad program header table (entsize {phentsize}, count {phnum})")
    if phoff + phnum * 56 > min(len(data), PAGE):
        raise _bad(f"{name}: program headers do not fit in the first page of the file")
    if shnum == 0 or shentsize != 64 or shoff + shnum * 64 > len(data) or shstrndx >= shnum:
        raise _bad(f"{name}: missing or truncated section header table")
    for i in range(shnum):
        sh_type, _flags, _addr, sh_off, sh_size = struct.unpack_from("<IQQQQ", data,
                                                                     shoff + 64 * i + 4)
        if sh_type != SHT_NOBITS and sh_off + sh_size > len(data):
            raise _bad(f"{name}: section {i} extends past the end of the file")
    return [struct.unpack_from("<IIQQQQQQ", data, phoff + 56 * i) for i in range(phnum)]


def _segments(data: bytes, phdrs: list[tuple[int, ...]], name: str) -> list[TaSegment]:
    """Collect PT_LOADs with ldelf's rules; refuse TLS."""
    segs: list[TaSegment] = []
    for p_type, p_flags, p_offset, p_vaddr, _pa, p_filesz, p_memsz, _align in phdrs:
        if p_type == PT_TLS:
            raise _unsupported(f"{name}: PT_TLS segment: TLS not supported")
        if p_type != PT_LOAD:
            continue
        if p_memsz < p_filesz:
            raise _bad(f"{name}: PT_LOAD at {p_vaddr:#x} has memsz {p_memsz:#x} < filesz "
                       f"{p_filesz:#x}")
        if p_offset + p_filesz > len(data):
            raise _bad(f"{name}: PT_LOAD at {p_vaddr:#x} extends past the end of the file")
        if p_offset % PAGE != p_vaddr % PAGE:
            raise _bad(f"{name}: PT_LOAD at {p_vaddr:#x}: p_offset {p_offset:#x} is not "
                       f"congruent to p_vaddr modulo the page size")
        if not p_flags & PF_R:
            raise _unsupported(f"{name}: PT_LOAD at {p_vaddr:#x} is not readable")
        if p_vaddr + p_memsz > MAX_IMAGE_SIZE:
            raise TaLoadError(TEE_ERROR_OUT_OF_MEMORY,
                              f"{name}: image larger than {MAX_IMAGE_SIZE:#x} bytes")
        perms = "rw" if p_flags & PF_W else ("rx" if p_flags & PF_X else "r")
        if perms != "rw" and p_filesz != p_memsz:
            raise _bad(f"{name}: read-only PT_LOAD at {p_vaddr:#x} has filesz != memsz")
        base = p_vaddr & ~(PAGE - 1)
        pad = p_vaddr - base
        segs.append(TaSegment(base, bytes(pad) + data[p_offset:p_offset + p_filesz],
                              pad + p_memsz, perms))
    if not segs:
        raise _bad(f"{name}: no PT_LOAD segment")
    end = 0
    for seg in segs:
        if seg.vaddr < end:
            raise _bad(f"{name}: PT_LOAD segments overlap or are not in address order "
                       f"(segment at {seg.vaddr:#x})")
        end = (seg.vaddr + seg.memsz + PAGE - 1) & ~(PAGE - 1)
    return segs


def _read(segs: list[TaSegment], addr: int, size: int, what: str, name: str) -> bytes:
    """Read ``size`` bytes of the loaded image (zero past a segment's data)."""
    for seg in segs:
        if seg.vaddr <= addr and addr + size <= seg.vaddr + seg.memsz:
            chunk = seg.data[addr - seg.vaddr:addr - seg.vaddr + size]
            return chunk + bytes(size - len(chunk))
    raise _bad(f"{name}: {what} at {addr:#x} (+{size:#x}) is not inside a loaded segment")


def _parse_lief(data: bytes, name: str) -> "lief.ELF.Binary":
    try:
        binary = lief.ELF.parse(data)
    except Exception as exc:  # lief raises assorted errors on garbage
        raise _bad(f"{name}: ELF could not be parsed ({exc})") from None
    if binary is None:
        raise _bad(f"{name}: ELF could not be parsed")
    return binary


def _relocations(binary: "lief.ELF.Binary", segs: list[TaSegment], image_size: int,
                 name: str) -> list[tuple[int, int]]:
    """Walk every SHT_RELA section (not DT_RELA: it misses .rela.got), as ldelf does."""
    relocs: list[tuple[int, int]] = []
    for sec in binary.sections:
        if sec.type != lief.ELF.Section.TYPE.RELA:
            continue
        if sec.entry_size != 24 or sec.size % 24:
            raise _bad(f"{name}: relocation section {sec.name!r} has a bad entry size")
        table = _read(segs, sec.virtual_address, sec.size, f"section {sec.name!r}", name)
        for r_offset, r_info, r_addend in struct.iter_unpack("<QQq", table):
            r_type = r_info & 0xFFFFFFFF
            if r_type == R_AARCH64_NONE:
                continue
            if r_type != R_AARCH64_RELATIVE:
                rname = _RELOC_NAMES.get(r_type, "unknown")
                raise _bad(f"{name}: relocation type {r_type} ({rname}) in {sec.name!r} not "
                           f"supported (only R_AARCH64_RELATIVE)")
            if r_offset + 8 > image_size:
                raise _bad(f"{name}: relocation offset {r_offset:#x} is outside the image "
                           f"(size {image_size:#x})")
            relocs.append((r_offset, r_addend))
    return relocs


def _symbols(binary: "lief.ELF.Binary") -> dict[str, int]:
    """Defined named symbols, from .symtab when present (debug builds) else .dynsym."""
    table = list(binary.symtab_symbols) or list(binary.dynamic_symbols)
    skip = {lief.ELF.Symbol.TYPE.SECTION, lief.ELF.Symbol.TYPE.FILE}
    return {s.name: s.value for s in table if s.name and s.shndx != 0 and s.type not in skip}


def _load(data: bytes, name: str) -> TaImage:
    phdrs = _check_header(data, name)
    segs = _segments(data, phdrs, name)
    image_size = segs[-1].vaddr + ((segs[-1].memsz + PAGE - 1) & ~(PAGE - 1))
    entry = struct.unpack_from("<Q", data, 24)[0]
    if not any(s.perms == "rx" and s.vaddr <= entry < s.vaddr + s.memsz for s in segs):
        raise _bad(f"{name}: entry point {entry:#x} is not in an executable segment")
    binary = _parse_lief(data, name)
    needed = [e for e in binary.dynamic_entries if e.tag == lief.ELF.DynamicEntry.TAG.NEEDED]
    if needed:
        raise _unsupported(f"{name}: DT_NEEDED present: shared TA libraries not supported")
    relocs = _relocations(binary, segs, image_size, name)
    sym = binary.get_dynamic_symbol("ta_head")
    if sym is None:
        raise _bad(f"{name}: no dynamic symbol 'ta_head'")
    head = _read(segs, sym.value, 32, "ta_head", name)
    stack_size, flags, depr_entry = struct.unpack_from("<IIQ", head, 16)
    if depr_entry != DEPR_ENTRY_NONE:
        raise _unsupported(f"{name}: legacy TA (ta_head.depr_entry {depr_entry:#x} != "
                           f"UINT64_MAX) not supported")
    if stack_size == 0 or stack_size % 16:
        raise _bad(f"{name}: ta_head.stack_size {stack_size:#x} is zero or not 16-byte aligned")
    if flags & ~TA_FLAGS_MASK:
        raise _bad(f"{name}: ta_head.flags {flags:#x} outside TA_FLAGS_MASK {TA_FLAGS_MASK:#x}")
    if flags & TA_FLAG_CONCURRENT:
        raise _bad(f"{name}: ta_head.flags {flags:#x} has TA_FLAG_CONCURRENT (pseudo-TAs only)")
    return TaImage(uuid=uuid_mod.UUID(bytes_le=head[:16]), flags=flags, stack_size=stack_size,
                   entry=entry, segments=tuple(segs), relocations=tuple(relocs),
                   symbols=MappingProxyType(_symbols(binary)), ta_head_offset=sym.value,
                   name=name, image_size=image_size, elf=data)


def load_ta_elf(data: bytes, *, name: str = "<ta>") -> TaImage:
    """Parse and check a TA ELF; raise :class:`TaLoadError` (never anything else) if refused."""
    try:
        with warnings.catch_warnings():    # lief warns on enum values it does not know
            warnings.simplefilter("ignore")
            return _load(bytes(data), name)
    except TaLoadError:
        raise
    except Exception as exc:  # struct/lief surprises on malformed input are format errors
        raise _bad(f"{name}: malformed ELF ({type(exc).__name__}: {exc})") from None
