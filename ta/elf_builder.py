"""Write an OP-TEE-style TA ELF (AArch64 ET_DYN) from an assembled :class:`emu.asm.Program`.

We have no cross linker, so this module plays GNU ld's role for our hand-written TAs: it packs
the code (assembled at base 0) into a real ELF that readelf, gdb, lief and our ldelf-like loader
(:mod:`tee_os.ta_loader`) all accept, with the pieces an OP-TEE loader needs: ``.ta_head`` found
through the dynamic symbol ``ta_head``, ``.dynsym``/``.hash``/``.dynamic`` and ``.rela.dyn``.

Layout (file offsets; vaddr = file offset - 0x1000, as in GNU-ld TAs such as sdp_basic):

* 0x0: ELF header and program headers (not part of any PT_LOAD, like sdp_basic);
* 0x1000: RX PT_LOAD at vaddr 0: the code up to its content end, then ``.ta_head`` (8-aligned),
  ``.dynsym``, ``.dynstr``, ``.hash``, ``.rela.dyn`` and ``.dynamic``, all read-only;
* 0x1000 + D: RW PT_LOAD at vaddr D (the ``data_label`` address): ``.data`` then ``.bss``;
* then ``.symtab``, ``.strtab``, ``.shstrtab`` and the section header table.

The RW segment keeps the vaddr it was assembled for (``adr`` in the code depends on it), so the
metadata must fit in the gap between the code's content end and the data page. The content end
is where the '.balign' padding (zeros or the NOPs keystone emits) before ``data_label`` starts,
or the highest label before it if later: put a label (e.g. ``__text_end:``) after trailing
zero-filled read-only data or trailing NOPs that matter.
"""
from __future__ import annotations

import struct
import uuid as uuid_mod
from typing import Sequence

from emu.asm import Program

PAGE = 0x1000
TA_HEAD_SIZE = 32
DEPR_ENTRY_NONE = 0xFFFF_FFFF_FFFF_FFFF

# ELF constants (System V gABI, AArch64 psABI).
ET_DYN, EM_AARCH64, EV_CURRENT = 3, 183, 1
PT_LOAD, PT_DYNAMIC, PT_TLS, PT_GNU_STACK = 1, 2, 7, 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
SHT_NULL, SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA = 0, 1, 2, 3, 4
SHT_HASH, SHT_DYNAMIC, SHT_NOBITS, SHT_DYNSYM = 5, 6, 8, 11
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
STB_LOCAL, STB_GLOBAL = 0, 1
STT_NOTYPE, STT_OBJECT, STT_FUNC = 0, 1, 2
DT_NULL, DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB = 0, 1, 4, 5, 6
DT_RELA, DT_RELASZ, DT_RELAENT, DT_STRSZ, DT_SYMENT = 7, 8, 9, 10, 11
DT_RELACOUNT, DT_FLAGS_1, DF_1_PIE = 0x6FFFFFF9, 0x6FFFFFFB, 0x08000000
R_AARCH64_RELATIVE = 1027

EHDR_SIZE, PHDR_SIZE, SHDR_SIZE, SYM_SIZE, RELA_SIZE, DYN_SIZE = 64, 56, 64, 24, 24, 16
RX_FILE_OFFSET = 0x1000


class ElfBuildError(ValueError):
    """The Program cannot be packed into a TA ELF; the message says what to change."""


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) & ~(alignment - 1)


def ta_head_bytes(ta_uuid: uuid_mod.UUID, stack_size: int, flags: int,
                  depr_entry: int = DEPR_ENTRY_NONE) -> bytes:
    """Encode ``struct ta_head`` (TEE_UUID is little-endian fields, unlike the octet form)."""
    return ta_uuid.bytes_le + struct.pack("<IIQ", stack_size, flags, depr_entry)


def sysv_hash(name: bytes) -> int:
    """The System V ELF hash (gABI), used by ``.hash``."""
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


class _StrTab:
    """A string table that hands out offsets, deduplicating names."""

    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self._index: dict[str, int] = {"": 0}

    def add(self, name: str) -> int:
        if name not in self._index:
            self._index[name] = len(self.data)
            self.data += name.encode() + b"\0"
        return self._index[name]


def _sym(name: int, info: int, shndx: int, value: int, size: int = 0) -> bytes:
    return struct.pack("<IBBHQQ", name, info, 0, shndx, value, size)


