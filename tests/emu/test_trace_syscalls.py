"""TA syscalls in traces: by name, arguments decoded from the secure headers, results by name."""
from __future__ import annotations

import pytest

import tzemu
from emu.abi import secure_abi
from emu.trace import JSONL_SCHEMA, read_jsonl, validate
from emu.trace.decode import Decoder
from emu.trace.syscalls import ARGS, syscall_decoder
from tzemu import xtest
from tzemu.trace import attach_trace


@pytest.fixture(scope="module")
def xtest_trace(tmp_path_factory) -> list[dict]:
    """xtest 1014 (TA-to-TA sessions, SDP buffers) traced to JSON Lines."""
    path = tmp_path_factory.mktemp("sc") / "x1014.jsonl"
    p = tzemu.boot(protmem="static")
    tracer = attach_trace(p, str(path), "jsonl")
    rep = xtest.run_1014(p, seed=0)
    summary = tracer.close()
    assert not rep.failed_cases and summary["errors"] == []
    return list(read_jsonl(str(path)))


def _calls(recs: list[dict], name: str, kind: str = "ta_syscall") -> list[dict]:
    return [r for r in recs if r.get("kind") == kind and r["decoded"]["syscall"] == name]


def test_a_real_run_names_syscalls_arguments_and_results(xtest_trace) -> None:
    recs = xtest_trace
    assert all(not validate(r, JSONL_SCHEMA) for r in recs)
    assert not [r for r in recs if "decode_error" in r.get("decoded", {})]
    check = _calls(recs, "TEE_SCN_CHECK_ACCESS_RIGHTS")
    assert check and set(check[0]["decoded"]["args"]) == {"flags", "buf", "len"}
    flags = {r["decoded"]["args"]["flags"] for r in check}
    assert "TEE_MEMORY_ACCESS_READ|TEE_MEMORY_ACCESS_ANY_OWNER|TEE_MEMORY_ACCESS_NONSECURE" in flags
    assert any("TEE_MEMORY_ACCESS_WRITE" in f for f in flags)
    cache = _calls(recs, "TEE_SCN_CACHE_OPERATION")
    assert cache and {r["decoded"]["args"]["op"] for r in cache} <= {
        "TEE_CACHECLEAN", "TEE_CACHEFLUSH", "TEE_CACHEINVALIDATE"}
    invoke = _calls(recs, "TEE_SCN_INVOKE_TA_COMMAND")
    assert invoke and list(invoke[0]["decoded"]["args"]) == [
        "sess", "cancel_req_to", "cmd", "params", "ret_orig"]
    assert invoke[0]["decoded"]["args"]["cancel_req_to"] == "TEE_TIMEOUT_INFINITE"
    opened = _calls(recs, "TEE_SCN_OPEN_TA_SESSION")
    assert opened and opened[0]["decoded"]["args"]["dest_uuid"].startswith("0x")
    ret = _calls(recs, "TEE_SCN_RETURN")
    assert ret and ret[0]["decoded"]["args"]["ret"] == "TEE_SUCCESS"
    # results: every syscall answered with a code right away is followed by its return
    results = _calls(recs, "TEE_SCN_CHECK_ACCESS_RIGHTS", "ta_syscall_return")
    assert len(results) == len(check)
    assert {r["decoded"]["result"] for r in results} == {"TEE_SUCCESS"}
    seqs = {r["seq"] for r in recs if r.get("kind") == "ta_syscall"}
    assert all(r["seq"] - 1 in seqs for r in results)
    # exits and TA-to-TA calls answer later (or never): no ta_syscall_return for them
    assert not _calls(recs, "TEE_SCN_RETURN", "ta_syscall_return")
    assert not _calls(recs, "TEE_SCN_INVOKE_TA_COMMAND", "ta_syscall_return")


def test_every_named_constant_comes_from_the_secure_headers() -> None:
    sc, k = syscall_decoder(), secure_abi().constants
    for table in (sc.numbers, sc.codes, sc.propsets, sc.time_cats, sc.cache_ops):
        assert table and all(k[name] & 0xFFFFFFFF == value for value, name in table.items())
    assert set(ARGS) - {"TZEMU_SCN_VA_TO_PA"} <= set(k)      # only real syscall names


