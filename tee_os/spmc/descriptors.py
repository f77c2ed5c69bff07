"""FF-A memory transaction descriptors: layouts from the secure world's ``ffa.h``, one builder
and one parser for the v1.0 (32-byte header) and v1.1+ (48-byte header) forms.

Every offset and size comes from the struct layouts of ``tee_os/include/ffa.h`` (through
``emu.abi.secure_abi``) and every number from its constants. The parser is *structural*: it
reads what the fields say, bounds-checks each part against the bytes it was given and keeps the
reserved fields, so the policy checks (``tee_os.spmc.memory``) can name the rule a descriptor
breaks. The builder can produce deliberately malformed descriptors (offsets, counts and
reserved fields overridable) for conformance tests and for ``Platform.ffa`` helpers.

This module also holds the rule table of ffa_spec.md §4.3–§4.5 (``RULES``) and ``FfaError``.
"""
from __future__ import annotations

import struct
import uuid as _uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NewType, Sequence

from emu.abi import secure_abi

ABI = secure_abi()
c = ABI.c

EndpointId = NewType("EndpointId", int)
MemHandle = NewType("MemHandle", int)
Version = tuple  # (major, minor)

PAGE = c.FFA_PAGE_SIZE
HDR_1_0 = ABI.struct("ffa_mem_transaction_1_0")
HDR_1_1 = ABI.struct("ffa_mem_transaction_1_1")
EMAD_1_0 = ABI.struct("ffa_mem_access")          # v1.0 and v1.1 (16 bytes)
EMAD_1_2 = ABI.struct("ffa_mem_access_1_2")      # v1.2+ (32 bytes)
COMPOSITE = ABI.struct("ffa_mem_region")
RANGE = ABI.struct("ffa_address_range")
RELINQUISH = ABI.struct("ffa_mem_relinquish")
PART_INFO = ABI.struct("ffa_partition_info_x")
EMAD_ALIGN = COMPOSITE.align * 2                 # 16: EMAD array / composite alignment

