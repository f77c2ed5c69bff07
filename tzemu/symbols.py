"""Symbol ELF files for gdb: the NS stubs, the S-EL1 image and every TA, at their load addresses.

Each file is an AArch64 ELF (ET_EXEC) with one ``.text`` section at the load address holding the
code as loaded, and a ``.symtab`` of the unit's labels (STT_FUNC, absolute addresses), so
``add-symbol-file FILE`` (no address: the section address is already right) or the gdbserver's
``qXfer:libraries:read`` announcement gives names in gdb.

A TA whose ELF carries DWARF (the C TAs, built with ``-g``) is written as its own ELF instead,
announced with ``-o LOAD_BASE``, so gdb has its source lines, types and locals.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from ta.elf_builder import (EHDR_SIZE, EM_AARCH64, EV_CURRENT, SHDR_SIZE, SHF_ALLOC,
                            SHF_EXECINSTR, SHT_PROGBITS, SHT_STRTAB, SHT_SYMTAB, STB_GLOBAL,
                            STT_FUNC, _StrTab, _sym)

ET_EXEC = 2


class SymbolFile(NamedTuple):
    """One file for gdb: ``address`` of its code (the library announcement), and ``offset``
    for ``add-symbol-file -o`` (a TA's own ELF, linked at 0, loads at the TA base)."""

    path: str
    address: int
    offset: int = 0


def _has_dwarf(elf: bytes) -> bool:
    """Whether an ELF has a ``.debug_info`` section (read from its section headers)."""
    try:
        shoff, = struct.unpack_from("<Q", elf, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
        str_off, = struct.unpack_from("<Q", elf, shoff + shstrndx * shentsize + 0x18)
        for i in range(shnum):
            name, = struct.unpack_from("<I", elf, shoff + i * shentsize)
            end = elf.index(b"\0", str_off + name)
            if elf[str_off + name:end] == b".debug_info":
                return True
    except (struct.error, ValueError):
        pass
    return False


def symbol_elf(code: bytes, base: int, symbols: Mapping[str, int]) -> bytes:
    """An ELF with ``.text`` = ``code`` at ``base`` and ``symbols`` (absolute addresses)."""
    shstr = _StrTab()
    names = [shstr.add(n) for n in (".text", ".symtab", ".strtab", ".shstrtab")]
    strtab = _StrTab()
    syms = _sym(0, 0, 0, 0)
    ordered = sorted(symbols.items(), key=lambda kv: (kv[1], kv[0]))
    for i, (name, addr) in enumerate(ordered):
        nxt = ordered[i + 1][1] if i + 1 < len(ordered) else base + len(code)
        syms += _sym(strtab.add(name), (STB_GLOBAL << 4) | STT_FUNC, 1, addr, max(0, nxt - addr))
    text_off = 0x1000
    sym_off = text_off + len(code)
    sym_off = (sym_off + 7) & ~7
    str_off = sym_off + len(syms)
    shstr_off = str_off + len(strtab.data)
    sh_off = (shstr_off + len(shstr.data) + 7) & ~7
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, ET_EXEC, EM_AARCH64,
                       EV_CURRENT, base, 0, sh_off, 0, EHDR_SIZE, 0, 0, SHDR_SIZE, 5, 4)

    def shdr(name: int, typ: int, flags: int, addr: int, off: int, size: int, link: int = 0,
             info: int = 0, align: int = 1, entsize: int = 0) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, typ, flags, addr, off, size, link, info, align,
                           entsize)
    shdrs = (bytes(SHDR_SIZE)
             + shdr(names[0], SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, base, text_off, len(code),
                    align=4)
             + shdr(names[1], SHT_SYMTAB, 0, 0, sym_off, len(syms), link=3, info=1, align=8,
                    entsize=24)
             + shdr(names[2], SHT_STRTAB, 0, 0, str_off, len(strtab.data))
             + shdr(names[3], SHT_STRTAB, 0, 0, shstr_off, len(shstr.data)))
    out = bytearray(ehdr.ljust(text_off, b"\0"))
    out += code
    out = out.ljust(sym_off, b"\0") + syms + strtab.data + shstr.data
    out = out.ljust(sh_off, b"\0") + shdrs
    return bytes(out)


def _ta_code(image: Any) -> bytes:
    size = image.image_size or max(s.vaddr + s.memsz for s in image.segments)
    buf = bytearray(size)
    for seg in image.segments:
        buf[seg.vaddr:seg.vaddr + len(seg.data)] = seg.data
    return bytes(buf)


def write_symbols(platform: Any, out_dir: str | Path) -> list[SymbolFile]:
    """Write one ELF per code unit into ``out_dir``; return them as :class:`SymbolFile`."""
    from tee_os.ta_memory import TA_LOAD_BASE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[SymbolFile] = []

    def emit(name: str, code: bytes, base: int, symbols: Mapping[str, int]) -> None:
        path = (out / f"{name}.elf").resolve()
        path.write_bytes(symbol_elf(code, base, symbols))
        files.append(SymbolFile(str(path), base))

    stubs = platform.ns_stubs
    off = getattr(platform, "_va_offset", 0)      # the stubs run at their kernel VA
    emit("ns_stubs", stubs.code, stubs.base + off, {k: v + off for k, v in stubs.symbols.items()})
    img = platform.secure_os.image
    emit("tee_os", img.code, img.base, dict(img.symbols))
    tzc = getattr(platform.secure_os, "protmem_hook", None)
    if tzc is not None:         # S-EL1 TZC-400 programming routine, in secure SRAM
        emit("plat_tzc400", tzc.code.code, tzc.code.base, dict(tzc.code.symbols))
    for image in platform.secure_os.ta_manager.images.values():
        elf = getattr(image, "elf", b"")
        if elf and _has_dwarf(elf):           # the TA's own ELF: source-level debugging
            path = (out / f"ta_{image.name}.elf").resolve()
            path.write_bytes(elf)
            files.append(SymbolFile(str(path), TA_LOAD_BASE + image.entry, TA_LOAD_BASE))
            continue
        emit(f"ta_{image.name}", _ta_code(image), TA_LOAD_BASE,
             {k: v + TA_LOAD_BASE for k, v in image.symbols.items()})
    return files


def add_symbol_file_lines(files: list[SymbolFile]) -> list[str]:
    return [f"add-symbol-file {f.path}" + (f" -o {f.offset:#x}" if f.offset else "")
            for f in files]


def symbol_addresses(platform: Any) -> dict[str, int]:
    """Name -> address as gdb sees it: NS stubs at their kernel VA, S-EL1 image, TZC routine."""
    stubs = platform.ns_stubs
    off = getattr(platform, "_va_offset", 0)
    out = {k: v + off for k, v in stubs.symbols.items()}
    out.update(platform.secure_os.image.symbols)
    tzc = getattr(platform.secure_os, "protmem_hook", None)
    if tzc is not None:
        out.update(tzc.code.symbols)
    return out
