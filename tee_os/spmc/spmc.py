"""The S-EL1 SPMC core: one FF-A call from the normal world in, its answer out.

:meth:`Spmc.handle` takes x0..x7 as forwarded by the SPMD and returns x0..x7; guest input never
raises, every refusal is an FFA_ERROR whose code comes from the rule table of ffa_spec.md §4
(``descriptors.RULES``).  Memory operations follow validate, commit, revert: descriptors are
copied out of NS memory first (``read_ns``), checked by the pure functions of
``tee_os.spmc.memory``, and only then committed; a refused ``on_lend`` / ``on_reclaim``
leaves the state as it was.  See ``tee_os/spmc/__init__.py`` for the calls implemented beyond
the reference OP-TEE SPMC and the behaviour chosen where the references disagree.
"""
from __future__ import annotations

import uuid as _uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from .descriptors import (ABI, PAGE, RANGE, FfaError, c, parse_constituents,
                          version_tuple, version_word)
from .memory import (CLEAR, HandleAllocator, MemTransaction, Ownership, OwnershipSpan,
                     SendCheck, validate_constituents, validate_reclaim, validate_send_first)
from .rxtx import Mailbox, RxTxCalls

M32 = 0xFFFFFFFF
SMC64 = c.FFA_SUCCESS_64 & ~c.FFA_SUCCESS_32
OPTEE_UUID = _uuid.UUID("486178e0-e7f8-11e3-bc5e-0002a5d5c51b")
SEND = {c.FFA_MEM_SHARE_32: "share", c.FFA_MEM_LEND_32: "lend", c.FFA_MEM_DONATE_32: "donate"}
FID_NAMES = {v: k for k, v in sorted(ABI.constants.items(), reverse=True)
             if k.startswith("FFA_") and isinstance(v, int) and
             (v & ~SMC64) >> 8 == c.FFA_ERROR >> 8 and k.upper() == k}


@dataclass
class SpmcConfig:
    spmc_id: int = 0x8000
    sp_id: int = 0x8001                       # OP-TEE's own partition
    ns_id: int = 0                            # the normal-world endpoint
    version: tuple[int, int] = (1, 2)
    partition_uuid: _uuid.UUID = OPTEE_UUID
    rxtx_max_pages: int = c.FFA_RXTX_MAP_PAGE_COUNT_MASK
    execution_contexts: int = 1
    partition_properties: int = (c.FFA_PART_PROP_DIRECT_REQ_RECV |
                                 c.FFA_PART_PROP_DIRECT_REQ_SEND |
                                 c.FFA_PART_PROP_IS_PE_ID | c.FFA_PART_PROP_AARCH64_STATE)
    #: further secure partitions (id, uuid, properties): they may receive memory and retrieve
    #: it through ``retrieve_for_sp(endpoint=...)``; direct requests go to OP-TEE only
    other_partitions: tuple[tuple[int, _uuid.UUID, int], ...] = ()
    max_handles: int = 64                     # OP-TEE's SPMC_CORE_SEL1_MAX_SHM_COUNT
    max_receivers: int = 8
    max_fragments: int = 64
    #: retrievals per borrower and handle: None counts them like OP-TEE's inactive_refs,
    #: 1 is Hafnium's "already retrieved -> DENIED" (rule R22)
    retrieve_limit: int | None = None
    #: rule -> FF-A error code, e.g. {"S34": FFA_INVALID_PARAMETERS} for OP-TEE 4.9's answer
    error_overrides: dict[str, int] = field(default_factory=dict)
    #: answer FFA_FEATURES exactly like OP-TEE (no LEND, DONATE, RETRIEVE, RELINQUISH, FRAG_RX)
    optee_features: bool = False