#: rule -> (FF-A error constant, condition).  Numbers are those of ffa_spec.md §4.3-§4.5; the
#: codes are the sheet's (where a row names OP-TEE's code, OP-TEE's).  ``SpmcConfig.
#: error_overrides`` maps a rule to another code (e.g. OP-TEE 4.9's INVALID_PARAMETERS for S34).
RULES: dict[str, tuple[str, str]] = {
    "S1": ("FFA_INVALID_PARAMETERS", "caller-allocated buffer (x3/w4) malformed or not NS memory"),
    "S2": ("FFA_INVALID_PARAMETERS", "fragment length > total length (or zero)"),
    "S3": ("FFA_INVALID_PARAMETERS", "fragment longer than the buffer it is in"),
    "S4": ("FFA_DENIED", "no RX/TX pair mapped (OP-TEE's code)"),
    "S5": ("FFA_INVALID_PARAMETERS", "reserved / MBZ field non-zero"),
    "S6": ("FFA_INVALID_PARAMETERS", "EMAD size, offset or count invalid, or EMADs outside "
                                     "the first fragment"),
    "S7": ("FFA_INVALID_PARAMETERS", "composite offset invalid, different between receivers "
                                     "or outside the first fragment"),
    "S8": ("FFA_INVALID_PARAMETERS", "constituent count inconsistent with the length"),
    "S9": ("FFA_DENIED", "sender id is not the caller"),
    "S10": ("FFA_INVALID_PARAMETERS", "a receiver is the sender"),
    "S11": ("FFA_INVALID_PARAMETERS", "a receiver is repeated"),
    "S12": ("FFA_INVALID_PARAMETERS", "receiver endpoint does not exist"),
    "S13": ("FFA_INVALID_PARAMETERS", "DONATE with receiver count != 1"),
    "S14": ("FFA_INVALID_PARAMETERS", "reserved access permission value"),
    "S15": ("FFA_INVALID_PARAMETERS", "instruction access specified by the sender"),
    "S16": ("FFA_INVALID_PARAMETERS", "data access not specified for SHARE / LEND"),
    "S17": ("FFA_INVALID_PARAMETERS", "data access specified for DONATE"),
    "S18": ("FFA_INVALID_PARAMETERS", "NS bit or reserved attribute bits set"),
    "S19": ("FFA_INVALID_PARAMETERS", "memory attributes given for DONATE / 1-borrower LEND"),
    "S20": ("FFA_DENIED", "SHARE / multi-borrower LEND not Normal write-back inner-shareable"),
    "S21": ("FFA_INVALID_PARAMETERS", "zero-memory flag on SHARE"),
    "S22": ("FFA_INVALID_PARAMETERS", "flags bits 31:2 or time slicing set"),
    "S23": ("FFA_INVALID_PARAMETERS", "constituent not 4K aligned"),
    "S24": ("FFA_INVALID_PARAMETERS", "constituents overlap, are empty or overflow"),
    "S25": ("FFA_INVALID_PARAMETERS", "total page count != sum of constituents"),
    "S26": ("FFA_INVALID_PARAMETERS", "no constituents"),
    "S27": ("FFA_DENIED", "part of the range is not owned by the sender"),
    "S28": ("FFA_DENIED", "range already lent / shared / donated"),
    "S31": ("FFA_DENIED", "device memory type"),
    "S34": ("FFA_DENIED", "range not NS DDR, or one the SPMC maps (RX/TX)"),
    "S35": ("FFA_NO_MEMORY", "no free handle"),
    "S36": ("FFA_NO_MEMORY", "too many fragments"),
    "S37": ("FFA_DENIED", "protection refused by the platform (on_lend)"),
    "S38": ("FFA_ABORTED", "descriptor copy faulted"),
    "O6": ("FFA_NO_MEMORY", "non-zero send handle without the hypervisor bit (OP-TEE)"),
    "O5": ("FFA_INVALID_PARAMETERS", "OP-TEE's EMAD permission is not exactly RW (OP-TEE)"),
    "F1": ("FFA_INVALID_PARAMETERS", "FRAG_TX for an unknown handle / nothing pending"),
    "F2": ("FFA_INVALID_PARAMETERS", "FRAG_TX for a complete transaction"),
    "F3": ("FFA_INVALID_PARAMETERS", "FRAG_TX from another sender or misaligned/too long"),
    "R1": ("FFA_INVALID_PARAMETERS", "retrieve: unknown handle"),
    "R2": ("FFA_INVALID_PARAMETERS", "retrieve: sending not complete"),
    "R3": ("FFA_INVALID_PARAMETERS", "retrieve request length / layout invalid"),
    "R4": ("FFA_DENIED", "retrieve: sender differs"),
    "R5": ("FFA_INVALID_PARAMETERS", "retrieve: tag mismatch"),
    "R6": ("FFA_INVALID_PARAMETERS", "retrieve: transaction type mismatch"),
    "R7": ("FFA_INVALID_PARAMETERS", "retrieve: caller / listed endpoint not a receiver"),
    "R8": ("FFA_INVALID_PARAMETERS", "retrieve: receiver count / bypass flag invalid"),
    "R9": ("FFA_INVALID_PARAMETERS", "retrieve: composite offset non-zero"),
    "R10": ("FFA_INVALID_PARAMETERS", "retrieve: hint or reserved flags set"),
    "R11": ("FFA_INVALID_PARAMETERS", "retrieve: zero flags on a SHARE"),
    "R12": ("FFA_DENIED", "retrieve: zero requested but not by the sender"),
    "R13": ("FFA_DENIED", "retrieve: zero requested with RO access"),
    "R14": ("FFA_INVALID_PARAMETERS", "retrieve: NS / reserved attribute bits set"),
    "R15": ("FFA_DENIED", "retrieve: attributes more permissive than sent"),
    "R17": ("FFA_DENIED", "retrieve: permissions exceed what was sent"),
    "R18": ("FFA_INVALID_PARAMETERS", "retrieve: instruction access on SHARE / multi LEND"),
    "R19": ("FFA_INVALID_PARAMETERS", "retrieve: no instruction access on 1-borrower LEND / "
                                      "DONATE"),
    "R20": ("FFA_INVALID_PARAMETERS", "retrieve: X requested on NS memory"),
    "R21": ("FFA_INVALID_PARAMETERS", "retrieve: implementation-defined value differs"),
    "R22": ("FFA_DENIED", "retrieve: retrieval count exceeded"),
    "R24": ("FFA_BUSY", "retrieve: caller's RX buffer busy"),
    "R25": ("FFA_NO_MEMORY", "retrieve: zeroing failed"),
    "L1": ("FFA_INVALID_PARAMETERS", "relinquish: endpoint count != 1"),
    "L2": ("FFA_INVALID_PARAMETERS", "relinquish: endpoint is not the caller"),
    "L3": ("FFA_INVALID_PARAMETERS", "relinquish: unknown handle / sending incomplete"),
    "L4": ("FFA_INVALID_PARAMETERS", "relinquish: caller is not a borrower"),
    "L5": ("FFA_INVALID_PARAMETERS", "relinquish: caller has not retrieved"),
    "L6": ("FFA_INVALID_PARAMETERS", "relinquish: zero flag on a SHARE"),
    "L7": ("FFA_DENIED", "relinquish: zero flag with RO access"),
    "L8": ("FFA_INVALID_PARAMETERS", "relinquish: reserved flags set"),
    "C1": ("FFA_INVALID_PARAMETERS", "reclaim: unknown handle / sending incomplete"),
    "C2": ("FFA_INVALID_PARAMETERS", "reclaim: caller is not the owner"),
    "C3": ("FFA_DENIED", "reclaim: a borrower still holds a retrieval"),
    "C5": ("FFA_INVALID_PARAMETERS", "reclaim: invalid flags"),
    "C6": ("FFA_INVALID_PARAMETERS", "reclaim: w4..w7 non-zero"),
    "C9": ("FFA_DENIED", "reclaim refused by the platform (on_reclaim)"),
}


