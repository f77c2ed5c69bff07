"""The command line: info --json, run, help, and one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tzemu.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tzemu.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_info_json_reports_the_optee_identity(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["api_uid"] == "384fb3e0-e7f8-11e3-af63-0002a5d5c51b"
    assert info["api_revision"] == "2.0"
    assert info["os_uuid"] == "486178e0-e7f8-11e3-bc5e-0002a5d5c51b"
    assert info["abi"] == "smc" and info["threads"] == 4
    assert {"DYNAMIC_SHM", "MEMREF_NULL", "RPC_ARG"} <= set(info["sec_caps"])
    assert {"api_uid", "api_revision", "os_uuid", "os_revision", "sec_caps", "threads", "abi",
            "memory_map"} <= set(info)
    regions = {r["name"]: r for r in info["memory_map"]}
    assert regions["secure_dram"]["secure"] and not regions["ns_dram"]["secure"]
    assert set(regions["ns_dram"]) == {"name", "base", "size", "secure"}


def test_info_threads_option(capsys):
    assert main(["info", "--json", "--threads", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["threads"] == 2


def test_run_plays_the_secure_video_demo(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tzemu.cli", "run", "--frames", "4"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "FAULT" in r.stdout and "TZC-400" in r.stdout
    png = tmp_path / "tzemu-out" / "frame-0000.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_roundtrip_reports_each_world():
    r = run_cli("roundtrip")
    assert r.returncode == 0, r.stderr
    assert "0 failure(s)" in r.stdout and "S-EL0" in r.stdout


def test_help_lists_the_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("info", "run", "svp", "tzc", "xtest", "scenario"):
        assert cmd in r.stdout


@pytest.mark.parametrize("args, words", [
    (["info", "--platform", "/nonexistent.toml"], "cannot read platform file"),
    (["info", "--threads", "0"], "threads must be between"),
])
def test_errors_are_one_line_and_nonzero(args, words):
    r = run_cli(*args)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr


def test_abi_dump_is_reachable_from_the_tzemu_command(capsys):
    """`tzemu abi ...` is the same tool as `python -m tzemu.abi_cli`, wired into the CLI."""
    assert main(["abi", "dump", "--side", "linux"]) == 0
    assert "TEE_IOC_SHM_REGISTER_FD" in capsys.readouterr().out
