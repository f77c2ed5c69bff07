"""The normal world's RX/TX buffer pair and every call that uses it (besides memory sends).

Naming is the caller's: ``tx`` is where the normal world writes descriptors (the SPMC reads
it; OP-TEE calls it its "rx"), ``rx`` is where the SPMC writes answers (partition information,
retrieve responses).  RX ownership follows FF-A: after the SPMC writes into RX the caller owns
it until FFA_RX_RELEASE, and a further write while the caller owns it answers BUSY.

:class:`RxTxCalls` is a mixin of :class:`tee_os.spmc.Spmc` with the handlers of FFA_RXTX_MAP,
FFA_RXTX_UNMAP, FFA_RX_RELEASE, FFA_PARTITION_INFO_GET, and the borrower-side calls the normal
world can make: FFA_MEM_RETRIEVE_REQ (hypervisor form), FFA_MEM_FRAG_RX, FFA_MEM_RELINQUISH.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .descriptors import (PAGE, RANGE, RELINQUISH, FfaError, build_mem_region,
                          build_partition_info, c, parse_relinquish, partition_info_size,
                          regs_to_uuid)
from .memory import KIND_TYPE, parse_retrieve_request, validate_relinquish, validate_retrieve

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
