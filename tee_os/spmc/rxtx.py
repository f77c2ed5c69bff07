"""The normal world's RX/TX buffer pair, the calls that use it, and the borrower side.

Naming is the caller's: ``tx`` is where the normal world writes descriptors (the SPMC reads
it; OP-TEE calls it its "rx"), ``rx`` is where the SPMC writes answers (partition information,
retrieve responses).  RX ownership follows FF-A: after the SPMC writes into RX the caller owns
it until FFA_RX_RELEASE, and a further write while the caller owns it answers BUSY.

:class:`RxTxCalls` is a mixin of :class:`tee_os.spmc.Spmc` with the handlers of FFA_RXTX_MAP,
FFA_RXTX_UNMAP, FFA_RX_RELEASE, FFA_PARTITION_INFO_GET, and the borrower side: the pure checks
of §4.4 / §4.5 (``validate_retrieve``, ``validate_relinquish``), the calls the normal world can
make as a borrower (FFA_MEM_RETRIEVE_REQ, hypervisor form; FFA_MEM_FRAG_RX; FFA_MEM_RELINQUISH)
and the secure OS's own ``retrieve_for_sp`` / ``relinquish_for_sp``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .descriptors import (EMAD_ALIGN, PAGE, RANGE, RELINQUISH, FfaError, MemRegion,
                          build_mem_region, build_partition_info, c, emad_size_of,
                          header_size_of, parse_emads, parse_header, parse_relinquish,
                          partition_info_size, regs_to_uuid, version_tuple)
from .memory import (CLEAR, CLEAR_ANY, KIND_TYPE, RETRIEVE_FLAGS, MemTransaction, data_access,
                     instr_access)

if TYPE_CHECKING:
    from .spmc import Spmc

NIL = (0, 0, 0, 0)


@dataclass
class Mailbox:
    """State of the NS endpoint's RX/TX pair."""

    tx: int = 0
    rx: int = 0
    size: int = 0
    caller_owns_rx: bool = False

    @property
    def mapped(self) -> bool:
        return self.size != 0

    def overlaps(self, start: int, end: int) -> bool:
        return self.mapped and any(b < end and start < b + self.size for b in (self.tx, self.rx))

    def snapshot(self) -> tuple:
        return (self.tx, self.rx, self.size, self.caller_owns_rx)


# ---- borrower rules (§4.4, §4.5) -----------------------------------------------------------

def parse_retrieve_request(buf: bytes, version: tuple[int, int]) -> MemRegion:
    """A retrieve request (header + EMADs, no composite).  Errors: R3 when it does not fit,
    its length is not ``EMAD offset + count * size``, or the layout fields are invalid."""
    try:
        req = parse_header(buf, version)
        if version_tuple(version) >= (1, 1) and req.emad_size != emad_size_of(version):
            raise FfaError("R3", f"EMAD size {req.emad_size}")
        if req.emad_offset < header_size_of(version) or req.emad_offset % EMAD_ALIGN:
            raise FfaError("R3", f"EMAD offset {req.emad_offset:#x}")
        req.emads = parse_emads(buf, req, rule="R3")
    except FfaError as e:
        raise FfaError("R3", e.detail) from None
    if len(buf) != req.emad_offset + req.emad_count * req.emad_size:
        raise FfaError("R3", f"request length {len(buf)} != {req.emad_offset} + "
                             f"{req.emad_count} * {req.emad_size}")
    return req


