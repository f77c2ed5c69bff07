"""Decoders: turn raw bus events into names a firmware engineer reads.

Every name and number comes from the header loader (``linux_abi()``, ``secure_abi()``,
``firmware_abi()``), never from literals here, so a header change shows up in traces as it
does in the emulator. :class:`Decoder` is stateful because the protocol is: a return is
decoded against its call (a stack of open SMCs), FF-A descriptors are read from the TX
buffer registered earlier with ``FFA_RXTX_MAP``, handles returned by ``FFA_MEM_SHARE`` locate
later ``optee_msg_arg``s, and TZC region registers are accumulated into whole regions.
Descriptors and message arguments are read from platform memory at the moment the event is
emitted (the tracer subscribes synchronously), before the other world can change them.
Decoding never raises: a failure becomes a ``decode_error`` field.
"""
from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence

from emu.abi import AbiSet, firmware_abi, linux_abi, secure_abi
from emu import tzc400 as tzc

M32 = 0xFFFFFFFF
ReadPhys = Callable[[int, int], bytes]

#: Which world and EL a trace writes for each world name (Tarmac's mode tokens).
EL_TOKENS = {"NS-EL1": "EL1h_n", "S-EL1": "EL1h_s", "S-EL0": "EL0t_s", "EL3": "EL3h_s"}
_FID_PREFIXES = ("OPTEE_SMC_", "FFA_", "ARM_SMCCC_", "SMCCC_", "TEESMC_OPTEED_")


_h = hex          # addresses, handles and raw values are shown in hex


def _table(sets: Iterable[AbiSet], prefixes: tuple[str, ...], skip: tuple[str, ...] = (),
           keep: Callable[[str, int], bool] = lambda n, v: True) -> dict[int, str]:
    """value -> the shortest header name with one of ``prefixes`` (ties: alphabetical)."""
    out: dict[int, str] = {}
    names = sorted({(n, v) for s in sets for n, v in s.constants.items()
                    if n.startswith(prefixes) and not any(k in n for k in skip) and keep(n, v)},
                   key=lambda nv: (len(nv[0]), nv[0]))
    for name, value in names:
        out.setdefault(value, name)
    return out


