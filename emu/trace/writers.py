"""Trace formats: human text (Tarmac layout for instructions), JSON Lines, Perfetto JSON.

* **text**: one line per event, ``<ts> clk EV <world> #<seq> <kind> <summary>``; instruction
  lines are Tarmac (``IT``, ``R``, ``MR``/``MW``), so tarmac-trace-utilities index the file
  (the ``EV``/``BB`` lines are text-only events to them).
* **jsonl**: one JSON object per line; :data:`JSONL_SCHEMA` is the schema (docs/tracing.md).
* **perfetto**: Chrome trace-event JSON that ui.perfetto.dev opens: one track per CPU view
  under one process, B/E slices for calls spanning their return, instant events for faults,
  flow arrows from a call to its handling in the other world. Slices are kept until the end so
  that interleaved calls (concurrent kernel tasks, TAs waiting on RPCs) are laid out on extra
  lanes of their track and every B has its E on the same lane.

Timestamps are the virtual clock (retired instructions); Perfetto labels them microseconds.
"""
from __future__ import annotations

import enum
import io
import json
import re
import sys
from typing import IO, Any, Iterator, Protocol

FORMATS = ("text", "jsonl", "perfetto")
TRACKS = ("NS-EL1", "EL3", "S-EL1", "S-EL0")
FAULT_KINDS = {"fault", "external_abort", "dma_fault", "tzc_verdict", "tzc_violation",
               "tzc_misuse", "tzc_bad_access"}


class TraceWriter(Protocol):
    insn_format: str   # "text", "jsonl" or "none" (instruction records not supported)

    def header(self, meta: dict[str, Any]) -> None: ...
    def event(self, rec: dict[str, Any]) -> None: ...
    def raw(self, text: str) -> None: ...
    def close(self, summary: dict[str, Any]) -> None: ...


# ---- text --------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, bool) or v is None:
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:#x}" if v > 0xFFFF or v < -0xFFFF else str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + " ".join(f"{k}={_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def _kv(d: dict[str, Any] | None, skip: tuple[str, ...] = ()) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in (d or {}).items() if k not in skip)


def _msg(m: Any) -> str:
    if hasattr(m, "resolve"):
        m = m.resolve()
    if not m:
        return ""
    params = " ".join(p["type"] + "(" + _kv(p, ("type",)) + ")" for p in m.get("params", []))
    return f" msg={{{m['cmd']} func={m['func']} session={m['session']} ret={m['ret']} {params}}}"


def summarize(rec: dict[str, Any]) -> str:
    """The human summary of one event record (decoded names first, raw fields after)."""
    kind, d, f = rec["kind"], rec.get("decoded") or {}, rec.get("fields") or {}
    if kind == "smc":
        text = f"{d.get('name')} [{d.get('type')}/{d.get('conv')}] {_kv(d.get('args'))}"
        text += _msg(d.get("msg"))
        if "descriptor" in d:
            text += f" descriptor={_fmt(d['descriptor'])}"
        return text.rstrip()
    if kind == "smc_return":
        text = f"{d.get('name')} -> {d.get('status', _fmt(f.get('result')))} " \
               f"{_kv(d, ('name', 'call', 'status', 'msg', 'descriptor'))}"
        text += _msg(d.get("msg"))
        if "descriptor" in d:
            text += f" descriptor={_fmt(d['descriptor'])}"
        return text.rstrip()
    if kind == "world_switch":
        return (f"{f.get('frm')} ({d.get('from_el')}) -> {f.get('to')} ({d.get('to_el')}) "
                + _kv(f, ("frm", "to"))).rstrip()
    shown = set(d)
    return (_kv(d) + " " + _kv({k: v for k, v in f.items() if k not in shown})).strip()


