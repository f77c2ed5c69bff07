"""Memory transactions of the SPMC: the record per handle, the ownership map, the handle
allocator and the pure checks of every state transition (Hafnium's ``ffa_memory.c`` habit).

Each ``validate_*`` function only reads its arguments and raises :class:`FfaError` naming the
rule of ffa_spec.md §4.3-§4.5 that the input breaks; ``tee_os.spmc.spmc`` commits afterwards.
(The borrower rules, retrieve and relinquish, are in ``tee_os.spmc.rxtx``.)  The states are those of §4.1: the normal world owns every NS page exclusively (Owner-EA) until
a transaction covering it completes; ownership then follows §4.2.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .descriptors import (EMAD_ALIGN, PAGE, RANGE, Constituent, FfaError, MemRegion, c,
                          constituents_offset, emad_size_of, header_size_of, parse_composite,
                          parse_emads, parse_header, version_tuple)

KIND_TYPE = {"share": c.FFA_MEMORY_REGION_TRANSACTION_TYPE_SHARE,
             "lend": c.FFA_MEMORY_REGION_TRANSACTION_TYPE_LEND,
             "donate": c.FFA_MEMORY_REGION_TRANSACTION_TYPE_DONATE}
ATTR_FIELDS = c.FFA_MEMORY_TYPE_MASK | c.FFA_MEMORY_CACHEABILITY_MASK | \
    c.FFA_MEMORY_SHAREABILITY_MASK
CLEAR = c.FFA_MEMORY_REGION_FLAG_CLEAR
CLEAR_ANY = CLEAR | c.FFA_MEMORY_REGION_FLAG_CLEAR_RELINQUISH
RETRIEVE_FLAGS = (CLEAR_ANY | c.FFA_MEMORY_REGION_TRANSACTION_TYPE_MASK |
                  c.FFA_MEMORY_REGION_FLAG_BYPASS_BORROWERS_CHECK)
RANGE_SIZE = RANGE.size
U64 = (1 << 64) - 1


def data_access(perm: int) -> int:
    return (perm & c.FFA_DATA_ACCESS_MASK) >> c.FFA_DATA_ACCESS_OFFSET


def instr_access(perm: int) -> int:
    return (perm & c.FFA_INSTRUCTION_ACCESS_MASK) >> c.FFA_INSTRUCTION_ACCESS_OFFSET


@dataclass(eq=False)
class MemTransaction:
    """One FF-A memory transaction (a handle), from its first fragment to its reclaim."""

    handle: int
    kind: str                                  # "share" | "lend" | "donate"
    sender: int
    receivers: list[tuple[int, int]]           # (endpoint id, permissions byte)
    attributes: int
    flags: int
    tag: int
    constituents: list[tuple[int, int]]        # (physical address, 4K page count)
    total_pages: int
    version: tuple[int, int]                   # layout the sender used
    fid: int = 0
    impdef: dict[int, bytes] = field(default_factory=dict)
    complete: bool = False                     # every fragment arrived and on_lend accepted
    retrievals: dict[int, int] = field(default_factory=dict)   # borrower -> outstanding
    zeroed: bool = False
    clear_on_reclaim: bool = False             # set while on_reclaim runs
    hyp_retrieved: bool = False                # the NS hypervisor fetched the descriptor
    total_length: int = 0
    received: int = 0
    range_count: int = 0
    fragments: int = 0
    buffer: tuple[int, int] | None = None      # caller-allocated buffer (addr, size), else TX

    @property
    def retrieved(self) -> bool:
        return any(self.retrievals.values())

    @property
    def size(self) -> int:
        return self.total_pages * PAGE

    def ranges(self) -> list[tuple[int, int]]:
        return [(pa, n * PAGE) for pa, n in self.constituents]

    def permissions(self, endpoint: int) -> int | None:
        return next((p for e, p in self.receivers if e == endpoint), None)

    def borrower_state(self, endpoint: int) -> str:
        if not self.retrievals.get(endpoint):
            return "!Owner-NA"
        return "!Owner-EA" if self.kind != "share" and len(self.receivers) == 1 else "!Owner-SA"

    def states(self) -> dict[int, str]:
        """§4.1 state of the sender and every receiver for this transaction's pages."""
        out = {self.sender: "Owner-SA" if self.kind == "share" else "Owner-NA"}
        out.update({e: self.borrower_state(e) for e, _ in self.receivers})
        return out

    def __str__(self) -> str:
        rs = ", ".join(f"{e:#06x}:{p:#x}" for e, p in self.receivers)
        return (f"handle {self.handle:#x} {self.kind} from {self.sender:#06x} to [{rs}] "
                f"tag {self.tag} {self.total_pages} pages in {len(self.constituents)} ranges"
                f"{'' if self.complete else ' (pending)'} retrievals {self.retrievals}")