class FfaError(Exception):
    """A call is refused. ``rule`` is a key of :data:`RULES` or an FF-A error constant name."""

    def __init__(self, rule: str, detail: str = "", code: int | None = None) -> None:
        super().__init__(f"{rule}: {detail}" if detail else rule)
        self.rule, self.detail = rule, detail
        self.explicit = code is not None      # a callback's own code: never overridden
        self.code = code if code is not None else default_code(rule)


def default_code(rule: str) -> int:
    return getattr(c, RULES[rule][0] if rule in RULES else rule)


# ---- versions, ids, uuids -------------------------------------------------------------------

def version_tuple(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v >> c.FFA_VERSION_MAJOR_SHIFT) & c.FFA_VERSION_MAJOR_MASK, \
            v & c.FFA_VERSION_MINOR_MASK
    return int(v[0]), int(v[1])


def version_word(v: int | Sequence[int]) -> int:
    major, minor = version_tuple(v)
    return ((major & c.FFA_VERSION_MAJOR_MASK) << c.FFA_VERSION_MAJOR_SHIFT) | \
        (minor & c.FFA_VERSION_MINOR_MASK)


def header_size_of(version: Version) -> int:
    return HDR_1_0.size if version_tuple(version) < (1, 1) else HDR_1_1.size


def emad_size_of(version: Version) -> int:
    return EMAD_1_0.size if version_tuple(version) < (1, 2) else EMAD_1_2.size


def uuid_to_regs(u: _uuid.UUID) -> tuple[int, int, int, int]:
    """w1..w4 of FFA_PARTITION_INFO_GET: the UUID's bytes as four little-endian words (Linux)."""
    return struct.unpack("<4I", u.bytes)


def regs_to_uuid(w: Sequence[int]) -> _uuid.UUID:
    return _uuid.UUID(bytes=struct.pack("<4I", *(x & 0xFFFFFFFF for x in w[:4])))


def _u(layout: Any, name: str, buf: bytes, base: int) -> int:
    f = layout.field(name)
    return int.from_bytes(buf[base + f.offset:base + f.offset + f.size], "little")


# ---- parsed forms ---------------------------------------------------------------------------

@dataclass
class Emad:
    receiver: int
    permissions: int
    flags: int = 0
    composite_offset: int = 0
    impdef: bytes = b""       # 16 bytes in v1.2+, empty before
    reserved: int = 0


@dataclass
class Constituent:
    address: int
    page_count: int
    reserved: int = 0


