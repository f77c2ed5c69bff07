"""Event-tracing cost of an svp run in retired host instructions (valgrind's callgrind).

Wall and CPU time of a ~70 ms svp run swing by +-20 % between identical untraced runs on a
shared 2-core machine, more than the effect measured. Instruction counts do not: the same
binary, inputs and environment give the same count whatever else the machine does. This bench
runs one script twice under callgrind (``--collect-atstart=no``), untraced and traced (JSON
Lines), each after the same warm-up and boot; a tiny C helper compiled here issues callgrind's
``TOGGLE_COLLECT`` client request around the measured part only (attach + svp + close), so

    overhead = traced section / untraced section - 1

with ``PYTHONHASHSEED=0`` so that both runs hash alike. Slow (a few minutes under valgrind);
not part of ``make bench``. Needs valgrind with its headers (Debian: valgrind) and cc.

    .venv/bin/python bench/trace_callgrind.py [--frames N]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TOGGLE_C = "#include <valgrind/callgrind.h>\nvoid tz_cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"

SCRIPT = r'''
import ctypes, os, sys, tempfile
import tzemu
from tzemu import svp
from tzemu.trace import attach_trace
mode, frames = sys.argv[1], int(sys.argv[2])
toggle = ctypes.CDLL(sys.argv[3]).tz_cg_toggle
stream = svp.make_test_stream("NV12", 320, 240, frames)
def play(p):
    svp.play(p, stream, key=svp.SEED_KEY, iv=None, serialize_iv=True, fmt="NV12",
             width=320, height=240, frames=frames, crypto="cpu")
w = tzemu.boot(protmem="static")                       # warm-up: tables, native .so, TAs
t = attach_trace(w, os.path.join(tempfile.mkdtemp(), "w.jsonl"), "jsonl")
play(w)
t.close()
p = tzemu.boot(protmem="static")
out = os.path.join(tempfile.mkdtemp(), "t.jsonl")
toggle()                                                # collection on: the measured part
t = attach_trace(p, out, "jsonl") if mode == "traced" else None
play(p)
if t is not None:
    t.close()
toggle()
'''


def toggle_library(tmp: str) -> str:
    src, lib = os.path.join(tmp, "toggle.c"), os.path.join(tmp, "toggle.so")
    Path(src).write_text(TOGGLE_C)
    res = subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", lib, src],
                         capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"cannot build the callgrind toggle helper:\n{res.stderr}")
    return lib


def instructions(mode: str, frames: int, tmp: str, lib: str) -> int:
    """Instructions of the measured part of one run of SCRIPT under callgrind."""
    out = os.path.join(tmp, f"{mode}.out")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    res = subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                          f"--callgrind-out-file={out}",
                          sys.executable, "-c", SCRIPT, mode, str(frames), lib],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    m = re.search(r"I\s+refs:\s+([\d,]+)", res.stderr)
    if res.returncode or not m:
        raise SystemExit(f"callgrind run '{mode}' failed:\n{res.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10, help="NV12 320x240 frames (default 10)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): nothing measured")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        lib = toggle_library(tmp)
        counts = {m: instructions(m, args.frames, tmp, lib) for m in ("plain", "traced")}
    run = counts["plain"]
    tracing = counts["traced"] - counts["plain"]
    print(f"svp ({args.frames} NV12 320x240 frames, CPU decrypt), host instructions "
          f"(callgrind): run {run / 1e6:.1f} M, tracing {tracing / 1e6:.1f} M: "
          f"overhead {100 * tracing / run:+.1f}%")
    print(f"target: event tracing < 10% of an svp run: "
          f"{'met' if tracing < 0.1 * run else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
