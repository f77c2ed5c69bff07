"""tzemu abi dump / check / diff: exit codes, reports and the conformance scenarios."""
from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from pathlib import Path

from tzemu import abi_cli

ROOT = Path(__file__).resolve().parents[2]
LINUX_INC = ROOT / "linux_side" / "include"
SECURE_INC = ROOT / "tee_os" / "include"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = abi_cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def mutate_lend_protmem(tmp_path: Path) -> Path:
    sec = tmp_path / "secure"
    shutil.copytree(SECURE_INC, sec)
    h = sec / "optee_msg.h"
    text, n = re.subn(r"^(#define OPTEE_MSG_CMD_LEND_PROTMEM\s+)U\(8\)", r"\1U(42)",
                      h.read_text(), flags=re.M)
    assert n == 1
    h.write_text(text)
    return sec


def test_dump_json_shape_and_numbers(capsys):
    rc, out, _ = run(capsys, "dump", "--format", "json")
    assert rc == 0
    d = json.loads(out)
    assert set(d) == {"linux", "secure"}
    for side in d.values():
        assert set(side) == {"constants", "structs", "headers"}
        arg = side["structs"]["optee_msg_arg"]
        assert arg["size"] == 32
        assert {"name", "offset", "size"} == set(arg["fields"][0])
    assert d["linux"]["constants"]["TEE_IOC_SHM_REGISTER_FD"] == 0xC018A408
    assert d["secure"]["constants"]["OPTEE_SMC_CALLS_UID"] == 0xBF00FF01
    assert d["secure"]["constants"]["OPTEE_MSG_CMD_LEND_PROTMEM"] == 8
    rc, out, _ = run(capsys, "dump", "--format", "text", "--side", "linux")
    assert rc == 0 and re.search(r"TEE_IOC_SHM_REGISTER_FD\s+= 0xc018a408", out)


def test_check_on_the_projects_headers_is_compatible(capsys):
    t0 = time.perf_counter()
    rc, out, err = run(capsys, "check", "--json")
    elapsed = time.perf_counter() - t0
    res = json.loads(out)
    with capsys.disabled():
        print(f"\n[tzemu abi check on the project's headers: {elapsed:.2f} s wall, "
              f"{res['seconds']:.2f} s reported]")
    assert rc == 0, err + out
    assert res["compatible"] and not [f for f in res["findings"] if f["severity"] == "error"]
    ids = {s["id"]: s for s in res["scenarios"]}
    assert set(ids) == {abi_cli.scenario_id(*c) for c in abi_cli.CONFORMANCE}
    assert all(s["passed"] for s in ids.values()), ids
    assert {s["abi"] for s in ids.values()} == {"smc", "ffa"}
    assert elapsed < 20


def test_check_renumbered_lend_protmem_on_the_secure_side(capsys, tmp_path):
    sec = mutate_lend_protmem(tmp_path)
    rc, out, _ = run(capsys, "check", "--optee-tree", str(sec), "--json")
    assert rc == 1
    res = json.loads(out)
    (f,) = [f for f in res["findings"] if f["severity"] == "error"]
    assert f["name"] == "OPTEE_MSG_CMD_LEND_PROTMEM"
    assert f["linux"]["file"].endswith("drivers/tee/optee/optee_msg.h") and f["linux"]["line"]
    assert f["secure"]["file"] == str(sec / "optee_msg.h") and f["secure"]["line"]
    assert "lend-reclaim[smc]" in f["breaks"]
    lr = next(s for s in res["scenarios"] if s["id"] == "lend-reclaim[smc]")
    assert not lr["passed"] and "OPTEE_MSG_CMD_LEND_PROTMEM" in lr["message"]
    # FF-A does not use LEND_PROTMEM: its lend/reclaim still works
    assert next(s for s in res["scenarios"] if s["id"] == "lend-reclaim[ffa]")["passed"]
    # the text report names both locations
    rc, out, _ = run(capsys, "check", "--optee-tree", str(sec))
    assert rc == 1 and "INCOMPATIBLE" in out
    assert f"{sec / 'optee_msg.h'}:{f['secure']['line']}" in out
    assert f"optee_msg.h:{f['linux']['line']}: OPTEE_MSG_CMD_LEND_PROTMEM = 0x8" in out


