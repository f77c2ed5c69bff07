"""Tracing throughput and overhead (issue 7).

* Instruction trace (``--insn``, text/Tarmac with disassembly, registers and memory accesses)
  and block trace (``--blocks``) of an instruction-bound AArch64 loop on the NS-EL1 view of a
  booted platform, against the same loop untraced and under an empty per-instruction Python
  Unicorn hook (the Python ceiling), in the same process.
* Event-tracing overhead on a representative run: xtest 1014 on ``tzemu.boot(protmem="static")``,
  untraced vs traced to JSON Lines.

Targets (issue 7): --insn >= 35% of the empty-hook rate; --blocks >= 5 M instructions/s on a
2-core machine; event tracing < 10% of a run.

    .venv/bin/python bench/trace.py [--quick]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tzemu  # noqa: E402
from emu.asm import assemble  # noqa: E402
from emu.trace.icount import BLOCK_CFUNC, _hook_add, load_native  # noqa: E402
from tzemu.trace import attach_trace  # noqa: E402
from unicorn import UC_HOOK_CODE  # noqa: E402
from unicorn.unicorn_py3.unicorn import uclib  # noqa: E402

LOOP = """
start:
    mov x2, #0
loop:
    ldr x3, [x1, x2]
    add x4, x4, x3
    eor x5, x4, x2
    str x5, [x1, x2]
    add x2, x2, #8
    and x2, x2, #0xff8
    subs x0, x0, #1
    b.ne loop
done:
    nop
"""
PER_ITER = 8          # instructions per loop iteration


class Workload:
    """The loop at NS-EL1, placed in the platform's NS scratch page (kernel linear map)."""

    def __init__(self) -> None:
        self.p = p = tzemu.boot()
        va = p.kernel.phys_to_virt(p.scratch)
        self.prog = assemble(LOOP, va, name="bench-loop")
        p.physmem.write(p.scratch, self.prog.code)
        p.ns.invalidate_code(va, va + len(self.prog.code))
        self.data = va + 0x1000

    def run(self, iterations: int) -> float:
        ns = self.p.ns
        ns.write_args([iterations, self.data])
        t = time.perf_counter()
        ns.run(self.prog.sym("start"), self.prog.sym("done"))
        return time.perf_counter() - t


def rate(w: Workload, iterations: int, repeat: int = 3) -> float:
    return iterations * PER_ITER / min(w.run(iterations) for _ in range(repeat))


def bench_insn(quick: bool) -> dict[str, float]:
    w = Workload()
    n_fast, n_slow = (200_000, 20_000) if quick else (2_000_000, 200_000)
    out: dict[str, float] = {"untraced": rate(w, n_fast)}
    uc = w.p.ns.uc
    h = uc.hook_add(UC_HOOK_CODE, lambda *_: None)          # the binding's hook: the ceiling
    out["empty_hook"] = rate(w, n_slow)
    uc.hook_del(h)
    cb = BLOCK_CFUNC(lambda *_: None)                        # a raw ctypes hook, for reference
    h2 = _hook_add(uc, UC_HOOK_CODE, cb, 0, 1, 0)
    out["empty_ctypes_hook"] = rate(w, n_slow)
    uclib.uc_hook_del(uc._uch, h2)
    with tempfile.TemporaryDirectory() as tmp:
        for label, kw in (("insn", {"insn": True}), ("insn_no_mem", {"insn": True, "memory": False}),
                          ("insn_jsonl", {"insn": True, "fmt": "jsonl"}),
                          ("blocks", {"blocks": True}), ("blocks_jsonl", {"blocks": True, "fmt": "jsonl"}),
                          ("events_only", {})):
            fmt = kw.pop("fmt", "text")
            path = os.path.join(tmp, f"{label}.{fmt}")
            tracer = attach_trace(w.p, path, fmt, **kw)
            out[label] = rate(w, n_slow if label.startswith("insn") else n_fast)
            tracer.close()
            out[label + "_bytes"] = os.path.getsize(path)
    return out


def bench_events(quick: bool) -> dict[str, float]:
    from tzemu import xtest

    def once(traced: bool, tmp: str) -> float:
        p = tzemu.boot(protmem="static")
        tracer = attach_trace(p, os.path.join(tmp, "x.jsonl"), "jsonl") if traced else None
        t = time.perf_counter()
        rep = xtest.run_1014(p, seed=0)
        dt = time.perf_counter() - t
        if tracer is not None:
            tracer.close()
        assert not rep.failed_cases and not rep.failed_subtests, rep.lines[-3:]
        return dt
    reps = 2 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        once(False, tmp)                                       # warm caches (ABI, native .so)
        plain, traced = [], []
        for _ in range(reps):                                  # interleaved: same machine state
            plain.append(once(False, tmp))
            traced.append(once(True, tmp))
        size = os.path.getsize(os.path.join(tmp, "x.jsonl"))
    return {"untraced_s": statistics.median(plain), "traced_s": statistics.median(traced),
            "untraced_min_s": min(plain), "traced_min_s": min(traced), "trace_bytes": size}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (CI smoke)")
    args = ap.parse_args()
    print(f"virtual clock: {load_native()[1]}; {os.cpu_count()} CPUs")
    r = bench_insn(args.quick)
    m = 1e6
    print(f"untraced loop at NS-EL1        {r['untraced'] / m:8.2f} M instructions/s")
    print(f"empty Python code hook          {r['empty_hook'] / m:8.2f} M/s  (the ceiling)")
    print(f"empty raw ctypes code hook      {r['empty_ctypes_hook'] / m:8.2f} M/s")
    for label in ("insn", "insn_no_mem", "insn_jsonl"):
        print(f"--{label:<28} {r[label] / m:8.2f} M/s  = {100 * r[label] / r['empty_hook']:5.1f}% "
              f"of the empty hook, {100 * r[label] / r['untraced']:6.3f}% of untraced "
              f"({r[label + '_bytes'] / 1e6:.1f} MB)")
    for label in ("blocks", "blocks_jsonl", "events_only"):
        print(f"--{label:<28} {r[label] / m:8.2f} M/s  = {100 * r[label] / r['untraced']:5.1f}% "
              f"of untraced ({r[label + '_bytes'] / 1e6:.1f} MB)")
    e = bench_events(args.quick)
    over = 100 * (e["traced_s"] / e["untraced_s"] - 1)
    over_min = 100 * (e["traced_min_s"] / e["untraced_min_s"] - 1)
    print(f"xtest 1014 (protmem static): untraced {e['untraced_s'] * 1e3:.1f} ms, event-traced "
          f"{e['traced_s'] * 1e3:.1f} ms (median): overhead {over:+.1f}% "
          f"(min/min {over_min:+.1f}%), trace {e['trace_bytes'] / 1e3:.0f} kB")
    ok = (r["insn"] >= 0.35 * r["empty_hook"], r["blocks"] >= 5e6, over < 10)
    print("targets: insn>=35% of empty hook: {}, blocks>=5M/s: {}, events<10%: {}".format(
        *("met" if o else "MISSED" for o in ok)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
