"""A TA directory is asked before the built-in TAs: the project's own SDP TA, built as a real
signed .ta file, runs optee_test's SDP tests on both ABIs (issue 11, item 5 and Tests)."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import tzemu
from ta.build import build_signed_tas
from ta.sign import header_digest
from tzemu import xtest

SDP_BASIC = uuid.UUID("12345678-5b69-11e4-9dbb-101f74f00099")
ECHO = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")


@pytest.fixture(scope="module")
def builtin_signed(tmp_path_factory) -> Path:
    """Every built-in TA as a signed <uuid>.ta with the project's test key."""
    out = tmp_path_factory.mktemp("signed_builtins")
    written = build_signed_tas(out)
    assert SDP_BASIC in written and ECHO in written
    return out


def _loaded(p, u: uuid.UUID) -> dict:
    ev = [e.fields for e in p.bus.of_kind("ta_load") if e.fields["uuid"] == str(u)]
    assert ev, f"no ta_load event for {u}"
    return ev[0]


@pytest.mark.parametrize("abi,protmem", [("smc", "static"), ("smc", "dynamic"),
                                         ("ffa", "dynamic")])
def test_xtest_1014_and_sdp_basic_pass_with_the_signed_sdp_ta_from_the_ta_dir(
        builtin_signed, abi, protmem):
    p = tzemu.boot(abi=abi, protmem=protmem, ta_dirs=[builtin_signed], record_events=200_000)
    rep = xtest.run_1014(p)
    assert not rep.failed_cases and not rep.failed_subtests, "\n".join(rep.lines)
    rep = xtest.run_sdp_basic(p, loop=5)
    assert not rep.failed_cases and not rep.failed_subtests, "\n".join(rep.lines)
    ev = _loaded(p, SDP_BASIC)
    assert ev["store"] == "ree", "the built-in SDP TA ran instead of the TA dir's file"
    assert ev["file"] == f"{SDP_BASIC}.ta"
    assert ev["digest"] == header_digest((builtin_signed / f"{SDP_BASIC}.ta").read_bytes()).hex()


def test_without_a_ta_dir_the_builtin_ta_loads_without_an_rpc():
    p = tzemu.boot(record_events=100_000)
    p.linux.teec().open_session(ECHO).close()
    ev = _loaded(p, ECHO)
    assert ev["store"] == "builtin" and ev["file"] == f"{ECHO}.ta", ev
    assert not [e for e in p.bus.of_kind("rpc") if "LOAD_TA" in str(e.fields)]


def test_a_ta_dir_without_the_file_falls_back_to_the_builtin_ta(tmp_path):
    p = tzemu.boot(ta_dirs=[tmp_path], record_events=100_000)
    p.linux.teec().open_session(ECHO).close()
    p.linux.teec().open_session(ECHO).close()
    assert _loaded(p, ECHO)["store"] == "builtin"
    assert ECHO not in p.secure_os.ta_manager.loaded_from_ree


def test_ffa_rpc_payload_is_unregistered_before_linux_reclaims_it(builtin_signed):
    """LOAD_TA over FF-A: the secure OS gives the RPC payload handle up before SHM_FREE, so the
    driver's FFA_MEM_RECLAIM succeeds and the pages are not reused while still shared."""
    p = tzemu.boot(abi="ffa", ta_dirs=[builtin_signed], record_events=100_000)
    p.linux.teec().open_session(ECHO).close()
    reclaims = [e.fields for e in p.bus.of_kind("ffa_call") if e.fields["name"] == "FFA_MEM_RECLAIM"]
    assert reclaims and all(r["result"] == "FFA_SUCCESS_32" for r in reclaims), reclaims


def test_ffa_with_static_carveouts_is_refused_at_boot_with_the_reason():
    """The Linux FF-A driver registers no static pool, so the combination has no heap."""
    with pytest.raises(tzemu.PlatformError, match="only as memory lent with FFA_MEM_LEND"):
        tzemu.boot(abi="ffa", protmem="static")
