"""What protection costs: NS-EL1 code under the TZC-derived, MMU-walking view vs bare Unicorn.

1. Throughput: the same AArch64 loop (loads striding over a 64 KiB buffer, adds, a branch) runs
   at NS-EL1 in tzemu's NS view (kernel VA, stage-1 walk + TZC verdict on every TLB miss) and on
   a bare Unicorn instance with flat memory and no hooks, in the same run. Prints
   instructions/s for both and the ratio (target >= 0.95: steady state costs nothing).
2. Reprogramming: the time for the secure OS to fence one range (its S-EL1 routine's MMIO
   stores with the gatekeeper discipline) and give it back, and the time for one TLB flush of
   every view ("apply to all views").
"""
from __future__ import annotations

import argparse
import ctypes
import mmap
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, UC_PROT_ALL, Uc  # noqa: E402
from unicorn import arm64_const as A  # noqa: E402

import tzemu  # noqa: E402
from emu.asm import assemble  # noqa: E402

LOOP = """
loop:
    ldr     x3, [x1, x4]
    add     x2, x2, x3
    add     x4, x4, #64
    and     x4, x4, x5
    subs    x0, x0, #1
    b.ne    loop
done:
    nop
"""
INSNS_PER_ITER = 6
BUF = 0x100000
STEADY_WINDOW = 0x10000        # 64 KiB: fits Unicorn's TLB (steady state)
LARGE_WINDOW = 0x100000        # 1 MiB: more 1 KiB TLB entries than Unicorn keeps (misses)


def bare(iters: int, window: int = STEADY_WINDOW) -> float:
    base = 0x40000000
    size = 0x200000
    buf = mmap.mmap(-1, size)
    ptr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    prog = assemble(LOOP, base, name="bench-loop")
    buf[0:len(prog.code)] = prog.code
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map_ptr(base, size, UC_PROT_ALL, ptr)
    uc.reg_write(A.UC_ARM64_REG_X0, iters)
    uc.reg_write(A.UC_ARM64_REG_X1, base)
    uc.reg_write(A.UC_ARM64_REG_X5, window - 1)
    t = time.perf_counter()
    uc.emu_start(base, prog.sym("done"))
    return iters * INSNS_PER_ITER / (time.perf_counter() - t)


def tzemu_ns(p, iters: int, window: int = STEADY_WINDOW) -> float:
    k = p.kernel
    code_pa = p.scratch
    code_va = k.phys_to_virt(code_pa)
    prog = assemble(LOOP, code_va, name="bench-loop")
    p.physmem.write(code_pa, prog.code)
    p.ns.invalidate_code(code_va, code_va + len(prog.code))
    data_va = k.phys_to_virt(k.pages.alloc(BUF))
    ns = p.ns
    ns.write_args([iters, data_va, 0, 0, 0, window - 1])
    t = time.perf_counter()
    ns.run(code_va, prog.sym("done"))
    return iters * INSNS_PER_ITER / (time.perf_counter() - t)


def reprogram(p, rounds: int) -> tuple[float, float]:
    hook = p.secure_os.protmem_hook
    pa = p.kernel.pages.alloc(0x100000)
    t = time.perf_counter()
    for _ in range(rounds):
        hook.set_protmem_range(1, pa, 0x100000)
        hook.set_protmem_range(0, pa, 0x100000)
    per_pair = (time.perf_counter() - t) / rounds
    t = time.perf_counter()
    for _ in range(rounds):
        p.access.flush_all()
    return per_pair, (time.perf_counter() - t) / rounds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=5_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    p = tzemu.boot()
    tzemu_ns(p, 100_000)
    bare(100_000)
    best_t = best_b = 0.0
    for r in range(args.rounds):
        b = bare(args.iters)
        t = tzemu_ns(p, args.iters)
        best_b, best_t = max(best_b, b), max(best_t, t)
        print(f"round {r + 1}: tzemu NS-EL1 {t / 1e6:,.1f} M insn/s   bare unicorn {b / 1e6:,.1f} M insn/s")
    large_t, large_b = tzemu_ns(p, args.iters // 5, LARGE_WINDOW), bare(args.iters // 5, LARGE_WINDOW)
    print(f"1 MiB working set (TLB misses: each walks the tables and asks the TZC): tzemu "
          f"{large_t / 1e6:,.1f} M insn/s, bare {large_b / 1e6:,.1f} M insn/s, "
          f"ratio {large_t / large_b:.2f}")
    pair, flush = reprogram(p, 200)
    print(f"fence + release one 1 MiB range (S-EL1 MMIO routine, gatekeeper, flushes): "
          f"{pair * 1e6:,.0f} us per pair")
    print(f"apply a TZC change to all {len(p.access.views)} views (TLB flush): {flush * 1e6:,.1f} us")
    print(f"NS-EL1 throughput (best): tzemu {best_t / 1e6:,.1f} M insn/s, bare {best_b / 1e6:,.1f} M insn/s")
    print(f"ratio tzemu/bare: {best_t / best_b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
