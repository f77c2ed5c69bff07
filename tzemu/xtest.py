"""A port of optee_test's secure-data-path tests: ``xtest --sdp-basic`` and regression 1014.

Everything goes through the TEE Client API facade and the real ioctl bytes: the protected
buffer comes from ``DMA_HEAP_IOCTL_ALLOC`` on ``/dev/dma_heap/protected,<use case>``, is imported
with ``TEE_IOC_SHM_REGISTER_FD`` and passed as partial memrefs, exactly as
``host/xtest/sdp_basic.c`` does (sdp_tests.md). Randomness comes from the seed, so a run is
reproducible.
"""
from __future__ import annotations

import random
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Callable

from linux_side.errors import LinuxError
from linux_side.teec import (TEEC_MEM_INPUT, TEEC_MEMREF_PARTIAL_INOUT,
                             TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT,
                             TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, Operation,
                             RegMemref, TeecError, TempMemref, dma_heap_alloc)

SDP_TA = uuidlib.UUID("12345678-5b69-11e4-9dbb-101f74f00099")
INVOKE_TESTS_PTA = uuidlib.UUID("d96a5b40-c3e5-21e3-8794-1002a5d5c61b")
DEFAULT_HEAP = "/dev/dma_heap/protected,secure-video"
TEEC_ORIGIN_TRUSTED_APP = 4
TEEC_ERROR_GENERIC, TEEC_ERROR_BAD_PARAMETERS = 0xFFFF0000, 0xFFFF0006
SIZE_MAX = 0xFFFFFFFFFFFFFFFF

# target -> (session UUID, inject, transform, dump commands)   (sdp_tests.md §3.2)
TEST_NS_TO_TA, TEST_NS_TO_PTA, TEST_TA_TO_TA, TEST_TA_TO_PTA = range(4)
TARGETS = {TEST_NS_TO_TA: (SDP_TA, 0, 1, 2), TEST_NS_TO_PTA: (INVOKE_TESTS_PTA, 3, 4, 5),
           TEST_TA_TO_TA: (SDP_TA, 3, 4, 5), TEST_TA_TO_PTA: (SDP_TA, 6, 7, 8)}


@dataclass
class XtestReport:
    subtests: int = 0
    failed_subtests: int = 0
    cases: int = 0
    failed_cases: int = 0
    lines: list[str] = field(default_factory=list)

    def out(self, line: str) -> None:
        self.lines.append(line)


class RandomRing:
    """xtest's 32 KiB + 1 random buffer, read once and consumed as a ring (seeded here)."""

    def __init__(self, seed: int):
        self.data = random.Random(seed).randbytes(32769)
        self.pos = 0

    def take(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.data[self.pos:self.pos + n - len(out)]
            out += chunk
            self.pos = (self.pos + len(chunk)) % len(self.data)
        return bytes(out)


def _open(ctx, target: int):
    return ctx.open_session(TARGETS[target][0])


def sdp_basic_test(p, target: int, size: int, loop: int, heap: str, rnd_offset: bool,
                   verbosity: int, rng: RandomRing, log: Callable[[str], None]) -> int:
    """Inject, transform, dump at a random offset ``loop`` times; 0 on success, 1 on failure."""
    if loop == 0:
        log("Error: loop must be > 0")
        return 1
    length = size - 255 if rnd_offset else size
    k = p.kernel
    try:
        fd = dma_heap_alloc(k, heap, size)
    except LinuxError as exc:
        log(f"Error: failed to allocate from {heap}: {exc}")
        return 1
    ctx = p.linux.teec()
    try:
        try:
            sess = _open(ctx, target)
            shm = ctx.register_shared_memory_fd(fd)
        finally:
            k.close(fd)
        _uuid, inject, transform, dump = TARGETS[target]
        for _ in range(loop):
            ref = rng.take(length)
            offset = ref[0]
            op = Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_NONE, TEEC_NONE),
                           [TempMemref(ref), RegMemref(shm, offset, length), None, None])
            for cmd, op in ((inject, op),
                            (transform, Operation((TEEC_MEMREF_PARTIAL_INOUT,) + (TEEC_NONE,) * 3,
                                                  [RegMemref(shm, offset, length), None, None, None]))):
                ret, origin = sess.invoke(cmd, op, check=False)
                if ret:
                    log(f"Error: invoke SDP test TA (inject/transform) failed: {ret:#x} / {origin}")
                    return 1
            out = TempMemref(size=length)
            ret, origin = sess.invoke(dump, Operation(
                (TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE),
                [RegMemref(shm, offset, length), out, None, None]), check=False)
            if ret:
                log(f"Error: invoke SDP test TA (dump) failed: {ret:#x} / {origin}")
                return 1
            expect = bytes((-b) & 0xFF for b in ref)
            if out.out[:length] != expect:
                log("Error: check SDP data: 1 errors")
                return 1
        ctx.release_shared_memory(shm)
        sess.close()
        return 0
    except TeecError as exc:
        log(f"Error: {exc}")
        return 1
    finally:
        ctx.close()


