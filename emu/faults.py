"""Named fault-injection points (issue 10, part 4).

A test (or ``tzemu --inject NAME[:N]``) makes one component fail at its real failure point, so
it can prove the system reports the error and loses nothing. Each world builds its *own*
``FaultInjector`` from the same spec (tzemu/platform.py): linux_side/ and tee_os/ share no
Python objects. A component holds an injector and asks, at its failure point::

    if self.faults.hit("cma.alloc"):
        raise LinuxError(errno.ENOMEM, ...)

The spec maps a point name to ``N`` (fail the N-th hit only, 1-based) or ``"all"`` /
``"always"`` (fail every hit). Deterministic: no randomness.
"""
from __future__ import annotations

from collections import Counter
from typing import Mapping

#: Every known point -> one line: where it fires and what the caller sees.
POINTS: dict[str, str] = {
    "protmem.lend": "secure OS cannot fence a range lent for protected memory (SMC "
                    "LEND_PROTMEM -> OPTEE_MSG out-of-memory; FF-A lend -> FFA_NO_MEMORY)",
    "protmem.reclaim": "secure OS refuses to give a protected range back (SMC RECLAIM_PROTMEM "
                       "-> TEE_ERROR_BUSY; FF-A reclaim -> FFA_DENIED; the range stays protected)",
    "tzc.program": "plat_protmem set-protmem-range hook fails to fence a range in the TZC-400 "
                   "(lend / static carveout setup -> the hook's error path)",
    "threads": "no free secure thread for a yielding call (SMC: OPTEE_SMC_RETURN_ETHREAD_LIMIT; "
               "FF-A: TEE_ERROR_BUSY in the direct response; the driver waits and retries)",
    "ta.alloc": "TA page pool out of memory when loading a TA (TEE_ERROR_OUT_OF_MEMORY)",
    "cma.alloc": "Linux CMA allocation fails (dma_alloc_pages -> ENOMEM from the heap alloc)",
    "supplicant.shm_alloc": "tee-supplicant cannot allocate RPC shared memory "
                            "(OPTEE_RPC_CMD_SHM_ALLOC -> TEE_ERROR_OUT_OF_MEMORY to the caller)",
    "display.dma": "the display's scan-out read gets a bus error from the interconnect "
                   "(DmaBusError, EIO: the frame is not shown; svp reports the frame and stops "
                   "with every buffer released)",
}

ALWAYS = ("all", "always")


class FaultInjector:
    """Fail named points by hit count. ``FaultInjector()`` (empty spec) never fails."""

    def __init__(self, spec: Mapping[str, int | str] | None = None):
        self.spec: dict[str, int | str] = {}
        for name, when in dict(spec or {}).items():
            if name not in POINTS:
                known = "\n".join(f"  {n}: {d}" for n, d in POINTS.items())
                raise ValueError(f"unknown fault-injection point {name!r}; known points:\n{known}")
            if isinstance(when, str):
                w = when.strip().lower()
                if w in ALWAYS:
                    when = "all"
                elif w.isdigit():
                    when = int(w)
                else:
                    raise ValueError(f"fault point {name}: {when!r} is neither N (>= 1) nor "
                                     "'all'/'always'")
            if when != "all" and (isinstance(when, bool) or not isinstance(when, int)
                                  or when < 1):
                raise ValueError(f"fault point {name}: hit number must be >= 1 or 'all', "
                                 f"not {when!r}")
            self.spec[name] = when
        self.hits: Counter[str] = Counter()      # calls of hit(name) per point
        self.fired: Counter[str] = Counter()     # how many of them failed

    def __bool__(self) -> bool:
        return bool(self.spec)

    def arm(self, name: str, when: int | str = 1) -> None:
        """Fail the ``when``-th hit of ``name`` counted from now (or every hit: "all")."""
        spec = FaultInjector({name: when}).spec[name]
        self.spec[name] = spec if spec == "all" else self.hits[name] + spec

    def disarm(self, name: str | None = None) -> None:
        """Stop failing ``name`` (every point when None)."""
        if name is None:
            self.spec.clear()
        else:
            self.spec.pop(name, None)

    def hit(self, name: str) -> bool:
        """Count one pass through point ``name``; True when this pass must fail."""
        if name not in POINTS:
            raise ValueError(f"unknown fault-injection point {name!r}")
        self.hits[name] += 1
        when = self.spec.get(name)
        if when is None:
            return False
        fail = when == "all" or self.hits[name] == when
        if fail:
            self.fired[name] += 1
        return fail

    def __repr__(self) -> str:
        return f"FaultInjector({self.spec!r})"


def parse_inject(items: list[str] | tuple[str, ...] | None) -> dict[str, int | str]:
    """``--inject NAME[:N]`` values -> spec (``NAME`` alone means the first hit)."""
    spec: dict[str, int | str] = {}
    for item in items or ():
        name, _, when = item.partition(":")
        spec[name.strip()] = when.strip() if when else 1
    return FaultInjector(spec).spec       # validated and normalised: one clear error


