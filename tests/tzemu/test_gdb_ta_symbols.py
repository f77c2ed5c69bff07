"""gdb source-level symbols for C TAs: ``tzemu symbols`` hands gdb the TA's own ELF (DWARF
included) with ``-o`` = the TA load base, so a C TA's functions resolve to their source lines
at the address the TA runs at (issue 11 item 6, "gdb sees their symbols")."""
from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from cross import require_cross_compiler

import tzemu
from tee_os.ta_memory import TA_LOAD_BASE
from tzemu.symbols import add_symbol_file_lines, write_symbols

C_TA = uuid.UUID("04a9e5a0-1dd3-484a-b66c-80fe590ae8cd")
GDB = shutil.which("gdb-multiarch")


@pytest.fixture(scope="module")
def symbols(tmp_path_factory):
    require_cross_compiler()
    p = tzemu.boot()
    assert C_TA in p.secure_os.ta_manager.images, "the C TA was built but is not loaded"
    files = write_symbols(p, tmp_path_factory.mktemp("syms"))
    return p.secure_os.ta_manager.images[C_TA], files


def test_a_c_ta_is_written_as_its_own_elf_with_the_load_base_as_offset(symbols):
    image, files = symbols
    (ta,) = [f for f in files if Path(f.path).name == f"ta_{image.name}.elf"]
    assert ta.offset == TA_LOAD_BASE
    assert Path(ta.path).read_bytes() == image.elf
    line = [line for line in add_symbol_file_lines(files) if ta.path in line]
    assert line == [f"add-symbol-file {ta.path} -o {TA_LOAD_BASE:#x}"]
    # The assembly TAs (no DWARF) keep their absolute-address symbol files.
    asm = [f for f in files if Path(f.path).name == "ta_echo.elf"]
    assert asm and asm[0].offset == 0


@pytest.mark.skipif(GDB is None, reason="gdb-multiarch is not installed")
def test_gdb_resolves_a_c_ta_function_to_its_source_line_at_the_run_address(symbols):
    image, files = symbols
    (ta,) = [f for f in files if f.offset]
    out = subprocess.run(
        [GDB, "-nx", "-batch", "-ex", "set architecture aarch64",
         "-ex", f"add-symbol-file {ta.path} -o {ta.offset:#x}",
         "-ex", "info line TA_InvokeCommandEntryPoint",
         "-ex", "info address TA_InvokeCommandEntryPoint"],
        capture_output=True, text=True, timeout=60).stdout
    assert re.search(r'Line \d+ of ".*syscall_conformance_ta\.c"', out), out
    want = TA_LOAD_BASE + image.symbols["TA_InvokeCommandEntryPoint"]
    assert f"{want:#x}" in out, (hex(want), out)
