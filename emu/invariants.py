"""Security invariants of a booted platform, checkable after any step (issue 10).

``check_invariants(platform)`` is a one-shot check of the state-only invariants;
``InvariantMonitor(platform)`` adds what needs history (reclaim scrubbing seen at the moment of
the reclaim, identifier reuse, Python exceptions escaping guest-triggered paths).

The invariants (docs/security.md lists which test or fuzzer covers each one):

(a) *isolation*: no NS CPU view (``access.page_prot(secure=False, nsaid=cpu)``) and no NS DMA
    master can access secure DRAM, any protected range (static carveouts and lent ranges in
    ``secure_os.protmem.regions``; masters of the range's use case keep exactly the rights the
    platform file grants) or any range lent / donated to the secure world with FF-A under a
    protected-memory tag.  Pages are sampled: first, middle and last page of every range.
(b) *scrubbing*: every range handed back to the normal world (``protmem_reclaim`` events) is
    zero at the moment it is returned.
(c) *identifiers*: Linux shm ids and cookies, secure session ids, FF-A handles and dma-buf fds
    are unique, and none is reused while the object that held it is still referenced.
(d) *agreement*: protected ranges, TZC-400 regions, FF-A transactions and the Linux dynamic
    pools describe the same memory.
(e) *no escapes*: no Python exception (other than the documented error results) escaped a
    guest-triggered path (``InvariantMonitor.guard``).

This module imports no world: it only reads attributes of the objects the platform wires.
"""
from __future__ import annotations

import contextlib
import traceback
from typing import Any, Iterable, Iterator

PAGE = 0x1000
PROT_R, PROT_W = 1, 2


