"""ta/toolchain.py: building C TAs with the GNU cross toolchain (issue 11 item 6) — the error
when the compiler is missing, booting without it, compiler errors with their stderr, the build
cache, the TZEMU_CROSS_COMPILE prefix, and the ta_head the -D flags produce.

Tests that run the cross compiler skip without it unless ``TZEMU_REQUIRE_CROSS=1``."""
from __future__ import annotations

import subprocess
import uuid
import warnings
from pathlib import Path

import pytest

from cross import require_cross_compiler

import ta.build as build_mod
import ta.toolchain as tc
from tee_os.ta_loader import load_ta_elf

ENTRY = {"name": "tiny", "uuid": "0d1c2b3a-4958-4677-8695-a4b3c2d1e0f9", "flags": 0x0C,
         "stack_size": 0x1000, "toolchain": "gcc"}
TINY = r"""
#include <tee_ta_api.h>
int tiny_counter;                              /* default visibility: reached through the GOT */
TEE_Result TA_OpenSessionEntryPoint(uint32_t t, TEE_Param p[4], void **c) { return 0; }
void TA_CloseSessionEntryPoint(void *c) { }
TEE_Result TA_InvokeCommandEntryPoint(void *c, uint32_t cmd, uint32_t t, TEE_Param p[4])
{
	return (TEE_Result)++tiny_counter;
}
"""


@pytest.fixture
def cross():
    require_cross_compiler()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TZEMU_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "ta-gcc"


@pytest.fixture
def tiny(tmp_path) -> Path:
    src = tmp_path / "src" / "tiny_ta.c"
    src.parent.mkdir()
    src.write_text(TINY)
    return src


def test_missing_compiler_raises_a_clear_error_naming_the_debian_package(monkeypatch, tiny):
    monkeypatch.setenv(tc.CROSS_ENV, "/nonexistent/bin/aarch64-linux-gnu-")
    assert not tc.toolchain_available()
    with pytest.raises(tc.TaToolchainMissing, match="gcc-aarch64-linux-gnu") as info:
        tc.build_c_ta(ENTRY, tiny)
    assert isinstance(info.value, tc.TaToolchainError) and isinstance(info.value, RuntimeError)
    assert tc.CROSS_ENV in str(info.value)


def test_builtin_tas_skip_gcc_entries_with_one_warning_when_the_compiler_is_missing(monkeypatch):
    monkeypatch.setenv(tc.CROSS_ENV, "/nonexistent/bin/aarch64-linux-gnu-")
    build_mod.builtin_tas.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tas = build_mod.builtin_tas()
            build_mod.builtin_tas()                          # cached: no second warning
        gcc_entries = [e for e in build_mod.load_manifest() if e.get("toolchain") == "gcc"]
        assert gcc_entries
        for entry in gcc_entries:
            assert uuid.UUID(entry["uuid"]) not in tas
        assert uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31") in tas   # echo still built
        skipped = [w for w in caught if "skipped" in str(w.message)]
        assert len(skipped) == len(gcc_entries)
        assert tc.DEBIAN_PACKAGE in str(skipped[0].message)
    finally:
        build_mod.builtin_tas.cache_clear()


def test_compiler_errors_surface_with_the_compilers_stderr(cross, cache, tmp_path):
    bad = tmp_path / "broken_ta.c"
    bad.write_text("#include <tee_ta_api.h>\nint broken(void) { return undeclared_thing; }\n")
    with pytest.raises(tc.TaToolchainError, match="undeclared_thing") as info:
        tc.build_c_ta(ENTRY, bad)
    assert "broken_ta.c" in str(info.value) and "error" in str(info.value)
    assert not isinstance(info.value, tc.TaToolchainMissing)


def test_an_undefined_entry_point_is_a_link_error(cross, cache, tmp_path):
    src = tmp_path / "no_entry_ta.c"
    src.write_text("#include <tee_ta_api.h>\nint nothing_here;\n")
    with pytest.raises(tc.TaToolchainError, match="TA_OpenSessionEntryPoint"):
        tc.build_c_ta(ENTRY, src)


def test_the_ta_head_carries_the_manifest_entry(cross, cache, tiny):
    image = load_ta_elf(tc.build_c_ta(ENTRY, tiny))
    assert image.uuid == uuid.UUID(ENTRY["uuid"])
    assert (image.flags, image.stack_size) == (ENTRY["flags"], ENTRY["stack_size"])
    assert "TA_InvokeCommandEntryPoint" in image.symbols and "tiny_counter" in image.symbols


def test_uuid_initializer_is_the_tee_uuid_struct():
    u = uuid.UUID("12345678-5b69-11e4-9dbb-101f74f00099")
    assert tc.uuid_initializer(u) == ("{0x12345678, 0x5b69, 0x11e4, "
                                      "{0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99}}")


def test_builds_are_cached_by_their_inputs(cross, cache, tiny):
    first = tc.build_c_ta(ENTRY, tiny)
    assert len(list(cache.glob("*.elf"))) == 1
    assert tc.build_c_ta(ENTRY, tiny) == first
    # any input changing gives a new build: the manifest entry, then the source
    changed = tc.build_c_ta({**ENTRY, "flags": 0x08}, tiny)
    assert load_ta_elf(changed).flags == 0x08
    tiny.write_text(TINY.replace("++tiny_counter", "(tiny_counter += 2)"))
    assert tc.build_c_ta(ENTRY, tiny) != first
    assert len(list(cache.glob("*.elf"))) == 3


def test_a_cached_build_does_not_run_the_compiler(cross, cache, tiny, monkeypatch):
    first = tc.build_c_ta(ENTRY, tiny)
    calls = []
    real = subprocess.run

    def spy(cmd, *args, **kwargs):
        calls.append(cmd)
        return real(cmd, *args, **kwargs)
    monkeypatch.setattr(tc.subprocess, "run", spy)
    assert tc.build_c_ta(ENTRY, tiny) == first
    assert not [c for c in calls if "-o" in c]             # only `gcc --version`, if anything


def test_the_cross_prefix_comes_from_tzemu_cross_compile(cross, cache, tiny, tmp_path,
                                                         monkeypatch):
    real = Path(tc.find_compiler())
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "my-cross-gcc").symlink_to(real)
    monkeypatch.setenv(tc.CROSS_ENV, str(bindir / "my-cross-"))
    assert tc.find_compiler() == str(bindir / "my-cross-gcc")
    assert load_ta_elf(tc.build_c_ta(ENTRY, tiny)).uuid == uuid.UUID(ENTRY["uuid"])


def test_the_tiny_ta_needs_the_got(cross, cache, tiny):
    """A non-static global under -fPIE is reached through a GOT slot with a .rela.got entry."""
    path = cache.parent / "tiny.elf"
    path.write_bytes(tc.build_c_ta(ENTRY, tiny))
    readelf = tc.cross_prefix() + "readelf"
    out = subprocess.run([readelf, "-r", "-W", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "'.rela.got'" in out.stdout and "'.rela.dyn'" not in out.stdout   # no .data pointers
    types = [line.split()[2] for line in out.stdout.splitlines()
             if line[:1] in "0123456789abcdef" and len(line.split()) > 2]
    assert types and set(types) == {"R_AARCH64_RELATIVE"}