class _Batched:
    """Events are formatted in batches: formatting 256 records in a row is several times
    cheaper than one at a time between stretches of emulation (caches stay warm), and it is
    where event tracing spends most of its time. Raw (instruction) text keeps its place."""

    insn_format = "text"
    BATCH = 256

    def __init__(self, out: IO[str]):
        self.out = out
        self._queue: list[Any] = []

    def format(self, rec: dict[str, Any]) -> str:
        raise NotImplementedError

    def event(self, rec: dict[str, Any]) -> None:
        self._queue.append(rec)
        if len(self._queue) >= self.BATCH:
            self.flush()

    def raw(self, text: str) -> None:
        if self._queue:
            self.flush()
        self.out.write(text)

    def flush(self) -> None:
        fmt = self.format
        self.out.write("".join(x if isinstance(x, str) else fmt(x) for x in self._queue))
        self._queue.clear()


class TextWriter(_Batched):
    def header(self, meta: dict[str, Any]) -> None:
        if meta.get("mode") in ("insn", "blocks"):
            self.out.write("Tarmac Text Rev 3t\n")
        self.out.write(f"0 clk EV trace {_kv(meta)}\n")

    def format(self, rec: dict[str, Any]) -> str:
        icount = "" if rec["icount"] is None else f" i={rec['icount']}"
        return (f"{rec['ts']} clk EV {rec['world']} #{rec['seq']}{icount} "
                f"{rec['kind']} {summarize(rec)}".rstrip() + "\n")

    def close(self, summary: dict[str, Any]) -> None:
        self.flush()
        self.out.write(f"0 clk EV end {_kv(summary)}\n")
        _close(self.out)


# ---- JSON Lines --------------------------------------------------------------------------------

def _default(obj: Any) -> Any:
    """JSON for what events may carry besides JSON types: bytes as hex, sets as lists, and
    decodings deferred to writing time (``resolve()``)."""
    if hasattr(obj, "resolve"):
        return obj.resolve()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if isinstance(obj, enum.Enum):
        return obj.value
    return str(obj)


_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False, default=_default).encode
try:   # the C encoder ``_dumps`` uses, made once instead of per call (same bytes, half the time)
    _c_encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined,misc]
        None, _default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
except (AttributeError, TypeError):  # pragma: no cover - no C accelerator
    _c_encode = None
_join = "".join
_jstr = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _dumps_fast(obj: Any) -> str:
    return _join(_c_encode(obj, 0)) if _c_encode is not None else _dumps(obj)


#: what :meth:`JsonlWriter.events` takes per event, in the record's key order (``wall`` None:
#: not written)
EventRow = tuple[int, int, "int | None", str, str, dict, dict, "float | None"]


def row_record(row: EventRow) -> dict[str, Any]:
    """The event record (``type: event``) of a row."""
    seq, ts, icount, world, kind, fields, decoded, wall = row
    rec = {"type": "event", "seq": seq, "ts": ts, "icount": icount, "world": world,
           "kind": kind, "fields": fields, "decoded": decoded}
    if wall is not None:
        rec["wall"] = wall
    return rec


class JsonlWriter(_Batched):
    insn_format = "jsonl"

    def header(self, meta: dict[str, Any]) -> None:
        self.out.write(_dumps({"type": "header", **meta}) + "\n")

    def format(self, rec: dict[str, Any]) -> str:
        return _dumps_fast(rec) + "\n"

    def events(self, rows: list[EventRow]) -> None:
        """Many event records at once, without building their dicts: the same bytes as
        :meth:`format` of :func:`row_record` (the envelope's keys are fixed), a third faster."""
        if _c_encode is None:
            for row in rows:
                self.event(row_record(row))
            return
        if self._queue:
            self.flush()
        enc, join, jstr = _c_encode, _join, _jstr
        self.out.write(join([
            f'{{"type":"event","seq":{int(seq)},"ts":{int(ts)},'
            f'"icount":{"null" if icount is None else int(icount)},"world":{jstr(world)},'
            f'"kind":{jstr(kind)},"fields":{join(enc(fields, 0))},"decoded":{join(enc(decoded, 0))}'
            + ("}\n" if wall is None else f',"wall":{wall!r}}}\n')
            for seq, ts, icount, world, kind, fields, decoded, wall in rows]))

    def close(self, summary: dict[str, Any]) -> None:
        self.flush()
        self.out.write(_dumps({"type": "end", **summary}) + "\n")
        _close(self.out)


