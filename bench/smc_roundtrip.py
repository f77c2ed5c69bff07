"""Fast-call round trips per second through the whole path, against a bare Unicorn baseline.

Whole path: an AArch64 loop at NS-EL1 issues OPTEE_SMC_CALLS_UID; each `smc` traps to the EL3
monitor, which decodes it, routes it to the OP-TEE dispatcher, enters the S-EL1 fast-call vector,
whose stub calls into the secure OS core and returns with `smc`; the monitor copies the results
back and resumes NS-EL1.

Baseline, measured in the same run: two bare Unicorn instances sharing memory, the first
running the same loop, its SMC hook starting the second on a stub that immediately `smc`s back
(no decoding, no routing, no TLB policy, no secure OS).

Prints rates for several rounds (best taken) and the ratio last.
"""
from __future__ import annotations

import argparse
import ctypes
import mmap
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM, UC_PROT_ALL, Uc  # noqa: E402
from unicorn import arm64_const as A  # noqa: E402
from unicorn.unicorn_py3.unicorn import uclib  # noqa: E402

import tzemu  # noqa: E402
from emu.asm import assemble  # noqa: E402

CALLS_UID = 0xBF00FF01


def bare_pingpong(n: int) -> float:
    size = 0x10000
    buf = mmap.mmap(-1, size)
    ptr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    base = 0x40000000
    loop = assemble(f"""
    mov x9, #{n}
loop:
    mov x0, x10
    smc #0
    subs x9, x9, #1
    b.ne loop
done:
    nop
""", base, name="bare-ns")
    sec = assemble("entry:\n smc #0\n", base + 0x1000, name="bare-s")
    buf[0:len(loop.code)] = loop.code
    buf[0x1000:0x1000 + len(sec.code)] = sec.code
    ns, s = Uc(UC_ARCH_ARM64, UC_MODE_ARM), Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    for uc in (ns, s):
        uc.mem_map_ptr(base, size, UC_PROT_ALL, ptr)
    ids = (ctypes.c_int * 8)(*[A.UC_ARM64_REG_X0 + i for i in range(8)])
    vals = (ctypes.c_uint64 * 8)()
    ptrs = (ctypes.c_void_p * 8)(*[ctypes.addressof(vals) + 8 * i for i in range(8)])
    nh, sh = ns._uch, s._uch

    def ns_smc(uc, intno, ud):
        uclib.uc_reg_read_batch(nh, ids, ptrs, 8)
        uclib.uc_reg_write_batch(sh, ids, ptrs, 8)
        uclib.uc_emu_start(sh, base + 0x1000, 0, 0, 0)
        uclib.uc_reg_read_batch(sh, ids, ptrs, 8)
        uclib.uc_reg_write_batch(nh, ids, ptrs, 8)

    def s_smc(uc, intno, ud):
        uclib.uc_emu_stop(sh)

    ns.hook_add(UC_HOOK_INTR, ns_smc)
    s.hook_add(UC_HOOK_INTR, s_smc)
    ns.reg_write(A.UC_ARM64_REG_X10, CALLS_UID)
    t = time.perf_counter()
    ns.emu_start(base, loop.sym("done"))
    return n / (time.perf_counter() - t)


def tzemu_roundtrips(p, n: int) -> float:
    t = time.perf_counter()
    r = p.smc_loop(n, CALLS_UID)
    dt = time.perf_counter() - t
    assert r[0] & 0xFFFFFFFF == 0x384FB3E0, f"CALLS_UID answered {r[0]:#x}"
    return n / dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20000, help="round trips per measurement")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    p = tzemu.boot(abi="smc")
    tzemu_roundtrips(p, 1000)     # warm the translation caches
    bare_pingpong(1000)
    best_t = best_b = 0.0
    for r in range(args.rounds):
        b = bare_pingpong(args.n)
        t = tzemu_roundtrips(p, args.n)
        best_b, best_t = max(best_b, b), max(best_t, t)
        print(f"round {r + 1}: tzemu {t:,.0f} rt/s   bare unicorn ping-pong {b:,.0f} rt/s")
    print(f"tzemu whole path (best): {best_t:,.0f} round trips/s")
    print(f"bare two-instance Unicorn SMC ping-pong (best): {best_b:,.0f} round trips/s")
    print(f"ratio tzemu/bare: {best_t / best_b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