@dataclass(frozen=True)
class OwnershipSpan:
    """A physical range and who holds it (for the invariant checker and gdb)."""

    base: int
    size: int
    handle: int | None            # transaction covering it, None if untouched / donated
    kind: str | None              # "share" / "lend" / "donate" / "donated" / None
    owner: int | None             # owning endpoint (None: not NS DDR, nobody's to send)
    states: dict[int, str]        # endpoint -> Owner-EA / Owner-SA / ... (§4.1)

    def __str__(self) -> str:
        st = " ".join(f"{e:#06x}={s}" for e, s in self.states.items())
        h = f"handle {self.handle:#x} " if self.handle is not None else ""
        return f"{self.base:#x}+{self.size:#x}: {h}{self.kind or 'free'} {st}".rstrip()


class Ownership:
    """Committed page ranges, non-overlapping, sorted: transactions and donated pages."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._spans: list[tuple[int, int, object]] = []   # (start, end, tx or ("donated", id))

    def add(self, start: int, end: int, what: object) -> None:
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._spans.insert(i, (start, end, what))

    def remove(self, what: object) -> None:
        keep = [(s, e, w) for s, e, w in self._spans if w is not what]
        self._spans = keep
        self._starts = [s for s, _, _ in keep]

    def overlapping(self, start: int, end: int) -> list[tuple[int, int, object]]:
        i = bisect.bisect_left(self._starts, end) - 1
        out = []
        while i >= 0 and self._spans[i][1] > start:   # spans never overlap each other
            out.append(self._spans[i])
            i -= 1
        return out[::-1]

    def conflict(self, start: int, end: int) -> tuple[str, str] | None:
        for s, e, what in self.overlapping(start, end):
            if isinstance(what, MemTransaction):
                return "S28", f"{start:#x}..{end:#x} overlaps {what.kind} handle {what.handle:#x}"
            return "S27", f"{start:#x}..{end:#x} overlaps pages donated to {what[1]:#06x}"
        return None

    def describe(self, pa: int, size: int, ns_id: int,
                 ns_ddr: Callable[[int, int], bool]) -> list[OwnershipSpan]:
        out: list[OwnershipSpan] = []
        pos, end = pa, pa + size

        def gap(a: int, b: int) -> None:
            if a < b:
                ns = ns_ddr(a, b - a)
                out.append(OwnershipSpan(a, b - a, None, None, ns_id if ns else None,
                                         {ns_id: "Owner-EA"} if ns else {}))
        for s, e, what in self.overlapping(pa, end):
            s, e = max(s, pa), min(e, end)
            gap(pos, s)
            if isinstance(what, MemTransaction):
                out.append(OwnershipSpan(s, e - s, what.handle, what.kind, what.sender,
                                         what.states()))
            else:
                out.append(OwnershipSpan(s, e - s, None, "donated", what[1],
                                         {what[1]: "Owner-EA", ns_id: "!Owner-NA"}))
            pos = e
        gap(pos, end)
        return out


class HandleAllocator:
    """OP-TEE's S-EL1 SPMC scheme (§3.10): first free slot of a bitmap, OR the NS bit."""

    def __init__(self, slots: int) -> None:
        self.slots = [False] * slots

    def alloc(self) -> int | None:
        for i, used in enumerate(self.slots):
            if not used:
                self.slots[i] = True
                return i | c.FFA_MEMORY_HANDLE_NON_SECURE_BIT
        return None

    def free(self, handle: int) -> None:
        if handle & c.FFA_MEMORY_HANDLE_HYPERVISOR_BIT:
            return
        slot = handle & ~c.FFA_MEMORY_HANDLE_NON_SECURE_BIT
        if 0 <= slot < len(self.slots):
            self.slots[slot] = False


# ---- DONATE / LEND / SHARE ------------------------------------------------------------------

@dataclass
class SendCheck:
    """What the first-fragment check needs to know about the call and the SPMC."""

    kind: str
    caller: int
    version: tuple[int, int]
    endpoints: frozenset[int]        # every endpoint that exists
    optee_id: int
    max_receivers: int