_HEX = {"type": "string", "pattern": "^0x[0-9a-f]+$"}
#: JSON schema (draft 07) of one line of a JSONL trace; docs/tracing.md explains each field.
JSONL_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "tzemu trace record (one JSON Lines line)",
    "oneOf": [
        {"type": "object", "required": ["type", "format", "version", "clock", "mode", "icount"],
         "properties": {"type": {"const": "header"}, "format": {"const": "tzemu-trace"},
                        "version": {"type": "integer"}, "clock": {"type": "string"},
                        "mode": {"enum": ["events", "insn", "blocks"]},
                        "icount": {"type": "string"}, "worlds": {"type": "array"}}},
        {"type": "object", "additionalProperties": False,
         "required": ["type", "seq", "ts", "icount", "world", "kind", "fields", "decoded"],
         "properties": {"type": {"const": "event"}, "seq": {"type": "integer"},
                        "ts": {"type": "integer"}, "icount": {"type": ["integer", "null"]},
                        "world": {"type": "string"}, "kind": {"type": "string"},
                        "fields": {"type": "object"}, "decoded": {"type": "object"},
                        "wall": {"type": "number"}}},
        {"type": "object", "additionalProperties": False,
         "required": ["type", "ts", "icount", "world", "el", "pc", "sym", "enc", "asm", "regs", "mem"],
         "properties": {"type": {"const": "insn"}, "ts": {"type": "integer"},
                        "icount": {"type": "integer"}, "world": {"type": "string"},
                        "el": {"type": "string", "pattern": "^EL[0-3][th]_[ns]$"}, "pc": _HEX,
                        "sym": {"type": ["string", "null"]},
                        "enc": {"type": "string", "pattern": "^[0-9a-f]{8}$"},
                        "asm": {"type": "string"}, "regs": {"type": "object"},
                        "mem": {"type": "array", "items": {"type": "array"}}}},
        {"type": "object", "additionalProperties": False,
         "required": ["type", "ts", "icount", "world", "pc", "sym", "n"],
         "properties": {"type": {"const": "block"}, "ts": {"type": "integer"},
                        "icount": {"type": "integer"}, "world": {"type": "string"}, "pc": _HEX,
                        "sym": {"type": ["string", "null"]}, "n": {"type": "integer"}}},
        {"type": "object", "required": ["type", "events", "instructions"],
         "properties": {"type": {"const": "end"}, "events": {"type": "integer"},
                        "instructions": {"type": "object"}, "traced": {"type": "object"}}},
    ]}

_TYPES = {"object": dict, "array": list, "string": str, "number": (int, float), "null": type(None),
          "integer": int, "boolean": bool}


