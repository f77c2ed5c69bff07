"""Built-in scenarios: short, named exchanges a user can run, trace and debug.

Each scenario boots its own platform (with the caller's options), records every event, runs,
and returns whether it behaved as the real stack would. ``tzemu scenario run NAME --json``
prints ``{"name", "passed", "events", "faults"}``.
"""
from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import tzemu
from linux_side.teec import (TEEC_MEMREF_PARTIAL_INOUT, TEEC_MEMREF_PARTIAL_INPUT,
                             TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_TEMP_INPUT,
                             TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, Operation, RegMemref, TempMemref,
                             Value, dma_heap_alloc)
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


PINPAD_TA = uuidlib.UUID("3b1f6a52-7c0e-4d9a-b8f2-61e4c0d9a7b5")
DECRYPT_TA = uuidlib.UUID("5c2d1e77-9f3a-4b61-8e0d-2a7c4f9b1d03")


def _protected_frame(p, heap: str, size: int):
    """A dma-buf from ``heap``, registered; returns (fd, shm, physical address)."""
    from linux_side.dma_buf import dma_buf_get
    fd = dma_heap_alloc(p.kernel, heap, size)
    pa = dma_buf_get(p.kernel, fd).priv.table.sgl[0].phys
    return fd, pa


def _denied(fn) -> bool:
    try:
        fn()
    except tzemu.ProtectionFault:
        return True
    return False


def _trusted_ui(p, notes: list[str]) -> bool:
    """A TA renders a PIN pad into protected,trusted-ui memory; the display shows it."""
    from linux_side.teec import TEEC_VALUE_INPUT
    w, h, key = 240, 320, 4
    size = w * h * 4
    k = p.kernel
    fd, pa = _protected_frame(p, "/dev/dma_heap/protected,trusted-ui", size)
    ctx = p.linux.teec()
    shm = ctx.register_shared_memory_fd(fd)
    sess = ctx.open_session(PINPAD_TA)
    op = lambda target: Operation(  # noqa: E731
        (TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_VALUE_INPUT, TEEC_VALUE_INPUT, TEEC_NONE),
        [RegMemref(target, 0, size), Value(w, h), Value(key, 0), None])
    ret, origin = sess.invoke(0, op(shm), check=False)
    notes.append(f"PIN pad rendered into the trusted-ui buffer at {pa:#x}: {ret:#x}/{origin}")
    display = p.devices["display"]
    crc = display.scanout(pa, size)
    frame = display.last_frame
    cw, ch = w // 3, h // 4
    centre = ((key // 3) * ch + ch // 2) * w + (key % 3) * cw + cw // 2
    highlighted = frame[centre * 4:centre * 4 + 4] == bytes((0x40, 0xC0, 0x40, 0xFF))
    notes.append(f"display scanned it out (crc {crc:08x}); key {key} highlighted: {highlighted}")
    ns_denied = _denied(lambda: p.ns_read(pa, 16))
    codec_denied = _denied(lambda: p.devices["codec"].dma_read(pa, 16))
    notes.append(f"NS CPU denied: {ns_denied}; codec (not a trusted-ui master) denied: {codec_denied}")
    normal = ctx.allocate_shared_memory(size)
    ret_ns, _ = sess.invoke(0, op(normal), check=False)
    notes.append(f"rendering into normal memory refused by the TA: {ret_ns:#x}")
    ctx.release_shared_memory(normal)
    ctx.release_shared_memory(shm)
    k.close(fd)
    sess.close()
    ctx.close()
    return ret == 0 and highlighted and ns_denied and codec_denied and ret_ns == 0xFFFF0001


def _secure_video_record(p, notes: list[str]) -> bool:
    """A camera writes frames into protected,secure-video-record buffers; a TA encrypts them
    (aesenc format) into normal memory, which is all the normal world ever holds."""
    from linux_side.teec import TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT
    from tzemu import aes_stream, svp
    frames, size = 3, 64 * 48 * 3 // 2
    k = p.kernel
    fd, pa = _protected_frame(p, "/dev/dma_heap/protected,secure-video-record", size)
    ctx = p.linux.teec()
    shm = ctx.register_shared_memory_fd(fd)
    sess = ctx.open_session(DECRYPT_TA)
    key, iv = bytes.fromhex(svp.SEED_KEY), bytes.fromhex(svp.SEED_IV)
    sess.invoke(0, Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE),
                             [TempMemref(key), Value(128), None, None]))
    sess.invoke(1, Operation((TEEC_MEMREF_TEMP_INPUT,) + (TEEC_NONE,) * 3,
                             [TempMemref(iv), None, None, None]))
    out = ctx.allocate_shared_memory(aes_stream.record_size(size))
    camera = p.devices["camera"]
    captured, cipher = [], b""
    for i in range(frames):
        captured.append(camera.capture_pattern(pa, size, i))
        n = Value()
        sess.invoke(4, Operation((TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT,
                                  TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT),
                                 [RegMemref(shm, 0, size), RegMemref(out, 0, out.size),
                                  Value(size, 1), n]))
        cipher += k.copy_from_user(out.va, n.a)
    plain = aes_stream.decrypt_stream(cipher, key, iv, "aes-128-cbc", False, True, chunk=size)
    ok = plain == b"".join(captured)
    notes.append(f"{frames} camera frames encrypted by the TA into normal memory: "
                 f"{len(cipher)} bytes, decrypt to the captured frames: {ok}")
    ns_denied = _denied(lambda: p.ns_read(pa, 16))
    display_denied = _denied(lambda: p.devices["display"].dma_read(pa, 16))
    notes.append(f"NS CPU denied: {ns_denied}; display (no read access for recording) denied: "
                 f"{display_denied}")
    for s in (shm, out):
        ctx.release_shared_memory(s)
    k.close(fd)
    sess.close()
    ctx.close()
    return ok and ns_denied and display_denied


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
    Scenario("trusted-ui", "a TA renders a PIN pad into protected,trusted-ui memory shown by "
             "the display", _trusted_ui,
             {"protmem": "static", "protmem_use_cases": ("trusted-ui",)}),
    Scenario("secure-video-record", "a camera fills protected,secure-video-record buffers that "
             "a TA encrypts into normal memory", _secure_video_record,
             {"protmem": "static", "protmem_use_cases": ("secure-video-record",)}),
)}


