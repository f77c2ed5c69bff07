"""Issue 10 part 4: named fault-injection points (emu/faults.py).

For each point: make the component fail at its real failure point, drive the real path, check
the specific error reaches the caller, that the invariants hold, that nothing was lost (CMA,
TA pool, protected ranges, shm tables, secure threads) and that the NEXT identical operation
succeeds.
"""
from __future__ import annotations

import errno
import uuid as uuidlib

import pytest

import tzemu
from emu.faults import POINTS, FaultInjector, parse_inject
from emu.invariants import InvariantMonitor, check_invariants
from linux_side.errors import LinuxError
from linux_side.teec import (TEEC_NONE, TEEC_VALUE_INOUT, Operation, TeecError, Value,
                             dma_heap_alloc)
from tzemu.platform import PlatformError

ECHO = "7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31"
HEAP = "/dev/dma_heap/protected,secure-video"
SIZE = 0x4000
TEE_ERROR_OUT_OF_MEMORY = 0xFFFF000C
TEE_ORIGIN_TEE = 3
ABIS = ("smc", "ffa")


# --- the injector itself ---------------------------------------------------------------------
def test_injector_counts_hits_and_fails_the_nth():
    f = FaultInjector({"cma.alloc": 2, "threads": "always"})
    assert [f.hit("cma.alloc") for _ in range(4)] == [False, True, False, False]
    assert [f.hit("threads") for _ in range(3)] == [True, True, True]
    assert f.hits["cma.alloc"] == 4 and f.fired["cma.alloc"] == 1 and f.fired["threads"] == 3
    assert not FaultInjector().hit("cma.alloc")


def test_injector_arm_counts_from_now():
    f = FaultInjector()
    f.hit("ta.alloc")
    f.arm("ta.alloc", 2)
    assert [f.hit("ta.alloc") for _ in range(3)] == [False, True, False]
    f.arm("ta.alloc", "all")
    assert f.hit("ta.alloc")
    f.disarm()
    assert not f.hit("ta.alloc")


@pytest.mark.parametrize("spec", [{"nope": 1}, {"cma.alloc": 0}, {"cma.alloc": "sometimes"},
                                  {"cma.alloc": True}])
def test_bad_specs_are_rejected_with_the_known_points(spec):
    with pytest.raises(ValueError) as exc:
        FaultInjector(spec)
    if "nope" in spec:
        for name in POINTS:
            assert name in str(exc.value)


def test_boot_rejects_an_unknown_point():
    with pytest.raises(PlatformError, match="known points"):
        tzemu.boot(inject={"tzc.programme": 1})


def test_parse_inject_cli_values():
    assert parse_inject(["cma.alloc", "threads:3", "ta.alloc:all"]) == {
        "cma.alloc": 1, "threads": 3, "ta.alloc": "all"}
    with pytest.raises(ValueError):
        parse_inject(["bogus:1"])


def test_cli_inject_option_reaches_boot_options():
    import argparse
    from tzemu.cli_args import add_boot_arguments, boot_options
    ap = argparse.ArgumentParser()
    add_boot_arguments(ap)
    args = ap.parse_args(["--inject", "cma.alloc", "--inject", "threads:2"])
    assert boot_options(args)["inject"] == {"cma.alloc": 1, "threads": 2}
    with pytest.raises(SystemExit):
        boot_options(ap.parse_args(["--inject", "bogus"]))


def test_each_world_has_its_own_injector():
    p = tzemu.boot(inject={"cma.alloc": 1})
    assert p.faults["secure"] is not p.faults["linux"]
    assert p.secure_os.faults is p.faults["secure"]
    assert p.kernel.faults is p.faults["linux"]
    assert p.kernel.cma.faults is p.kernel.faults
    assert p.secure_os.ta_pool.faults is p.secure_os.faults


# --- helpers -----------------------------------------------------------------------------------
def _boot(abi, **kw):
    p = tzemu.boot(abi=abi, protmem="dynamic", **kw)
    return p, InvariantMonitor(p, expected=(TeecError,))