def sdp_out_of_bounds_memref_test(p, size: int, heap: str, verbosity: int,
                                  log: Callable[[str], None]) -> int:
    """INJECT with out-of-bounds output references; returns the number of failed cases."""
    k = p.kernel
    ctx = p.linux.teec()
    try:
        sess = _open(ctx, TEST_NS_TO_TA)
        fd = dma_heap_alloc(k, heap, size)
        try:
            sdp = ctx.register_shared_memory_fd(fd)
        finally:
            k.close(fd)
        size = sdp.size                               # the registered, page-aligned size
        ins = ctx.allocate_shared_memory(size, TEEC_MEM_INPUT)
        cases = [(size - 1, 1, True), (size - 1, 2, False), (size - 1, 5000, False),
                 (size, 1, False), (size, 4096, False), (2, SIZE_MAX, False)]
        failed = 0
        for i, (offset, n, valid) in enumerate(cases):
            if i == 0 and verbosity == 0:
                continue                              # case 0 runs only when verbose
            op = Operation((TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_NONE, TEEC_NONE),
                           [RegMemref(ins, 0, n), RegMemref(sdp, offset, n), None, None])
            ret, origin = sess.invoke(0, op, check=False)
            ok = origin == TEEC_ORIGIN_TRUSTED_APP if valid else (
                origin != TEEC_ORIGIN_TRUSTED_APP and ret in (TEEC_ERROR_GENERIC, TEEC_ERROR_BAD_PARAMETERS))
            if verbosity:
                log(f"- case {i}: offset {offset:#x} size {n:#x}: {ret:#x} origin {origin} "
                    f"{'ok' if ok else 'FAILED'}")
            failed += 0 if ok else 1
        ctx.release_shared_memory(ins)
        ctx.release_shared_memory(sdp)
        sess.close()
        return failed
    finally:
        ctx.close()


def run_sdp_basic(p, size: int = 5000, loop: int = 1000, heap: str = DEFAULT_HEAP,
                  rnd_offset: bool = True, verbosity: int = 1, seed: int = 0) -> XtestReport:
    """``xtest --sdp-basic``: the five stages; the first unexpected result ends the run."""
    rep = XtestReport(cases=1)
    rng = RandomRing(seed)
    stages = [("NS invokes SDP TA", lambda: sdp_basic_test(p, TEST_NS_TO_TA, size, loop, heap, rnd_offset, verbosity, rng, rep.out), 0),
              ("SDP TA invokes SDP TA", lambda: sdp_basic_test(p, TEST_TA_TO_TA, size, loop, heap, rnd_offset, verbosity, rng, rep.out), 0),
              ("SDP TA invokes SDP pTA", lambda: sdp_basic_test(p, TEST_TA_TO_PTA, size, loop, heap, rnd_offset, verbosity, rng, rep.out), 0),
              ("NS invokes SDP pTA (shall fail)", lambda: sdp_basic_test(p, TEST_NS_TO_PTA, size, loop, heap, rnd_offset, verbosity, rng, rep.out), 1),
              ("Invoke TA with out of bounds buffer references", lambda: sdp_out_of_bounds_memref_test(p, 5000, heap, verbosity, rep.out), 0)]
    rep.out(f"Secure Data Path basic access: size {size}, loop {loop}, heap {heap}, "
            f"{'random' if rnd_offset else 'no'} offsets")
    for title, run, expect in stages:
        rep.out(f"sdp: test {title}")
        rep.subtests += 1
        got = run()
        if got != expect:
            rep.out(f"  -> FAILED (returned {got}, expected {expect})")
            rep.failed_subtests += 1
            rep.failed_cases = 1
            break
        rep.out("  -> ok")
    _summary(rep)
    return rep


def run_1014(p, heap: str = DEFAULT_HEAP, seed: int = 0) -> XtestReport:
    """Regression 1014 "Test secure data path against SDP TAs and pTAs"."""
    rep = XtestReport(cases=1)
    rng = RandomRing(seed)
    size, loop = 17000, 10
    subcases = [("SDP: NonSecure client invokes a SDP TA", TEST_NS_TO_TA, 0),
                ("SDP: SDP TA invokes a SDP TA", TEST_TA_TO_TA, 0),
                ("SDP: SDP TA invokes a test pTA (invoke_tests.pta)", TEST_TA_TO_PTA, 0),
                ("SDP: NSec CA invokes a test pTA (invoke_tests.pta) (should fail)", TEST_NS_TO_PTA, 1)]
    rep.out("* regression_1014 Test secure data path against SDP TAs and pTAs")
    for i, (title, target, expect) in enumerate(subcases, 1):
        rep.out(f"o regression_1014.{i} {title}")
        rep.subtests += 1
        got = sdp_basic_test(p, target, size, loop, heap, True, 0, rng, rep.out)
        ok = got == expect
        rep.failed_subtests += 0 if ok else 1
        rep.out(f"  regression_1014.{i} {'OK' if ok else 'FAILED'}")
    rep.out("o regression_1014.5 SDP: Invoke TA with out of bounds SDP memref")
    rep.subtests += 1
    bad = sdp_out_of_bounds_memref_test(p, size, heap, 0, rep.out)
    rep.failed_subtests += 1 if bad else 0
    rep.out(f"  regression_1014.5 {'OK' if not bad else 'FAILED'}")
    rep.failed_cases = 1 if rep.failed_subtests else 0
    rep.out(f"  regression_1014 {'OK' if not rep.failed_cases else 'FAILED'}")
    _summary(rep)
    return rep


def _summary(rep: XtestReport) -> None:
    rep.out("+-----------------------------------------------------")
    rep.out(f"{rep.subtests} subtests of which {rep.failed_subtests} failed")
    rep.out(f"{rep.cases} test cases of which {rep.failed_cases} failed")


__all__ = ["run_sdp_basic", "run_1014", "sdp_basic_test", "sdp_out_of_bounds_memref_test",
           "XtestReport", "DEFAULT_HEAP"]
