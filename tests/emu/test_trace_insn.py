"""Instruction and block traces: Tarmac layout, symbols, filters, the native virtual clock."""
from __future__ import annotations

import re

import pytest
from keystone import KS_ARCH_ARM64, KS_MODE_LITTLE_ENDIAN, Ks
from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, Uc
from unicorn import arm64_const as A

import emu.trace.icount as icount
from emu.trace import JSONL_SCHEMA, TraceFilter, read_jsonl, validate
from emu.trace.icount import InsnCounter
from tzemu.trace import trace_scenario

IT = re.compile(r"^(\d+) clk IT \((\d+)\) ([0-9a-f]{16}) ([0-9a-f]{8}) O (EL[0-3][th]_[ns]) : (.+)$")


@pytest.fixture(params=["native", "python"])
def clock(request, monkeypatch):
    """Both implementations of the recorders: compiled C, and the no-compiler fallback."""
    if request.param == "python":
        monkeypatch.setattr(icount, "_NATIVE", (None, "python block hook (test)"))
    elif icount.load_native()[0] is None:
        pytest.skip("no C compiler on this machine")
    return request.param


def test_block_counter_counts_retired_instructions(clock) -> None:
    ks = Ks(KS_ARCH_ARM64, KS_MODE_LITTLE_ENDIAN)
    code = bytes(ks.asm("mov x0, #0\nloop:\nadd x0, x0, #1\ncmp x0, x1\nb.ne loop\nnop", 0x1000)[0])
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(0x1000, 0x1000)
    uc.mem_write(0x1000, code)
    uc.reg_write(A.UC_ARM64_REG_X1, 1000)
    counter = InsnCounter(uc)
    counter.install()
    uc.emu_start(0x1000, 0x1000 + len(code) - 4)
    assert counter.count == 1 + 3 * 1000
    counter.remove()
    uc.emu_start(0x1000, 0x1000 + len(code) - 4)
    assert counter.count == 3001                       # removed: no longer counting


def test_echo_ta_round_trip_instruction_trace(tmp_path, clock) -> None:
    path = tmp_path / "rt.txt"
    result, summary = trace_scenario("ta-roundtrip", str(path), "text", insn=True)
    assert result.passed and summary["errors"] == []
    lines = path.read_text().splitlines()
    assert lines[0] == "Tarmac Text Rev 3t"
    its = [m for m in map(IT.match, lines) if m]
    assert sum(summary["traced"].values()) == len(its) == sum(summary["instructions"].values())
    by_el = {m[5] for m in its}
    assert {"EL0t_s", "EL1h_s", "EL1h_n"} <= by_el
    ta = [m for m in its if m[5] == "EL0t_s"]
    ns = [m for m in its if m[5] == "EL1h_n"]
    assert any(m[6].endswith("; __ta_entry") for m in ta), "TA labels resolved"
    assert all(" ; " in m[6] for m in ta + ns), "every TA and NS stub address has a symbol"
    assert any("smc #0 ; tzemu_ns_smc" in m[6] for m in ns)
    assert any(m[6].startswith("svc #0") for m in ta)
    # registers written follow their instruction, memory accesses too
    i = next(k for k, x in enumerate(lines) if IT.match(x) and "mov x19, x2 ; __ta_entry" in x)
    assert re.match(r"^\d+ clk R X19 [0-9A-F]{16}$", lines[i + 1])
    assert any(re.match(r"^\d+ clk M[RW][1248] [0-9a-f]{16} [0-9a-f_]+$", x) for x in lines)
    # timestamps never go backwards across instruction and event lines
    ts = [int(x.split()[0]) for x in lines[1:] if not x.startswith("0 clk EV")]
    assert ts == sorted(ts)


def test_jsonl_instruction_and_block_records(tmp_path, clock) -> None:
    for mode in ("insn", "blocks"):
        path = tmp_path / f"{mode}.jsonl"
        trace_scenario("ta-roundtrip", str(path), "jsonl", insn=mode == "insn", blocks=mode == "blocks")
        recs = list(read_jsonl(str(path)))
        assert all(validate(r, JSONL_SCHEMA) == [] for r in recs)
        kind = "insn" if mode == "insn" else "block"
        body = [r for r in recs if r["type"] == kind]
        assert body and {r["world"] for r in body} == {"NS-EL1", "S-EL1", "S-EL0"}
        if mode == "insn":
            mov = next(r for r in body if r["asm"] == "mov x19, x2")
            assert mov["el"] == "EL0t_s" and mov["sym"] == "__ta_entry" and set(mov["regs"]) == {"X19"}


def test_native_and_fallback_recorders_write_the_same_trace(tmp_path, monkeypatch) -> None:
    if icount.load_native()[0] is None:
        pytest.skip("no C compiler on this machine")
    outs = []
    for native in (True, False):
        if not native:
            monkeypatch.setattr(icount, "_NATIVE", (None, "python block hook (test)"))
        path = tmp_path / f"{native}.txt"
        trace_scenario("sdp-basic", str(path), "text", insn=True)
        outs.append([x for x in path.read_text().splitlines() if not x.startswith("0 clk EV trace")])
    assert outs[0] == outs[1]


def test_filters_by_world_and_symbol(tmp_path) -> None:
    path = tmp_path / "f.txt"
    trace_scenario("ta-roundtrip", str(path), "text", insn=True, filters="world=S-EL0")
    els = {m[5] for m in map(IT.match, path.read_text().splitlines()) if m}
    assert els == {"EL0t_s"}
    trace_scenario("ta-roundtrip", str(path), "text", insn=True, filters="sym=vector_std_smc_entry")
    its = [m for m in map(IT.match, path.read_text().splitlines()) if m]
    assert its and all("vector_std_smc_entry" in m[6] for m in its)
    trace_scenario("ta-roundtrip", str(path), "text", blocks=True, filters=["world=S-EL1"])
    blocks = [x for x in path.read_text().splitlines() if " clk BB " in x]
    assert blocks and all(" S-EL1 " in x for x in blocks)


def test_filter_syntax() -> None:
    f = TraceFilter.parse("world=S-EL0,addr=0x100000-0x100100,sym=__ta_entry")
    assert f.worlds == {"S-EL0"} and f.ranges == [(0x100000, 0x100100)] and f.symbols == ["__ta_entry"]
    with pytest.raises(ValueError):
        TraceFilter.parse("colour=blue")