def _snapshot(p):
    """Everything a failed operation must leave as it found it."""
    sos, k = p.secure_os, p.kernel
    spmc = getattr(getattr(sos, "ffa", None), "spmc", None)
    return {
        "cma_free": k.cma.free_pages,
        "cma_allocations": dict(k.cma.allocations),
        "ta_pool_free": sos.ta_pool.free_bytes,
        "protected": [(r.base, r.size, r.use_case) for r in sos.protmem.regions],
        "tzc": [(r.base, r.top) for r in p.tzc.regions()],
        "linux_shm_ids": sorted(k.optee.shm_table.by_id),
        "linux_shm_cookies": sorted(k.optee.shm_table.by_cookie),
        "kernel_pool_free": k.pages.free_bytes,
        "secure_threads_free": sum(t.state.name == "FREE" for t in sos.std.threads),
        "secure_sessions": sorted(sos.ta_manager.sessions),
        "ffa_handles": sorted(tx.handle for tx in spmc.handles()) if spmc is not None else [],
    }


def _clean(p, mon, before):
    assert check_invariants(p) == []
    assert mon.check() == []
    assert _snapshot(p) == before


def _alloc_free(p):
    fd = dma_heap_alloc(p.kernel, HEAP, SIZE)
    p.kernel.close(fd)


def _echo(ctx):
    s = ctx.open_session(ECHO)
    op = Operation((TEEC_VALUE_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE),
                   [Value(41, 0), None, None, None])
    s.invoke(0, op)
    s.close()
    return op.params[0].a


# --- normal world ------------------------------------------------------------------------------
@pytest.mark.parametrize("abi", ABIS)
def test_cma_alloc_failure_is_enomem_from_the_heap(abi):
    p, mon = _boot(abi)
    before = _snapshot(p)
    p.kernel.faults.arm("cma.alloc")
    with pytest.raises(LinuxError) as exc, mon.guard("heap alloc"):
        dma_heap_alloc(p.kernel, HEAP, SIZE)
    assert exc.value.errno == errno.ENOMEM
    assert p.kernel.faults.fired["cma.alloc"] == 1
    _clean(p, mon, before)
    _alloc_free(p)                                   # the next identical allocation works
    _clean(p, mon, before)


@pytest.mark.parametrize("abi", ABIS)
def test_cma_alloc_failure_then_xtest_sdp_basic_passes(abi):
    from tzemu.xtest import run_sdp_basic
    p = tzemu.boot(abi=abi, protmem="dynamic", inject={"cma.alloc": 1})
    with pytest.raises(LinuxError):
        dma_heap_alloc(p.kernel, HEAP, SIZE)
    rep = run_sdp_basic(p, loop=2)
    assert rep.failed_cases == 0, rep.lines
    assert check_invariants(p) == []


def _ta_dir(tmp_path):
    from ta.build import build_ta, load_manifest
    from ta.sign import sign_ta
    entry = dict(load_manifest()[0])
    new = uuidlib.UUID("11111111-2222-3333-4444-555555555555")
    entry["uuid"] = str(new)
    (tmp_path / f"{new}.ta").write_bytes(sign_ta(build_ta(entry), new))
    return new


@pytest.mark.parametrize("abi", ABIS)
def test_supplicant_shm_alloc_failure_is_out_of_memory_to_the_caller(abi, tmp_path):
    new = _ta_dir(tmp_path)
    p = tzemu.boot(abi=abi, ta_dirs=[tmp_path])
    mon = InvariantMonitor(p, expected=(TeecError,))
    ctx = p.linux.teec()
    assert _echo(ctx) == 42          # warm up: the driver's argument cache (FF-A) stays
    before = _snapshot(p)
    p.kernel.faults.arm("supplicant.shm_alloc")
    with pytest.raises(TeecError) as exc, mon.guard("open session"):
        ctx.open_session(new)
    assert (exc.value.code, exc.value.origin) == (TEE_ERROR_OUT_OF_MEMORY, TEE_ORIGIN_TEE)
    assert p.kernel.faults.fired["supplicant.shm_alloc"] == 1
    _clean(p, mon, before)
    s = ctx.open_session(new)                        # the next identical open loads the TA
    s.close()
    assert p.secure_os.ta_manager.loaded_from_ree[new] == f"{new}.ta"
    assert check_invariants(p) == [] and mon.check() == []