@dataclass
class MemRegion:
    """A transaction descriptor as its fields say (nothing validated beyond bounds)."""

    version: tuple[int, int]
    sender: int
    attributes: int
    flags: int
    handle: int
    tag: int
    emad_size: int
    emad_count: int
    emad_offset: int
    reserved: int                 # header reserved bytes, as one little-endian integer
    emads: list[Emad] = field(default_factory=list)
    composite_offset: int = 0     # from the first EMAD
    total_page_count: int = 0
    range_count: int = 0
    composite_reserved: int = 0
    constituents: list[Constituent] = field(default_factory=list)


def parse_header(buf: bytes, version: Version) -> MemRegion:
    """Header fields of a transaction descriptor in ``version``'s layout.

    Errors: S6 when ``buf`` is shorter than the header."""
    v = version_tuple(version)
    if v < (1, 1):
        if len(buf) < HDR_1_0.size:
            raise FfaError("S6", f"descriptor shorter than the {HDR_1_0.size}-byte header")
        h = HDR_1_0.unpack(buf)
        reserved = h["reserved0"] | (h["reserved1"] << 8)
        return MemRegion(v, h["sender_id"], h["mem_reg_attr"], h["flags"], h["global_handle"],
                         h["tag"], EMAD_1_0.size, h["mem_access_count"],
                         HDR_1_0.offset_of("mem_access_array"), reserved)
    if len(buf) < HDR_1_1.size:
        raise FfaError("S6", f"descriptor shorter than the {HDR_1_1.size}-byte header")
    h = HDR_1_1.unpack(buf)
    return MemRegion(v, h["sender_id"], h["mem_reg_attr"], h["flags"], h["global_handle"],
                     h["tag"], h["mem_access_size"], h["mem_access_count"],
                     h["mem_access_offs"], int.from_bytes(h["reserved"], "little"))


def parse_emads(buf: bytes, region: MemRegion, *, rule: str = "S6") -> list[Emad]:
    """The EMAD array at ``region.emad_offset`` (stride ``emad_size``), inside ``buf``.

    Errors: ``rule`` (S6) when the array does not fit in ``buf`` or the size is not a known
    EMAD size."""
    size, count, off = region.emad_size, region.emad_count, region.emad_offset
    if size not in (EMAD_1_0.size, EMAD_1_2.size):
        raise FfaError(rule, f"EMAD size {size} is neither {EMAD_1_0.size} nor {EMAD_1_2.size}")
    if off + size * count > len(buf):
        raise FfaError(rule, f"{count} EMADs at {off:#x} overrun the {len(buf)}-byte fragment")
    out = []
    for i in range(count):
        base = off + i * size
        lay = EMAD_1_0 if size == EMAD_1_0.size else EMAD_1_2
        perm = lay.field("access_perm").is_struct
        pbase = base + lay.offset_of("access_perm")
        impdef = b""
        if lay is EMAD_1_2:
            f = lay.field("impdef")
            impdef = bytes(buf[base + f.offset:base + f.offset + f.size])
        out.append(Emad(_u(perm, "endpoint_id", buf, pbase), _u(perm, "perm", buf, pbase),
                        _u(perm, "flags", buf, pbase), _u(lay, "region_offs", buf, base),
                        impdef, _u(lay, "reserved", buf, base)))
    return out


def parse_composite(buf: bytes, offset: int) -> tuple[int, int, int]:
    """(total page count, range count, reserved) of the composite descriptor at ``offset``.

    Errors: S7 when its 16-byte header is not inside ``buf``."""
    if offset + COMPOSITE.size > len(buf):
        raise FfaError("S7", f"composite header at {offset:#x} outside the first fragment")
    h = COMPOSITE.unpack(buf, offset)
    return h["total_page_count"], h["address_range_count"], h["reserved"]


def parse_constituents(buf: bytes, offset: int, count: int) -> list[Constituent]:
    """``count`` constituents from ``offset`` (the caller checks they fit)."""
    out = []
    for i in range(count):
        r = RANGE.unpack(buf, offset + i * RANGE.size)
        out.append(Constituent(r["address"], r["page_count"], r["reserved_mbz"]))
    return out


def constituents_offset(composite_offset: int) -> int:
    return composite_offset + COMPOSITE.offset_of("address_range_array")


