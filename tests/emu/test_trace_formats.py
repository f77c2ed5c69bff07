"""Trace formats: JSONL schema, text layout, Perfetto trace-event JSON; determinism; no effect."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from emu.trace import JSONL_SCHEMA, read_jsonl, validate
from tzemu.scenarios import run_scenario
from tzemu.trace import trace_scenario

TRACING_KINDS = {"ioctl", "ioctl_return", "fd_close"}      # events only tracing adds


@pytest.fixture(scope="module")
def lend_reclaim(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("lr")
    out = {}
    for fmt in ("jsonl", "text", "perfetto"):
        out[fmt] = d / f"lr.{fmt}"
        result, summary = trace_scenario("lend-reclaim", str(out[fmt]), fmt)
        assert result.passed and summary["errors"] == []
    return out


def test_jsonl_every_record_matches_the_schema(lend_reclaim) -> None:
    recs = list(read_jsonl(str(lend_reclaim["jsonl"])))
    assert recs[0]["type"] == "header" and recs[-1]["type"] == "end"
    for rec in recs:
        assert validate(rec, JSONL_SCHEMA) == [], rec
    events = [r for r in recs if r["type"] == "event"]
    assert [r["ts"] for r in events] == sorted(r["ts"] for r in events)
    assert len({r["seq"] for r in events}) == len(events)
    assert not [r for r in events if "decode_error" in r["decoded"]]
    kinds = {r["kind"] for r in events}
    assert {"smc", "smc_return", "world_switch", "msg", "tzc_program", "external_abort",
            "protmem_lend", "protmem_reclaim", "ta_syscall", "ioctl"} <= kinds
    lend = next(r for r in events if r["kind"] == "smc" and
                r["decoded"].get("msg", {}).get("cmd") == "OPTEE_MSG_CMD_LEND_PROTMEM")
    assert lend["decoded"]["name"].startswith("OPTEE_SMC_CALL_WITH")
    assert lend["decoded"]["msg"]["params"][1]["buf_ptr"] == "0x50000000"
    abort = next(r for r in events if r["kind"] == "external_abort")
    assert abort["decoded"]["fail"]["FAIL_CONTROL"] == {"direction": "read", "non_secure": True,
                                                        "privileged": True}


def test_schema_validator_rejects_bad_records() -> None:
    good = {"type": "event", "seq": 1, "ts": 2, "icount": None, "world": "EL3", "kind": "smc",
            "fields": {}, "decoded": {}}
    assert validate(good, JSONL_SCHEMA) == []
    assert validate({**good, "ts": "2"}, JSONL_SCHEMA)
    assert validate({**good, "extra": 1}, JSONL_SCHEMA)
    assert validate({k: v for k, v in good.items() if k != "kind"}, JSONL_SCHEMA)
    assert validate({"type": "insn", "ts": 1}, JSONL_SCHEMA)


def test_text_has_one_line_per_event(lend_reclaim) -> None:
    lines = lend_reclaim["text"].read_text().splitlines()
    events = [json.loads(x) for x in lend_reclaim["jsonl"].read_text().splitlines()
              if '"type":"event"' in x]
    ev_lines = [x for x in lines if " clk EV " in x and not x.startswith("0 clk EV trace")
                and not x.startswith("0 clk EV end")]
    assert len(ev_lines) == len(events)
    pattern = re.compile(r"^(\d+) clk EV (\S+) #(\d+)( i=\d+)? (\w+)")
    for line, ev in zip(ev_lines, events):
        m = pattern.match(line)
        assert m, line
        assert (int(m[1]), m[2], int(m[3]), m[5]) == (ev["ts"], ev["world"], ev["seq"], ev["kind"])
    assert any("smc OPTEE_SMC_CALL_WITH" in x and "OPTEE_MSG_CMD_LEND_PROTMEM" in x for x in lines)


def test_perfetto_is_trace_event_json_with_matched_slices_and_paired_flows(lend_reclaim) -> None:
    doc = json.loads(lend_reclaim["perfetto"].read_text())
    events = doc["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"NS-EL1", "EL3", "S-EL1", "S-EL0"} <= set(names.values())
    assert all(e["pid"] == 1 for e in events)
    stacks: dict[int, list[str]] = defaultdict(list)
    last_ts: dict[int, float] = defaultdict(float)
    for e in events:
        if e["ph"] in "BE":
            assert e["ts"] >= last_ts[e["tid"]], "events of a track in time order"
            last_ts[e["tid"]] = e["ts"]
        if e["ph"] == "B":
            stacks[e["tid"]].append(e["name"])
        elif e["ph"] == "E":
            assert stacks[e["tid"]], f"E without B on {names[e['tid']]}"
            stacks[e["tid"]].pop()
    assert not any(stacks.values()), "every B has its E"
    starts = [e["id"] for e in events if e["ph"] == "s"]
    finishes = [e["id"] for e in events if e["ph"] == "f"]
    assert starts and sorted(starts) == sorted(finishes) and len(set(starts)) == len(starts)
    slices = [e for e in events if e["ph"] == "B"]
    assert any(names[e["tid"]] == "NS-EL1" and e["name"].startswith("OPTEE_SMC_CALL_WITH") for e in slices)
    assert any(names[e["tid"]] == "S-EL0" and e["name"] == "TA sdp_basic" for e in slices)
    assert any(e["args"]["decoded"].get("msg") for e in slices), "args carry decoded fields"
    faults = [e for e in events if e["ph"] == "i" and e["cat"] == "fault"]
    assert any(e["name"].startswith("external_abort") for e in faults)


@pytest.mark.parametrize("mode", ["events", "insn", "blocks"])
def test_two_runs_give_byte_identical_traces(tmp_path, mode) -> None:
    for fmt in ("jsonl", "text", "perfetto"):
        paths = [tmp_path / f"{mode}{i}.{fmt}" for i in range(2)]
        for p in paths:
            trace_scenario("ta-roundtrip", str(p), fmt, insn=mode == "insn", blocks=mode == "blocks")
        assert paths[0].read_bytes() == paths[1].read_bytes(), (mode, fmt)


@pytest.mark.parametrize("name", ["ta-roundtrip", "lend-reclaim", "sdp-basic"])
def test_tracing_does_not_change_results(tmp_path, name) -> None:
    plain = run_scenario(name)
    traced, summary = trace_scenario(name, str(tmp_path / "t.jsonl"), insn=True)
    assert plain.passed and traced.passed and summary["errors"] == []
    assert traced.notes == plain.notes                 # the TA outputs, chunk, scrub results

    def strip(events: list[dict]) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "seq"} for e in events
                if e["kind"] not in TRACING_KINDS]
    assert strip(traced.events) == strip(plain.events)