def validate_send_first(buf: bytes, total_len: int, ck: SendCheck) -> tuple[MemRegion, int]:
    """Check the first fragment of a DONATE / LEND / SHARE descriptor.

    Returns the parsed header + EMADs + composite header and the offset of the first
    constituent.  Errors (rule, §4.3): S5 reserved header / EMAD / composite fields; S18 NS or
    reserved attribute bits; S22 flag bits other than zero-memory; S21 zero flag on SHARE;
    O6 send handle without the hypervisor bit; S9 sender is not the caller (DENIED); S6 EMAD
    size / offset (< header, unaligned) / count (0, > max) or array outside the fragment;
    S13 DONATE to != 1 receiver; S10 / S11 / S12 receiver is the sender / repeated / unknown;
    S14 reserved permission values; S15 instruction access given; S16 / S17 data access
    missing for SHARE / LEND, given for DONATE; O5 OP-TEE's EMAD not RW; S7 composite offset
    0, inside the EMADs, unaligned, different between EMADs or header outside the fragment;
    S19 attributes given for DONATE / 1-borrower LEND; S31 device memory; S20 SHARE / multi
    LEND not Normal-WB-IS (DENIED); S26 no constituents / no pages; S8 total length not
    ``composite + 16 + 16 * count`` or lengths not multiples of 16."""
    region = parse_header(buf, ck.version)
    kind, v = ck.kind, version_tuple(ck.version)
    if region.reserved:
        raise FfaError("S5", f"header reserved field {region.reserved:#x}")
    if region.attributes & (c.FFA_MEMORY_SECURITY_MASK | c.FFA_MEMORY_ATTRIBUTES_RESERVED_MASK):
        raise FfaError("S18", f"attributes {region.attributes:#x}")
    if region.flags & ~CLEAR:
        raise FfaError("S22", f"flags {region.flags:#x}")
    if kind == "share" and region.flags & CLEAR:
        raise FfaError("S21", "zero-memory flag on SHARE")
    if region.handle and (not region.handle & c.FFA_MEMORY_HANDLE_HYPERVISOR_BIT
                          or region.handle == c.FFA_MEMORY_HANDLE_INVALID):
        raise FfaError("O6", f"send handle {region.handle:#x}")
    if region.sender != ck.caller:
        raise FfaError("S9", f"sender {region.sender:#x} is not the caller {ck.caller:#x}")
    hsz = header_size_of(v)
    if v >= (1, 1) and region.emad_size != emad_size_of(v):
        raise FfaError("S6", f"EMAD size {region.emad_size} for FF-A {v[0]}.{v[1]}")
    if region.emad_offset < hsz or region.emad_offset % EMAD_ALIGN:
        raise FfaError("S6", f"EMAD offset {region.emad_offset:#x}")
    if not 0 < region.emad_count <= ck.max_receivers:
        raise FfaError("S6", f"EMAD count {region.emad_count}")
    region.emads = parse_emads(buf, region)
    if kind == "donate" and region.emad_count != 1:
        raise FfaError("S13", f"DONATE to {region.emad_count} receivers")
    seen: set[int] = set()
    for e in region.emads:
        if e.reserved or e.flags:
            raise FfaError("S5", f"EMAD for {e.receiver:#x}: reserved {e.reserved:#x} "
                                 f"flags {e.flags:#x}")
        if e.receiver == ck.caller:
            raise FfaError("S10", f"receiver {e.receiver:#x} is the sender")
        if e.receiver in seen:
            raise FfaError("S11", f"receiver {e.receiver:#x} repeated")
        if e.receiver not in ck.endpoints:
            raise FfaError("S12", f"receiver {e.receiver:#x} does not exist")
        seen.add(e.receiver)
        d, i = data_access(e.permissions), instr_access(e.permissions)
        if (e.permissions & c.FFA_MEM_ACC_RESERVED_MASK or d == c.FFA_DATA_ACCESS_RESERVED
                or i == c.FFA_INSTRUCTION_ACCESS_RESERVED):
            raise FfaError("S14", f"permissions {e.permissions:#x}")
        if i != c.FFA_INSTRUCTION_ACCESS_NOT_SPECIFIED:
            raise FfaError("S15", f"instruction access in {e.permissions:#x}")
        if kind != "donate" and d == c.FFA_DATA_ACCESS_NOT_SPECIFIED:
            raise FfaError("S16", f"no data access for {kind}")
        if kind == "donate" and d != c.FFA_DATA_ACCESS_NOT_SPECIFIED:
            raise FfaError("S17", f"data access {d} for donate")
        if kind != "donate" and e.receiver == ck.optee_id and e.permissions != c.FFA_MEM_ACC_RW:
            raise FfaError("O5", f"OP-TEE's permissions {e.permissions:#x}")
    offs = {e.composite_offset for e in region.emads}
    comp = region.emads[0].composite_offset
    emad_end = region.emad_offset + region.emad_count * region.emad_size
    if len(offs) != 1 or comp == 0 or comp < emad_end or comp % EMAD_ALIGN:
        raise FfaError("S7", f"composite offsets {sorted(offs)}, EMADs end at {emad_end:#x}")
    region.composite_offset = comp
    region.total_page_count, region.range_count, region.composite_reserved = \
        parse_composite(buf, comp)
    mtype = (region.attributes & c.FFA_MEMORY_TYPE_MASK) >> c.FFA_MEMORY_TYPE_OFFSET
    if kind == "donate" or (kind == "lend" and region.emad_count == 1):
        if region.attributes & ATTR_FIELDS:
            raise FfaError("S19", f"attributes {region.attributes:#x} for {kind}")
    elif mtype == c.FFA_MEMORY_DEVICE_MEM:
        raise FfaError("S31", f"device memory attributes {region.attributes:#x}")
    elif region.attributes != c.FFA_NORMAL_MEM_REG_ATTR:
        raise FfaError("S20", f"attributes {region.attributes:#x} for {kind}")
    if region.composite_reserved:
        raise FfaError("S5", "composite reserved field")
    if region.range_count == 0 or region.total_page_count == 0:
        raise FfaError("S26", f"{region.range_count} ranges, {region.total_page_count} pages")
    first = constituents_offset(comp)
    if total_len != first + region.range_count * RANGE_SIZE:
        raise FfaError("S8", f"total length {total_len} != {first} + 16 * "
                             f"{region.range_count}")
    if len(buf) % RANGE_SIZE or total_len % RANGE_SIZE:
        raise FfaError("S8", f"lengths {len(buf)} / {total_len} not multiples of 16")
    return region, first


