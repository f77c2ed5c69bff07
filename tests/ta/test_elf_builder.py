"""ta.elf_builder / ta.build: the TA ELF must be a real AArch64 ET_DYN that lief, readelf and an
OP-TEE-style loader accept, with ta_head, dynsym, hash and relocations where ldelf looks."""
from __future__ import annotations

import shutil
import struct
import subprocess
import uuid

import lief
import pytest

from emu.asm import assemble
from ta.build import buildable, load_manifest, builtin_tas, main as build_main
from ta.elf_builder import ElfBuildError, build_ta_elf, sysv_hash

ECHO_UUID = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")
ECHO_MULTI_UUID = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f32")
TEST_UUID = uuid.UUID("12345678-5b69-11e4-9dbb-101f74f00099")

SMALL_TA = """
__ta_entry:
    adr     x9, value
    ldr     x0, [x9]
    mov     x8, #0
    svc     #0
rodata:
    .ascii  "ro"
__text_end:
    .balign 4096
__data_start:
value:
    .quad   7
ptr:
    .quad   rodata
"""


def _small(**kw: object) -> tuple[bytes, object]:
    prog = assemble(SMALL_TA, 0, name="small.S")
    args = dict(uuid=TEST_UUID, flags=0x4, stack_size=0x1000, bss_size=0x2000,
                relative_relocs=[prog.sym("ptr")])
    args.update(kw)
    return build_ta_elf(prog, **args), prog


def _echo() -> bytes:
    return builtin_tas()[ECHO_UUID][1]


def _parse(elf: bytes) -> lief.ELF.Binary:
    binary = lief.ELF.parse(elf)
    assert binary is not None
    return binary


def _section(binary: lief.ELF.Binary, name: str) -> lief.ELF.Section:
    sec = binary.get_section(name)
    assert sec is not None, name
    return sec


def test_header_and_segments() -> None:
    elf, prog = _small()
    b = _parse(elf)
    assert b.header.file_type == lief.ELF.Header.FILE_TYPE.DYN
    assert b.header.machine_type == lief.ELF.ARCH.AARCH64
    assert b.header.identity_class == lief.ELF.Header.CLASS.ELF64
    assert b.entrypoint == prog.sym("__ta_entry")
    S = lief.ELF.Segment
    kinds = [s.type for s in b.segments]
    assert kinds == [S.TYPE.LOAD, S.TYPE.LOAD, S.TYPE.DYNAMIC, S.TYPE.GNU_STACK]
    rx, rw = b.segments[0], b.segments[1]
    assert rx.virtual_address == 0 and rx.has(S.FLAGS.R) and rx.has(S.FLAGS.X)
    assert not rx.has(S.FLAGS.W)
    assert rw.virtual_address == prog.sym("__data_start") == 0x1000
    assert rw.has(S.FLAGS.W) and not rw.has(S.FLAGS.X)
    for seg in (rx, rw):
        assert seg.file_offset % 0x1000 == seg.virtual_address % 0x1000
    assert rw.physical_size == len(prog.code) - 0x1000
    assert rw.virtual_size == 0x3000                      # filesz + bss 0x2000, page rounded
    assert rx.virtual_address + rx.virtual_size <= rw.virtual_address
    # The code bytes are in the RX segment unchanged (adr offsets stay valid).
    assert bytes(rx.content)[:len(prog.code[:8])] == prog.code[:8]
    assert bytes(rw.content) == prog.code[0x1000:]


def test_ta_head_decodes() -> None:
    elf, _ = _small()
    b = _parse(elf)
    sym = b.get_dynamic_symbol("ta_head")
    assert sym is not None
    assert sym.type == lief.ELF.Symbol.TYPE.OBJECT
    assert sym.binding == lief.ELF.Symbol.BINDING.GLOBAL and sym.size == 32
    assert sym.value % 8 == 0
    head = bytes(b.get_content_from_virtual_address(sym.value, 32))
    assert uuid.UUID(bytes_le=head[:16]) == TEST_UUID
    assert head[:4] == bytes.fromhex("78563412")            # timeLow little-endian
    assert struct.unpack_from("<IIQ", head, 16) == (0x1000, 0x4, 0xFFFFFFFFFFFFFFFF)
    sec = _section(b, ".ta_head")
    assert sec.virtual_address == sym.value and sec.size == 32
    rx = b.segments[0]
    assert rx.virtual_address <= sym.value and sym.value + 32 <= rx.virtual_address + rx.virtual_size


