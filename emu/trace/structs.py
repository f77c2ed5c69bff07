"""Pure decoders of the structures events point at: FF-A memory transaction descriptors,
``optee_msg_arg`` with its parameters, TZC-400 FAIL_CONTROL. Bytes in, dicts out; layouts
from the header loader (``emu/trace/names.py``).
"""
from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any, Sequence

from emu import tzc400 as tzc
from emu.trace.names import ReadPhys, _h, _table, names

# ---- FF-A memory transaction descriptors (pure: bytes in, dict out) ------------------------------

def _perm(value: int, s: Any) -> str:
    data = {s.FFA_DATA_ACCESS_RO: "RO", s.FFA_DATA_ACCESS_RW: "RW"}.get(
        (value >> s.FFA_DATA_ACCESS_OFFSET) & s.FFA_DATA_ACCESS_MASK, "")
    ins = {s.FFA_INSTRUCTION_ACCESS_NX: "NX", s.FFA_INSTRUCTION_ACCESS_X: "X"}.get(
        (value & s.FFA_INSTRUCTION_ACCESS_MASK) >> s.FFA_INSTRUCTION_ACCESS_OFFSET, "")
    return "|".join(p for p in (data, ins) if p) or "unspecified"


def mem_attributes(value: int) -> dict[str, Any]:
    """The memory region attributes field (type, cacheability, shareability, NS bit)."""
    s = names().sc
    mtype = (value & s.FFA_MEMORY_TYPE_MASK) >> s.FFA_MEMORY_TYPE_OFFSET
    kinds = {s.FFA_MEMORY_NOT_SPECIFIED_MEM: "unspecified", s.FFA_MEMORY_DEVICE_MEM: "device",
             s.FFA_MEMORY_NORMAL_MEM: "normal"}
    out: dict[str, Any] = {"raw": _h(value), "type": kinds.get(mtype, "reserved")}
    if mtype:
        out.update(cacheability=(value & s.FFA_MEMORY_CACHEABILITY_MASK) >> s.FFA_MEMORY_CACHEABILITY_OFFSET,
                   shareability=(value & s.FFA_MEMORY_SHAREABILITY_MASK) >> s.FFA_MEMORY_SHAREABILITY_OFFSET)
    return {**out, "ns": True} if value & s.FFA_MEMORY_SECURITY_MASK else out


def mem_flags(value: int) -> list[str]:
    n = names()
    table = [(v, k[len("FFA_MEMORY_REGION_"):]) for k, v in n.sec.constants.items()
             if k.startswith("FFA_MEMORY_REGION_FLAG_")]
    ttype = value & n.sc.FFA_MEMORY_REGION_TRANSACTION_TYPE_MASK
    out = [name for v, name in sorted(table) if value & v]
    if ttype:
        tnames = _table((n.sec,), ("FFA_MEMORY_REGION_TRANSACTION_TYPE_",), ("MASK",))
        out.append(tnames.get(ttype, _h(ttype))[len("FFA_MEMORY_REGION_"):])
    return out


