"""ABI header loader behaviour on small header sets (tests/emu/conftest.py ``BASIC``): the
preprocessor, constant evaluation, layout rules (packing, alignment, bit-fields, flexible
arrays), pack/unpack round trips, located errors and the cache."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import emu.abi as abi_mod
from emu.abi import AbiError, AbiSet, Field, StructLayout, load_headers

U64 = st.integers(min_value=0, max_value=2**64 - 1)


def test_preprocessor_and_constants(basic: AbiSet) -> None:
    c = basic.constants
    assert c["PICK"] == 20 and "NEVER" not in c and "MODE" in c
    assert c["ALL_ONES"] == 2**64 - 1 and c["TRUNCATED"] == 0x2345 and c["NEGATIVE"] == -6
    assert c["INT_MIN_SHIFT"] == -(2**31) and c["UNSIGNED_SHIFT"] == 2**31
    assert c["MIXED"] == 0 and c["OCTAL"] == 0o755 and c["CHARLIT"] == 0x48
    assert c["MASK"] == 0xFF00 and c["PK_SIZE"] == 5 and c["OFFS"] == 8 and c["COND"] == 0x10
    assert basic.constant_types["COND"] == "unsigned long"  # common type of both branches
    assert [c[k] for k in ("RED", "GREEN", "BLUE", "CYAN", "BELOW", "NEXT")] == [0, 1, 7, 8, -2, -1]
    assert "GREETING" in basic.skipped and "GREETING" not in c
    assert basic.call_macro("SQUARE", 7) == 49 and basic.call_macro("SQUARE", -3) == 9
    assert basic.call_macro("GENMASK", 63, 0) == 2**64 - 1
    with pytest.raises(AbiError, match="NOT_A_MACRO"):
        basic.call_macro("NOT_A_MACRO", 1)
    assert len(basic.headers) == 2 and basic.headers[1].endswith("inc/types.h")
    assert basic.locations["SQUARE"][1] == 13 and basic.locations["pk"][1] == 28
    assert basic.locations["BLUE"] == (str(Path(basic.headers[0])), 27)


def test_layout_rules(basic: AbiSet) -> None:
    s = basic.structs
    expect = {"pk": (5, 1, {"b": 1}), "pk2": (9, 1, {"b": 1}), "al": (16, 16, {}),
              "mal": (32, 16, {"b": 16, "c": 24}), "fl": (4, 4, {"items": 4}),
              "un": (8, 8, {"a": 0, "b": 0, "c": 0}),
              "nest": (32, 16, {"in": 4, "in.y": 4, "in.z": 8, "in.w": 8, "q": 16}),
              "bits": (12, 4, {"c": 1, "d": 4, "e": 8}), "pp": (6, 2, {"b": 2}),
              "after": (20, 4, {"b": 4, "col": 8, "arr": 12}), "anon_t": (8, 4, {"w": 4}),
              "usesw": (24, 8, {"w": 8, "arr2": 12})}
    for name, (size, align, offsets) in expect.items():
        assert (s[name].size, s[name].align) == (size, align), name
        assert {k: s[name].offset_of(k) for k in offsets} == offsets, name
    assert s["un"].is_union and not s["nest"].is_union
    items = s["fl"].field("items")
    assert (items.count, items.size, items.elem_size, items.is_struct.name) == (0, 0, 5, "pk")
    d, e = s["bits"].field("d"), s["bits"].field("e")
    assert (d.bit_offset, d.bit_width, e.bit_width, e.signed) == (0, 30, 4, True)
    assert s["after"].field("arr").count == 8  # dimension from an enum constant
    assert s["usesw"].field("arr2").count == 6  # multi-dimensional arrays are flattened
    assert isinstance(s["nest"].field("in.w"), Field) and s["nest"].field("in").is_struct
    with pytest.raises(KeyError, match="nope"):
        s["nest"].field("nope")


def test_pack_unpack(basic: AbiSet) -> None:
    nest = basic.structs["nest"]
    raw = nest.pack({"x": 1, "in": {"y": 0x11223344, "w": 0xAABBCCDD}, "q": {"a": 9}})
    assert len(raw) == 32 and raw[4:12] == bytes.fromhex("44332211ddccbbaa") and raw[16] == 9
    assert nest.unpack(raw) == {"x": 1, "in": {"y": 0x11223344, "z": 0xDD, "w": 0xAABBCCDD},
                                "q": {"a": 9}}
    bits = basic.structs["bits"]
    packed = bits.pack({"a": 5, "b": 31, "c": 0x7F, "d": (1 << 30) - 1, "e": -3})
    assert bits.unpack(packed) == {"a": 5, "b": 31, "c": 0x7F, "d": (1 << 30) - 1, "e": -3}
    un = basic.structs["un"]
    assert un.unpack(un.pack({"c": b"\x01\x02"})) == {"a": 0x0201, "b": 0x0201,
                                                     "c": b"\x01\x02\x00"}
    fl = basic.structs["fl"]
    assert fl.pack({"n": 3}) == b"\x03\0\0\0"
    with pytest.raises(ValueError, match="flexible"):
        fl.pack({"items": [{"a": 1}]})
    with pytest.raises(ValueError, match="does not fit"):
        basic.structs["pk"].pack({"a": 256})
    with pytest.raises(KeyError):
        basic.structs["pk"].pack({"zz": 1})
    with pytest.raises(ValueError, match="needs 5 bytes"):
        basic.structs["pk"].unpack(b"\0" * 8, offset=4)
    raw = memoryview(b"\xff" + b"\x01\0\0\x80" + b"x")
    assert isinstance(basic.structs["pk"], StructLayout)
    assert basic.structs["pk"].unpack(raw)["b"] == 0x80000001


@settings(max_examples=200, deadline=None)
@given(attr=U64, a=U64, b=U64, c=U64, offset=st.integers(0, 40))
def test_tee_ioctl_param_round_trip(attr: int, a: int, b: int, c: int, offset: int) -> None:
    layout = abi_mod.linux_abi().structs["tee_ioctl_param"]
    values = {"attr": attr, "a": a, "b": b, "c": c}
    raw = layout.pack(values)
    assert raw == struct.pack("<4Q", attr, a, b, c)
    assert layout.unpack(b"\xee" * offset + raw, offset) == values


@settings(max_examples=100, deadline=None)
@given(fd=st.integers(-(2**63), 2**63 - 1), size=U64, flags=st.integers(0, 2**32 - 1),
       id_=st.integers(-(2**31), 2**31 - 1))
def test_signed_fields_round_trip(fd: int, size: int, flags: int, id_: int) -> None:
    layout = abi_mod.linux_abi().structs["tee_ioctl_shm_register_fd_data"]
    values = {"fd": fd, "size": size, "flags": flags, "id": id_}
    assert layout.unpack(layout.pack(values)) == values
    assert layout.pack(values) == struct.pack("<qQIi", fd, size, flags, id_)


def test_syntax_error_is_located(tmp_path: Path, isolated_cache: Path, write_headers) -> None:
    root = write_headers(tmp_path, {"bad.h": "#define OK 1\nstruct fine { int a; };\n\n"
                                              "struct broken { int a\n  int b; };\n"
                                              "struct later { int c; };\n"})
    with pytest.raises(AbiError) as info:
        load_headers(root, ["bad.h"])
    assert f"{root / 'bad.h'}:5: syntax error" in str(info.value)
    assert [(p.file, p.line) for p in info.value.problems] == [(str(root / "bad.h"), 5)]
    lenient = load_headers(root, ["bad.h"], strict=False)  # the rest still loads
    assert set(lenient.structs) == {"fine", "later"} and lenient.constants["OK"] == 1


def test_unknown_types_are_reported(tmp_path: Path, isolated_cache: Path, write_headers) -> None:
    root = write_headers(tmp_path, {"unk.h": "typedef unsigned int u32;\nstruct s {\n  u32 a;\n"
                                              "  foo_t b;\n};\nstruct t { struct missing m; };\n"
                                              "struct v { u32 x; } __attribute__((vector_size(16)));\n"})
    with pytest.raises(AbiError) as info:
        load_headers(root, ["unk.h"])
    text = str(info.value)
    assert f"{root / 'unk.h'}:4:" in text and "foo_t" in text
    assert f"{root / 'unk.h'}:6: incomplete type 'struct missing'" in text
    assert f"{root / 'unk.h'}:7: unsupported attribute 'vector_size'" in text


def test_preprocessor_errors(tmp_path: Path, isolated_cache: Path, write_headers) -> None:
    root = write_headers(tmp_path, {"a.h": '#include "b.h"\n#include <nowhere.h>\n',
                             "b.h": "#error stop here\n"})
    with pytest.raises(AbiError) as info:
        load_headers(root, ["a.h"])
    assert f"{root / 'b.h'}:1: #error stop here" in str(info.value)
    assert "nowhere.h" in str(info.value) and f"{root / 'a.h'}:2" in str(info.value)
    with pytest.raises(AbiError, match="missing.h"):
        load_headers(root, ["missing.h"])


def test_caching(tmp_path: Path, isolated_cache: Path, write_headers) -> None:
    root = write_headers(tmp_path, {"c.h": "#define V 1\nstruct s { int a; };\n"})
    first = load_headers(root, ["c.h"])
    assert load_headers(root, ["c.h"]) is first  # in-process hit
    assert list(isolated_cache.glob("abi/*.pickle"))  # written to the disk cache
    abi_mod.clear_cache()
    from_disk = load_headers(root, ["c.h"])
    assert from_disk is not first and from_disk.constants == first.constants
    assert from_disk.structs["s"].size == 4 and from_disk.call_macro("V") == 1
    (root / "c.h").write_text("#define V 22\nstruct s { long a; };\n")
    changed = load_headers(root, ["c.h"])
    assert changed.constants["V"] == 22 and changed.structs["s"].size == 8
    assert load_headers(root, ["c.h"], predefined={"X": "1"}) is not changed  # other key
