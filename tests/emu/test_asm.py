"""emu.asm: keystone assembly with labels, crypto encodings and clear errors."""
import struct

import pytest
from capstone import CS_ARCH_ARM64, CS_MODE_ARM, Cs

from emu.asm import AsmError, assemble, assemble_file, crypto_encoding


def disasm(code: bytes, base: int) -> list[str]:
    cs = Cs(CS_ARCH_ARM64, CS_MODE_ARM)
    return [f"{i.mnemonic} {i.op_str}".strip() for i in cs.disasm(code, base)]


def test_labels_are_reported_at_their_addresses():
    p = assemble("start:\n nop\nloop:\n b loop\nend:\n nop\n", 0x4000)
    assert p.symbols == {"start": 0x4000, "loop": 0x4004, "end": 0x4008}
    assert p.symbolize(0x4006) == "loop+0x2"
    assert p.symbolize(0x4000) == "start"


def test_crypto_extension_lines_are_encoded_like_gnu_as():
    p = assemble("aese v0.16b, v1.16b\naesmc v0.16b, v0.16b\naesd v3.16b, v31.16b\n"
                 "aesimc v2.16b, v2.16b\n", 0)
    assert disasm(p.code[:16], 0) == ["aese v0.16b, v1.16b", "aesmc v0.16b, v0.16b",
                                      "aesd v3.16b, v31.16b", "aesimc v2.16b, v2.16b"]
    assert crypto_encoding("aesd", 3, 31) == struct.unpack("<I", p.code[8:12])[0]


def test_literal_pools_stay_before_the_label_table():
    p = assemble("a:\n ldr w0, =0xBE000005\n ret\nb:\n nop\n", 0x1000)
    assert 0xBE000005 in struct.unpack(f"<{len(p.code) // 4}I", p.code)
    assert p.symbols == {"a": 0x1000, "b": 0x1008}


def test_defines_become_equates():
    p = assemble("mov x0, #VALUE\n", 0, defines={"VALUE": 0x42})
    assert disasm(p.code[:4], 0) == ["mov x0, #0x42"]


@pytest.mark.parametrize("src, words", [
    ("1:\n b 1b\n", "numeric local labels"),
    ("#include <x.h>\n", "C preprocessor"),
    (".section .data\n", "sections"),
    ("frobnicate x0\n", "keystone could not assemble"),
])
def test_unsupported_source_gives_a_clear_error(src, words):
    with pytest.raises(AsmError, match=words):
        assemble(src, 0, name="bad.S")


def test_include_expands_a_file_relative_to_the_including_one(tmp_path) -> None:
    (tmp_path / "part.S").write_text("helper:\n    mov x0, #7\n    ret\n")
    main = tmp_path / "main.S"
    main.write_text('entry:\n    bl helper\n    .include "part.S"\nafter:\n    nop\n')
    prog = assemble_file(main, 0x1000)
    assert prog.sym("helper") == 0x1004 and prog.sym("after") == 0x100C


def test_include_of_a_missing_file_names_the_including_line(tmp_path) -> None:
    main = tmp_path / "main.S"
    main.write_text('    nop\n    .include "nope.S"\n')
    with pytest.raises(AsmError, match=r"main.S:2: cannot .include nope.S"):
        assemble_file(main, 0)


def test_include_without_a_source_file_is_refused() -> None:
    with pytest.raises(AsmError, match=r"needs a source file"):
        assemble('    .include "x.S"\n', 0, name="inline.S")


def test_recursive_include_stops_with_a_clear_error(tmp_path) -> None:
    (tmp_path / "loop.S").write_text('    .include "loop.S"\n')
    with pytest.raises(AsmError, match=r"nested deeper than"):
        assemble_file(tmp_path / "loop.S", 0)