def _args(name: str, *regs: int) -> dict:
    nr = secure_abi().constants.get(name, 0x7000)
    return Decoder().decode("ta_syscall", "S-EL0", {"nr": nr, "name": name,
                                                    "args": [*regs, *[0] * (8 - len(regs))]})


def test_argument_decoders() -> None:
    c = secure_abi().c
    d = _args("TEE_SCN_GET_PROPERTY", c.TEE_PROPSET_CURRENT_TA, 3, 0x1000, 0x1010, 0, 0x1020, 0x1024)
    assert d["syscall"] == "TEE_SCN_GET_PROPERTY"
    assert d["args"] == {"prop_set": "TEE_PROPSET_CURRENT_TA", "index": 3, "name": "0x1000",
                         "name_len": "0x1010", "buf": "0x0", "buf_len": "0x1020",
                         "prop_type": "0x1024"}
    for handle, name in ((c.TEE_PROPSET_CURRENT_CLIENT, "TEE_PROPSET_CURRENT_CLIENT"),
                         (c.TEE_PROPSET_TEE_IMPLEMENTATION, "TEE_PROPSET_TEE_IMPLEMENTATION"),
                         (0x1234, "0x1234")):
        assert _args("TEE_SCN_GET_PROPERTY_NAME_TO_INDEX", handle)["args"]["prop_set"] == name
    flags = c.TEE_MEMORY_ACCESS_READ | c.TEE_MEMORY_ACCESS_WRITE | 0x100
    assert _args("TEE_SCN_CHECK_ACCESS_RIGHTS", flags, 0x4000, 64)["args"] == {
        "flags": "TEE_MEMORY_ACCESS_READ|TEE_MEMORY_ACCESS_WRITE|0x100", "buf": "0x4000", "len": 64}
    assert _args("TEE_SCN_GET_TIME", c.UTEE_TIME_CAT_REE, 0x2000)["args"] == {
        "cat": "UTEE_TIME_CAT_REE", "time": "0x2000"}
    assert _args("TEE_SCN_GET_TIME", 7)["args"]["cat"] == "0x7"
    assert _args("TEE_SCN_CACHE_OPERATION", 0x3000, 32, c.TEE_CACHEINVALIDATE)["args"]["op"] \
        == "TEE_CACHEINVALIDATE"
    assert _args("TEE_SCN_WAIT", c.TEE_TIMEOUT_INFINITE)["args"] == {"timeout": "TEE_TIMEOUT_INFINITE"}
    assert _args("TEE_SCN_WAIT", 250)["args"] == {"timeout": 250}
    assert _args("TEE_SCN_PANIC", c.TEE_ERROR_BAD_STATE)["args"] == {"code": "TEE_ERROR_BAD_STATE"}
    assert _args("TEE_SCN_LOG", 0x5000, 12)["args"] == {"buf": "0x5000", "len": 12}
    assert _args("TEE_SCN_CLOSE_TA_SESSION", 2)["args"] == {"sess": 2}
    assert _args("TZEMU_SCN_VA_TO_PA", 0x6000)["args"] == {"va": "0x6000"}
    # a call tzemu does not implement: by name, raw registers only in fields
    assert _args("TEE_SCN_HASH_INIT", 1, 2) == {"syscall": "TEE_SCN_HASH_INIT"}


def test_results_by_name() -> None:
    c, dec = secure_abi().c, Decoder()
    ret = dec.decode("ta_syscall_return", "S-EL0", {"nr": c.TEE_SCN_CHECK_ACCESS_RIGHTS,
                                                    "result": c.TEE_ERROR_ACCESS_DENIED})
    assert ret == {"syscall": "TEE_SCN_CHECK_ACCESS_RIGHTS", "result": "TEE_ERROR_ACCESS_DENIED"}
    assert dec.decode("ta_syscall_return", "S-EL0", {"nr": 12, "result": 0})["result"] == "TEE_SUCCESS"
    assert dec.decode("ta_syscall_return", "S-EL0", {"nr": 12, "result": 0x1234})["result"] == "0x1234"