class Names:
    """Name tables built once from the three header sets."""

    def __init__(self) -> None:
        lin, sec, fw = linux_abi(), secure_abi(), firmware_abi()
        self.lin, self.sec, self.fw = lin, sec, fw
        # ``AbiSet.c`` builds a constants object per access: keep one of each.
        self.lc, self.sc, self.fc = lin.c, sec.c, fw.c
        f = self.fc
        self.type_shift, self.cc_shift = f.FUNCID_TYPE_SHIFT, f.FUNCID_CC_SHIFT
        self.oen_shift, self.oen_mask = f.FUNCID_OEN_SHIFT, f.FUNCID_OEN_MASK
        self.num_mask = f.FUNCID_NUM_MASK
        tos = f.OEN_TOS_START

        def is_fid(_n: str, v: int) -> bool:
            if not 0 <= v <= M32 or (v >> 17) & 0x7F:           # bits 23:17 reserved
                return False
            return bool(v >> self.type_shift & 1) or ((v >> self.oen_shift) & self.oen_mask) >= tos
        self.fid = _table((lin, sec, fw), _FID_PREFIXES, keep=is_fid)
        self.owners: dict[int, str] = {}
        for name, v in sorted(fw.constants.items()):
            if name.startswith("OEN_") and name.endswith("_START"):
                end = fw.constants[name[:-6] + "_END"]
                for o in range(v, end + 1):
                    self.owners[o] = name[4:-6]
        lc = self.lc
        self.smc_ret = _table((lin,), ("OPTEE_SMC_RETURN_",), ("MASK", "PREFIX"))
        self.rpc_prefix = lc.OPTEE_SMC_RETURN_RPC_PREFIX
        self.rpc_prefix_mask = lc.OPTEE_SMC_RETURN_RPC_PREFIX_MASK
        self.rpc_func_mask = lc.OPTEE_SMC_RETURN_RPC_FUNC_MASK
        self.unknown = lc.OPTEE_SMC_RETURN_UNKNOWN_FUNCTION
        self.rpc_func = _table((lin,), ("OPTEE_SMC_RPC_FUNC_",))
        self.ffa_err = {v & M32: n for v, n in _table((lin,), ("FFA_RET_",)).items()}
        self.smccc_err = {v & M32: n for v, n in _table(
            (fw,), ("SMC_",), keep=lambda n, v: v < 0 or n == "SMC_UNK").items()}
        self.tee_err = _table((lin, sec), ("TEEC_ERROR_", "TEE_ERROR_", "TEEC_SUCCESS"))
        self.origin = _table((lin,), ("TEEC_ORIGIN_",))
        self.sec_caps = _bits(lin, "OPTEE_SMC_SEC_CAP_")
        self.nsec_caps = _bits(lin, "OPTEE_SMC_NSEC_CAP_")
        self.ffa_caps = _bits(lin, "OPTEE_FFA_SEC_CAP_")
        self.msg_cmd = _table((lin,), ("OPTEE_MSG_CMD_",))
        self.rpc_cmd = _table((lin,), ("OPTEE_RPC_CMD_",))
        self.attr_smc = _table((lin,), ("OPTEE_MSG_ATTR_TYPE_",), ("FMEM", "MASK"))
        self.attr_ffa = _table((lin,), ("OPTEE_MSG_ATTR_TYPE_",), ("RMEM", "MASK"))
        self.use_case = _table((lin,), ("OPTEE_MSG_PROTMEM_",))
        self.optee_ffa = _table((lin,), ("OPTEE_FFA_",), ("SEC_CAP", "VERSION", "MAX_", "_BIT", "RETURN"))
        self.ioctl = _table((lin,), ("TEE_IOC_", "DMA_HEAP_IOCTL_"), ("MAGIC", "BASE"))
        self.syscall = _table((sec,), ("TEE_SCN_",), ("MAX",))
        self.yield_ret = _table((lin,), ("OPTEE_FFA_YIELDING_CALL_RETURN_",))
        self.tzc_action = _table((sec,), ("TZC_ACTION_",))
        self.tzc_sec = _table((sec,), ("TZC_REGION_S_",))
        self.ffa_send = {v for k, v in sec.constants.items() if k.startswith(
            ("FFA_MEM_LEND_", "FFA_MEM_SHARE_", "FFA_MEM_DONATE_", "FFA_MEM_RETRIEVE_REQ_"))}


def _bits(abi: AbiSet, prefix: str) -> list[tuple[int, str]]:
    return sorted((v, n[len(prefix):]) for n, v in abi.constants.items()
                  if n.startswith(prefix) and v and v & (v - 1) == 0)


def bit_names(value: int, table: list[tuple[int, str]]) -> list[str]:
    """Set bits by name; unnamed set bits as ``bitN``."""
    out = [n for v, n in table if value & v]
    rest = value & ~sum(v for v, _ in table)
    return out + [f"bit{i}" for i in range(64) if rest >> i & 1]


@lru_cache(maxsize=1)
def names() -> Names:
    return Names()


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


# ---- the stateful event decoder ---------------------------------------------------------------