def validate_retrieve(tx: MemTransaction | None, caller: int, req: MemRegion | None,
                      limit: int | None) -> int:
    """Check a borrower's retrieval; returns the permissions it is granted.

    With ``req`` (a retrieve request descriptor) every rule of §4.4 applies; without it (the
    secure OS's implicit retrieval, OP-TEE's ``mobj_ffa_get_by_cookie``) only R1, R2, R7, R22.
    Errors: R10 address-range hint, time slicing or bits 31:11 in the flags; R14 NS or
    reserved attribute bits; R3 reserved header / EMAD fields; R1 unknown handle; R2 sending
    incomplete; R4 sender differs (DENIED); R5 tag differs; R6 transaction type differs; R11
    zero flags on a SHARE; R9 composite offset in an EMAD; R8 receiver count differs (or bypass
    flag misused); R7 caller or a listed endpoint is not a receiver; R22 retrieval limit
    reached (DENIED); R12 zero requested that the sender did not (DENIED); R13 zero with RO
    (DENIED); R15 attributes other than Normal-WB-IS (DENIED); R17 RW asked, RO sent (DENIED);
    R18 / R19 instruction access given for SHARE / multi LEND, missing for 1-borrower LEND /
    DONATE; R20 executable NS memory; R21 v1.2 implementation-defined value differs."""
    if req is not None:
        known = RETRIEVE_FLAGS
        if req.flags & ~known:
            raise FfaError("R10", f"retrieve flags {req.flags:#x}")
        if req.attributes & (c.FFA_MEMORY_SECURITY_MASK |
                             c.FFA_MEMORY_ATTRIBUTES_RESERVED_MASK):
            raise FfaError("R14", f"attributes {req.attributes:#x}")
        if req.reserved or any(e.reserved or e.flags & ~c.FFA_MEM_FLAG_NON_RETRIEVAL_BORROWER
                               for e in req.emads):
            raise FfaError("R3", "reserved field in the retrieve request")
    if tx is None:
        raise FfaError("R1", "unknown handle")
    if not tx.complete:
        raise FfaError("R2", f"handle {tx.handle:#x} still has fragments outstanding")
    perm = tx.permissions(caller)
    if req is None:
        if perm is None:
            raise FfaError("R7", f"{caller:#x} is not a receiver of {tx.handle:#x}")
        if limit is not None and tx.retrievals.get(caller, 0) >= limit:
            raise FfaError("R22", f"{caller:#x} already retrieved {tx.handle:#x}")
        return perm
    if req.sender != tx.sender:
        raise FfaError("R4", f"sender {req.sender:#x} != {tx.sender:#x}")
    if req.tag != tx.tag:
        raise FfaError("R5", f"tag {req.tag} != {tx.tag}")
    rtype = req.flags & c.FFA_MEMORY_REGION_TRANSACTION_TYPE_MASK
    if rtype and rtype != KIND_TYPE[tx.kind]:
        raise FfaError("R6", f"type {rtype >> 3} for a {tx.kind}")
    if tx.kind == "share" and req.flags & CLEAR_ANY:
        raise FfaError("R11", "zero flags on a SHARE")
    if any(e.composite_offset for e in req.emads):
        raise FfaError("R9", "composite offset in a retrieve request")
    multi = len(tx.receivers) > 1
    if req.flags & c.FFA_MEMORY_REGION_FLAG_BYPASS_BORROWERS_CHECK:
        if req.emad_count != 1 or not multi:
            raise FfaError("R8", "bypass flag needs one EMAD and several borrowers")
    elif req.emad_count != len(tx.receivers):
        raise FfaError("R8", f"{req.emad_count} EMADs for {len(tx.receivers)} receivers")
    mine = [e for e in req.emads if e.receiver == caller]
    if perm is None or not mine or any(tx.permissions(e.receiver) is None for e in req.emads):
        raise FfaError("R7", f"{caller:#x} / listed endpoints not receivers of {tx.handle:#x}")
    if limit is not None and tx.retrievals.get(caller, 0) >= limit:
        raise FfaError("R22", f"{caller:#x} already retrieved {tx.handle:#x}")
    asked = mine[0].permissions
    d, i = data_access(asked), instr_access(asked)
    sent_d = data_access(perm)
    granted_d = d or sent_d
    if req.flags & CLEAR and not tx.flags & CLEAR:
        raise FfaError("R12", "zero-before-retrieve not set by the sender")
    if req.flags & CLEAR_ANY and granted_d == c.FFA_DATA_ACCESS_RO:
        raise FfaError("R13", "zero flags with read-only access")
    if req.attributes & c.FFA_MEMORY_TYPE_MASK and req.attributes != c.FFA_NORMAL_MEM_REG_ATTR:
        raise FfaError("R15", f"attributes {req.attributes:#x}")
    if (asked & c.FFA_MEM_ACC_RESERVED_MASK or d == c.FFA_DATA_ACCESS_RESERVED
            or i == c.FFA_INSTRUCTION_ACCESS_RESERVED):
        raise FfaError("R3", f"permissions {asked:#x}")
    if d == c.FFA_DATA_ACCESS_RW and sent_d == c.FFA_DATA_ACCESS_RO:
        raise FfaError("R17", "RW requested, RO sent")
    if tx.kind == "share" or (tx.kind == "lend" and multi):
        if i != c.FFA_INSTRUCTION_ACCESS_NOT_SPECIFIED:
            raise FfaError("R18", f"instruction access {i} on {tx.kind}")
    elif i == c.FFA_INSTRUCTION_ACCESS_NOT_SPECIFIED:
        raise FfaError("R19", f"no instruction access on a 1-borrower {tx.kind}")
    if i == c.FFA_INSTRUCTION_ACCESS_X:
        raise FfaError("R20", "executable access to normal-world memory")
    if mine[0].impdef and mine[0].impdef != tx.impdef.get(caller, bytes(len(mine[0].impdef))):
        raise FfaError("R21", "implementation-defined value differs")
    return (granted_d << c.FFA_DATA_ACCESS_OFFSET) | (i << c.FFA_INSTRUCTION_ACCESS_OFFSET)


