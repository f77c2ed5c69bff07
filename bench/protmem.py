"""Protected-heap throughput: buffer lifecycles per second and the SDP TA's data rate.

1. Lifecycles: DMA_HEAP_IOCTL_ALLOC -> TEE_IOC_SHM_REGISTER_FD -> one TRANSFORM invoke -> close
   both fds, per second, for the static pool (carveout) and the dynamic pool (each lifecycle
   lends and reclaims the CMA chunk, since it is the pool's only buffer).
2. Data rate: INJECT, TRANSFORM and DUMP of 1 MiB by the sdp_basic TA at S-EL0 (real AArch64
   loops), in MB/s, against a host memcpy of the same size measured in the same run.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tzemu  # noqa: E402
from linux_side.teec import (TEEC_MEMREF_PARTIAL_INOUT, TEEC_MEMREF_PARTIAL_INPUT,  # noqa: E402
                             TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_TEMP_INPUT,
                             TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, Operation, RegMemref, TempMemref,
                             dma_heap_alloc)
from tzemu.xtest import DEFAULT_HEAP, SDP_TA  # noqa: E402

MIB = 1 << 20


def lifecycles(mode: str, n: int) -> float:
    p = tzemu.boot(protmem=mode)
    k = p.kernel
    ctx = p.linux.teec()
    sess = ctx.open_session(SDP_TA)
    op_for = lambda shm: Operation((TEEC_MEMREF_PARTIAL_INOUT,) + (TEEC_NONE,) * 3,  # noqa: E731
                                   [RegMemref(shm, 0, 4096), None, None, None])
    t = time.perf_counter()
    for _ in range(n):
        fd = dma_heap_alloc(k, DEFAULT_HEAP, 64 * 1024)
        shm = ctx.register_shared_memory_fd(fd)
        sess.invoke(1, op_for(shm))
        ctx.release_shared_memory(shm)
        k.close(fd)
    return n / (time.perf_counter() - t)


def data_rate(mode: str, rounds: int) -> dict[str, float]:
    p = tzemu.boot(protmem=mode)
    k = p.kernel
    ctx = p.linux.teec()
    sess = ctx.open_session(SDP_TA)
    fd = dma_heap_alloc(k, DEFAULT_HEAP, MIB)
    shm = ctx.register_shared_memory_fd(fd)
    k.close(fd)
    data = bytes(range(256)) * (MIB // 256)
    rates: dict[str, float] = {}
    for name, cmd, make in (
            ("inject", 0, lambda: Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_NONE, TEEC_NONE),
                                            [TempMemref(data), RegMemref(shm, 0, MIB), None, None])),
            ("transform", 1, lambda: Operation((TEEC_MEMREF_PARTIAL_INOUT,) + (TEEC_NONE,) * 3,
                                               [RegMemref(shm, 0, MIB), None, None, None])),
            ("dump", 2, lambda: Operation((TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE),
                                          [RegMemref(shm, 0, MIB), TempMemref(size=MIB), None, None]))):
        best = 0.0
        for _ in range(rounds):
            op = make()
            t = time.perf_counter()
            sess.invoke(cmd, op)
            best = max(best, MIB / (time.perf_counter() - t) / 1e6)
        rates[name] = best
    return rates


def memcpy_rate(rounds: int) -> float:
    src = bytearray(MIB)
    dst = bytearray(MIB)
    best = 0.0
    for _ in range(rounds * 10):
        t = time.perf_counter()
        dst[:] = src
        best = max(best, MIB / (time.perf_counter() - t) / 1e6)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="lifecycles per pool")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for mode in ("static", "dynamic"):
        print(f"{mode:7} pool: {lifecycles(mode, args.n):,.0f} alloc+register+invoke+free cycles/s")
    copy = memcpy_rate(args.rounds)
    for mode in ("static", "dynamic"):
        rates = data_rate(mode, args.rounds)
        for name, r in rates.items():
            print(f"{mode:7} 1 MiB {name:9}: {r:8,.1f} MB/s  (host memcpy {copy:,.0f} MB/s, "
                  f"ratio {r / copy:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