def parse_mem_region(buf: bytes, version: Version) -> MemRegion:
    """A whole descriptor (all fragments joined).  A descriptor whose EMADs carry composite
    offset 0 (a retrieve request) has no composite part.

    Errors: S6 / S7 / S8 when a part does not fit in ``buf``."""
    region = parse_header(buf, version)
    region.emads = parse_emads(buf, region)
    if not region.emads or region.emads[0].composite_offset == 0:
        return region
    region.composite_offset = off = region.emads[0].composite_offset
    region.total_page_count, region.range_count, region.composite_reserved = \
        parse_composite(buf, off)
    first = constituents_offset(off)
    if first + region.range_count * RANGE.size > len(buf):
        raise FfaError("S8", f"{region.range_count} constituents overrun {len(buf)} bytes")
    region.constituents = parse_constituents(buf, first, region.range_count)
    return region


# ---- builders -------------------------------------------------------------------------------

@dataclass
class Receiver:
    endpoint: int
    permissions: int
    flags: int = 0
    impdef: bytes | int = 0


def _receiver(r: Any) -> Receiver:
    if isinstance(r, Receiver):
        return r
    if isinstance(r, Mapping):
        return Receiver(**r)
    return Receiver(*r)


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def build_mem_region(version: Version, sender: int, receivers: Iterable[Any],
                     attributes: int = 0, flags: int = 0, tag: int = 0,
                     constituents: Iterable[Sequence[int]] | None = (), *,
                     handle: int = 0, emad_size: int | None = None,
                     emad_count: int | None = None, emad_offset: int | None = None,
                     emad_at: int | None = None, composite_offset: int | None = None,
                     composite_at: int | None = None, page_count: int | None = None,
                     range_count: int | None = None, reserved: Mapping[str, int] | None = None,
                     total_length: int | None = None) -> bytes:
    """Bytes of a memory transaction descriptor in ``version``'s layout.

    ``receivers``: ``Receiver``s or (endpoint, permissions[, flags[, impdef]]) tuples.
    ``constituents``: (address, pages[, reserved]); ``None`` builds a retrieve request (no
    composite, composite offsets 0).  Overrides for malformed descriptors: ``emad_size`` /
    ``emad_count`` / ``emad_offset`` (header fields; v1.1+), ``emad_at`` (where the EMADs are
    written; default the offset), ``composite_offset`` (every EMAD's field), ``composite_at``,
    ``page_count`` / ``range_count`` (composite fields), ``reserved`` = {"header",
    "header_byte" (v1.0 byte @3), "emad", "composite", "constituent": value},
    ``total_length`` (pad or cut).  Defaults give what Linux builds (optee_ffa.md §11)."""
    v = version_tuple(version)
    rsv = dict(reserved or {})
    recs = [_receiver(r) for r in receivers]
    esz = emad_size_of(v)
    hsz = header_size_of(v)
    e_off = hsz if emad_offset is None else emad_offset
    e_at = emad_at if emad_at is not None else (e_off if v >= (1, 1) else hsz)
    cons = None if constituents is None else [tuple(x) for x in constituents]
    natural_comp = _align(e_at + esz * len(recs), EMAD_ALIGN)
    comp_field = (0 if cons is None else natural_comp) if composite_offset is None \
        else composite_offset
    comp_at = comp_field if composite_at is None else composite_at
    if cons is not None and comp_at == 0:
        comp_at = natural_comp
    end = e_at + esz * len(recs)
    if cons is not None:
        end = max(end, constituents_offset(comp_at) + RANGE.size * len(cons))
    buf = bytearray(max(end, hsz))
    if v < (1, 1):
        HDR_1_0.pack_into(buf, 0, {
            "sender_id": sender, "mem_reg_attr": attributes, "flags": flags,
            "global_handle": handle, "tag": tag, "reserved0": rsv.get("header_byte", 0),
            "reserved1": rsv.get("header", 0),
            "mem_access_count": len(recs) if emad_count is None else emad_count})
    else:
        HDR_1_1.pack_into(buf, 0, {
            "sender_id": sender, "mem_reg_attr": attributes, "flags": flags,
            "global_handle": handle, "tag": tag,
            "mem_access_size": esz if emad_size is None else emad_size,
            "mem_access_count": len(recs) if emad_count is None else emad_count,
            "mem_access_offs": e_off,
            "reserved": rsv.get("header", 0).to_bytes(HDR_1_1.field("reserved").size, "little")})
    lay = EMAD_1_0 if esz == EMAD_1_0.size else EMAD_1_2
    for i, r in enumerate(recs):
        vals: dict[str, Any] = {
            "access_perm": {"endpoint_id": r.endpoint, "perm": r.permissions, "flags": r.flags},
            "region_offs": comp_field, "reserved": rsv.get("emad", 0)}
        if lay is EMAD_1_2:
            imp = r.impdef if isinstance(r.impdef, (bytes, bytearray)) else \
                int(r.impdef).to_bytes(lay.field("impdef").size, "little")
            vals["impdef"] = bytes(imp)
        lay.pack_into(buf, e_at + i * esz, vals)
    if cons is not None:
        COMPOSITE.pack_into(buf, comp_at, {
            "total_page_count": sum(x[1] for x in cons) if page_count is None else page_count,
            "address_range_count": len(cons) if range_count is None else range_count,
            "reserved": rsv.get("composite", 0)})
        first = constituents_offset(comp_at)
        for i, x in enumerate(cons):
            RANGE.pack_into(buf, first + i * RANGE.size, {
                "address": x[0], "page_count": x[1],
                "reserved_mbz": x[2] if len(x) > 2 else rsv.get("constituent", 0)})
    if total_length is not None:
        buf = buf[:total_length] + bytes(max(0, total_length - len(buf)))
    return bytes(buf)