def validate_relinquish(tx: MemTransaction | None, caller: int, flags: int,
                        endpoints: list[int]) -> None:
    """Errors: L8 flags other than zero-after-relinquish; L1 endpoint count != 1; L2 endpoint
    is not the caller; L3 unknown handle or sending incomplete; L4 caller not a borrower; L5
    caller has not retrieved; L6 zero flag on a SHARE; L7 zero flag with RO access
    (DENIED)."""
    if flags & ~CLEAR:
        raise FfaError("L8", f"relinquish flags {flags:#x}")
    if len(endpoints) != 1:
        raise FfaError("L1", f"{len(endpoints)} endpoints")
    if endpoints[0] != caller:
        raise FfaError("L2", f"endpoint {endpoints[0]:#x} is not the caller {caller:#x}")
    if tx is None or not tx.complete:
        raise FfaError("L3", "unknown handle" if tx is None else "sending incomplete")
    perm = tx.permissions(caller)
    if perm is None:
        raise FfaError("L4", f"{caller:#x} is not a borrower of {tx.handle:#x}")
    if not tx.retrievals.get(caller):
        raise FfaError("L5", f"{caller:#x} has not retrieved {tx.handle:#x}")
    if flags & CLEAR and tx.kind == "share":
        raise FfaError("L6", "zero-after-relinquish on a SHARE")
    if flags & CLEAR and data_access(perm) == c.FFA_DATA_ACCESS_RO:
        raise FfaError("L7", "zero-after-relinquish with read-only access")