_NOP = struct.pack("<I", 0xD503201F)   # keystone pads '.balign' in code with NOPs, not zeros


def _content_end(code: bytes, symbols: dict[str, int], limit: int) -> int:
    """End of the read-only content: padding (zeros, aligned NOPs) stripped, but never below
    the highest label before ``limit``."""
    end = limit
    while end > 0:
        if code[end - 1] == 0:
            end -= 1
        elif end % 4 == 0 and code[end - 4:end] == _NOP:
            end -= 4
        else:
            break
    for addr in symbols.values():
        if addr < limit:
            end = max(end, addr)
    return end


def build_ta_elf(program: Program, *, uuid: uuid_mod.UUID, flags: int, stack_size: int,
                 bss_size: int = 0, data_label: str = "__data_start",
                 relative_relocs: Sequence[int] = (),
                 depr_entry: int = DEPR_ENTRY_NONE) -> bytes:
    """Pack ``program`` (assembled at base 0) into a TA ELF and return its bytes.

    ``relative_relocs`` lists offsets of 64-bit slots in the RW data that hold link-time
    addresses; each gets an ``R_AARCH64_RELATIVE`` entry with the slot's value as addend.
    ``depr_entry`` exists only so tests can build legacy-looking TAs.
    """
    if program.base != 0:
        raise ElfBuildError(f"{program.name}: TA code must be assembled at base 0, "
                            f"not {program.base:#x}")
    symbols = dict(program.symbols)
    if "__ta_entry" not in symbols:
        raise ElfBuildError(f"{program.name}: no '__ta_entry' label (the TA entry point)")
    if not 0 <= bss_size < 1 << 32 or not 0 <= stack_size < 1 << 32 or not 0 <= flags < 1 << 32:
        raise ElfBuildError(f"{program.name}: stack_size, flags and bss_size must be u32")
    code = program.code
    data_start = symbols.get(data_label)
    if data_start is not None:
        if data_start % PAGE:
            raise ElfBuildError(f"{program.name}: data label {data_label!r} at {data_start:#x} "
                                f"is not 4 KiB aligned (put '.balign 4096' before it)")
        if data_start == 0:
            raise ElfBuildError(f"{program.name}: data label {data_label!r} is at 0: no code")
    elif bss_size:
        raise ElfBuildError(f"{program.name}: bss_size needs an RW segment; "
                            f"no {data_label!r} label")
    rx_limit = data_start if data_start is not None else len(code)
    entry = symbols["__ta_entry"]
    if entry >= rx_limit:
        raise ElfBuildError(f"{program.name}: '__ta_entry' ({entry:#x}) is not in the code")
    text_end = _content_end(code, symbols, rx_limit)

    # Relocations: slots in the RW data, pre-filled with their addend (GNU ld style).
    data_end = len(code)
    relas = bytearray()
    for off in relative_relocs:
        if data_start is None or not data_start <= off <= data_end - 8 or off % 8:
            raise ElfBuildError(f"{program.name}: relocation slot {off:#x} is not an aligned "
                                f"64-bit slot inside the RW data")
        addend = struct.unpack_from("<Q", code, off)[0]
        relas += struct.pack("<QQq", off, R_AARCH64_RELATIVE, addend)

    # Dynamic symbols: null, ta_head (OBJECT), __ta_entry (FUNC); all globals after the null.
    dynstr = _StrTab()
    dyn_names = ["ta_head", "__ta_entry"]
    dyn_name_off = [dynstr.add(n) for n in dyn_names]

    # Section indices (fixed order).
    names = [".text", ".ta_head", ".dynsym", ".dynstr", ".hash"]
    if relas:
        names.append(".rela.dyn")
    names.append(".dynamic")
    rw_filesz = data_end - data_start if data_start is not None else 0
    rw_memsz = _align(rw_filesz + bss_size, PAGE) if data_start is not None else 0
    if data_start is not None:
        names.append(".data")
        if rw_memsz > rw_filesz:
            names.append(".bss")
    names += [".symtab", ".strtab", ".shstrtab"]
    idx = {n: i + 1 for i, n in enumerate(names)}

    # Read-only metadata after the code, at vaddr == RX offset.
    ta_head_addr = _align(text_end, 8)
    dynsym_addr = ta_head_addr + TA_HEAD_SIZE
    dynsym = (_sym(0, 0, 0, 0)
              + _sym(dyn_name_off[0], (STB_GLOBAL << 4) | STT_OBJECT, idx[".ta_head"],
                     ta_head_addr, TA_HEAD_SIZE)
              + _sym(dyn_name_off[1], (STB_GLOBAL << 4) | STT_FUNC, idx[".text"], entry))
    dynstr_addr = dynsym_addr + len(dynsym)
    hash_addr = _align(dynstr_addr + len(dynstr.data), 8)
    nsyms = 1 + len(dyn_names)
    nbucket = 1
    buckets = [0] * nbucket
    chains = [0] * nsyms
    for i, n in enumerate(dyn_names, 1):
        b = sysv_hash(n.encode()) % nbucket
        chains[i] = buckets[b]
        buckets[b] = i
    hash_tab = struct.pack(f"<II{nbucket}I{nsyms}I", nbucket, nsyms, *buckets, *chains)
    rela_addr = _align(hash_addr + len(hash_tab), 8)
    dynamic_addr = _align(rela_addr + len(relas), 8)
    dyn_entries = [(DT_HASH, hash_addr), (DT_STRTAB, dynstr_addr), (DT_SYMTAB, dynsym_addr),
                   (DT_STRSZ, len(dynstr.data)), (DT_SYMENT, SYM_SIZE)]
    if relas:
        dyn_entries += [(DT_RELA, rela_addr), (DT_RELASZ, len(relas)), (DT_RELAENT, RELA_SIZE),
                        (DT_RELACOUNT, len(relas) // RELA_SIZE)]
    dyn_entries += [(DT_FLAGS_1, DF_1_PIE), (DT_NULL, 0)]
    dynamic = b"".join(struct.pack("<qQ", t, v) for t, v in dyn_entries)
    rx_filesz = dynamic_addr + len(dynamic)
    if data_start is not None and rx_filesz > data_start:
        raise ElfBuildError(
            f"{program.name}: no room for .ta_head and dynamic tables ({rx_filesz - ta_head_addr}"
            f" bytes) between the code end {text_end:#x} and {data_label!r} at {data_start:#x};"
            f" leave that much space before the '.balign 4096'")

    rx = bytearray(code[:text_end])
    rx += bytes(ta_head_addr - len(rx)) + ta_head_bytes(uuid, stack_size, flags, depr_entry)
    rx += dynsym + dynstr.data
    rx += bytes(hash_addr - len(rx)) + hash_tab
    rx += bytes(rela_addr - len(rx)) + relas
    rx += bytes(dynamic_addr - len(rx)) + dynamic
    assert len(rx) == rx_filesz

    # Static symbols for debuggers: locals (labels) first, then globals.
    strtab = _StrTab()
    local_syms: list[bytes] = []
    global_syms: list[bytes] = []
    for label, addr in sorted(symbols.items(), key=lambda kv: (kv[1], kv[0])):
        if addr < rx_limit or data_start is None:
            shndx = idx[".text"]
        elif addr < data_end or ".bss" not in idx:
            shndx = idx[".data"]
        else:
            shndx = idx[".bss"]
        if label == "__ta_entry":
            global_syms.append(_sym(strtab.add(label), (STB_GLOBAL << 4) | STT_FUNC, shndx, addr))
        else:
            local_syms.append(_sym(strtab.add(label), (STB_LOCAL << 4) | STT_NOTYPE, shndx, addr))
    global_syms.append(_sym(strtab.add("ta_head"), (STB_GLOBAL << 4) | STT_OBJECT,
                            idx[".ta_head"], ta_head_addr, TA_HEAD_SIZE))
    symtab = _sym(0, 0, 0, 0) + b"".join(local_syms) + b"".join(global_syms)
    first_global = 1 + len(local_syms)

    shstrtab = _StrTab()
    for n in names:
        shstrtab.add(n)

    # File layout.
    phnum = 3 + (1 if data_start is not None else 0)
    out = bytearray(RX_FILE_OFFSET)
    out += rx
    rw_off = 0
    if data_start is not None:
        rw_off = RX_FILE_OFFSET + data_start          # p_offset == p_vaddr (mod 4096)
        out += bytes(rw_off - len(out)) + code[data_start:]
    out += bytes(_align(len(out), 8) - len(out))
    symtab_off = len(out)
    out += symtab
    strtab_off = len(out)
    out += strtab.data
    shstrtab_off = len(out)
    out += shstrtab.data
    shoff = _align(len(out), 8)
    out += bytes(shoff - len(out))

    def sh(name: str, typ: int, flg: int, addr: int, off: int, size: int,
           link: int = 0, info: int = 0, align: int = 1, entsize: int = 0) -> bytes:
        return struct.pack("<IIQQQQIIQQ", shstrtab.add(name), typ, flg, addr, off, size,
                           link, info, align, entsize)

    rx_off = RX_FILE_OFFSET
    shdrs = [bytes(SHDR_SIZE),
             sh(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 0, rx_off, text_end, align=8),
             sh(".ta_head", SHT_PROGBITS, SHF_ALLOC, ta_head_addr, rx_off + ta_head_addr,
                TA_HEAD_SIZE, align=8),
             sh(".dynsym", SHT_DYNSYM, SHF_ALLOC, dynsym_addr, rx_off + dynsym_addr, len(dynsym),
                link=idx[".dynstr"], info=1, align=8, entsize=SYM_SIZE),
             sh(".dynstr", SHT_STRTAB, SHF_ALLOC, dynstr_addr, rx_off + dynstr_addr,
                len(dynstr.data)),
             sh(".hash", SHT_HASH, SHF_ALLOC, hash_addr, rx_off + hash_addr, len(hash_tab),
                link=idx[".dynsym"], align=8, entsize=4)]
    if relas:
        shdrs.append(sh(".rela.dyn", SHT_RELA, SHF_ALLOC, rela_addr, rx_off + rela_addr,
                        len(relas), link=idx[".dynsym"], align=8, entsize=RELA_SIZE))
    shdrs.append(sh(".dynamic", SHT_DYNAMIC, SHF_ALLOC, dynamic_addr, rx_off + dynamic_addr,
                    len(dynamic), link=idx[".dynstr"], align=8, entsize=DYN_SIZE))
    if data_start is not None:
        shdrs.append(sh(".data", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, data_start, rw_off,
                        rw_filesz, align=PAGE))
        if ".bss" in idx:
            shdrs.append(sh(".bss", SHT_NOBITS, SHF_ALLOC | SHF_WRITE, data_end,
                            rw_off + rw_filesz, rw_memsz - rw_filesz, align=8))
    shdrs += [sh(".symtab", SHT_SYMTAB, 0, 0, symtab_off, len(symtab), link=idx[".strtab"],
                 info=first_global, align=8, entsize=SYM_SIZE),
              sh(".strtab", SHT_STRTAB, 0, 0, strtab_off, len(strtab.data)),
              sh(".shstrtab", SHT_STRTAB, 0, 0, shstrtab_off, len(shstrtab.data))]
    out += b"".join(shdrs)

    def ph(typ: int, flg: int, off: int, vaddr: int, filesz: int, memsz: int, align: int) -> bytes:
        return struct.pack("<IIQQQQQQ", typ, flg, off, vaddr, vaddr, filesz, memsz, align)

    phdrs = [ph(PT_LOAD, PF_R | PF_X, rx_off, 0, rx_filesz, rx_filesz, PAGE)]
    if data_start is not None:
        phdrs.append(ph(PT_LOAD, PF_R | PF_W, rw_off, data_start, rw_filesz, rw_memsz, PAGE))
    phdrs += [ph(PT_DYNAMIC, PF_R, rx_off + dynamic_addr, dynamic_addr, len(dynamic),
                 len(dynamic), 8),
              ph(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16)]
    assert len(phdrs) == phnum
    ident = b"\x7fELF" + bytes([2, 1, EV_CURRENT, 0]) + bytes(8)   # ELFCLASS64, LSB, SYSV
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", ET_DYN, EM_AARCH64, EV_CURRENT, entry,
                               EHDR_SIZE, shoff, 0, EHDR_SIZE, PHDR_SIZE, phnum, SHDR_SIZE,
                               len(shdrs), idx[".shstrtab"])
    out[0:EHDR_SIZE] = ehdr
    out[EHDR_SIZE:EHDR_SIZE + len(phdrs) * PHDR_SIZE] = b"".join(phdrs)
    return bytes(out)
