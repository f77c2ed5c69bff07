"""The optee_test port and the scenarios, end to end through the real ioctl bytes."""
from __future__ import annotations

import json

import pytest

import tzemu
from protection_helpers import assert_protected
from tzemu import xtest
from tzemu.cli import main
from tzemu.scenarios import run_scenario


@pytest.mark.parametrize("protmem", ["static", "dynamic"])
def test_xtest_1014_passes(protmem, capsys):
    assert main(["xtest", "1014", "--protmem", protmem]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["5 subtests of which 0 failed", "1 test cases of which 0 failed"]
    assert "regression_1014.4 OK" in "\n".join(out)


@pytest.mark.parametrize("protmem", ["static", "dynamic"])
def test_xtest_sdp_basic_passes(protmem, capsys):
    assert main(["xtest", "--sdp-basic", "-n", "5", "-s", "4000", "--protmem", protmem]) == 0
    out = capsys.readouterr().out
    assert "case 5: offset 0x2 size 0xffffffffffffffff: 0xffff0006 origin 1 ok" in out
    assert out.rstrip().endswith("1 test cases of which 0 failed")


def test_xtest_fails_loudly_on_a_missing_heap(capsys):
    assert main(["xtest", "--sdp-basic", "-n", "2", "--heap-name",
                 "/dev/dma_heap/protected,trusted-ui"]) == 1
    out = capsys.readouterr().out
    assert "failed to allocate" in out and "1 test cases of which 1 failed" in out


def test_sdp_basic_with_a_trusted_ui_heap():
    p = tzemu.boot(protmem="static", protmem_use_cases=("secure-video", "trusted-ui"))
    rep = xtest.run_sdp_basic(p, size=4096 + 255, loop=2, heap="/dev/dma_heap/protected,trusted-ui")
    assert rep.failed_cases == 0, rep.lines


def test_protected_dma_buf_memory_is_fenced_for_everyone_but_its_devices():
    from linux_side.dma_buf import dma_buf_get
    from linux_side.teec import dma_heap_alloc
    for mode in ("dynamic", "static"):
        p = tzemu.boot(protmem=mode)
        fds = [dma_heap_alloc(p.kernel, xtest.DEFAULT_HEAP, 0x3000) for _ in range(2)]
        for fd in fds:
            buf = dma_buf_get(p.kernel, fd)
            pa = buf.priv.table.sgl[0].phys
            assert p.secure_os.protmem.find(pa, buf.size) is not None
            assert_protected(p, pa, buf.size, readers=("display", "codec"), writers=("codec",))
            p.kernel.close(fd)


def test_scenarios_list_and_json(capsys):
    assert main(["scenario", "list"]) == 0
    names = capsys.readouterr().out
    for name in ("sdp-basic", "lend-reclaim", "ta-roundtrip"):
        assert name in names
    assert main(["scenario", "run", "lend-reclaim", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["name"] == "lend-reclaim" and d["passed"] is True
    kinds = {e["kind"] for e in d["events"]}
    assert {"protmem_lend", "protmem_reclaim", "tzc_program"} <= kinds
    assert d["faults"] and d["faults"][0]["kind"] == "external_abort"


def test_lend_reclaim_needs_the_dynamic_configuration():
    with pytest.raises(tzemu.PlatformError, match="dynamic"):
        run_scenario("lend-reclaim", protmem="static")


def test_xtest_1014_and_sdp_basic_over_ffa(capsys):
    assert main(["xtest", "1014", "--abi", "ffa", "--protmem", "dynamic"]) == 0
    assert main(["xtest", "--sdp-basic", "-n", "3", "--abi", "ffa", "--protmem", "dynamic"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("1 test cases of which 0 failed")


def test_lend_reclaim_over_ffa_shows_the_whole_protocol(capsys):
    assert main(["scenario", "run", "lend-reclaim", "--abi", "ffa", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["passed"]
    calls = [e for e in d["events"] if e["kind"] == "ffa_call"]
    lend = next(e for e in d["events"] if e["kind"] == "ffa_mem" and e["op"] == "lend")
    handle = lend["handle"]
    assert lend["tag"] == 1 and lend["receivers"] == [[0x8001, 2]]
    assert any(e["kind"] == "msg" and e["cmd"] == 11 for e in d["events"]), "ASSIGN_PROTMEM"
    assert any(e["kind"] == "optee_ffa" and e["service"] == 8 for e in d["events"]), "RELEASE_PROTMEM"
    reclaims = [e for e in d["events"] if e["kind"] == "ffa_mem" and e["op"] == "reclaim"]
    assert handle in [e["handle"] for e in reclaims]
    names = [e["name"] for e in calls]
    assert names.index("FFA_MEM_LEND_64") < len(names) - 1 - names[::-1].index("FFA_MEM_RECLAIM")


@pytest.mark.parametrize("name", ["trusted-ui", "secure-video-record"])
@pytest.mark.parametrize("protmem", ["static", "dynamic"])
def test_trusted_ui_and_recording_scenarios(name, protmem):
    result = run_scenario(name, protmem=protmem)
    assert result.passed, result.notes
    # the deliberate NS-EL1 read (a "fault" event and its external abort) and a refused DMA
    assert {f["kind"] for f in result.faults} == {"fault", "external_abort", "dma_fault"}
    assert all(f["world"] != "S-EL1" for f in result.faults), "the secure world faulted"