def test_broken_macro_exits_2_with_file_and_line(capsys, tmp_path):
    lin = tmp_path / "linux"
    shutil.copytree(LINUX_INC, lin)
    h = lin / "drivers/tee/optee/optee_msg.h"
    text, n = re.subn(r"^(#define OPTEE_MSG_CMD_LEND_PROTMEM\s+)8$", r"\1(8 +",
                      h.read_text(), flags=re.M)
    assert n == 1
    h.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "LEND_PROTMEM" in t)
    for argv in (("check", "--linux-tree", str(lin)), ("dump", "--linux-tree", str(lin)),
                 ("diff", str(LINUX_INC), str(lin))):
        rc, out, err = run(capsys, *argv)
        assert rc == 2, argv
        assert f"{h}:{line}:" in err and "OPTEE_MSG_CMD_LEND_PROTMEM" in err


def test_usage_errors_exit_2(capsys, tmp_path):
    rc, _, err = run(capsys, "check", "--linux-tree", str(tmp_path))
    assert rc == 2 and "kernel source tree" in err
    rc, _, err = run(capsys, "diff", str(LINUX_INC), str(SECURE_INC))
    assert rc == 2 and "no common header set" in err
    try:
        abi_cli.main(["frobnicate"])
    except SystemExit as e:
        assert e.code == 2


def test_diff_exit_codes_and_json(capsys, tmp_path):
    rc, out, _ = run(capsys, "diff", str(LINUX_INC), str(LINUX_INC), "--json")
    assert rc == 0 and json.loads(out)["changes"] == []
    sec = mutate_lend_protmem(tmp_path)
    rc, out, _ = run(capsys, "diff", str(SECURE_INC), str(sec), "--json")
    res = json.loads(out)
    assert rc == 1 and res["breaking"] and res["sides"] == ["secure"]
    (c,) = res["changes"]
    assert (c["kind"], c["name"], c["classification"]) == \
        ("renumbered", "OPTEE_MSG_CMD_LEND_PROTMEM", "breaking")
    rc, out, _ = run(capsys, "diff", str(SECURE_INC), str(sec))
    assert rc == 1 and "BREAKING" in out
    # a tzemu checkout holds both sides
    rc, out, _ = run(capsys, "diff", str(ROOT), str(ROOT), "--json")
    assert rc == 0 and json.loads(out)["sides"] == ["linux", "secure"]


def test_add_abi_commands_wires_into_a_parent_parser(capsys):
    parser = argparse.ArgumentParser(prog="tzemu")
    sub = parser.add_subparsers(dest="command")
    abi_cli.add_abi_commands(sub)
    args = parser.parse_args(["abi", "check", "--no-scenarios", "--json"])
    assert args.command == "abi" and args.abi_handler is abi_cli.run_abi
    assert args.abi_handler(args) == 0
    assert json.loads(capsys.readouterr().out)["scenarios"] == []


def test_diff_against_a_git_revision_finds_a_renumbered_command(tmp_path, capsys, monkeypatch):
    """`diff git:REV:PATH NEW`, as the CI examples in docs/ci.md run it."""
    import subprocess
    if shutil.which("git") is None:
        import pytest
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parents[2] / "linux_side" / "include", repo / "include")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": __import__("os").environ["PATH"]}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env)
    msg = repo / "include" / "drivers" / "tee" / "optee" / "optee_msg.h"
    msg.write_text(re.sub(r"(#define OPTEE_MSG_CMD_LEND_PROTMEM\s+)8", r"\g<1>42", msg.read_text()))
    monkeypatch.chdir(repo)
    rc, out, _err = run(capsys, "diff", "git:HEAD:include", "include")
    assert rc == 1, out
    assert "OPTEE_MSG_CMD_LEND_PROTMEM" in out and "breaking" in out
