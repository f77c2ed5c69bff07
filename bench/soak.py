"""Soak: N protected-buffer lifecycles (alloc, REGISTER_FD, sdp_basic TRANSFORM, free) per ABI.

    python bench/soak.py [--n 2000] [--abi smc,ffa] [--live 6] [--check-every 200]

Allocation sizes are interleaved (1, 3, 16, 64, 5, 128 pages, ...) and up to ``--live``
buffers stay alive at once, so the pool's allocator fragments; every ``--drain`` lifecycles
every buffer is freed, which makes the Linux dynamic pool reclaim its chunk (RECLAIM_PROTMEM /
FFA_MEM_RECLAIM, scrubbed) and lend a fresh one on the next allocation.  The invariant monitor
(emu/invariants.py) watches the whole run and is checked every ``--check-every`` lifecycles.

Prints ops/s (lifecycles per second), peak RSS and the RSS slope after warm-up (linear fit of
RSS samples against lifecycle count, in KiB per 1000 lifecycles): flat means no leak.
``--n 100000`` is the full soak of issue 10.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tzemu  # noqa: E402
from emu.invariants import InvariantMonitor  # noqa: E402
from linux_side.errors import LinuxError  # noqa: E402
from linux_side.teec import (TEEC_MEMREF_PARTIAL_INOUT, TEEC_NONE, Operation,  # noqa: E402
                             RegMemref, TeecError, dma_heap_alloc)

SDP = "12345678-5b69-11e4-9dbb-101f74f00099"
HEAP = "/dev/dma_heap/protected,secure-video"
SIZES = (1, 3, 16, 64, 5, 32, 2, 24, 7, 40)       # pages, interleaved (6 live fit a chunk)
TRANSFORM = 1


def rss_kib() -> int:
    """Current RSS (Linux /proc), else peak RSS."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() // 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def soak(abi: str, n: int, live: int, drain: int, check_every: int) -> dict:
    p = tzemu.boot(abi=abi, protmem="dynamic")
    mon = InvariantMonitor(p, expected=(TeecError,))
    k = p.kernel
    ctx = p.linux.teec()
    sess = ctx.open_session(SDP)
    ring: list[tuple[int, object]] = []
    samples_x: list[float] = []
    samples_y: list[float] = []
    warm = max(n // 5, 1)
    errors = enomem = 0

    def free_one() -> None:
        fd, shm = ring.pop(0)
        ctx.release_shared_memory(shm)
        k.close(fd)

    t0 = time.perf_counter()
    for i in range(n):
        pages = SIZES[i % len(SIZES)]
        with mon.guard("lifecycle"):
            try:
                fd = dma_heap_alloc(k, HEAP, pages * 0x1000)
            except LinuxError:            # the pool's one chunk is fragmented: ENOMEM
                enomem += 1
                if ring:
                    free_one()
                continue
            shm = ctx.register_shared_memory_fd(fd)
            ret, _origin = sess.invoke(TRANSFORM, Operation(
                (TEEC_MEMREF_PARTIAL_INOUT,) + (TEEC_NONE,) * 3,
                [RegMemref(shm, off := (i * 0x40) % shm.size, min(0x1000, shm.size - off)), None, None, None]),
                check=False)
            errors += ret != 0
            ring.append((fd, shm))
            while len(ring) > live:
                free_one()
            if drain and (i + 1) % drain == 0:
                while ring:
                    free_one()
        if check_every and (i + 1) % check_every == 0:
            errs = mon.check()
            if errs:
                raise SystemExit(f"{abi}: invariant broken after {i + 1} lifecycles:\n"
                                 + "\n".join(errs))
        if i >= warm and (i % max(n // 50, 1) == 0):
            samples_x.append(i)
            samples_y.append(rss_kib())
    while ring:
        free_one()
    elapsed = time.perf_counter() - t0
    sess.close()
    errs = mon.check()
    if errs:
        raise SystemExit(f"{abi}: invariant broken at the end:\n" + "\n".join(errs))
    return {"abi": abi, "n": n, "seconds": elapsed, "ops_s": n / elapsed,
            "invoke_errors": errors, "enomem": enomem, "reclaims": mon.reclaims,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "slope_kib_per_1000": slope(samples_x, samples_y) * 1000,
            "lends": sum(getattr(h.pool, "lends", 0) for h in k.tee_dma_heaps.values()
                         if h.pool is not None)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1500, help="lifecycles per ABI (100000: full soak)")
    ap.add_argument("--abi", default="smc,ffa")
    ap.add_argument("--live", type=int, default=6, help="buffers alive at once")
    ap.add_argument("--drain", type=int, default=50, help="free everything every N lifecycles")
    ap.add_argument("--check-every", type=int, default=100)
    a = ap.parse_args(argv)
    for abi in a.abi.split(","):
        r = soak(abi, a.n, a.live, a.drain, a.check_every)
        print(f"{r['abi']}: {r['n']} lifecycles in {r['seconds']:.1f} s = {r['ops_s']:.0f} ops/s; "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB; RSS slope after warm-up "
              f"{r['slope_kib_per_1000']:+.1f} KiB/1000 lifecycles; chunk reclaims "
              f"{r['reclaims']}; ENOMEM {r['enomem']}; invoke errors {r['invoke_errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