def run_scenario(name: str, *, attach: Sequence[Callable[[Any], Any]] = (),
                 **options: Any) -> ScenarioResult:
    """Boot with ``options`` (over the scenario's defaults), run it, return every event.

    Each ``attach`` callable gets the booted platform before the scenario starts (a gdb stub,
    a tracer) and returns an object whose ``close()`` runs when the scenario ends."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise tzemu.PlatformError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    given = {k: v for k, v in options.items() if v is not None}
    opts = {**scenario.defaults, **given}
    if opts.get("abi") == "ffa" and opts.get("protmem") == "static" and "protmem" not in given:
        opts["protmem"] = "dynamic"     # FF-A offers protected memory only as lent memory
    if name == "lend-reclaim" and opts.get("protmem") != "dynamic":
        raise tzemu.PlatformError("lend-reclaim needs --protmem dynamic")
    p = tzemu.boot(record_events=1_000_000, **opts)
    p.bus.clear()
    attached = []
    try:
        for fn in attach:
            attached.append(fn(p))
        notes: list[str] = []
        passed = scenario.run(p, notes)
    finally:
        for obj in reversed(attached):
            if obj is not None:
                obj.close()
    events = [e.to_dict() for e in p.bus.recorded]
    faults = [e for e in events if e["kind"] in ("fault", "external_abort", "dma_fault")]
    return ScenarioResult(name, passed, events, faults, notes)