def decode_mem_descriptor(buf: bytes, version: int | None = None) -> dict[str, Any]:
    """An FF-A memory transaction descriptor (v1.0 32-byte or v1.1+ 48-byte header)."""
    sec = names().sec
    s = names().sc
    v11 = sec.struct("ffa_mem_transaction_1_1")
    h = v11.unpack(buf)
    new = (version >= s.FFA_VERSION_1_1) if version is not None else \
        (h["mem_access_size"] in (sec.sizeof("struct ffa_mem_access"),
                                  sec.sizeof("struct ffa_mem_access_1_2"))
         and h["mem_access_offs"] >= v11.size)
    if new:
        count, emad_size, emad_off = h["mem_access_count"], h["mem_access_size"], h["mem_access_offs"]
        attrs = h["mem_reg_attr"]
    else:
        v10 = sec.struct("ffa_mem_transaction_1_0")
        h = v10.unpack(buf)
        count, emad_size = h["mem_access_count"], sec.sizeof("struct ffa_mem_access")
        emad_off, attrs = v10.offset_of("mem_access_array"), h["mem_reg_attr"]
    emad = sec.struct("ffa_mem_access")
    out: dict[str, Any] = {
        "version": "1.1+" if new else "1.0", "sender": _h(h["sender_id"]),
        "attributes": mem_attributes(attrs), "flags": mem_flags(h["flags"]),
        "flags_raw": _h(h["flags"]), "handle": _h(h["global_handle"]), "tag": h["tag"],
        "receivers": [], "constituents": []}
    composite = None
    for i in range(min(count, 64)):
        e = emad.unpack(buf, emad_off + i * emad_size)
        p = e["access_perm"]
        out["receivers"].append({"endpoint": _h(p["endpoint_id"]), "perm": _perm(p["perm"], s),
                                 "perm_raw": _h(p["perm"]), "flags": _h(p["flags"])})
        composite = composite or e["region_offs"]
    if composite and composite + 16 <= len(buf):
        region = sec.struct("ffa_mem_region").unpack(buf, composite)
        out["total_pages"] = region["total_page_count"]
        out["constituents"] = parse_constituents(buf, composite + 16, region["address_range_count"])
    return out


def parse_constituents(buf: bytes, offset: int, count: int) -> list[dict[str, Any]]:
    rng = names().sec.struct("ffa_address_range")
    return [{"address": _h(r["address"]), "pages": r["page_count"]}
            for r in (rng.unpack(buf, o) for o in range(offset, offset + count * rng.size, rng.size)
                      if o + rng.size <= len(buf))]


def fast_struct(layout: Any, paths: Sequence[str]) -> tuple[struct.Struct, tuple[str, ...]]:
    """A ``struct.Struct`` reading the named (non-overlapping) members of a header layout.

    ``StructLayout.unpack`` builds nested dicts and is far too slow for every SMC; the
    offsets and sizes still come from the header loader.
    """
    fields = sorted(((layout.field(p), p) for p in paths), key=lambda fp: fp[0].offset)
    fmt, pos = "<", 0
    for f, _ in fields:
        if f.offset < pos:
            raise ValueError(f"{layout.name}: {f.name} overlaps the previous member")
        fmt += "x" * (f.offset - pos) + _FMT[f.size]
        pos = f.offset + f.size
    return struct.Struct(fmt), tuple(p for _, p in fields)


_FMT = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _ordered(layout: Any, paths: list[str]) -> struct.Struct:
    """fast_struct for members the decoder lists in offset order (checked: a header whose
    order differs must not be misread silently)."""
    st, got = fast_struct(layout, paths)
    if list(got) != paths:
        raise ValueError(f"{layout.name}: members {paths} are not in offset order")
    return st


class _MsgLayout:
    """optee_msg_arg / optee_msg_param readers, built once from linux_abi() layouts."""

    def __init__(self) -> None:
        lin = names().lin
        arg, param = lin.struct("optee_msg_arg"), lin.struct("optee_msg_param")
        self.hsize, self.psize = arg.size, param.size
        self.header = _ordered(arg, ["cmd", "func", "session", "ret", "ret_origin", "num_params"])
        self.union = {kind: _ordered(param, ["attr"] + [f"u.{kind}.{m}" for m in members])
                      for kind, members in (("value", "abc"), ("tmem", ("buf_ptr", "size", "shm_ref")),
                                            ("rmem", ("offs", "size", "shm_ref")),
                                            ("fmem", ("offs_low", "offs_high", "size", "global_id")))}
        n = names()
        self.attr = _ordered(param, ["attr"])
        self.type_mask, self.meta = n.lc.OPTEE_MSG_ATTR_TYPE_MASK, n.lc.OPTEE_MSG_ATTR_META
        self.kinds_smc, self.kinds_ffa = _param_kinds(n.attr_smc), _param_kinds(n.attr_ffa)