# --- secure world: protected memory ------------------------------------------------------------
@pytest.mark.parametrize("abi", ABIS)
def test_protmem_lend_failure(abi):
    p, mon = _boot(abi)
    before = _snapshot(p)
    p.secure_os.faults.arm("protmem.lend")
    with pytest.raises(LinuxError) as exc, mon.guard("heap alloc"):
        dma_heap_alloc(p.kernel, HEAP, SIZE)
    if abi == "smc":          # LEND_PROTMEM ret TEE_ERROR_OUT_OF_MEMORY -> the pool's -EINVAL
        assert exc.value.errno == errno.EINVAL
        assert "0xffff000c" in str(exc.value)
    else:                     # FFA_MEM_LEND -> FFA_NO_MEMORY -> ffa_to_linux_errno: -ENOMEM
        assert exc.value.errno == errno.ENOMEM
        assert "FF-A error -3" in str(exc.value)
    assert p.secure_os.faults.fired["protmem.lend"] == 1
    _clean(p, mon, before)                            # the chunk went back to CMA
    _alloc_free(p)
    assert check_invariants(p) == [] and mon.check() == []


@pytest.mark.parametrize("abi", ABIS)
def test_tzc_program_failure_takes_the_hook_error_path(abi):
    p, mon = _boot(abi)
    before = _snapshot(p)
    p.secure_os.faults.arm("tzc.program")
    programmed = p.secure_os.protmem_hook.programmed
    with pytest.raises(LinuxError) as exc, mon.guard("heap alloc"):
        dma_heap_alloc(p.kernel, HEAP, SIZE)
    assert exc.value.errno == errno.EINVAL
    assert ("0xffff0006" if abi == "smc" else "FF-A error -2") in str(exc.value)
    assert p.secure_os.protmem_hook.programmed == programmed     # no TZC write at all
    _clean(p, mon, before)
    _alloc_free(p)
    assert check_invariants(p) == [] and mon.check() == []


def test_tzc_program_failure_at_boot_of_static_carveouts():
    with pytest.raises(Exception, match="injected fault"):
        tzemu.boot(protmem="static", inject={"tzc.program": 1})


@pytest.mark.parametrize("abi", ABIS)
def test_protmem_reclaim_failure_keeps_the_chunk_protected_then_retries(abi):
    p, mon = _boot(abi)
    before = _snapshot(p)
    fd = dma_heap_alloc(p.kernel, HEAP, SIZE)
    lent = _snapshot(p)
    assert len(lent["protected"]) == 1
    p.secure_os.faults.arm("protmem.reclaim")
    with mon.guard("close"):
        p.kernel.close(fd)                     # the last free: RECLAIM refused
    assert p.secure_os.faults.fired["protmem.reclaim"] == 1
    assert check_invariants(p) == [] and mon.check() == []
    after = _snapshot(p)                       # the chunk stays lent and out of CMA
    assert after["protected"] == lent["protected"]
    assert after["cma_free"] == lent["cma_free"]
    _alloc_free(p)                             # reuses the chunk; its last free reclaims it
    _clean(p, mon, before)


# --- secure world: threads and TA memory -------------------------------------------------------
def test_thread_limit_at_register_level_smc():
    p = tzemu.boot(abi="smc")
    c = p.secure_os.c
    p.secure_os.faults.arm("threads")
    r = p.smc(c.OPTEE_SMC_CALL_WITH_ARG, 0, 0x1000, 0)
    assert r[0] & 0xFFFFFFFF == c.OPTEE_SMC_RETURN_ETHREAD_LIMIT
    assert all(t.state.name == "FREE" for t in p.secure_os.std.threads)
    assert check_invariants(p) == []


@pytest.mark.parametrize("abi", ABIS)
def test_thread_limit_makes_the_driver_wait_and_retry(abi):
    p = tzemu.boot(abi=abi)
    mon = InvariantMonitor(p, expected=(TeecError,))
    ctx = p.linux.teec()
    assert _echo(ctx) == 42
    before = _snapshot(p)
    stats = p.kernel.optee.stats
    key = "ethread_limit" if abi == "smc" else "busy"
    n = stats[key]
    p.secure_os.faults.arm("threads")
    with mon.guard("echo"):
        assert _echo(ctx) == 42                # ETHREAD_LIMIT / BUSY: sleep, retry, succeed
    assert stats[key] == n + 1
    assert p.secure_os.faults.fired["threads"] == 1
    _clean(p, mon, before)