class RxTxCalls:
    """FF-A calls that map, release or write the caller's RX/TX buffers (mixin of Spmc)."""

    def _rxtx_map(self: "Spmc", fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_RXTX_MAP_32/64: x1 = TX, x2 = RX, w3[5:0] = 4K pages.

        Errors: INVALID_PARAMETERS for w3 bits 31:6 set, 0 pages or more than
        ``rxtx_max_pages``, unaligned or overlapping buffers, or buffers outside NS DDR
        (OP-TEE's ``map_buf``); DENIED when a pair is already mapped or a buffer lies in
        memory currently lent, shared or donated."""
        mb = self.mailbox
        pages = w[3] & c.FFA_RXTX_MAP_PAGE_COUNT_MASK
        if w[3] & ~c.FFA_RXTX_MAP_PAGE_COUNT_MASK or not 0 < pages <= self.cfg.rxtx_max_pages:
            raise FfaError("FFA_INVALID_PARAMETERS", f"page count field {w[3]:#x}")
        if mb.mapped:
            raise FfaError("FFA_DENIED", "an RX/TX pair is already mapped")
        tx, rx, size = x[1], x[2], pages * PAGE
        if tx % PAGE or rx % PAGE or (tx < rx + size and rx < tx + size):
            raise FfaError("FFA_INVALID_PARAMETERS", f"tx {tx:#x} / rx {rx:#x} x {size:#x}")
        if not (self._ns_ddr(tx, size) and self._ns_ddr(rx, size)):
            raise FfaError("FFA_INVALID_PARAMETERS", "RX/TX buffers outside NS DDR")
        if self._ownership.conflict(tx, tx + size) or self._ownership.conflict(rx, rx + size):
            raise FfaError("FFA_DENIED", "RX/TX buffer in memory not owned by the caller")
        self.mailbox = Mailbox(tx, rx, size, False)
        return self._ok()

    def _rxtx_unmap(self: "Spmc", fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_RXTX_UNMAP.  Errors: INVALID_PARAMETERS when w1 names another VM or nothing
        is mapped.  A pending fragmented retrieve response is dropped."""
        if w[1] and w[1] >> c.FFA_SRC_ENDPOINT_SHIFT != self.cfg.ns_id:
            raise FfaError("FFA_INVALID_PARAMETERS", f"w1 {w[1]:#x}")
        if not self.mailbox.mapped:
            raise FfaError("FFA_INVALID_PARAMETERS", "no RX/TX pair mapped")
        self.mailbox = Mailbox()
        self._retrieve_resp = None
        return self._ok()

    def _rx_release(self: "Spmc", fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_RX_RELEASE.  Errors: INVALID_PARAMETERS when w1 names another VM; DENIED when
        nothing is mapped or the caller does not own its RX buffer (released twice)."""
        if w[1] and w[1] & c.FFA_ENDPOINT_ID_MASK != self.cfg.ns_id:
            raise FfaError("FFA_INVALID_PARAMETERS", f"w1 {w[1]:#x}")
        if not self.mailbox.mapped or not self.mailbox.caller_owns_rx:
            raise FfaError("FFA_DENIED", "the caller does not own its RX buffer")
        self.mailbox.caller_owns_rx = False
        return self._ok()

    def _rx_acquire(self: "Spmc", rule: str) -> int:
        if not self.mailbox.mapped or self.mailbox.caller_owns_rx:
            raise FfaError(rule, "RX buffer not mapped or still owned by the caller")
        return self.mailbox.rx

    def _partition_info_get(self: "Spmc", fid: int, w: list[int],
                            x: list[int]) -> tuple[int, ...]:
        """FFA_PARTITION_INFO_GET: w1..w4 UUID (nil = all), w5 bit 0 = count only (v1.1).

        Writes v1.0 (8-byte) or v1.1+ (24-byte) descriptors into RX; SUCCESS w2 = count,
        w3 = descriptor size (v1.1+, 0 for count only).  Errors: INVALID_PARAMETERS for
        reserved w5 bits or an unknown UUID; BUSY when RX is not mapped or still owned by the
        caller (not for count only); NO_MEMORY if the descriptors do not fit RX."""
        v = self.caller_version
        count_only = bool(w[5] & c.FFA_PARTITION_INFO_GET_COUNT_FLAG) and v >= (1, 1)
        if w[5] & ~(c.FFA_PARTITION_INFO_GET_COUNT_FLAG if v >= (1, 1) else 0):
            raise FfaError("FFA_INVALID_PARAMETERS", f"w5 {w[5]:#x}")
        if not count_only:
            self._rx_acquire("FFA_BUSY")
        parts = self.partitions()
        if tuple(w[1:5]) != NIL:
            want = regs_to_uuid(w[1:5])
            parts = [p for p in parts if p[3] == want]
            if not parts:
                raise FfaError("FFA_INVALID_PARAMETERS", f"no partition with UUID {want}")
        if count_only:
            return self._ok(len(parts))
        data = build_partition_info(v, parts)
        if len(data) > self.mailbox.size:
            raise FfaError("FFA_NO_MEMORY", "partition information does not fit RX")
        self._write_rx(data)
        return self._ok(len(parts), partition_info_size(v) if v >= (1, 1) else 0)

    def _write_rx(self: "Spmc", data: bytes) -> None:
        self._write(self.mailbox.rx, data)
        self.mailbox.caller_owns_rx = True

    # ---- the normal world as a borrower -----------------------------------------------------

    def _mem_retrieve_req(self: "Spmc", fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_MEM_RETRIEVE_REQ_32/64 from the normal world (descriptor in TX only).

        A request with EMAD count 0 is the hypervisor form (§4.4): every other field but the
        handle is 0 and the answer is the whole original descriptor (caller's layout, type in
        the flags), once per handle.  Other requests are checked as a borrower's (§4.4); the
        normal world is never a receiver of what it sent, so they end in R7 at the latest.
        Answer: FFA_MEM_RETRIEVE_RESP w1 = total length, w2 = fragment length; the rest
        through FFA_MEM_FRAG_RX.  Errors: S1 x3 / w4 non-zero (no caller-allocated buffer
        for retrieve requests); INVALID_PARAMETERS w5..w7 non-zero; S4 no RX/TX (DENIED);
        R3 fragment != total, longer than TX, or malformed; R1 / R2 / R22 (a second
        hypervisor retrieval, DENIED) / R24 RX busy (BUSY); every rule of
        :func:`validate_retrieve`; S38 TX not readable (ABORTED)."""
        if x[3] or w[4]:
            raise FfaError("S1", "retrieve requests must be in the TX buffer")
        if any(w[5:8]):
            raise FfaError("FFA_INVALID_PARAMETERS", "w5..w7 must be zero")
        if not self.mailbox.mapped:
            raise FfaError("S4", "no RX/TX pair mapped")
        total, frag = w[1], w[2]
        if not 0 < total == frag or total > self.mailbox.size:
            raise FfaError("R3", f"total {total}, fragment {frag}, TX {self.mailbox.size}")
        req = parse_retrieve_request(self._read(self.mailbox.tx, total), self.caller_version)
        tx = self._tx.get(req.handle) or self._pending.get(req.handle)
        if req.emad_count == 0:
            if req.sender or req.attributes or req.flags or req.tag:
                raise FfaError("R3", "hypervisor retrieve request with non-zero fields")
            if tx is None:
                raise FfaError("R1", "unknown handle")
            if not tx.complete:
                raise FfaError("R2", "sending incomplete")
            if tx.hyp_retrieved:
                raise FfaError("R22", "descriptor already retrieved by the hypervisor")
            self._rx_acquire("R24")
            resp = self._describe(tx, self.caller_version)
            tx.hyp_retrieved = True
        else:
            validate_retrieve(tx, self.cfg.ns_id, req, self.cfg.retrieve_limit)
            raise FfaError("R7", "the normal world borrows nothing")  # unreachable in practice
        return self._send_resp(tx.handle, resp)

    def _describe(self: "Spmc", tx: Any, version: tuple[int, int]) -> bytes:
        return build_mem_region(version, tx.sender, [(e, p, 0, tx.impdef.get(e, 0))
                                                     for e, p in tx.receivers],
                                tx.attributes, tx.flags | KIND_TYPE[tx.kind], tx.tag,
                                tx.constituents, handle=tx.handle)

    def _send_resp(self: "Spmc", handle: int, resp: bytes) -> tuple[int, ...]:
        chunk = min(len(resp), self.mailbox.size // RANGE.size * RANGE.size)
        self._write_rx(resp[:chunk])
        self._retrieve_resp = (handle, resp, chunk) if chunk < len(resp) else None
        return self._regs(c.FFA_MEM_RETRIEVE_RESP, len(resp), chunk)

    def _mem_frag_rx(self: "Spmc", fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_MEM_FRAG_RX: w1 / w2 handle, w3 offset of the next fragment of a retrieve
        response.  Answer FFA_MEM_FRAG_TX (w1 / w2 handle, w3 fragment length).  Errors:
        INVALID_PARAMETERS for w4[15:0] / w5..w7 non-zero, another sender in w4[31:16], no
        response pending for the handle or a wrong offset; BUSY (R24) while RX is owned."""
        handle = w[1] | (w[2] << 32)
        if w[4] & c.FFA_ENDPOINT_ID_MASK or any(w[5:8]) or \
                w[4] >> c.FFA_SRC_ENDPOINT_SHIFT not in (0, self.cfg.ns_id):
            raise FfaError("FFA_INVALID_PARAMETERS", "w4..w7")
        pend = self._retrieve_resp
        if pend is None or pend[0] != handle or w[3] != pend[2]:
            raise FfaError("FFA_INVALID_PARAMETERS", f"no retrieve response at {w[3]:#x} "
                                                     f"for handle {handle:#x}")
        self._rx_acquire("R24")
        _, resp, off = pend
        n = min(len(resp) - off, self.mailbox.size // RANGE.size * RANGE.size)
        self._write_rx(resp[off:off + n])
        self._retrieve_resp = (handle, resp, off + n) if off + n < len(resp) else None
        return self._regs(c.FFA_MEM_FRAG_TX, w[1], w[2], n)

    def _mem_relinquish(self: "Spmc", fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_MEM_RELINQUISH from the normal world (descriptor in TX, §3.8).

        Errors: INVALID_PARAMETERS w1..w7 non-zero; S4 no RX/TX (DENIED); L1 descriptor
        truncated; S38 TX unreadable (ABORTED); every rule of :func:`validate_relinquish` (the
        normal world borrows nothing: L4 after L1-L3 and L8)."""
        if any(w[1:8]):
            raise FfaError("FFA_INVALID_PARAMETERS", "w1..w7 must be zero")
        if not self.mailbox.mapped:
            raise FfaError("S4", "no RX/TX pair mapped")
        head = self._read(self.mailbox.tx, RELINQUISH.size)
        count = RELINQUISH.unpack(head)["endpoint_count"]
        esz = RELINQUISH.field("endpoint_id_array").elem_size
        n = min(self.mailbox.size, RELINQUISH.size + count * esz)
        handle, flags, eps = parse_relinquish(self._read(self.mailbox.tx, n))
        tx = self._tx.get(handle) or self._pending.get(handle)
        validate_relinquish(tx, self.cfg.ns_id, flags, eps)
        self._commit_relinquish(tx, self.cfg.ns_id, flags)
        return self._ok()

    # ---- the secure side as borrower (OP-TEE's mobj_ffa) ------------------------------------

    def retrieve_for_sp(self: "Spmc", handle: int, *, endpoint: int | None = None,
                        request: bytes | None = None) -> MemTransaction:
        """A secure partition (OP-TEE by default) retrieves ``handle``: its state becomes
        !Owner-EA / !Owner-SA (§4.2); a DONATE hands the pages over and frees the handle.
        ``request`` is an optional retrieve request descriptor (SPMC's version layout).
        Zeroes the memory first if the sender asked.  Raises FfaError (``.code``) for R1,
        R2, R7, R22 and, with ``request``, every rule of :func:`validate_retrieve`; R25 when
        zeroing fails."""
        ep = self.cfg.sp_id if endpoint is None else endpoint
        tx = self.lookup(handle)
        try:
            req = None if request is None else parse_retrieve_request(request, self.cfg.version)
            validate_retrieve(tx, ep, req, self.cfg.retrieve_limit)
            if tx.flags & CLEAR and not tx.zeroed:
                self._zero(tx, "R25")
                tx.zeroed = True
        except FfaError as e:
            e.code = self.code_of(e)
            raise
        tx.retrievals[ep] = tx.retrievals.get(ep, 0) + 1
        if tx.kind == "donate":
            self._drop(tx)
            for pa, size in tx.ranges():
                self._ownership.add(pa, pa + size, ("donated", ep))
        self._emit("ffa_mem", op="retrieve", handle=handle, endpoint=ep,
                   count=tx.retrievals[ep])
        return tx

    def relinquish_for_sp(self: "Spmc", handle: int, *, endpoint: int | None = None,
                          flags: int = 0) -> None:
        """Undo one retrieval (OPTEE_FFA_UNREGISTER_SHM / RELEASE_PROTMEM).  Raises FfaError
        for every rule of :func:`validate_relinquish` (L1-L8) and ABORTED when zeroing
        fails."""
        ep = self.cfg.sp_id if endpoint is None else endpoint
        tx = self.lookup(handle)
        try:
            validate_relinquish(tx, ep, flags, [ep])
            self._commit_relinquish(tx, ep, flags)
        except FfaError as e:
            e.code = self.code_of(e)
            raise

    def _commit_relinquish(self: "Spmc", tx: MemTransaction, ep: int, flags: int) -> None:
        if flags & CLEAR and sum(tx.retrievals.values()) == 1:
            self._zero(tx, "FFA_ABORTED")
        tx.retrievals[ep] -= 1
        if not tx.retrievals[ep]:
            del tx.retrievals[ep]
        self._emit("ffa_mem", op="relinquish", handle=tx.handle, endpoint=ep)