class Decoder:
    """Decodes each event against the protocol state seen so far (see the module docstring)."""

    def __init__(self, read_phys: ReadPhys | None = None,
                 nsaid_names: dict[int, str] | None = None, lazy: bool = False) -> None:
        self.n = names()
        self.lazy = lazy                              # messages as LazyMsg (see there)
        self.read = read_phys
        self.nsaid_names = dict(nsaid_names or {})
        self.calls: list[dict[str, Any]] = []        # open SMCs, innermost last
        self._next_call = 0
        self.tx: tuple[int, int] | None = None        # FF-A TX buffer (pa, pages)
        self.ffa_version: int | None = None
        self.ffa = False                              # FF-A seen: fmem params, not rmem
        self.shm: dict[int, list[dict[str, Any]]] = {}  # FF-A handle -> constituents
        self._frag: dict[int, dict[str, Any]] = {}    # FF-A handle -> descriptor being sent
        self.regions: dict[int, dict[str, int]] = {}  # TZC region -> accumulated base/top
        self._info: dict[int, tuple[str, dict[str, str], str]] = {}
        s, lin = self.n.sc, self.n.lc
        self.c, self.s = lin, s
        self._ffa_send = self.n.ffa_send
        self._ffa_success = {s.FFA_SUCCESS_32, s.FFA_SUCCESS_64}
        self._direct = {s.FFA_MSG_SEND_DIRECT_REQ_32, s.FFA_MSG_SEND_DIRECT_REQ_64}
        self._yield_ret, self._tzc_action, self._tzc_sec = \
            self.n.yield_ret, self.n.tzc_action, self.n.tzc_sec
        self._by_kind = {"smc": self._smc, "smc_return": self._smc_return,
                         "tzc_program": self._tzc_program, **self._simple()}

    def seed_ffa(self, tx: tuple[int, int] | None, version: int | None,
                 shares: dict[int, list[tuple[int, int]]]) -> None:
        """FF-A state set up before tracing began (at boot): the TX buffer (pa, pages), the
        negotiated version and live handles -> [(pa, pages)], from whoever knows them."""
        self.ffa = True
        self.tx, self.ffa_version = tx or self.tx, version or self.ffa_version
        for handle, runs in shares.items():
            self.shm[handle] = [{"address": _h(pa), "pages": n} for pa, n in runs]

    def decode(self, kind: str, world: str, fields: dict[str, Any]) -> dict[str, Any]:
        fn = self._by_kind.get(kind)
        if fn is None:
            return {}
        try:
            return fn(world, fields)
        except Exception as exc:  # noqa: BLE001 - a trace must never break the run
            return {"decode_error": f"{type(exc).__name__}: {exc}"}

    # --- helpers ---------------------------------------------------------------------------------
    def fid_name(self, fid: int) -> str:
        return self.n.fid.get(fid & M32, _h(fid & M32))

    def _owner(self, fid: int) -> int:
        return (fid >> self.n.oen_shift) & self.n.oen_mask

    def _is_ffa(self, fid: int) -> bool:
        fw = self.n.fc
        return self._owner(fid) == fw.OEN_STD_START and \
            fw.FFA_FNUM_MIN_VALUE <= fid & self.n.num_mask <= fw.FFA_FNUM_MAX_VALUE

    def _msg(self, pa: int, ffa: bool) -> Any:
        if self.lazy:
            return LazyMsg(self._read, pa, ffa)
        return decode_msg_arg(self._read, pa, ffa)

    def _read(self, pa: int, size: int) -> bytes:
        if self.read is None:
            raise LookupError("no memory reader attached")
        return self.read(pa, size)

    # --- SMC and FF-A calls ------------------------------------------------------------------------
    def _fid_info(self, fid: int) -> tuple[str, dict[str, str], str]:
        """(name, static decoded fields, handling) of a function id, computed once per id:
        every SMC passes here, mostly between long stretches of guest code."""
        info = self._info.get(fid)
        if info is None:
            c, owner = self.c, self._owner(fid)
            tag = ("msg" if fid in (c.OPTEE_SMC_CALL_WITH_ARG, c.OPTEE_SMC_CALL_WITH_RPC_ARG) else
                   "regd" if fid == c.OPTEE_SMC_CALL_WITH_REGD_ARG else
                   "resume" if fid == c.OPTEE_SMC_CALL_RETURN_FROM_RPC else
                   "caps" if fid == c.OPTEE_SMC_EXCHANGE_CAPABILITIES else
                   "ffa" if self._is_ffa(fid) else
                   "optee" if owner >= self.n.fc.OEN_TOS_START else "other")
            info = self._info[fid] = (self.fid_name(fid), {
                "type": "fast" if fid >> self.n.type_shift & 1 else "yielding",
                "conv": "SMC64" if fid >> self.n.cc_shift & 1 else "SMC32",
                "owner": self.n.owners.get(owner, str(owner))}, tag)
        return info

    def _smc(self, world: str, f: dict[str, Any]) -> dict[str, Any]:
        fid = int(f.get("fid", 0)) & M32
        a = list(f.get("args") or ())
        a += [0] * (8 - len(a))
        name, static, tag = self._fid_info(fid)
        self._next_call += 1
        call: dict[str, Any] = {"id": self._next_call, "fid": fid, "name": name, "args": a}
        self.calls.append(call)
        d: dict[str, Any] = {"name": name, "call": self._next_call, **static}
        if tag == "msg":
            pa = (a[1] & M32) << 32 | a[2] & M32
            call["msg_pa"] = pa
            d["args"] = {"arg_pa": _h(pa)}
            d["msg"] = self._msg(pa, self.ffa)
        elif tag == "regd":
            d["args"] = {"shm_cookie": _h((a[1] & M32) << 32 | a[2] & M32), "offset": _h(a[3])}
        elif tag == "resume":
            d["args"] = {"a1": _h(a[1]), "a2": _h(a[2]), "thread": a[3]}
        elif tag == "caps":
            d["args"] = {"nsec_caps": bit_names(a[1] & M32, self.n.nsec_caps)}
        elif tag == "ffa":
            self.ffa = True
            d["args"] = self._ffa_args(fid, a, call)
            if "descriptor" in call:
                d["descriptor"] = call["descriptor"]
            if "msg" in call:
                d["msg"] = call["msg"]
        elif tag == "optee" and any(a[1:7]):
            d["args"] = {f"a{i}": _h(a[i]) for i in range(1, 7) if a[i]}
        return d

    def _ffa_args(self, fid: int, a: list[int], call: dict[str, Any]) -> dict[str, Any]:
        s, w = self.s, [v & M32 for v in a]
        if fid in (s.FFA_RXTX_MAP_32, s.FFA_RXTX_MAP_64):
            call["rxtx"] = (a[1], w[3])
            return {"tx": _h(a[1]), "rx": _h(a[2]), "pages": w[3]}
        if fid in self._ffa_send:
            buf_pa, pages = (a[3], w[4]) if a[3] else (self.tx or (0, 0))
            args = {"total_length": w[1], "fragment_length": w[2],
                    "buffer": _h(a[3]) if a[3] else "TX", "pages": pages}
            if buf_pa:
                desc = decode_mem_descriptor(self._read(buf_pa, min(w[2], max(pages, 1) * 4096)),
                                             self.ffa_version)
                call["descriptor"] = desc
            return args
        if fid == s.FFA_MEM_FRAG_TX:
            handle = w[1] | w[2] << 32
            desc = self._frag.get(handle)
            if desc is not None and self.tx:
                more = parse_constituents(self._read(self.tx[0], w[3]), 0, w[3] // 16)
                desc = self._frag[handle] = {**desc, "constituents": desc["constituents"] + more}
                call["descriptor"] = desc
            return {"handle": _h(handle), "fragment_length": w[3]}
        if fid == s.FFA_MEM_RECLAIM:
            return {"handle": _h(w[1] | w[2] << 32), "flags": mem_flags(w[3])}
        if fid == s.FFA_MEM_RELINQUISH and self.tx:
            lay = self.n.sec.struct("ffa_mem_relinquish")
            r = lay.unpack(self._read(self.tx[0], lay.size))
            return {"handle": _h(r["handle"]), "flags": _h(r["flags"]), "endpoints": r["endpoint_count"]}
        if fid == s.FFA_VERSION:
            return {"requested": f"{w[1] >> s.FFA_VERSION_MAJOR_SHIFT & s.FFA_VERSION_MAJOR_MASK}."
                                 f"{w[1] & s.FFA_VERSION_MINOR_MASK}"}
        if fid == s.FFA_FEATURES:
            return {"feature": self.fid_name(w[1]) if w[1] & s.FFA_FEATURES_FUNC_ID_MASK else _h(w[1])}
        if fid in self._direct:
            return self._direct_req(w, call)
        return {f"w{i}": _h(w[i]) for i in range(1, 8) if w[i]}

    def _direct_req(self, w: list[int], call: dict[str, Any]) -> dict[str, Any]:
        s = self.s
        d: dict[str, Any] = {"source": _h(w[1] >> s.FFA_SRC_ENDPOINT_SHIFT),
                             "destination": _h(w[1] & s.FFA_ENDPOINT_ID_MASK)}
        if w[2] & s.FFA_MSG_FLAG_FRAMEWORK:
            d["framework_msg"] = _h(w[2] & s.FFA_MSG_TYPE_MASK)
            return d
        d["service"] = self.n.optee_ffa.get(w[3], _h(w[3]))
        call["service"] = w[3]
        if w[3] == self.c.OPTEE_FFA_YIELDING_CALL_WITH_ARG:
            handle, offset = w[4] | w[5] << 32, w[6]
            d.update(shm_handle=_h(handle), offset=_h(offset))
            runs = self.shm.get(handle)
            if runs:
                pa = int(runs[0]["address"], 16) + offset
                call["msg_pa"] = pa
                call["msg"] = self._msg(pa, True)
        elif w[3] in (self.c.OPTEE_FFA_UNREGISTER_SHM, self.c.OPTEE_FFA_RELEASE_PROTMEM):
            d["handle"] = _h(w[4] | w[5] << 32)
        return d

    def _smc_return(self, world: str, f: dict[str, Any]) -> dict[str, Any]:
        fid = int(f.get("fid", 0)) & M32
        call = self.calls.pop() if self.calls and self.calls[-1]["fid"] == fid else None
        r = [int(v) for v in (f.get("result") or [])] + [0] * 8
        w = [v & M32 for v in r]
        name, _static, tag = self._fid_info(fid)
        d: dict[str, Any] = {"name": name, "call": call["id"] if call else None}
        c, n = self.c, self.n
        if tag == "ffa":
            d.update(self._ffa_result(fid, w, call or {}))
        elif tag != "other":
            if w[0] & n.rpc_prefix_mask == n.rpc_prefix and w[0] != n.unknown:
                d["status"] = "RPC"
                d["rpc"] = n.rpc_func.get(w[0] & n.rpc_func_mask, _h(w[0]))
                d["rpc_args"] = {"a1": _h(w[1]), "a2": _h(w[2]), "thread": w[3]}
            else:
                d["status"] = n.smc_ret.get(w[0]) or n.smccc_err.get(w[0]) or _h(w[0])
            if fid == c.OPTEE_SMC_EXCHANGE_CAPABILITIES:
                d["sec_caps"] = bit_names(w[1], n.sec_caps)
                d["max_notif_value"], d["rpc_params"] = w[2], w[3] & 0xFF
            elif fid == c.OPTEE_SMC_GET_PROTMEM_CONFIG and w[0] == c.OPTEE_SMC_RETURN_OK:
                d.update(start=_h(r[1]), size=_h(r[2]), pa_width=w[3])
            elif fid == c.OPTEE_SMC_GET_THREAD_COUNT:
                d["threads"] = w[1]
            elif fid in (c.OPTEE_SMC_CALLS_UID, c.OPTEE_SMC_CALL_GET_OS_UUID):
                d["uuid_words"] = [_h(v) for v in w[:4]]
            elif fid in (c.OPTEE_SMC_CALLS_REVISION, c.OPTEE_SMC_CALL_GET_OS_REVISION):
                d["revision"] = f"{w[0]}.{w[1]}"
            if call and "msg_pa" in call and d["status"] != "RPC":
                d["msg"] = self._msg(call["msg_pa"], self.ffa)
        elif w[0] in n.smccc_err:
            d["status"] = n.smccc_err[w[0]]
        return d

    def _ffa_result(self, fid: int, w: list[int], call: dict[str, Any]) -> dict[str, Any]:
        s, d = self.s, {"status": self.fid_name(w[0])}
        if w[0] == s.FFA_ERROR:
            d["error"] = self.n.ffa_err.get(w[2], str(w[2] - (w[2] >> 31 << 32)))
            return d
        if fid == s.FFA_VERSION:
            if not w[0] >> 31:
                self.ffa_version = w[0]
                d["status"] = f"{w[0] >> s.FFA_VERSION_MAJOR_SHIFT}.{w[0] & s.FFA_VERSION_MINOR_MASK}"
            return d
        if "rxtx" in call and w[0] in self._ffa_success:
            self.tx = call["rxtx"]
        elif fid == s.FFA_RXTX_UNMAP and w[0] in self._ffa_success:
            self.tx = None
        desc = call.get("descriptor")
        if fid in self._ffa_send or fid == s.FFA_MEM_FRAG_TX:
            if w[0] in self._ffa_success:
                handle = w[2] | w[3] << 32
                d["handle"] = _h(handle)
                if desc is not None:
                    d["descriptor"] = {**desc, "handle": _h(handle)}
                    self.shm[handle] = desc["constituents"]
                    self._frag.pop(handle, None)
            elif w[0] == s.FFA_MEM_FRAG_RX:
                handle = w[1] | w[2] << 32
                d.update(handle=_h(handle), received=w[3])
                if desc is not None:
                    self._frag[handle] = desc
        elif fid == s.FFA_MEM_RECLAIM and w[0] in self._ffa_success:
            self.shm.pop(call["args"][1] & M32 | (call["args"][2] & M32) << 32, None) if call else None
        elif fid in self._direct and "service" in call:
            if call["service"] == self.c.OPTEE_FFA_YIELDING_CALL_WITH_ARG:
                d["result"] = self._yield_ret.get(w[3], _h(w[3]))
                if "msg_pa" in call:
                    d["msg"] = self._msg(call["msg_pa"], True)
            else:
                d["result"] = self.n.tee_err.get(w[3], _h(w[3]))
                if call["service"] == self.c.OPTEE_FFA_EXCHANGE_CAPABILITIES:
                    d["sec_caps"] = bit_names(w[5], self.n.ffa_caps)
        return d

    # --- worlds, secure OS, TZC, Linux ---------------------------------------------------------
    def _simple(self) -> dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]]:
        """Events whose decoding is a lookup or two."""
        n, get = self.n, (lambda table, v: table.get(v, v))
        master = self._master
        return {
            "world_switch": lambda w, f: {"from_el": EL_TOKENS.get(f.get("frm"), "?"),
                                          "to_el": EL_TOKENS.get(f.get("to"), "?"),
                                          **({"call": self.calls[-1]["id"]} if self.calls else {})},
            "msg": lambda w, f: {"cmd": get(n.msg_cmd, f.get("cmd"))},
            "rpc_cmd": lambda w, f: {"cmd": get(n.rpc_cmd, f.get("cmd"))},
            "ta_syscall": lambda w, f: {"syscall": n.syscall.get(f.get("nr"), f.get("name"))},
            "optee_ffa": lambda w, f: {"service": get(n.optee_ffa, f.get("service"))},
            "protmem_lend": self._use_case, "protmem_reclaim": self._use_case,
            "ffa_call": lambda w, f: {"error": n.ffa_err.get(f["error"] & M32, f["error"])}
            if isinstance(f.get("error"), int) else {},
            "ffa_mem": self._ffa_mem, "external_abort": self._abort,
            "tzc_verdict": lambda w, f: {
                "master": "secure" if f.get("secure") else master(int(f.get("nsaid", 0)))},
            "tzc_violation": lambda w, f: {"FAIL_CONTROL": decode_fail_control(int(f.get("control", 0)))},
            "ioctl": self._ioctl, "ioctl_return": self._ioctl}

    def _ffa_mem(self, world: str, f: dict[str, Any]) -> dict[str, Any]:
        d: dict[str, Any] = {"handle": _h(f["handle"])} if isinstance(f.get("handle"), int) else {}
        if f.get("receivers"):
            d["receivers"] = [{"endpoint": _h(ep), "perm": _perm(p, self.s)}
                              for ep, p in f["receivers"]]
        return d

    def _abort(self, world: str, f: dict[str, Any]) -> dict[str, Any]:
        fail = f.get("fail") or {}
        return {"fail": {"FAIL_ADDRESS": _h(int(fail.get("FAIL_ADDRESS", 0))),
                         "FAIL_CONTROL": decode_fail_control(int(fail.get("FAIL_CONTROL", 0))),
                         "FAIL_ID": _h(int(fail.get("FAIL_ID", 0)))}} if fail else {}

    def _use_case(self, world: str, f: dict[str, Any]) -> dict[str, Any]:
        return {"use_case": self.n.use_case.get(f["use_case"], f["use_case"])} if "use_case" in f else {}

    def _master(self, nsaid: int) -> str:
        return self.nsaid_names.get(nsaid, f"nsaid{nsaid}")

    def _tzc_program(self, world: str, f: dict[str, Any]) -> dict[str, Any]:
        """A register write; region base/top are accumulated from the low/high halves."""
        s, off, value = self.s, int(f.get("offset", -1)), int(f.get("value", 0))
        nf = s.TZC_REGION_ATTR_F_EN_MASK.bit_length()
        if off == s.TZC_ACTION:
            return {"action": self._tzc_action.get(value & max(self._tzc_action), _h(value))}
        if off == s.TZC_GATE_KEEPER:
            return {"open_request": [i for i in range(nf) if value >> i & 1]}
        if off < s.TZC_REGION_BASE_LOW_0:
            return {}
        n, r = divmod(off - s.TZC_REGION_BASE_LOW_0, 1 << s.TZC_REGION_SIZE_SHIFT)
        reg = self.regions.setdefault(n, {"base": 0, "top": 0})
        rb, d = int(f.get("readback", value)), {"region": n}
        for key, lo, hi in (("base", s.TZC_REGION_BASE_LOW_OFF, s.TZC_REGION_BASE_HIGH_OFF),
                            ("top", s.TZC_REGION_TOP_LOW_OFF, s.TZC_REGION_TOP_HIGH_OFF)):
            if r == lo:
                reg[key] = (reg[key] & ~M32) | rb
            elif r == hi:
                reg[key] = (reg[key] & M32) | rb << 32
        if r == s.TZC_REGION_ATTR_OFF:
            sec = value >> s.TZC_REGION_ATTR_SEC_SHIFT & s.TZC_REGION_S_RDWR
            d.update(secure=self._tzc_sec.get(sec, str(sec)).replace("TZC_REGION_", ""),
                     filters=[i for i in range(nf) if value >> i & 1])
        elif r == s.TZC_REGION_ID_ACCESS_OFF:
            for key, macro in (("nsaid_read", "TZC_REGION_ACCESS_RD"),
                               ("nsaid_write", "TZC_REGION_ACCESS_WR")):
                d[key] = [self._master(i) for i in range(16)
                          if value & self.n.sec.call_macro(macro, i)]
        d.update(base=_h(reg["base"]), top=_h(reg["top"]))
        return d

    def _ioctl(self, world: str, f: dict[str, Any]) -> dict[str, Any]:
        """ioctl / ioctl_return: the request by name; a dma-heap allocation's size and fd."""
        req = int(f.get("request", 0)) & M32
        d: dict[str, Any] = {"request": self.n.ioctl.get(req, _h(req))}
        data = f.get("arg", f.get("out"))
        if req == self.c.DMA_HEAP_IOCTL_ALLOC and isinstance(data, (bytes, bytearray)) and data:
            a = self.n.lin.struct("dma_heap_allocation_data").unpack(data)
            d.update({"fd": a["fd"]} if "out" in f else
                     {"len": _h(a["len"]), "fd_flags": _h(a["fd_flags"]), "heap_flags": _h(a["heap_flags"])})
        return d