@pytest.mark.parametrize("abi", ABIS)
def test_no_secure_thread_ever_is_edeadlk_and_loses_nothing(abi):
    p = tzemu.boot(abi=abi)
    mon = InvariantMonitor(p, expected=(TeecError,))
    ctx = p.linux.teec()
    assert _echo(ctx) == 42
    before = _snapshot(p)
    p.secure_os.faults.arm("threads", "all")
    with pytest.raises(LinuxError) as exc, mon.guard("open session"):
        ctx.open_session(ECHO)
    assert exc.value.errno == errno.EDEADLK
    p.secure_os.faults.disarm()
    _clean(p, mon, before)
    assert _echo(ctx) == 42
    _clean(p, mon, before)


@pytest.mark.parametrize("abi", ABIS)
def test_ta_alloc_failure_is_out_of_memory(abi):
    p = tzemu.boot(abi=abi)
    mon = InvariantMonitor(p, expected=(TeecError,))
    ctx = p.linux.teec()
    assert _echo(ctx) == 42          # warm up: the driver's argument cache (FF-A) stays
    before = _snapshot(p)
    p.secure_os.faults.arm("ta.alloc")
    with pytest.raises(TeecError) as exc, mon.guard("open session"):
        ctx.open_session(ECHO)
    assert (exc.value.code, exc.value.origin) == (TEE_ERROR_OUT_OF_MEMORY, TEE_ORIGIN_TEE)
    assert p.secure_os.faults.fired["ta.alloc"] == 1
    _clean(p, mon, before)
    assert _echo(ctx) == 42
    assert check_invariants(p) == [] and mon.check() == []


@pytest.mark.parametrize("abi", ABIS)
@pytest.mark.parametrize("nth", [2, 3])
def test_ta_alloc_failure_at_later_allocations_of_a_load(abi, nth):
    """A TA load takes three pool allocations; failing a later one frees the earlier ones."""
    p = tzemu.boot(abi=abi)
    mon = InvariantMonitor(p, expected=(TeecError,))
    ctx = p.linux.teec()
    assert _echo(ctx) == 42
    before = _snapshot(p)
    p.secure_os.faults.arm("ta.alloc", nth)
    with pytest.raises(TeecError) as exc, mon.guard("open session"):
        ctx.open_session(ECHO)
    assert exc.value.code == TEE_ERROR_OUT_OF_MEMORY
    assert p.secure_os.faults.fired["ta.alloc"] == 1
    _clean(p, mon, before)
    assert _echo(ctx) == 42
    _clean(p, mon, before)


# --- devices -------------------------------------------------------------------------------------
def _svp(p, frames=3):
    from tzemu import svp
    return svp.play(p, svp.make_test_stream("NV12", 64, 48, frames), key=svp.SEED_KEY, iv=None,
                    serialize_iv=True, fmt="NV12", width=64, height=48, try_ns_read=False)


@pytest.mark.parametrize("abi", ABIS)
def test_display_dma_bus_error_stops_svp_at_that_frame_with_every_buffer_released(abi):
    from tzemu import svp
    p = tzemu.boot(abi=abi, protmem="dynamic")
    mon = InvariantMonitor(p, expected=(TeecError, svp.SvpError))
    good = _svp(p)                                  # warm up: TA loaded once, pools in use
    before = _snapshot(p)
    p.faults["devices"].arm("display.dma", 2)       # the second scan-out fails
    with pytest.raises(svp.SvpError) as exc, mon.guard("svp"):
        _svp(p)
    assert "frame 1: display scan-out failed" in str(exc.value)
    assert "bus error on DMA read" in str(exc.value)
    assert p.faults["devices"].fired["display.dma"] == 1
    assert [e.fields["reason"] for e in p.bus.of_kind("dma_fault")] in ([], ["injected bus error"])
    _clean(p, mon, before)
    assert _svp(p).crcs == good.crcs                # the next identical run shows every frame
    _clean(p, mon, before)


def test_a_decrypt_error_mid_stream_releases_every_buffer():
    from tzemu import svp
    p = tzemu.boot(abi="smc", protmem="dynamic")
    mon = InvariantMonitor(p, expected=(TeecError, svp.SvpError))
    _svp(p)
    before = _snapshot(p)
    stream = bytearray(svp.make_test_stream("NV12", 64, 48, 3))
    stream[-1] ^= 0xFF                               # last record's padding
    with pytest.raises(svp.SvpError, match="frame 2: .*padding"), mon.guard("svp"):
        svp.play(p, bytes(stream), key=svp.SEED_KEY, iv=None, serialize_iv=True, fmt="NV12",
                 width=64, height=48, try_ns_read=False)
    _clean(p, mon, before)
