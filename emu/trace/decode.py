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

from typing import Any, Callable

from emu.trace.names import EL_TOKENS, M32, Names, ReadPhys, _h, bit_names, names
from emu.trace.structs import (LazyMsg, _perm, decode_fail_control, decode_mem_descriptor,
                               decode_msg_arg, fast_struct, mem_attributes, mem_flags,
                               parse_constituents)
from emu.trace.syscalls import syscall_decoder

# The name tables and the pure structure decoders live in names.py and structs.py; they are
# importable from here too.
__all__ = ["Decoder", "EL_TOKENS", "M32", "Names", "ReadPhys", "LazyMsg", "bit_names", "names",
           "decode_fail_control", "decode_mem_descriptor", "decode_msg_arg", "fast_struct",
           "mem_attributes", "mem_flags", "parse_constituents"]


class _Later:
    """What :meth:`Decoder.early` keeps of an SMC or its return: the rest of the decoding."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]):
        self.fn, self.args = fn, args


# ---- the stateful event decoder ---------------------------------------------------------------

class Decoder:
    """Decodes each event against the protocol state seen so far (see the module docstring)."""

    #: the kinds :meth:`early` has work for (the others decode entirely in :meth:`late`)
    EARLY = ("smc", "smc_return", "world_switch")

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
        # early: at emit time (memory, open calls); late: when the trace is written, in order
        self._early = {"smc": self._smc, "smc_return": self._smc_return,
                       "world_switch": self._open_call}
        self._late = {"tzc_program": self._tzc_program, **self._simple()}

    def seed_ffa(self, tx: tuple[int, int] | None, version: int | None,
                 shares: dict[int, list[tuple[int, int]]]) -> None:
        """FF-A state set up before tracing began (at boot): the TX buffer (pa, pages), the
        negotiated version and live handles -> [(pa, pages)], from whoever knows them."""
        self.ffa = True
        self.tx, self.ffa_version = tx or self.tx, version or self.ffa_version
        for handle, runs in shares.items():
            self.shm[handle] = [{"address": _h(pa), "pages": n} for pa, n in runs]

    def decode(self, kind: str, world: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The decoded names of one event (both halves at once)."""
        return self.late(kind, world, fields, self.early(kind, world, fields))

    def early(self, kind: str, world: str, fields: dict[str, Any]) -> Any:
        """What must be taken when the event happens: SMCs and their returns are decoded
        now (they read messages and descriptors from memory and move the protocol state),
        a world switch notes the open call. Everything else waits for :meth:`late`."""
        fn = self._early.get(kind)
        if fn is None:
            return None
        try:
            return fn(world, fields)
        except Exception as exc:  # noqa: BLE001 - a trace must never break the run
            return {"decode_error": f"{type(exc).__name__}: {exc}"}

    def late(self, kind: str, world: str, fields: dict[str, Any], early: Any) -> dict[str, Any]:
        """The decoded dict, given what :meth:`early` returned for the same event. Late
        decoders depend on the event's fields and on earlier late-decoded events only, so
        calling this in event order, any time after, gives the same result."""
        if isinstance(early, dict):
            return early
        if type(early) is _Later:
            try:
                return early.fn(*early.args)
            except Exception as exc:  # noqa: BLE001 - a trace must never break the run
                return {"decode_error": f"{type(exc).__name__}: {exc}"}
        if kind == "world_switch":
            d = {"from_el": EL_TOKENS.get(fields.get("frm"), "?"),
                 "to_el": EL_TOKENS.get(fields.get("to"), "?")}
            if early is not None:
                d["call"] = early
            return d
        fn = self._late.get(kind)
        if fn is None:
            return {}
        try:
            return fn(world, fields)
        except Exception as exc:  # noqa: BLE001 - a trace must never break the run
            return {"decode_error": f"{type(exc).__name__}: {exc}"}

    def _open_call(self, world: str, fields: dict[str, Any]) -> int | None:
        return self.calls[-1]["id"] if self.calls else None

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

    def _smc(self, world: str, f: dict[str, Any]) -> Any:
        """Early: the call is opened and its message taken now; the dict is built by
        :meth:`_smc_late` (FF-A calls, which read descriptors and move more state, in full)."""
        fid = int(f.get("fid", 0)) & M32
        a = list(f.get("args") or ())
        a += [0] * (8 - len(a))
        name, static, tag = self._fid_info(fid)
        self._next_call += 1
        call: dict[str, Any] = {"id": self._next_call, "fid": fid, "name": name, "args": a}
        self.calls.append(call)
        if tag == "ffa":
            d: dict[str, Any] = {"name": name, "call": self._next_call, **static}
            self.ffa = True
            d["args"] = self._ffa_args(fid, a, call)
            if "descriptor" in call:
                d["descriptor"] = call["descriptor"]
            if "msg" in call:
                d["msg"] = call["msg"]
            return d
        msg = None
        if tag == "msg":
            call["msg_pa"] = pa = (a[1] & M32) << 32 | a[2] & M32
            msg = self._msg(pa, self.ffa)
        return _Later(self._smc_late, (self._next_call, name, static, tag, a, msg))

    def _smc_late(self, call_id: int, name: str, static: dict[str, str], tag: str,
                  a: list[int], msg: Any) -> dict[str, Any]:
        d: dict[str, Any] = {"name": name, "call": call_id, **static}
        if tag == "msg":
            d["args"] = {"arg_pa": _h((a[1] & M32) << 32 | a[2] & M32)}
            d["msg"] = msg
        elif tag == "regd":
            d["args"] = {"shm_cookie": _h((a[1] & M32) << 32 | a[2] & M32), "offset": _h(a[3])}
        elif tag == "resume":
            d["args"] = {"a1": _h(a[1]), "a2": _h(a[2]), "thread": a[3]}
        elif tag == "caps":
            d["args"] = {"nsec_caps": bit_names(a[1] & M32, self.n.nsec_caps)}
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

    def _smc_return(self, world: str, f: dict[str, Any]) -> Any:
        """Early: the call is closed and the message it left taken now; the dict is built by
        :meth:`_smc_return_late` (FF-A results in full, now)."""
        fid = int(f.get("fid", 0)) & M32
        call = self.calls.pop() if self.calls and self.calls[-1]["fid"] == fid else None
        r = [int(v) for v in (f.get("result") or [])] + [0] * 8
        w = [v & M32 for v in r]
        name, _static, tag = self._fid_info(fid)
        if tag == "ffa":
            d: dict[str, Any] = {"name": name, "call": call["id"] if call else None}
            d.update(self._ffa_result(fid, w, call or {}))
            return d
        n, msg = self.n, None
        rpc = w[0] & n.rpc_prefix_mask == n.rpc_prefix and w[0] != n.unknown
        if tag != "other" and call and "msg_pa" in call and not rpc:
            msg = self._msg(call["msg_pa"], self.ffa)
        return _Later(self._smc_return_late,
                      (fid, name, call["id"] if call else None, tag, r, w, rpc, msg))

    def _smc_return_late(self, fid: int, name: str, call_id: int | None, tag: str,
                         r: list[int], w: list[int], rpc: bool, msg: Any) -> dict[str, Any]:
        d: dict[str, Any] = {"name": name, "call": call_id}
        c, n = self.c, self.n
        if tag != "other":
            if rpc:
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
            if msg is not None:
                d["msg"] = msg
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
        sc = syscall_decoder()
        return {
            "msg": lambda w, f: {"cmd": get(n.msg_cmd, f.get("cmd"))},
            "rpc_cmd": lambda w, f: {"cmd": get(n.rpc_cmd, f.get("cmd"))},
            "ta_syscall": sc.call, "ta_syscall_return": sc.ret,
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
