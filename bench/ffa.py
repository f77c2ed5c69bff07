"""FF-A memory and message rates against their OP-TEE SMC-ABI equivalents, in the same run.

1. FFA_MEM_LEND + FFA_MEM_RECLAIM pairs per second with 1, 16 and 256 constituents (plain lend,
   tag 0: the descriptor is parsed, validated and committed by the SPMC, no firewall change),
   against OPTEE_MSG REGISTER_SHM + UNREGISTER_SHM of the same pages over the SMC ABI (a yielding
   call each, the NONCONTIG page list parsed by the secure OS).
2. Direct-request round trips per second (OPTEE_FFA_GET_API_VERSION through SPMD and SPMC)
   against the SMC-ABI fast call OPTEE_SMC_CALLS_UID.
"""
from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tzemu  # noqa: E402

PAGE = 0x1000
CALL_WITH_ARG, REGISTER_SHM, UNREGISTER_SHM = 0x32000004, 4, 5


def ffa_lend_pairs(p, n_const: int, rounds: int) -> float:
    f = p.ffa
    base = p.kernel.pages.alloc(2 * n_const * PAGE)
    desc = f.build([(0x8001, 0x02)], [(base + 2 * i * PAGE, 1) for i in range(n_const)])
    pages = max(1, (len(desc) + PAGE - 1) // PAGE)
    if pages > f.pages:
        f.call(f.c.FFA_RXTX_UNMAP)
        assert f.map_rxtx(pages).ok
    t = time.perf_counter()
    for _ in range(rounds):
        r = f.lend(desc)
        assert r.ok, r.regs
        assert f.reclaim(r.handle).ok
    return rounds / (time.perf_counter() - t)


def smc_register_pairs(p, n_const: int, rounds: int) -> float:
    k = p.kernel
    base = k.pages.alloc(2 * n_const * PAGE)
    lst = k.pages.alloc(((n_const + 510) // 511) * PAGE)
    entries = [base + 2 * i * PAGE for i in range(n_const)]
    for j in range(0, n_const, 511):
        chunk = entries[j:j + 511]
        nxt = lst + (j // 511 + 1) * PAGE if j + 511 < n_const else 0
        p.physmem.write(lst + (j // 511) * PAGE,
                        struct.pack(f"<{len(chunk)}Q", *chunk).ljust(511 * 8, b"\0") + struct.pack("<Q", nxt))
    arg = k.pages.alloc(PAGE)

    def msg(cmd: int, attr: int, a: int, b: int, c: int) -> bytes:
        return struct.pack("<8I", cmd, 0, 0, 0, 0, 0, 0, 1) + struct.pack("<4Q", attr, a, b, c)
    reg = msg(REGISTER_SHM, 0xA | 0x200, lst, n_const * PAGE, 0x5151)
    unreg = msg(UNREGISTER_SHM, 0x5, 0, 0, 0x5151)
    t = time.perf_counter()
    for _ in range(rounds):
        for m in (reg, unreg):
            p.physmem.write(arg, m)
            assert p.smc(CALL_WITH_ARG, arg >> 32, arg & 0xFFFFFFFF)[0] == 0
            assert p.physmem.read_u32(arg + 20) == 0
    return rounds / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    pf = tzemu.boot(abi="ffa", probe_linux=False)
    pf.ffa.version()
    assert pf.ffa.map_rxtx().ok
    ps = tzemu.boot(abi="smc", probe_linux=False)
    for n in (1, 16, 256):
        fr = ffa_lend_pairs(pf, n, max(20, args.rounds // (1 + n // 16)))
        sr = smc_register_pairs(ps, n, max(20, args.rounds // (1 + n // 16)))
        print(f"{n:4} constituent(s): FFA_MEM_LEND+RECLAIM {fr:8,.0f} pairs/s   "
              f"SMC REGISTER+UNREGISTER_SHM {sr:8,.0f} pairs/s   ratio {fr / sr:.2f}")
    n = args.rounds * 20
    c = pf.ffa.c
    t = time.perf_counter()
    r = pf.smc_loop(n, c.FFA_MSG_SEND_DIRECT_REQ_32, 0x8001, 0, 0)   # both from an NS-EL1 loop
    fr = n / (time.perf_counter() - t)
    assert r[0] & 0xFFFFFFFF == c.FFA_MSG_SEND_DIRECT_RESP_32
    t = time.perf_counter()
    ps.smc_loop(n, 0xBF00FF01)
    sr = n / (time.perf_counter() - t)
    print(f"direct request (GET_API_VERSION) {fr:,.0f} rt/s   SMC fast call (CALLS_UID) "
          f"{sr:,.0f} rt/s   ratio {fr / sr:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