def test_dynsym_hash_and_dynamic() -> None:
    elf, prog = _small()
    b = _parse(elf)
    dyn = {s.name: s for s in b.dynamic_symbols if s.name}
    assert set(dyn) == {"ta_head", "__ta_entry"}
    assert dyn["__ta_entry"].type == lief.ELF.Symbol.TYPE.FUNC
    assert dyn["__ta_entry"].value == prog.sym("__ta_entry")
    tags = {e.tag: e.value for e in b.dynamic_entries}
    T = lief.ELF.DynamicEntry.TAG
    for tag in (T.HASH, T.SYMTAB, T.STRTAB, T.STRSZ, T.SYMENT, T.RELA, T.RELASZ, T.RELAENT):
        assert tag in tags, tag
    assert T.NEEDED not in tags
    assert tags[T.RELAENT] == 24 and tags[T.SYMENT] == 24
    # Look both dynamic symbols up through .hash the way a loader does.
    hash_sec, dynsym, dynstr = (_section(b, n) for n in (".hash", ".dynsym", ".dynstr"))
    assert tags[T.HASH] == hash_sec.virtual_address
    words = struct.unpack(f"<{hash_sec.size // 4}I", bytes(hash_sec.content))
    nbucket, nchain = words[0], words[1]
    buckets, chains = words[2:2 + nbucket], words[2 + nbucket:]
    syms, strs = bytes(dynsym.content), bytes(dynstr.content)
    for name in ("ta_head", "__ta_entry"):
        i = buckets[sysv_hash(name.encode()) % nbucket]
        while i:
            st_name = struct.unpack_from("<I", syms, 24 * i)[0]
            if strs[st_name:strs.index(b"\0", st_name)] == name.encode():
                break
            i = chains[i]
        assert i, name
    assert nchain == len(syms) // 24


def test_symtab_has_every_label() -> None:
    elf, prog = _small()
    b = _parse(elf)
    syms = {s.name: s for s in b.symtab_symbols if s.name}
    text, data, bss = (b.get_section(n) for n in (".text", ".data", ".bss"))
    assert text is not None and data is not None and bss is not None
    for label, addr in prog.symbols.items():
        assert syms[label].value == addr
    assert syms["__ta_entry"].binding == lief.ELF.Symbol.BINDING.GLOBAL
    assert syms["__ta_entry"].type == lief.ELF.Symbol.TYPE.FUNC
    assert syms["rodata"].binding == lief.ELF.Symbol.BINDING.LOCAL
    names = [s.name for s in b.sections]
    assert syms["rodata"].shndx == names.index(".text")
    assert syms["value"].shndx == names.index(".data")
    assert bss.type == lief.ELF.Section.TYPE.NOBITS
    assert bss.virtual_address == len(prog.code)


def test_relocations() -> None:
    elf, prog = _small()
    b = _parse(elf)
    rela = _section(b, ".rela.dyn")
    assert rela.type == lief.ELF.Section.TYPE.RELA
    entries = list(struct.iter_unpack("<QQq", bytes(rela.content)))
    assert entries == [(prog.sym("ptr"), 1027, prog.sym("rodata"))]
    # GNU-ld style: the slot is pre-filled with the addend.
    slot = bytes(b.get_content_from_virtual_address(prog.sym("ptr"), 8))
    assert struct.unpack("<Q", slot)[0] == prog.sym("rodata")
    rel = [r for r in b.dynamic_relocations]
    assert len(rel) == 1 and rel[0].address == prog.sym("ptr")


