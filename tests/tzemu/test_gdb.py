"""Drive the real gdb-multiarch (batch mode) against the tzemu gdb stub.

Thread 1 is cpu0, the executing CPU: its registers follow the world that runs, and every stop
names it, so gdb's step over a breakpoint on the NS ``smc`` lands in S-EL1 without tripping
gdb's finish_step_over assertion. Threads 2.. are read-only world contexts.
"""
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

GDB = shutil.which("gdb-multiarch")
pytestmark = pytest.mark.skipif(GDB is None, reason="gdb-multiarch is not installed "
                                "(apt-get install gdb-multiarch)")


@pytest.fixture(scope="module")
def syms():
    import tzemu
    from tzemu.symbols import symbol_addresses
    return symbol_addresses(tzemu.boot(abi="ffa", protmem="dynamic"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(port, symdir, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "tzemu.gdb_cli", "gdbserver", "lend-reclaim",
                             "--abi", "ffa", "--port", str(port), "--symbols", str(symdir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            # a probe client that disconnects at once: the server must accept again
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    return proc


def _gdb(port, symdir, commands, tmp_path):
    script = tmp_path / "cmds.gdb"
    script.write_text("\n".join(["set pagination off", "set confirm off",
                                 f"add-symbol-file {symdir}/ns_stubs.elf",
                                 f"add-symbol-file {symdir}/tee_os.elf",
                                 f"add-symbol-file {symdir}/plat_tzc400.elf",
                                 f"target remote :{port}"] + commands) + "\n")
    res = subprocess.run([GDB, "-nx", "-batch", "-x", str(script)], capture_output=True,
                         text=True, timeout=90)
    return res.stdout + res.stderr


def _regs(out, name):
    """Every value gdb printed for register ``name`` (``info registers``), in order."""
    return [int(v, 16) for v in re.findall(rf"^{name}\s+(0x[0-9a-f]+)", out, re.M)]


def test_gdb_steps_from_ns_smc_into_s_el1_and_back(tmp_path, syms):
    port, symdir = _free_port(), tmp_path / "syms"
    proc = _server(port, symdir)
    out = _gdb(port, symdir, [
        "info threads",
        "break tzemu_ns_smc",
        "continue",
        "info registers pc current_el scr_el3 x0",          # 1: at the NS smc
        "stepi",
        "info registers pc current_el scr_el3",             # 2: first S-EL1 instruction
        "x/1i $pc",
        "stepi",
        "info registers pc current_el scr_el3",             # 3: still S-EL1
        "info threads",
        "thread 2",
        "info registers pc scr_el3",                        # 4: NS saved context
        "thread 1",
        "monitor phys read 0xe100000 16",
        "monitor worlds",
        "delete",
        "break ffa_msg_loop",
        "continue",
        "info registers pc current_el scr_el3",             # 5: the secure smc that returns
        "stepi",
        "info registers pc current_el scr_el3 x0",          # 6: back after the NS smc
        "delete",
        "thread 2",
        "x/4x 0xffff00000e100000",       # secure memory as NS-EL1: an error ends the script
    ], tmp_path)
    stdout, stderr = proc.communicate(timeout=90)
    assert "internal-error" not in out and "finish_step_over" not in out, out
    assert "Thread 1 (cpu0: NS-EL1, EL1)" in out and "S-EL0 sdp_basic" in out, out
    assert "Thread 1 hit Breakpoint 1" in out and "tzemu_ns_smc ()" in out, out
    pcs, els, scrs = _regs(out, "pc"), _regs(out, "current_el"), _regs(out, "scr_el3")
    ns_smc, loop = syms["tzemu_ns_smc"], syms["ffa_msg_loop"]
    # NS smc -> the SPMC's message loop resumes right after its smc -> next S-EL1 instruction
    # -> (NS context unchanged) -> the secure smc -> back right after the NS smc
    assert pcs == [ns_smc, loop + 4, loop + 8, ns_smc + 4, loop, syms["tzemu_ns_smc_done"]], out
    assert els == [1, 1, 1, 1, 1], out
    assert scrs == [0x401, 0x400, 0x400, 0x401, 0x400, 0x401], out
    assert "<ffa_msg_loop+4>:\tadr\tx9" in out, out
    assert "Thread 1 (cpu0: S-EL1, EL1)" in out and "Thread 2 (NS-EL1 saved context)" in out, out
    assert "Thread 3 (S-EL1 live, on cpu0)" in out, out
    assert "Thread 1 hit Breakpoint 2" in out, out
    assert _regs(out, "x0")[-1] == 0x84000061, out               # FFA_SUCCESS_32 to the caller
    assert "Cannot access memory at address 0xffff00000e100000" in out, out
    assert "0x000e100000:" in out, out
    assert "* thread 1: cpu0: S-EL1, EL1" in out and "* thread 3: S-EL1 live" in out, out
    assert proc.returncode == 0, stdout + stderr
    assert "scenario lend-reclaim: passed" in stdout


def test_break_on_ffa_mem_lend_then_tzc_region(tmp_path, syms):
    port, symdir = _free_port(), tmp_path / "syms"
    proc = _server(port, symdir)
    out = _gdb(port, symdir, [
        "monitor break-on ffa FFA_MEM_LEND",
        "continue",
        "info registers pc x0 x1",
        "monitor ffa handles",
        "monitor tzc",
        "stepi",
        "info registers pc current_el scr_el3",
        "break tzemu_ns_smc_done",
        "continue",
        "info registers pc x0",
        "monitor tzc",
        "delete",
        "thread 3",
        "stepi",                                # refused: a context thread
        "info registers pc",
        "thread 1",
        "monitor break-on clear",
        "detach",
    ], tmp_path)
    stdout, stderr = proc.communicate(timeout=90)
    assert "internal-error" not in out, out
    assert "break-on FFA_MEM_LEND_SMC64" in out, out
    assert "x0             0xc4000072" in out, out
    pcs, x0s = _regs(out, "pc"), _regs(out, "x0")
    done, loop = syms["tzemu_ns_smc_done"], syms["ffa_msg_loop"]
    assert pcs == [done, loop + 4, done, loop + 4], out
    assert _regs(out, "current_el") == [1] and _regs(out, "scr_el3") == [0x400], out
    assert x0s == [0xc4000072, 0x84000061], out
    tzc = re.findall(r"^TZC-400:.*?(?=^\S)", out, re.M | re.S)
    assert len(tzc) == 2, out
    assert "0x50000000..0x500fffff" not in tzc[0] and "region 2: 0x50000000..0x500fffff" in tzc[1], out
    assert "thread 3 is a saved world context (read-only)" in out, out
    assert proc.returncode == 0, stdout + stderr
    assert "scenario lend-reclaim: passed" in stdout


def test_garbage_and_disconnect_then_fresh_gdb(tmp_path):
    port, symdir = _free_port(), tmp_path / "syms"
    proc = _server(port, symdir)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"+garbage$zz#00$m0,zz#" + b"%02x" % (sum(b"m0,zz") & 0xFF) + b"$qSupp")
        time.sleep(0.5)
        data = s.recv(4096)
        assert b"-" in data and b"$E01#" in data
    out = _gdb(port, symdir, ["info threads", "detach"], tmp_path)
    stdout, stderr = proc.communicate(timeout=60)
    assert "(cpu0: NS-EL1, EL1)" in out and "(NS-EL1 live, on cpu0)" in out, out
    assert proc.returncode == 0 and "passed" in stdout, stdout + stderr


def test_docs_walkthrough_runs_as_written(tmp_path, syms):
    """Every indented gdb command of docs/debugging.md, in order, in one gdb session."""
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[2] / "docs" / "debugging.md").read_text()
    lines = [ln[4:] for ln in doc.splitlines() if ln.startswith("    ") and ln[4:5].isalpha()]
    server_cmd = next(ln for ln in lines if "gdb_cli gdbserver" in ln).split()
    assert server_cmd[server_cmd.index("--symbols") + 1] == "/tmp/syms2"
    commands = [ln for ln in lines if "gdb_cli gdbserver" not in ln]
    port, symdir = _free_port(), tmp_path / "syms"
    commands = [c.replace("/tmp/syms2", str(symdir)).replace(":4555", f":{port}")
                for c in commands]
    assert commands[-1] == "detach" and any(c.startswith("target remote :") for c in commands)
    proc = _server(port, symdir)
    script = tmp_path / "doc.gdb"
    script.write_text("\n".join(["set confirm off"] + commands) + "\n")
    res = subprocess.run([GDB, "-nx", "-batch", "-x", str(script)], capture_output=True,
                         text=True, timeout=90)
    out = res.stdout + res.stderr
    stdout, stderr = proc.communicate(timeout=90)
    assert "internal-error" not in out, out
    loop, done = syms["ffa_msg_loop"], syms["tzemu_ns_smc_done"]
    # break-on stop, stepi into S-EL1, the secure smc, stepi back, next call's smc, stepi,
    # thread 3's context
    assert _regs(out, "pc") == [done, loop + 4, loop, done, syms["tzemu_ns_smc"], loop + 4,
                                loop + 4], out
    assert _regs(out, "x0") == [0xc4000072, 0x84000061, 0x84000061, 0x8400006F], out
    assert _regs(out, "x1") == [0x70], out
    assert _regs(out, "scr_el3") == [0x400, 0x401, 0x400, 0x400], out
    tzc = re.findall(r"^TZC-400:.*?(?=^\S)", out, re.M | re.S)
    assert len(tzc) == 2 and "region 2" not in tzc[0], out
    assert "region 2: 0x50000000..0x500fffff" in tzc[1], out
    assert "Thread 2 (NS-EL1 saved context)" in out and "thread 3 is a saved world" in out, out
    assert "0x000e100000:" in out and "Cannot access memory at address 0xffff00000e100000" in out
    assert proc.returncode == 0 and "scenario lend-reclaim: passed" in stdout, stdout + stderr