def build_relinquish(handle: int, endpoints: Sequence[int], flags: int = 0, *,
                     endpoint_count: int | None = None) -> bytes:
    """Relinquish descriptor (§3.8)."""
    buf = bytearray(RELINQUISH.pack({
        "handle": handle, "flags": flags,
        "endpoint_count": len(endpoints) if endpoint_count is None else endpoint_count}))
    for e in endpoints:
        buf += int(e).to_bytes(RELINQUISH.field("endpoint_id_array").elem_size, "little")
    return bytes(buf)


def parse_relinquish(buf: bytes) -> tuple[int, int, list[int]]:
    """(handle, flags, endpoint ids).  Errors: L1 when the descriptor does not fit ``buf``."""
    if len(buf) < RELINQUISH.size:
        raise FfaError("L1", "relinquish descriptor truncated")
    h = RELINQUISH.unpack(buf)
    n, esz = h["endpoint_count"], RELINQUISH.field("endpoint_id_array").elem_size
    if RELINQUISH.size + n * esz > len(buf):
        raise FfaError("L1", f"{n} endpoint ids do not fit in {len(buf)} bytes")
    ids = [int.from_bytes(buf[RELINQUISH.size + i * esz:RELINQUISH.size + (i + 1) * esz],
                          "little") for i in range(n)]
    return h["handle"], h["flags"], ids


def partition_info_size(version: Version) -> int:
    """8 bytes in v1.0 (no UUID), 24 from v1.1."""
    return PART_INFO.offset_of("uuid") if version_tuple(version) < (1, 1) else PART_INFO.size


def build_partition_info(version: Version,
                         entries: Iterable[tuple[int, int, int, _uuid.UUID]]) -> bytes:
    """Partition information descriptors (id, execution contexts, properties, uuid)."""
    size = partition_info_size(version)
    out = bytearray()
    for pid, ctx, props, u in entries:
        one = PART_INFO.pack({"id": pid, "execution_context": ctx,
                              "partition_properties": props, "uuid": u.bytes})
        out += one[:size]
    return bytes(out)


def parse_partition_info(buf: bytes, version: Version, count: int) -> list[dict[str, Any]]:
    size = partition_info_size(version)
    out = []
    for i in range(count):
        chunk = bytes(buf[i * size:(i + 1) * size]) + bytes(PART_INFO.size - size)
        d = PART_INFO.unpack(chunk)
        d["uuid"] = _uuid.UUID(bytes=d["uuid"]) if size == PART_INFO.size else None
        out.append(d)
    return out