def test_without_data_label_has_no_rw_segment() -> None:
    prog = assemble("__ta_entry:\n    mov x8, #0\n    svc #0\n", 0)
    b = _parse(build_ta_elf(prog, uuid=TEST_UUID, flags=0, stack_size=0x1000))
    loads = [s for s in b.segments if s.type == lief.ELF.Segment.TYPE.LOAD]
    assert len(loads) == 1 and not loads[0].has(lief.ELF.Segment.FLAGS.W)
    assert b.get_section(".data") is None and b.get_section(".rela.dyn") is None
    assert b.get_dynamic_symbol("ta_head") is not None


@pytest.mark.parametrize("source, kwargs, words", [
    ("start:\n ret\n", {}, "__ta_entry"),
    ("__ta_entry:\n ret\n.balign 16\n__data_start:\n .quad 0\n", {}, "4 KiB aligned"),
    ("__ta_entry:\n ret\n", {"bss_size": 0x1000}, "RW segment"),
    ("__ta_entry:\n ret\n.balign 4096\n__data_start:\n .quad 0\n",
     {"relative_relocs": [0x4]}, "relocation slot"),
    ("__ta_entry:\n ret\n.balign 4096\n__data_start:\n .quad 0\n",
     {"relative_relocs": [0x1008]}, "relocation slot"),
])
def test_builder_errors_are_clear(source: str, kwargs: dict, words: str) -> None:
    prog = assemble(source, 0, name="bad.S")
    with pytest.raises(ElfBuildError, match=words):
        build_ta_elf(prog, uuid=TEST_UUID, flags=0, stack_size=0x1000, **kwargs)


def test_no_room_before_data_page() -> None:
    fill = "".join(" .quad 0x1111111111111111\n" for _ in range(509))   # code ends at 4076
    src = f"__ta_entry:\n ret\n{fill}.balign 4096\n__data_start:\n .quad 0\n"
    with pytest.raises(ElfBuildError, match="no room"):
        build_ta_elf(assemble(src, 0), uuid=TEST_UUID, flags=0, stack_size=0x1000)


def test_builtin_tas_manifest_and_cache() -> None:
    tas = builtin_tas()
    assert tas is builtin_tas()
    assert tas[ECHO_UUID][0] == "echo" and tas[ECHO_MULTI_UUID][0] == "echo_multi"
    manifest = {uuid.UUID(e["uuid"]): e for e in load_manifest() if buildable(e)}
    assert set(tas) == set(manifest)
    for ta_uuid, (_name, elf) in tas.items():
        b = _parse(elf)
        entry = manifest[ta_uuid]
        head = bytes(b.get_content_from_virtual_address(b.get_dynamic_symbol("ta_head").value,
                                                        32))
        assert uuid.UUID(bytes_le=head[:16]) == ta_uuid
        assert struct.unpack_from("<I", head, 20)[0] == entry["flags"]
        assert struct.unpack_from("<I", head, 16)[0] == entry["stack_size"]
        relocs = len(entry.get("relative_relocs_labels", []))
        if relocs:
            assert _section(b, ".rela.dyn").size == 24 * relocs


def test_build_main_writes_files(tmp_path) -> None:
    assert build_main([str(tmp_path)]) == 0
    assert (tmp_path / f"{ECHO_UUID}.elf").read_bytes() == _echo()
    assert (tmp_path / f"{ECHO_MULTI_UUID}.elf").exists()
    assert build_main([]) == 2


@pytest.mark.parametrize("tool", ["aarch64-linux-gnu-readelf", "readelf"])
def test_readelf_accepts(tool: str, tmp_path) -> None:
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} not installed")
    for i, elf in enumerate((_echo(), _small()[0])):
        path = tmp_path / f"ta{i}.elf"
        path.write_bytes(elf)
        res = subprocess.run([exe, "-aW", str(path)], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert "warning" not in res.stderr.lower() and "error" not in res.stderr.lower(), \
            res.stderr
        assert "R_AARCH64_RELATIVE" in res.stdout and "ta_head" in res.stdout
        assert "DYN (" in res.stdout and "AArch64" in res.stdout