def _sample_pages(base: int, size: int) -> list[int]:
    if size <= 0:
        return []
    first = base & ~(PAGE - 1)
    last = (base + size - 1) & ~(PAGE - 1)
    mid = (first + (last - first) // 2) & ~(PAGE - 1)
    return sorted({first, mid, last})


def _ns_masters(p: Any) -> dict[str, int]:
    """Every normal-world bus master by name -> NSAID (the CPU plus the DMA devices)."""
    out = {"cpu": p.access.cpu_nsaid}
    for name, dev in p.devices.items():
        out[name] = dev.nsaid
    return out


def _use_case_rights(p: Any) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
    try:
        return p._protmem_access()
    except Exception:                                   # pragma: no cover - older platforms
        return {}


def _spmc(p: Any) -> Any:
    ffa = getattr(p.secure_os, "ffa", None)
    return getattr(ffa, "spmc", None) if ffa is not None else None


def protected_ranges(p: Any) -> list[tuple[str, int, int, int | None]]:
    """(what, base, size, use case or None) of every range the normal world must not touch."""
    out: list[tuple[str, int, int, int | None]] = []
    for r in p.memory_map.regions:
        if r.secure and r.kind == "ram":
            out.append((f"secure region {r.name}", r.base, r.size, None))
    for r in p.secure_os.protmem.regions:
        kind = "static carveout" if r.static else ("FF-A lent" if r.ffa else "lent")
        out.append((f"{kind} protected range (use case {r.use_case})", r.base, r.size, r.use_case))
    spmc = _spmc(p)
    if spmc is not None:
        for tx in spmc.handles():
            if tx.complete and (tx.kind == "donate" or (tx.kind == "lend" and tx.tag)):
                for pa, n in tx.ranges():
                    out.append((f"FF-A {tx.kind} handle {tx.handle:#x}", pa, n, tx.tag or None))
    return out


# --- (a) -------------------------------------------------------------------------------------
def check_isolation(p: Any) -> list[str]:
    errs: list[str] = []
    masters = _ns_masters(p)
    rights = _use_case_rights(p)
    for what, base, size, use_case in protected_ranges(p):
        readers, writers = rights.get(use_case, ((), ())) if use_case is not None else ((), ())
        for page in _sample_pages(base, size):
            for name, nsaid in masters.items():
                prot = p.access.page_prot(page, secure=False, nsaid=nsaid)
                allowed = 0
                if name != "cpu" and "secure region" not in what:
                    allowed = (PROT_R if nsaid in readers else 0) | (PROT_W if nsaid in writers else 0)
                extra = prot & (PROT_R | PROT_W) & ~allowed
                if extra:
                    errs.append(f"(a) NS {name} (NSAID {nsaid}) has "
                                f"{'R' if extra & PROT_R else ''}{'W' if extra & PROT_W else ''}"
                                f" access to page {page:#x} of {what} {base:#x}+{size:#x}")
    return errs


# --- (d) -------------------------------------------------------------------------------------
def check_agreement(p: Any) -> list[str]:
    errs: list[str] = []
    sos = p.secure_os
    regions = list(sos.protmem.regions)
    tzc = [r for r in p.tzc.regions() if r.filters and r.base <= r.top]
    spans = {(r.base, r.top) for r in tzc if r.index >= 1}
    for r in regions:
        if (r.base, r.base + r.size - 1) not in spans:
            errs.append(f"(d) protected range {r.base:#x}+{r.size:#x} has no TZC region")
    # overlapping protected ranges
    ordered = sorted(regions, key=lambda r: r.base)
    for a, b in zip(ordered, ordered[1:]):
        if b.base < a.base + a.size:
            errs.append(f"(d) protected ranges {a.base:#x}+{a.size:#x} and {b.base:#x} overlap")
    fenced = {(r.base, r.base + r.size - 1) for r in regions}
    secure = {(r.base, r.base + r.size - 1) for r in p.memory_map.regions
              if r.secure and r.kind == "ram"}
    for t in tzc:
        if t.index >= 2 and (t.base, t.top) not in fenced | secure:
            errs.append(f"(d) TZC region {t.index} {t.base:#x}..{t.top:#x} fences no protected range")
    # FF-A ownership
    spmc = _spmc(p)
    for r in regions:
        if not r.ffa:
            continue
        tx = spmc.lookup(r.cookie) if spmc is not None else None
        if tx is None or not tx.complete or tx.kind != "lend":
            errs.append(f"(d) FF-A protected range {r.base:#x} has no complete lend "
                        f"(handle {r.cookie:#x})")
        elif tx.ranges() != [(r.base, r.size)] and sum(n for _, n in tx.ranges()) != r.size:
            errs.append(f"(d) FF-A handle {r.cookie:#x} ranges {tx.ranges()} differ from "
                        f"protected range {r.base:#x}+{r.size:#x}")
    if spmc is not None:
        lent = {r.cookie for r in regions if r.ffa}
        for tx in spmc.handles():
            if tx.complete and tx.kind == "lend" and tx.tag and tx.handle not in lent:
                errs.append(f"(d) FF-A lend {tx.handle:#x} (tag {tx.tag}) is no protected range")
    # the Linux side
    k = p.kernel
    by_cookie = {r.cookie: r for r in regions if not r.static and r.cookie is not None}
    for hid, heap in getattr(k, "tee_dma_heaps", {}).items():
        pool = getattr(heap, "pool", None)
        chunk = getattr(pool, "protmem", None)
        if chunk is None:
            continue
        r = by_cookie.get(chunk.cookie)
        if r is None:
            errs.append(f"(d) Linux pool of heap {heap.name} holds lent chunk {chunk.paddr:#x} "
                        f"(cookie {chunk.cookie:#x}) unknown to the secure world")
        elif (r.base, r.size) != (chunk.paddr, chunk.size):
            errs.append(f"(d) Linux chunk {chunk.paddr:#x}+{chunk.size:#x} differs from the "
                        f"protected range {r.base:#x}+{r.size:#x}")
    optee = getattr(k, "optee", None)
    linux_cookies = optee.shm_table.by_cookie if optee is not None else {}
    cma = getattr(k, "cma", None)
    for cookie, r in by_cookie.items():
        if cookie not in linux_cookies or cma is None:
            continue           # lent by a raw caller, not by the Linux driver
        if not (cma.base <= r.base < cma.base + cma.size):
            continue
        if not any(pa <= r.base and r.base + r.size <= pa + n * PAGE
                   for pa, n in cma.allocations.items()):
            errs.append(f"(d) lent range {r.base:#x}+{r.size:#x} is free in Linux's CMA area")
    return errs


# --- (c), state-only part ----------------------------------------------------------------------
def identifier_tables(p: Any) -> dict[str, dict[int, Any]]:
    """Namespace -> {identifier: object} of everything the normal world names by number."""
    k, sos = p.kernel, p.secure_os
    out: dict[str, dict[int, Any]] = {"fd": dict(k.files),
                                      "secure_session": dict(sos.ta_manager.sessions),
                                      "secure_shm_cookie": dict(sos.shm.by_cookie)}
    if k.optee is not None:
        out["linux_shm_id"] = dict(k.optee.shm_table.by_id)
        out["linux_shm_cookie"] = dict(k.optee.shm_table.by_cookie)
        out["linux_session"] = dict(k.optee.sessions)
    spmc = _spmc(p)
    if spmc is not None:
        out["ffa_handle"] = {tx.handle: tx for tx in spmc.handles()}
    return out


def check_identifiers(p: Any) -> list[str]:
    errs: list[str] = []
    tables = identifier_tables(p)
    for ns, attr in (("linux_shm_id", "id"), ("linux_shm_cookie", "cookie"),
                     ("secure_session", "id"), ("ffa_handle", "handle")):
        for key, obj in tables.get(ns, {}).items():
            val = getattr(obj, attr, key)
            if val != key:
                errs.append(f"(c) {ns} {key:#x} names an object whose {attr} is {val:#x}")
        objs = [id(o) for o in tables.get(ns, {}).values()]
        if ns in ("linux_shm_id", "secure_session") and len(set(objs)) != len(objs):
            errs.append(f"(c) one object holds two {ns} identifiers")
    sec = tables["secure_shm_cookie"]
    for r in p.secure_os.protmem.regions:
        if not r.static and r.cookie in sec:
            errs.append(f"(c) cookie {r.cookie:#x} names both shared memory and a protected range")
    return errs


def check_invariants(platform: Any) -> list[str]:
    """Every state-only invariant; an empty list means all hold."""
    errs: list[str] = []
    for fn in (check_isolation, check_agreement, check_identifiers):
        try:
            errs += fn(platform)
        except Exception as exc:                        # the checker must not hide a crash
            errs.append(f"invariant checker {fn.__name__} raised {exc!r}")
    return errs


def _referenced(ns: str, obj: Any) -> bool:
    """Is the object that held an identifier still referenced?"""
    if ns.startswith("linux_shm"):
        return getattr(obj, "refcount", 0) > 0
    if ns == "secure_session":
        inst = getattr(obj, "instance", None)
        return inst is not None and obj.id in getattr(inst, "sessions", ())
    return False


class InvariantMonitor:
    """History-keeping invariant checks on one platform.

    Subscribes to the bus for ``protmem_reclaim`` (scrub check at reclaim time), remembers
    which identifiers it saw alive and which it saw freed, and wraps guest-triggered calls
    (``guard``) to record Python exceptions that escape them."""

    #: exceptions a guest-triggered path may end in (the documented error results)
    EXPECTED: tuple[type[BaseException], ...] = ()

    def __init__(self, platform: Any, *, expected: Iterable[type[BaseException]] = ()):
        self.p = platform
        self.errors: list[str] = []
        self.reclaims = 0
        self.expected = self.default_expected() + tuple(expected)
        self._alive: dict[str, dict[int, Any]] = {}
        self.freed: dict[str, set[int]] = {}
        self.reused_after_free: dict[str, int] = {}
        self.calls = 0
        self._unsubscribe = platform.bus.subscribe(self._on_event)
        self._snapshot()

    @staticmethod
    def default_expected() -> tuple[type[BaseException], ...]:
        """ProtectionFault (a denied access) and OSError (LinuxError is one: a failed system
        call); callers add the world-specific error types (TeecError, ...) with ``expected``."""
        from emu.protection import ProtectionFault
        return (ProtectionFault, OSError)

    def close(self) -> None:
        self._unsubscribe()

    # --- (b) -----------------------------------------------------------------------------------
    def _on_event(self, ev: Any) -> None:
        if ev.kind != "protmem_reclaim":
            return
        self.reclaims += 1
        pa, size = ev.fields.get("pa"), ev.fields.get("size")
        if pa is None or size is None:
            self.errors.append(f"(b) protmem_reclaim event without a range: {ev.fields}")
        elif not self.p.physmem.is_zero(pa, size):
            self.errors.append(f"(b) range {pa:#x}+{size:#x} returned to the normal world "
                               f"without being zeroed")

    # --- (c) -----------------------------------------------------------------------------------
    def _snapshot(self) -> list[str]:
        errs: list[str] = []
        tables = identifier_tables(self.p)
        for ns, now in tables.items():
            before = self._alive.get(ns, {})
            freed = self.freed.setdefault(ns, set())
            for key, obj in now.items():
                old = before.get(key)
                if old is not None and old is not obj:
                    if _referenced(ns, old):
                        errs.append(f"(c) {ns} {key:#x} reused while its previous holder is "
                                    f"still referenced")
                    self.reused_after_free[ns] = self.reused_after_free.get(ns, 0) + 1
                elif old is None and key in freed:
                    freed.discard(key)
                    self.reused_after_free[ns] = self.reused_after_free.get(ns, 0) + 1
            for key in before.keys() - now.keys():
                freed.add(key)
            if len(freed) > 4096:                     # bounded history for soak runs
                for key in sorted(freed)[:2048]:
                    freed.discard(key)
        self._alive = tables
        return errs

    # --- (e) -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def guard(self, what: str = "call", expected: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """Run a guest-triggered path: expected error results propagate unchanged, anything
        else is recorded as an escaped exception (and re-raised)."""
        self.calls += 1
        try:
            yield
        except self.expected + tuple(expected):
            raise
        except Exception as exc:
            self.errors.append(f"(e) {what} raised {exc!r}\n"
                               + "".join(traceback.format_exc(limit=8)))
            raise

    def call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        with self.guard(what):
            return fn(*args, **kw)

    def check(self) -> list[str]:
        """All invariants now, plus everything recorded since the monitor was made."""
        errs = list(self.errors)
        errs += check_invariants(self.p)
        try:
            errs += self._snapshot()
        except Exception as exc:
            errs.append(f"invariant checker _snapshot raised {exc!r}")
        return errs
