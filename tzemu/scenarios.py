"""Built-in scenarios: short, named exchanges a user can run, trace and debug.

Each scenario boots its own platform (with the caller's options), records every event, runs,
and returns whether it behaved as the real stack would. ``tzemu scenario run NAME --json``
prints ``{"name", "passed", "events", "faults"}``.
"""
from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any, Callable

import tzemu
from linux_side.teec import (TEEC_MEMREF_PARTIAL_INOUT, TEEC_MEMREF_PARTIAL_INPUT,
                             TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_TEMP_INPUT,
                             TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, Operation, RegMemref, TempMemref,
                             dma_heap_alloc)
from tzemu.xtest import DEFAULT_HEAP, SDP_TA, RandomRing, TEST_NS_TO_TA, sdp_basic_test

ECHO_TA = uuidlib.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")


@dataclass
class ScenarioResult:
    name: str
    passed: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "events": self.events,
                "faults": self.faults, "notes": self.notes}


@dataclass
class Scenario:
    name: str
    description: str
    run: Callable[[Any, list[str]], bool]
    defaults: dict[str, Any] = field(default_factory=dict)


def _sdp_basic(p, notes: list[str]) -> bool:
    rc = sdp_basic_test(p, TEST_NS_TO_TA, 5000, 3, DEFAULT_HEAP, True, 1, RandomRing(p.options.seed),
                        notes.append)
    notes.append("inject / transform / dump through a protected dma-buf: " + ("ok" if rc == 0 else "FAILED"))
    return rc == 0


def _lend_reclaim(p, notes: list[str]) -> bool:
    """Allocate (the pool lends its chunk), register, invoke, free (the pool reclaims it)."""
    k = p.kernel
    fd = dma_heap_alloc(k, DEFAULT_HEAP, 0x4000)
    ctx = p.linux.teec()
    sess = ctx.open_session(SDP_TA)
    shm = ctx.register_shared_memory_fd(fd)
    k.close(fd)
    data = bytes(range(64))
    sess.invoke(0, Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_NONE, TEEC_NONE),
                             [TempMemref(data), RegMemref(shm, 0x100, len(data)), None, None]))
    sess.invoke(1, Operation((TEEC_MEMREF_PARTIAL_INOUT,) + (TEEC_NONE,) * 3,
                             [RegMemref(shm, 0x100, len(data)), None, None, None]))
    out = TempMemref(size=len(data))
    sess.invoke(2, Operation((TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE),
                             [RegMemref(shm, 0x100, len(data)), out, None, None]))
    ok = out.out == bytes((-b) & 0xFF for b in data)
    lent = [r for r in p.secure_os.protmem.regions if not r.static]
    chunk = (lent[0].base, lent[0].size) if lent else None
    notes.append(f"lent chunk: {chunk[0]:#x}+{chunk[1]:#x}" if chunk else "nothing was lent")
    try:
        p.ns_read(chunk[0], 16)
        ok = False
        notes.append("the NS CPU could read the lent chunk")
    except tzemu.ProtectionFault:
        notes.append("the NS CPU faults on the lent chunk")
    ctx.release_shared_memory(shm)
    sess.close()
    ctx.close()
    reclaimed = not [r for r in p.secure_os.protmem.regions if not r.static]
    zero = chunk is not None and p.physmem.is_zero(*chunk)
    readable = chunk is not None and p.ns_read(chunk[0], 16) == bytes(16)
    notes.append(f"reclaimed: {reclaimed}, scrubbed: {zero}, NS-readable again: {readable}")
    return bool(ok and chunk and reclaimed and zero and readable)


def _ta_roundtrip(p, notes: list[str]) -> bool:
    from tzemu.demo import run_ta_roundtrip
    summary = run_ta_roundtrip(p)
    notes.extend(f"{step}: {result}" for step, result in summary.steps)
    return summary.failures == 0


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("ta-roundtrip", "open a session with the echo TA and run every parameter kind",
             _ta_roundtrip),
    Scenario("sdp-basic", "xtest's secure data path round trip through a protected dma-buf",
             _sdp_basic, {"protmem": "static"}),
    Scenario("lend-reclaim", "dynamic protected memory: lend on first allocation, reclaim "
             "and scrub on last free", _lend_reclaim, {"protmem": "dynamic"}),
)}


def run_scenario(name: str, **options: Any) -> ScenarioResult:
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise tzemu.PlatformError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    opts = {**scenario.defaults, **{k: v for k, v in options.items() if v is not None}}
    if name == "lend-reclaim" and opts.get("protmem") != "dynamic":
        raise tzemu.PlatformError("lend-reclaim needs --protmem dynamic")
    p = tzemu.boot(record_events=1_000_000, **opts)
    p.bus.clear()
    notes: list[str] = []
    passed = scenario.run(p, notes)
    events = [e.to_dict() for e in p.bus.recorded]
    faults = [e for e in events if e["kind"] in ("fault", "external_abort", "dma_fault")]
    return ScenarioResult(name, passed, events, faults, notes)