def validate(obj: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Errors of ``obj`` against the subset of JSON schema that JSONL_SCHEMA uses."""
    if "oneOf" in schema:
        results = [validate(obj, s, path) for s in schema["oneOf"]]
        ok = [r for r in results if not r]
        return [] if len(ok) == 1 else [f"{path}: matches {len(ok)} of the oneOf schemas "
                                        f"({min(results, key=len) if not ok else ''})"]
    errs: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(isinstance(obj, _TYPES[t]) and not (t in ("integer", "number")
                   and isinstance(obj, bool)) for t in types):
            return [f"{path}: {obj!r} is not {'/'.join(types)}"]
    if "const" in schema and obj != schema["const"]:
        errs.append(f"{path}: {obj!r} != {schema['const']!r}")
    if "enum" in schema and obj not in schema["enum"]:
        errs.append(f"{path}: {obj!r} not in {schema['enum']}")
    if "pattern" in schema and isinstance(obj, str) and not re.search(schema["pattern"], obj):
        errs.append(f"{path}: {obj!r} does not match {schema['pattern']}")
    if isinstance(obj, dict):
        errs += [f"{path}: missing {k!r}" for k in schema.get("required", []) if k not in obj]
        props = schema.get("properties", {})
        for k, v in obj.items():
            if k in props:
                errs += validate(v, props[k], f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{path}: unexpected {k!r}")
    if isinstance(obj, list) and "items" in schema:
        for i, v in enumerate(obj):
            errs += validate(v, schema["items"], f"{path}[{i}]")
    return errs


def read_jsonl(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


# ---- Perfetto / Chrome trace-event JSON --------------------------------------------------------

class _Slice:
    __slots__ = ("track", "name", "cat", "begin", "end", "args", "end_args", "flows_in",
                 "flows_out", "lane")

    def __init__(self, track: str, name: str, cat: str, begin: int, args: dict[str, Any]):
        self.track, self.name, self.cat, self.begin, self.args = track, name, cat, begin, args
        self.end: float | None = None
        self.end_args: dict[str, Any] = {}
        self.flows_in: list[tuple[int, float]] = []
        self.flows_out: list[tuple[int, float]] = []
        self.lane = 0


class PerfettoWriter:
    insn_format = "none"

    def __init__(self, out: IO[str]):
        self.out = out
        self.slices: list[_Slice] = []
        self.open: dict[Any, _Slice] = {}
        self.instants: list[dict[str, Any]] = []
        self.tracks: list[str] = list(TRACKS)
        self.meta: dict[str, Any] = {}
        self.last_ts = 0
        self._flow = 0

    def raw(self, text: str) -> None:  # instruction records are not written to Perfetto
        pass

    def header(self, meta: dict[str, Any]) -> None:
        self.meta = dict(meta)

    def _track(self, world: str) -> str:
        if world not in self.tracks:
            self.tracks.append(world)
        return world

    def _begin(self, key: Any, track: str, name: str, cat: str, ts: int,
               args: dict[str, Any]) -> _Slice:
        s = _Slice(self._track(track), name, cat, ts, args)
        self.slices.append(s)
        self.open[key] = s
        return s

    def _end(self, key: Any, ts: int, args: dict[str, Any]) -> _Slice | None:
        s = self.open.pop(key, None)
        if s is not None:
            s.end, s.end_args = ts, args
        return s

    def _link(self, src: _Slice | None, dst: _Slice | None, ts: int) -> None:
        if src is not None and dst is not None:
            self._flow += 1
            src.flows_out.append((self._flow, ts + 0.5))
            dst.flows_in.append((self._flow, ts + 0.5))

    def _latest(self, prefix: tuple[Any, ...]) -> Any:
        keys = [k for k in self.open if k[:len(prefix)] == prefix]
        return max(keys, key=lambda k: self.open[k].begin) if keys else None

    def event(self, rec: dict[str, Any]) -> None:
        ts, kind, world = rec["ts"], rec["kind"], rec["world"]
        d, f = rec.get("decoded") or {}, rec.get("fields") or {}
        self.last_ts = ts
        args = {"seq": rec["seq"], "icount": rec["icount"], "fields": f, "decoded": d}
        if kind == "smc":
            cid = d.get("call", rec["seq"])
            name = d.get("name") or hex(f.get("fid", 0))
            a = self._begin(("smc", cid), world, name, "smc", ts, args)
            b = self._begin(("el3", cid), "EL3", f"route {name}", "monitor", ts, args)
            self._link(a, b, ts)
        elif kind == "smc_return":
            cid = d.get("call")
            self._end(("el3", cid), ts, args)
            self._end(("smc", cid), ts, args)
        elif kind == "world_switch":
            frm, to = f.get("frm"), f.get("to")
            if to == "S-EL1" and frm != "S-EL0":
                s = self._begin(("run", rec["seq"]), "S-EL1", f"S-EL1 {f.get('cause')}",
                                "world", ts, args)
                self._link(self.open.get(("el3", d.get("call"))), s, ts)
            elif frm == "S-EL1" and to == "NS-EL1":
                self._end(self._latest(("run",)), ts, args)
            elif to == "S-EL0":
                s = self._begin(("ta", f.get("ta"), rec["seq"]), "S-EL0", f"TA {f.get('ta')}",
                                "ta", ts, args)
                run = self._latest(("run",))
                self._link(self.open.get(run), s, ts)
            elif frm == "S-EL0":
                self._end(self._latest(("ta", f.get("ta"))), ts, args)
        elif kind == "ioctl":
            self._begin(("ioctl", f.get("call")), world, f"ioctl {d.get('request')}", "linux",
                        ts, args)
        elif kind == "ioctl_return":
            self._end(("ioctl", f.get("call")), ts, args)
        else:
            label = d.get("cmd") or d.get("syscall") or d.get("service") or f.get("register")
            self.instants.append({"name": f"{kind} {label}" if label else kind,
                                  "cat": "fault" if kind in FAULT_KINDS else "event", "ph": "i",
                                  "s": "t", "ts": ts, "track": self._track(world), "args": args})

    def _lanes(self) -> dict[str, int]:
        """Spread each track's slices over lanes so that slices on a lane nest properly."""
        lanes: dict[str, list[list[_Slice]]] = {}
        for s in sorted(self.slices, key=lambda s: (s.begin, -(s.end or 0))):
            stacks = lanes.setdefault(s.track, [])
            for i, stack in enumerate(stacks + [[]]):
                while stack and (stack[-1].end or 0) <= s.begin:
                    stack.pop()
                if not stack or (stack[-1].end or 0) >= (s.end or 0):
                    if i == len(stacks):
                        stacks.append(stack)
                    stack.append(s)
                    s.lane = i
                    break
        return {t: max(1, len(lanes.get(t, []))) for t in self.tracks}

    def close(self, summary: dict[str, Any]) -> None:
        end = self.last_ts + 1
        for s in list(self.open.values()):
            s.end, s.end_args = end, {"unfinished": True}
        self.open.clear()
        nlanes = self._lanes()
        tid: dict[tuple[str, int], int] = {}
        ev: list[tuple[float, int, dict[str, Any]]] = []
        meta = [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "tzemu"}}]
        for i, track in enumerate(self.tracks):
            for lane in range(nlanes[track]):
                t = tid[(track, lane)] = (i + 1) * 100 + lane
                label = track if lane == 0 else f"{track} ({lane + 1})"
                meta += [{"ph": "M", "name": "thread_name", "pid": 1, "tid": t, "args": {"name": label}},
                         {"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": t,
                          "args": {"sort_index": t}}]
        for s in self.slices:
            t = tid[(s.track, s.lane)]
            ev.append((s.begin, 1, {"name": s.name, "cat": s.cat, "ph": "B", "ts": s.begin,
                                    "pid": 1, "tid": t, "args": s.args}))
            ev.append((s.end or end, 0, {"ph": "E", "ts": s.end or end, "pid": 1, "tid": t,
                                         "args": s.end_args}))
            for fid, ts in s.flows_out:
                ev.append((ts, 2, {"name": "call", "cat": "flow", "ph": "s", "id": fid, "ts": ts,
                                   "pid": 1, "tid": t}))
            for fid, ts in s.flows_in:
                ev.append((ts, 3, {"name": "call", "cat": "flow", "ph": "f", "bp": "e", "id": fid,
                                   "ts": ts, "pid": 1, "tid": t}))
        for i in self.instants:
            track = i.pop("track")
            ev.append((i["ts"], 4, {**i, "pid": 1, "tid": tid[(track, 0)]}))
        ev.sort(key=lambda e: (e[0], e[1]))
        out = self.out
        out.write('{"displayTimeUnit":"ns","otherData":' + _dumps({**self.meta, **summary})
                  + ',"traceEvents":[\n')
        items = meta + [e for _, _, e in ev]
        out.write(",\n".join(_dumps(e) for e in items))
        out.write("\n]}\n")
        _close(out)


# ---- opening ------------------------------------------------------------------------------------

def _close(out: IO[str]) -> None:
    if out in (sys.stdout, sys.stderr):
        out.flush()
    elif not isinstance(out, io.StringIO):
        out.close()


def open_writer(target: str | IO[str], fmt: str) -> TraceWriter:
    """A writer for ``fmt`` on a path ("-" is stdout) or an open text stream."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown trace format {fmt!r} (known: {', '.join(FORMATS)})")
    if isinstance(target, str):
        out: IO[str] = sys.stdout if target == "-" else \
            open(target, "w", encoding="utf-8", buffering=1 << 20)
    else:
        out = target
    return {"text": TextWriter, "jsonl": JsonlWriter, "perfetto": PerfettoWriter}[fmt](out)