def validate_constituents(new: Iterable[Constituent], seen: list[tuple[int, int]],
                          declared_pages: int, ns_ddr: Callable[[int, int], bool],
                          conflict: Callable[[int, int], tuple[str, str] | None]
                          ) -> list[tuple[int, int]]:
    """Check constituents arriving in one fragment; returns them as (address, pages).

    Errors: S5 reserved field; S23 address not 4K aligned; S24 zero pages, size overflow or
    overlap with another constituent (this fragment or earlier ones); S25 more pages than the
    composite declares; S34 not NS DDR; S27 / S28 / S34 from ``conflict`` (pages donated away,
    already in a transaction, the caller's RX/TX buffers)."""
    out: list[tuple[int, int]] = []
    pages = sum(n for _, n in seen)
    for k in new:
        if k.reserved:
            raise FfaError("S5", f"constituent {k.address:#x} reserved {k.reserved:#x}")
        if k.address % PAGE:
            raise FfaError("S23", f"constituent {k.address:#x} not 4K aligned")
        if k.page_count == 0 or k.address + k.page_count * PAGE - 1 > U64:
            raise FfaError("S24", f"constituent {k.address:#x} x {k.page_count} pages")
        pages += k.page_count
        if pages > declared_pages:
            raise FfaError("S25", f"more than the declared {declared_pages} pages")
        out.append((k.address, k.page_count))
    runs = sorted(seen + out)
    for (a, n), (b, _) in zip(runs, runs[1:]):
        if a + n * PAGE > b:
            raise FfaError("S24", f"constituents {a:#x} and {b:#x} overlap")
    for a, n in out:
        if not ns_ddr(a, n * PAGE):
            raise FfaError("S34", f"{a:#x}+{n * PAGE:#x} is not normal-world DDR")
        hit = conflict(a, a + n * PAGE)
        if hit:
            raise FfaError(*hit)
    return out


# ---- RECLAIM (retrieve and relinquish: tee_os.spmc.rxtx) ------------------------------------

def validate_reclaim(tx: MemTransaction | None, caller: int, flags: int) -> None:
    """Errors: C5 flags other than zero-memory (time slicing is not supported); C1 unknown
    handle or sending incomplete; C2 caller is not the owner; C3 a borrower still holds a
    retrieval (DENIED)."""
    if flags & ~CLEAR:
        raise FfaError("C5", f"reclaim flags {flags:#x}")
    if tx is None or not tx.complete:
        raise FfaError("C1", "unknown handle" if tx is None else "sending incomplete")
    if tx.sender != caller:
        raise FfaError("C2", f"{caller:#x} does not own handle {tx.handle:#x}")
    if tx.retrieved:
        raise FfaError("C3", f"handle {tx.handle:#x} still retrieved: {tx.retrievals}")
