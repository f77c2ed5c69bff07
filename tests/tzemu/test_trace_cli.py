"""``tzemu trace``: run, show, diff, user scenario files; the FF-A lend descriptor decoded."""
from __future__ import annotations

import argparse
import json

import pytest
from rich.console import Console

import tzemu
from emu.abi import linux_abi
from tzemu.cli import _add_boot_arguments, build_parser
from tzemu.trace import add_trace_commands, attach_trace, trace_scenario


def run_cli(*argv: str) -> int:
    """Through tzemu.cli when the lead has wired ``trace`` in, else through a parser of our own."""
    parser = build_parser()
    try:
        args = parser.parse_args(["trace", *argv])
    except SystemExit:
        parser = argparse.ArgumentParser(prog="tzemu")
        add_trace_commands(parser.add_subparsers(dest="command"), _add_boot_arguments)
        args = parser.parse_args(["trace", *argv])
    return args.handler(args, Console(width=200))


def test_trace_show_and_diff(tmp_path, capsys) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert run_cli("-o", str(a), "lend-reclaim") == 0
    assert run_cli("--wall", "-o", str(b), "lend-reclaim") == 0
    assert '"wall"' in b.read_text() and '"wall"' not in a.read_text()
    capsys.readouterr()
    assert run_cli("diff", str(a), str(b)) == 0                 # wall time is ignored
    assert "identical" in capsys.readouterr().out
    lines = a.read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    i = next(k for k, r in enumerate(recs) if r.get("kind") == "smc")
    recs[i]["fields"]["args"][1] ^= 1
    c.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    assert run_cli("diff", str(a), str(c)) == 1
    out = capsys.readouterr().out
    assert f"record {i}" in out and "fields" in out
    assert run_cli("show", str(a)) == 0
    shown = capsys.readouterr().out
    assert "OPTEE_MSG_CMD_LEND_PROTMEM" in shown and "smc_return" in shown


def test_trace_formats_from_the_suffix_and_insn(tmp_path) -> None:
    assert run_cli("-o", str(tmp_path / "t.json"), "ta-roundtrip") == 0
    assert "traceEvents" in json.loads((tmp_path / "t.json").read_text())
    assert run_cli("--insn", "--filter", "world=S-EL0", "-o", str(tmp_path / "t.txt"),
                   "ta-roundtrip") == 0
    assert " O EL0t_s : " in (tmp_path / "t.txt").read_text()


def test_user_scenario_file(tmp_path) -> None:
    script = tmp_path / "mine.py"
    script.write_text(
        "BOOT_OPTIONS = {'protmem': 'static'}\n"
        "def scenario(platform):\n"
        "    from tzemu.demo import run_ta_roundtrip\n"
        "    return run_ta_roundtrip(platform).failures == 0\n")
    out = tmp_path / "mine.jsonl"
    assert run_cli("-o", str(out), str(script)) == 0
    header = json.loads(out.read_text().splitlines()[0])
    assert header["scenario"] == "mine.py" and header["mode"] == "events"
    (tmp_path / "bad.py").write_text("x = 1\n")
    with pytest.raises(tzemu.PlatformError):
        trace_scenario(str(tmp_path / "bad.py"), str(tmp_path / "bad.jsonl"))
    with pytest.raises(tzemu.PlatformError):
        trace_scenario("no-such-scenario", str(tmp_path / "x.jsonl"))


def test_attach_trace_to_a_booted_platform(tmp_path) -> None:
    p = tzemu.boot()
    with attach_trace(p, str(tmp_path / "p.txt"), "text") as tracer:
        p.smc(linux_abi().c.OPTEE_SMC_CALLS_UID)
    text = (tmp_path / "p.txt").read_text()
    assert "smc OPTEE_SMC_CALLS_UID" in text and "uuid_words" in text
    assert tracer.closed and "run" not in p.ns.__dict__          # hooks and wrappers removed


def test_ffa_lend_descriptor_is_decoded(tmp_path) -> None:
    try:
        tzemu.boot(abi="ffa", protmem="dynamic")
    except tzemu.PlatformError as exc:
        pytest.skip(f"FF-A ABI not available: {exc}")
    path = tmp_path / "ffa.jsonl"
    result, summary = trace_scenario("lend-reclaim", str(path), "jsonl", abi="ffa")
    assert result.passed and summary["errors"] == []
    chunk = next(n for n in result.notes if n.startswith("lent chunk: "))
    base, size = (int(v, 16) for v in chunk[len("lent chunk: "):].split("+"))
    events = [json.loads(x) for x in path.read_text().splitlines()]
    events = [e for e in events if e["type"] == "event"]
    lends = [e for e in events if e["kind"] == "smc_return" and
             e["decoded"]["name"].startswith(("FFA_MEM_LEND", "FFA_FN64_MEM_LEND"))]
    assert lends, "an FFA_MEM_LEND call and return"
    d = lends[0]["decoded"]
    desc = d["descriptor"]
    assert desc["constituents"] == [{"address": hex(base), "pages": size // 4096}]
    assert desc["handle"] == d["handle"]
    assert desc["receivers"] and desc["receivers"][0]["perm"] == "RW"
    spmc_side = next(e for e in events if e["kind"] == "ffa_mem" and e["fields"]["op"] == "lend")
    assert int(d["handle"], 16) == spmc_side["fields"]["handle"]
    call = next(e for e in events if e["kind"] == "smc" and e["decoded"].get("call") == d["call"])
    assert call["decoded"]["descriptor"]["constituents"] == desc["constituents"]
    assert any(e["decoded"].get("msg", {}).get("cmd") == "OPTEE_MSG_CMD_ASSIGN_PROTMEM"
               for e in events if e["kind"] == "smc")


def test_trace_option_for_other_commands(tmp_path) -> None:
    """What ``run``/``svp``/``xtest``/``scenario run`` use for ``--trace FILE``."""
    from tzemu.trace import add_trace_option, trace_from_args
    parser = argparse.ArgumentParser()
    add_trace_option(parser)
    p = tzemu.boot()
    assert trace_from_args(p, parser.parse_args([])) is None
    args = parser.parse_args(["--trace", str(tmp_path / "r.log"), "--trace-format", "jsonl"])
    tracer = trace_from_args(p, args)
    p.smc(linux_abi().c.OPTEE_SMC_CALLS_REVISION)
    tracer.close()
    recs = [json.loads(x) for x in (tmp_path / "r.log").read_text().splitlines()]
    assert recs[0]["type"] == "header" and recs[-1]["type"] == "end"
    assert any(r.get("decoded", {}).get("name") == "OPTEE_SMC_CALLS_REVISION" for r in recs)