class Spmc(RxTxCalls):
    """OP-TEE acting as S-EL1 SPMC for the normal-world endpoint (pure Python).

    ``read_ns(pa, size)`` / ``write_ns(pa, data)`` reach normal-world memory (descriptors, RX,
    zeroing; an exception is a bus fault); ``ns_ddr_range(pa, size)`` tells whether a range is
    entirely normal-world DDR.  ``on_lend(tx)`` runs once per LEND / DONATE after its last
    fragment passed every check and before the commit (``tx.complete`` is still False): it
    protects the range and returns None, or an FF-A error code that refuses the transaction.
    ``on_reclaim(tx)`` runs before a RECLAIM commits (``tx.clear_on_reclaim`` = zero flag): it
    scrubs and unfences, returning None or an error code.  ``direct_request(x0..x7)`` is
    OP-TEE's FF-A service and returns w3..w7.  ``bus`` receives "ffa_call" / "ffa_mem" events.
    """

    def __init__(self, config: SpmcConfig, *, read_ns: Callable[[int, int], bytes],
                 write_ns: Callable[[int, bytes], None], ns_ddr_range: Callable[[int, int], bool],
                 on_lend: Callable[[MemTransaction], int | None] | None = None,
                 on_reclaim: Callable[[MemTransaction], int | None] | None = None,
                 direct_request: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None,
                 bus: Any = None) -> None:
        self.cfg = config
        self.read_ns, self.write_ns, self._ns_ddr = read_ns, write_ns, ns_ddr_range
        self.on_lend, self.on_reclaim, self.direct_request = on_lend, on_reclaim, direct_request
        self.bus = bus
        self.caller_version: tuple[int, int] = (1, 0)   # until FFA_VERSION says otherwise
        self.mailbox = Mailbox()
        self._tx: dict[int, MemTransaction] = {}        # complete transactions
        self._pending: dict[int, MemTransaction] = {}   # fragments outstanding
        self._handles = HandleAllocator(config.max_handles)
        self._ownership = Ownership()
        self._retrieve_resp: tuple[int, bytes, int] | None = None
        calls: dict[int, Callable[..., tuple[int, ...]]] = {
            c.FFA_VERSION: self._version, c.FFA_FEATURES: self._features,
            c.FFA_ID_GET: self._id_get, c.FFA_SPM_ID_GET: self._spm_id_get,
            c.FFA_RXTX_MAP_32: self._rxtx_map, c.FFA_RXTX_MAP_64: self._rxtx_map,
            c.FFA_RXTX_UNMAP: self._rxtx_unmap, c.FFA_RX_RELEASE: self._rx_release,
            c.FFA_PARTITION_INFO_GET: self._partition_info_get,
            c.FFA_MSG_SEND_DIRECT_REQ_32: self._direct_req,
            c.FFA_MSG_SEND_DIRECT_REQ_64: self._direct_req,
            c.FFA_MEM_FRAG_TX: self._mem_frag_tx, c.FFA_MEM_RECLAIM: self._mem_reclaim,
            c.FFA_MEM_RETRIEVE_REQ_32: self._mem_retrieve_req,
            c.FFA_MEM_RETRIEVE_REQ_64: self._mem_retrieve_req,
            c.FFA_MEM_FRAG_RX: self._mem_frag_rx, c.FFA_MEM_RELINQUISH: self._mem_relinquish}
        for fid in SEND:
            calls[fid] = calls[fid | SMC64] = self._mem_send
        self._calls = calls

    # ---- entry ------------------------------------------------------------------------------

    def handle(self, regs: tuple[int, ...]) -> tuple[int, ...]:
        """One FF-A call from the normal-world endpoint: x0..x7 in, x0..x7 out."""
        r = [int(v) & ((1 << 64) - 1) for v in tuple(regs)[:8]] + [0] * (8 - min(8, len(regs)))
        fid = r[0] & M32
        w = [v & M32 for v in r]
        x = r if fid & SMC64 else w
        call = self._calls.get(fid)
        rule = None
        try:
            if call is None:
                raise FfaError("FFA_NOT_SUPPORTED", f"function id {fid:#x}")
            out = call(fid, w, x)
        except FfaError as e:
            rule, code = e.rule, self.code_of(e)
            out = self._regs(c.FFA_ERROR, 0, code & M32)
        if self.bus is not None and self.bus.active:
            self.bus.emit("ffa_call", "S-EL1", fid=fid, name=FID_NAMES.get(fid, hex(fid)),
                          result=FID_NAMES.get(out[0], hex(out[0])), rule=rule,
                          error=_signed(out[2]) if out[0] == c.FFA_ERROR else None)
        return out

    def code_of(self, e: FfaError) -> int:
        if e.rule in self.cfg.error_overrides and not e.explicit:
            return self.cfg.error_overrides[e.rule]
        return e.code

    @staticmethod
    def _regs(*vals: int) -> tuple[int, ...]:
        return tuple(vals) + (0,) * (8 - len(vals))

    def _ok(self, w2: int = 0, w3: int = 0) -> tuple[int, ...]:
        return self._regs(c.FFA_SUCCESS_32, 0, w2, w3)

    def _emit(self, event: str, /, **fields: Any) -> None:
        if self.bus is not None and self.bus.active:
            self.bus.emit(event, "S-EL1", **fields)

    def _read(self, addr: int, size: int) -> bytes:
        try:
            data = bytes(self.read_ns(addr, size))
        except Exception as e:  # the memory port refused: a fault on the copy
            raise FfaError("S38", f"reading {size:#x} bytes at {addr:#x}: {e}") from None
        if len(data) != size:
            raise FfaError("S38", f"short read at {addr:#x}")
        return data

    def _write(self, addr: int, data: bytes) -> None:
        self.write_ns(addr, bytes(data))

    def _zero(self, tx: MemTransaction, rule: str) -> None:
        try:
            for pa, size in tx.ranges():
                for off in range(0, size, 0x10000):
                    self.write_ns(pa + off, bytes(min(0x10000, size - off)))
        except Exception as e:
            raise FfaError(rule, f"zeroing handle {tx.handle:#x} failed: {e}") from None

    # ---- identification, features, messages ------------------------------------------------

    def _version(self, fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_VERSION: answers the SPMC's version in w0 (not wrapped in SUCCESS) and records
        the caller's for descriptor layouts (OP-TEE allows renegotiation).  NOT_SUPPORTED (-1
        in w0) when bit 31 is set or the major differs; the record is then unchanged."""
        return self._regs(self.exchange_version(w[1]))

    def exchange_version(self, requested: int) -> int:
        if requested & c.FFA_VERSION_BIT31_MASK or \
                version_tuple(requested)[0] != self.cfg.version[0]:
            return c.FFA_NOT_SUPPORTED & M32
        self.caller_version = min(version_tuple(requested), tuple(self.cfg.version))
        return version_word(self.cfg.version)

    def _features(self, fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_FEATURES(w1).  SUCCESS with w2 = properties for an implemented function id:
        RXTX_MAP: 4K minimum (+ maximum pages in w2[31:16] for v1.2 callers); DONATE / LEND /
        SHARE: caller-allocated buffer supported; RETRIEVE_REQ: v1.0 callers 0, v1.1 NS-bit
        handling, v1.2+ also hypervisor retrieval.  NOT_SUPPORTED for feature ids
        (no notifications / interrupts) and everything else."""
        q, v = w[1], self.caller_version
        hidden = {c.FFA_MEM_LEND_32, c.FFA_MEM_LEND_64, c.FFA_MEM_DONATE_32,
                  c.FFA_MEM_DONATE_64, c.FFA_MEM_RETRIEVE_REQ_32, c.FFA_MEM_RETRIEVE_REQ_64,
                  c.FFA_MEM_RETRIEVE_RESP, c.FFA_MEM_RELINQUISH, c.FFA_MEM_FRAG_RX,
                  c.FFA_ID_GET} if self.cfg.optee_features else set()
        known = set(self._calls) | {c.FFA_ERROR, c.FFA_SUCCESS_32, c.FFA_SUCCESS_64,
                                    c.FFA_MSG_SEND_DIRECT_RESP_32,
                                    c.FFA_MSG_SEND_DIRECT_RESP_64, c.FFA_MEM_RETRIEVE_RESP}
        if not q & c.FFA_FEATURES_FUNC_ID_MASK or q not in known - hidden:
            raise FfaError("FFA_NOT_SUPPORTED", f"feature {q:#x}")
        props = 0
        if q in (c.FFA_RXTX_MAP_32, c.FFA_RXTX_MAP_64):
            props = c.FFA_FEAT_RXTX_MIN_SZ_4K
            if v >= (1, 2):
                props |= self.cfg.rxtx_max_pages << c.FFA_FEAT_RXTX_MAX_PAGES_SHIFT
        elif q & ~SMC64 in SEND:
            props = c.FFA_FEATURES_MEM_DYNAMIC_BUFFER_SUPPORT
        elif q in (c.FFA_MEM_RETRIEVE_REQ_32, c.FFA_MEM_RETRIEVE_REQ_64) and v >= (1, 1):
            props = c.FFA_FEATURES_MEM_RETRIEVE_REQ_NS_SUPPORT
            if v >= (1, 2):
                props |= c.FFA_FEATURES_MEM_RETRIEVE_REQ_HYPERVISOR_SUPPORT
        return self._ok(props)

    def _id_get(self, fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_ID_GET: the caller's id (the SPMD normally answers this for NS itself)."""
        return self._ok(self.cfg.ns_id)

    def _spm_id_get(self, fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_SPM_ID_GET (v1.1): the SPMC id.  NOT_SUPPORTED for v1.0 callers."""
        if self.caller_version < (1, 1):
            raise FfaError("FFA_NOT_SUPPORTED", "FFA_SPM_ID_GET is a v1.1 interface")
        return self._ok(self.cfg.spmc_id)

    def partitions(self) -> list[tuple[int, int, int, _uuid.UUID]]:
        """(id, execution contexts, properties, uuid) of every partition, OP-TEE first."""
        cfg = self.cfg
        return [(cfg.sp_id, cfg.execution_contexts, cfg.partition_properties,
                 cfg.partition_uuid)] + [(i, cfg.execution_contexts, p, u)
                                         for i, u, p in cfg.other_partitions]

    def _direct_req(self, fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_MSG_SEND_DIRECT_REQ_32/64 to OP-TEE: ``direct_request(x0..x7)`` gives w3..w7 of
        the FFA_MSG_SEND_DIRECT_RESP (same width, endpoints swapped, w2 = 0).  The SPMD's
        framework FFA_VERSION request (source 0xFFFF, destination the SPMC) is answered with
        the framework version response.  Errors: INVALID_PARAMETERS for another framework
        message, non-zero w2, a source other than the normal-world endpoint or a destination
        other than OP-TEE; NOT_SUPPORTED when no service is attached."""
        src, dst = w[1] >> c.FFA_SRC_ENDPOINT_SHIFT, w[1] & c.FFA_ENDPOINT_ID_MASK
        resp = c.FFA_MSG_SEND_DIRECT_RESP_64 if fid & SMC64 else c.FFA_MSG_SEND_DIRECT_RESP_32
        swapped = (dst << c.FFA_SRC_ENDPOINT_SHIFT) | src
        if w[2] & c.FFA_MSG_FLAG_FRAMEWORK:
            if (w[2] & ~c.FFA_MSG_FLAG_FRAMEWORK) == c.FFA_MSG_VERSION_REQ and \
                    src == c.SPMD_DIRECT_MSG_ENDPOINT_ID and dst == self.cfg.spmc_id:
                return self._regs(resp, swapped, c.FFA_MSG_FLAG_FRAMEWORK |
                                  c.FFA_MSG_VERSION_RESP, self.exchange_version(w[3]))
            raise FfaError("FFA_INVALID_PARAMETERS", f"framework message {w[2]:#x}")
        if w[2] or src != self.cfg.ns_id or dst != self.cfg.sp_id:
            raise FfaError("FFA_INVALID_PARAMETERS", f"direct request {src:#x} -> {dst:#x}")
        if self.direct_request is None:
            raise FfaError("FFA_NOT_SUPPORTED", "no service behind the OP-TEE partition")
        out = [int(v) for v in tuple(self.direct_request(tuple(x)))[:5]]
        out += [0] * (5 - len(out))
        mask = (1 << 64) - 1 if fid & SMC64 else M32
        return self._regs(resp, swapped, 0, *(v & mask for v in out))

    # ---- DONATE / LEND / SHARE, FRAG_TX, RECLAIM -------------------------------------------

    def _mem_send(self, fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_MEM_DONATE / LEND / SHARE (32/64): w1 total length, w2 fragment length, x3 / w4
        caller-allocated buffer address / pages (0 / 0 = TX buffer).

        Answer SUCCESS (w2 / w3 = handle) or FFA_MEM_FRAG_RX (w1 / w2 handle, w3 bytes
        received).  Errors: INVALID_PARAMETERS w5..w7 non-zero; S1 w4 without x3, x3 without
        w4, unaligned buffer or one outside the caller's NS memory; S4 no RX/TX (DENIED); S2
        fragment > total or empty; S3 fragment > buffer (4K for v1.0 callers); S38 copy
        fault (ABORTED); S35 no handle (NO_MEMORY); O6 send handle in use (NO_MEMORY); every
        rule of :func:`validate_send_first` and :func:`validate_constituents`; S36, S25, S28,
        S37 at completion (:meth:`_complete`)."""
        kind = SEND[fid & ~SMC64]
        if any(w[5:8]):
            raise FfaError("FFA_INVALID_PARAMETERS", "w5..w7 must be zero")
        total, frag, addr, pages = w[1], w[2], x[3], w[4]
        buffer = None
        if addr == 0:
            if pages:
                raise FfaError("S1", "w4 without a buffer address")
            if not self.mailbox.mapped:
                raise FfaError("S4", "no RX/TX pair mapped")
            base = self.mailbox.tx
            limit = self.mailbox.size if self.caller_version >= (1, 1) else \
                min(PAGE, self.mailbox.size)
        else:
            base, limit = addr, pages * PAGE
            if not pages or addr % PAGE or not self._ns_ddr(addr, limit) or \
                    self._ownership.conflict(addr, addr + limit):
                raise FfaError("S1", f"buffer {addr:#x} x {pages} pages")
            buffer = (addr, limit)
        if not 0 < frag <= total:
            raise FfaError("S2", f"fragment {frag} of {total}")
        if frag > limit:
            raise FfaError("S3", f"fragment {frag} > buffer {limit}")
        data = self._read(base, frag)
        ck = SendCheck(kind, self.cfg.ns_id, self.caller_version, self._endpoints(),
                       self.cfg.sp_id, self.cfg.max_receivers)
        region, first = validate_send_first(data, total, ck)
        n = (frag - first) // RANGE.size
        cons = validate_constituents(parse_constituents(data, first, n), [],
                                     region.total_page_count, self._ns_ddr, self._conflict)
        if region.handle:
            if self.lookup(region.handle) is not None:
                raise FfaError("O6", f"handle {region.handle:#x} in use")
            handle = region.handle
        else:
            handle = self._handles.alloc()
            if handle is None:
                raise FfaError("S35", "no free handle")
        tx = MemTransaction(handle, kind, region.sender, [(e.receiver, e.permissions)
                                                          for e in region.emads],
                            region.attributes, region.flags, region.tag, cons,
                            region.total_page_count, region.version, fid,
                            {e.receiver: e.impdef for e in region.emads if e.impdef},
                            total_length=total, received=frag,
                            range_count=region.range_count, fragments=1, buffer=buffer)
        return self._progress(tx)

    def _progress(self, tx: MemTransaction) -> tuple[int, ...]:
        """Complete ``tx`` or keep it pending; on any error the handle is freed."""
        try:
            if tx.received < tx.total_length:
                if tx.fragments >= self.cfg.max_fragments:
                    raise FfaError("S36", f"more than {self.cfg.max_fragments} fragments")
                self._pending[tx.handle] = tx
                return self._regs(c.FFA_MEM_FRAG_RX, tx.handle & M32, tx.handle >> 32,
                                  tx.received)
            self._complete(tx)
        except FfaError:
            self._pending.pop(tx.handle, None)
            self._handles.free(tx.handle)
            self._emit("ffa_mem", op="abort", handle=tx.handle, kind=tx.kind)
            raise
        return self._ok(tx.handle & M32, tx.handle >> 32)

    def _complete(self, tx: MemTransaction) -> None:
        """Last fragment arrived.  Errors: S25 page total differs; S27 / S28 another
        transaction took part of the range meanwhile; S37 ``on_lend`` refused (its code)."""
        if sum(n for _, n in tx.constituents) != tx.total_pages:
            raise FfaError("S25", f"constituents hold {sum(n for _, n in tx.constituents)} "
                                  f"pages, composite says {tx.total_pages}")
        for pa, size in tx.ranges():
            hit = self._conflict(pa, pa + size)
            if hit:
                raise FfaError(*hit)
        if tx.kind != "share" and self.on_lend is not None:
            rc = self.on_lend(tx)
            if rc:
                raise FfaError("S37", f"on_lend refused handle {tx.handle:#x}", code=rc)
        self._pending.pop(tx.handle, None)
        tx.complete = True
        self._tx[tx.handle] = tx
        for pa, size in tx.ranges():
            self._ownership.add(pa, pa + size, tx)
        self._emit("ffa_mem", op=tx.kind, handle=tx.handle, sender=tx.sender,
                   receivers=list(tx.receivers), tag=tx.tag, pages=tx.total_pages)

    def _mem_frag_tx(self, fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_MEM_FRAG_TX: w1 / w2 handle, w3 fragment length, w4[31:16] sender.

        Errors that leave everything unchanged: INVALID_PARAMETERS w4[15:0] / w5..w7 non-zero;
        F1 no transaction pending under the handle; F2 it is already complete; F3 another
        sender.  Errors that abort the pending transaction (OP-TEE and Hafnium free it): F3
        empty, misaligned or too long fragment; S4 TX unmapped meanwhile; S3 fragment > buffer;
        S38 copy fault; every rule of :func:`validate_constituents`; the completion rules."""
        handle = w[1] | (w[2] << 32)
        if w[4] & c.FFA_ENDPOINT_ID_MASK or any(w[5:8]):
            raise FfaError("FFA_INVALID_PARAMETERS", "w4[15:0], w5..w7 must be zero")
        tx = self._pending.get(handle)
        if tx is None:
            raise FfaError("F2" if handle in self._tx else "F1", f"handle {handle:#x}")
        sender = w[4] >> c.FFA_SRC_ENDPOINT_SHIFT
        if sender and sender != tx.sender:
            raise FfaError("F3", f"fragment from {sender:#x} for {tx.sender:#x}'s handle")
        flen = w[3]
        try:
            if not flen or flen % RANGE.size or tx.received + flen > tx.total_length:
                raise FfaError("F3", f"fragment {flen} after {tx.received} of "
                                     f"{tx.total_length}")
            if tx.buffer is None and not self.mailbox.mapped:
                raise FfaError("S4", "no RX/TX pair mapped")
            base, limit = tx.buffer or (self.mailbox.tx, self.mailbox.size)
            if flen > limit:
                raise FfaError("S3", f"fragment {flen} > buffer {limit}")
            new = parse_constituents(self._read(base, flen), 0, flen // RANGE.size)
            cons = validate_constituents(new, tx.constituents, tx.total_pages, self._ns_ddr,
                                         self._conflict)
        except FfaError:
            self._pending.pop(handle)
            self._handles.free(handle)
            self._emit("ffa_mem", op="abort", handle=handle, kind=tx.kind)
            raise
        tx.constituents = tx.constituents + cons
        tx.received += flen
        tx.fragments += 1
        return self._progress(tx)

    def _mem_reclaim(self, fid: int, w: list[int], x: list[int]) -> tuple[int, ...]:
        """FFA_MEM_RECLAIM: w1 / w2 handle, w3 flags (bit 0: zero before reclaim).

        ``on_reclaim`` runs before the commit with ``tx.clear_on_reclaim`` set from the flag
        (it scrubs and unfences); without it the SPMC zeroes through ``write_ns``.  Errors:
        C6 w4..w7 non-zero; rules of :func:`validate_reclaim` (C5, C1, C2, C3 DENIED); C9
        ``on_reclaim`` refused (its code); ABORTED when zeroing fails."""
        if any(w[4:8]):
            raise FfaError("C6", "w4..w7 must be zero")
        handle, flags = w[1] | (w[2] << 32), w[3]
        tx = self.lookup(handle)
        validate_reclaim(tx, self.cfg.ns_id, flags)
        tx.clear_on_reclaim = bool(flags & CLEAR)
        try:
            if self.on_reclaim is not None:
                rc = self.on_reclaim(tx)
                if rc:
                    raise FfaError("C9", f"on_reclaim refused handle {handle:#x}", code=rc)
            elif tx.clear_on_reclaim:
                self._zero(tx, "FFA_ABORTED")
        finally:
            tx.clear_on_reclaim = False
        self._drop(tx)
        self._emit("ffa_mem", op="reclaim", handle=handle, zero=bool(flags & CLEAR))
        return self._ok()

    def _drop(self, tx: MemTransaction) -> None:
        self._ownership.remove(tx)
        self._tx.pop(tx.handle, None)
        self._handles.free(tx.handle)

    # ---- the secure side as borrower, introspection ----------------------------------------

    def _endpoints(self) -> frozenset[int]:
        return frozenset([self.cfg.ns_id] + [p[0] for p in self.partitions()])

    def _conflict(self, start: int, end: int) -> tuple[str, str] | None:
        if self.mailbox.overlaps(start, end):
            return "S34", f"{start:#x}..{end:#x} holds the caller's RX/TX buffers"
        return self._ownership.conflict(start, end)

    def handles(self) -> list[MemTransaction]:
        """Every live transaction, complete or pending, by handle."""
        return sorted([*self._tx.values(), *self._pending.values()], key=lambda t: t.handle)

    def lookup(self, handle: int) -> MemTransaction | None:
        return self._tx.get(handle) or self._pending.get(handle)

    def ownership(self, pa: int, size: int) -> list[OwnershipSpan]:
        """Who owns / can access each part of [pa, pa + size) (§4.1 states)."""
        return self._ownership.describe(pa, size, self.cfg.ns_id, self._ns_ddr)

    def state_digest(self) -> tuple:
        """Everything a call may change, comparable (tests: "no state change on error")."""
        txs = tuple((t.handle, t.kind, t.complete, tuple(t.constituents), t.received,
                     tuple(sorted(t.retrievals.items())), t.hyp_retrieved)
                    for t in self.handles())
        spans = tuple((s, e, w.handle if isinstance(w, MemTransaction) else w)
                      for s, e, w in self._ownership._spans)
        return (self.caller_version, self.mailbox.snapshot(), txs, spans,
                tuple(self._handles.slots), self._retrieve_resp)


def _signed(v: int) -> int:
    return v - (1 << 32) if v & (1 << 31) else v