@lru_cache(maxsize=1)
def _msg_layout() -> _MsgLayout:
    return _MsgLayout()


def _param_kinds(types: dict[int, str]) -> dict[int, tuple[str, str | None]]:
    """attr type -> (short name, layout kind) for one ABI's parameter type names."""
    out = {}
    for t, name in types.items():
        short = name[len("OPTEE_MSG_ATTR_TYPE_"):]
        out[t] = short, next((k for k in ("value", "tmem", "rmem", "fmem") if k.upper() in short), None)
    return out


def decode_msg_arg(read: ReadPhys, pa: int, ffa: bool = False) -> dict[str, Any]:
    """An ``optee_msg_arg`` with its parameters, read from physical memory (on every
    yielding call, so this is written for speed: one struct unpack per parameter)."""
    n, m = names(), _msg_layout()
    cmd, func, session, ret, origin, num = m.header.unpack_from(read(pa, m.hsize))
    params: list[dict[str, Any]] = []
    out: dict[str, Any] = {"cmd": n.msg_cmd.get(cmd, cmd), "func": func, "session": session,
                           "ret": n.tee_err.get(ret) or hex(ret),
                           "ret_origin": n.origin.get(origin, origin), "num_params": num,
                           "params": params}
    count = min(num, 16)
    raw = read(pa + m.hsize, m.psize * count) if count else b""
    kinds = m.kinds_ffa if ffa else m.kinds_smc
    for i in range(count):
        off = i * m.psize
        attr = m.attr.unpack_from(raw, off)[0]
        short, kind = kinds.get(attr & m.type_mask, (hex(attr & m.type_mask), None))
        d: dict[str, Any] = {"type": short}
        if attr & m.meta:
            d["meta"] = True
        if kind == "value":
            _, a, b, c = m.union["value"].unpack_from(raw, off)
            d["a"], d["b"], d["c"] = hex(a), hex(b), hex(c)
        elif kind == "fmem":
            _, lo, hi, size, gid = m.union["fmem"].unpack_from(raw, off)
            d["offs"], d["size"], d["global_id"] = hex(lo | hi << 32), size, hex(gid)
        elif kind is not None:                     # tmem / rmem: pointer-or-offset, size, ref
            _, first, size, ref = m.union[kind].unpack_from(raw, off)
            d["buf_ptr" if kind == "tmem" else "offs"], d["size"], d["shm_ref"] = \
                hex(first), size, hex(ref)
        params.append(d)
    return out


class LazyMsg:
    """An ``optee_msg_arg`` snapshot, decoded when the trace is written.

    Taking the bytes costs one copy; decoding them right away, between stretches of guest
    code, costs tens of microseconds of cold Python per yielding call. Writers call
    :meth:`resolve` (JSON's ``default``, the text summary) in their batches."""

    __slots__ = ("raw", "ffa")

    def __init__(self, read: ReadPhys, pa: int, ffa: bool):
        m = _msg_layout()
        raw = read(pa, m.hsize + 4 * m.psize)
        num = m.header.unpack_from(raw)[5]
        self.raw = raw if num <= 4 else read(pa, m.hsize + min(num, 16) * m.psize)
        self.ffa = ffa

    def resolve(self) -> dict[str, Any]:
        raw = self.raw
        return decode_msg_arg(lambda pa, size: raw[pa:pa + size], 0, self.ffa)


def decode_fail_control(control: int) -> dict[str, Any]:
    """TZC-400 FAIL_CONTROL (the device model's field map)."""
    return {"direction": "write" if control & tzc.FAIL_CONTROL_DIRECTION_WRITE else "read",
            "non_secure": bool(control & tzc.FAIL_CONTROL_NON_SECURE),
            "privileged": bool(control & tzc.FAIL_CONTROL_PRIVILEGED)}

