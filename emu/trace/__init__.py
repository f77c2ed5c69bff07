"""Firmware traces: decoded protocol events, instruction traces, Perfetto timelines.

A :class:`Tracer` subscribes to the event bus (synchronously, so decoders read descriptors
from memory before the other world can change them), stamps every event with the virtual clock
and hands decoded records to a writer (``writers.py``: text, JSON lines, Perfetto). On demand it
also traces instructions or blocks of the CPU views (``insn.py``).

The clock: every view counts its retired instructions (``icount.py``); an event's timestamp
``ts`` is the sum of all views' counts plus the number of events before it. Each event thus
advances time by one tick, which keeps events that happen at the same instruction count in
order, and an instruction's timestamp falls between the events around it. Wall time is never
written unless asked for (``wall=True``), so traces of the same run are byte-identical.

Writers format events in batches (``writers._Batched``), so a record keeps references to its
event's fields until its batch is written: fields are treated as immutable, like the frozen
:class:`~emu.events.Event` that carries them.

emu/ imports no world: the tzemu layer (``tzemu/trace.py``) builds the symbol tables and the
memory reader from a platform and calls :func:`Tracer.start`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from emu.events import Event, EventBus
from emu.trace.decode import Decoder
from emu.trace.icount import InsnCounter, TzCounter, load_native
from emu.trace.insn import Symbolizer, TraceFilter, ViewTracer
from emu.trace.writers import (FORMATS, JSONL_SCHEMA, TraceWriter, open_writer, read_jsonl,
                               validate)

__all__ = ["Tracer", "Decoder", "Symbolizer", "TraceFilter", "open_writer", "read_jsonl",
           "FORMATS", "JSONL_SCHEMA", "validate", "TRACE_VERSION"]

TRACE_VERSION = 1


class Tracer:
    """Records one platform run: events always, instructions or blocks on demand."""

    def __init__(self, bus: EventBus, views: Mapping[str, Any], writer: TraceWriter, *,
                 decoder: Decoder | None = None, symbolizer: Symbolizer | None = None,
                 insn: bool = False, blocks: bool = False, memory: bool = True,
                 filters: TraceFilter | None = None, wall: bool = False,
                 meta: Mapping[str, Any] | None = None):
        if insn and blocks:
            raise ValueError("choose --insn or --blocks, not both")
        self.bus, self.writer = bus, writer
        self.views = {str(k): v for k, v in views.items()}
        self.decoder = decoder or Decoder()
        self.symbolizer = symbolizer or Symbolizer()
        self.insn, self.blocks, self.memory, self.wall = insn, blocks, memory, wall
        self.filters = filters or TraceFilter()
        self.meta = dict(meta or {})
        self.counters: dict[str, InsnCounter] = {}
        self._counts: Any = ()
        self.tracers: dict[str, ViewTracer] = {}
        self.nevents = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._wrapped: list[Any] = []
        self._ta_stack: list[str] = []
        #: called by :meth:`close` after the hooks are gone (e.g. undo the tzemu layer's wrappers)
        self.cleanups: list[Callable[[], None]] = []
        self.errors: list[str] = []
        self.summary: dict[str, Any] = {}
        self.closed = False

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "Tracer":
        # All counters in one array: the clock is one C-level sum over a memoryview.
        self._slots = (TzCounter * max(1, len(self.views)))()
        self._counts = memoryview(self._slots).cast("B").cast("Q")[::3]
        for i, (world, view) in enumerate(self.views.items()):
            counter = self.counters[world] = InsnCounter(view.uc, self._slots[i])
            counter.install()
        if (self.insn or self.blocks) and self.writer.insn_format != "none":
            for world, view in self.views.items():
                ranges = self.filters.hook_ranges(world, self.symbolizer)
                if ranges is None:
                    continue
                vt = ViewTracer(view, self.counters[world], self.symbolizer, self.writer.raw,
                                self.writer.insn_format, ranges, self.memory)
                vt.install_insn() if self.insn else vt.install_blocks()
                self.tracers[world] = vt
        for view in self.views.values():
            self._wrap_run(view)
        self._rebase()
        mode = "insn" if self.insn else "blocks" if self.blocks else "events"
        self.writer.header({"format": "tzemu-trace", "version": TRACE_VERSION,
                            "clock": "retired instructions + events", "mode": mode,
                            "icount": load_native()[1], "worlds": list(self.views), **self.meta})
        self._unsubscribe = self.bus.subscribe(self._on_event)
        return self

    def _wrap_run(self, view: Any) -> None:
        """Flush the last instruction's registers when a run ends; rebase around nested runs."""
        original = view.run
        tracer = self
        world = str(view.world)

        def run(*args: Any, **kwargs: Any) -> Any:
            tracer._rebase()
            try:
                return original(*args, **kwargs)
            finally:
                vt = tracer.tracers.get(world)
                if vt is not None:
                    vt.drain()
                tracer._rebase()
        view.run = run
        self._wrapped.append(view)

    def close(self) -> dict[str, Any]:
        """Detach every hook and finish the file; returns the summary written last."""
        if self.closed:
            return self.summary
        self.closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        for vt in self.tracers.values():
            vt.remove()
        for view in self._wrapped:
            view.__dict__.pop("run", None)
        for counter in self.counters.values():
            counter.remove()
        for cleanup in self.cleanups:
            cleanup()
        summary = {"events": self.nevents, "errors": self.errors,
                   "instructions": {w: c.count for w, c in self.counters.items()},
                   "traced": {w: vt.count for w, vt in self.tracers.items()}}
        self.writer.close(summary)
        self.summary = summary
        return summary

    def __enter__(self) -> "Tracer":
        return self if self._unsubscribe else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- the clock -----------------------------------------------------------------------------
    def clock(self) -> int:
        return self.nevents + sum(self._counts)

    def _rebase(self) -> None:
        if not self.tracers:
            return
        total = self.clock()
        for world, vt in self.tracers.items():
            vt.base_value = total - self.counters[world].c.count

    # --- events --------------------------------------------------------------------------------
    def _on_event(self, ev: Event) -> None:
        """Record one event; a tracing bug is kept in ``errors``, never raised into the run."""
        try:
            self._record(ev)
        except Exception as exc:  # noqa: BLE001 - tracing must not change the run
            self.errors.append(f"event #{ev.seq} {ev.kind}: {type(exc).__name__}: {exc}")

    def _record(self, ev: Event) -> None:
        for vt in self.tracers.values():
            vt.drain()
        counter = self.counters.get(ev.world)
        fields = ev.fields
        rec: dict[str, Any] = {"type": "event", "seq": ev.seq, "ts": self.clock(),
                               "icount": counter.c.count if counter is not None else None,
                               "world": ev.world, "kind": ev.kind, "fields": fields,
                               "decoded": self.decoder.decode(ev.kind, ev.world, fields)}
        if self.wall:
            rec["wall"] = ev.wall
        self.writer.event(rec)
        self.nevents += 1
        if ev.kind == "world_switch":
            self._track_ta(fields)
        self._rebase()

    def _track_ta(self, fields: Mapping[str, Any]) -> None:
        """Which TA the S-EL0 view runs, for its symbols (TAs share one load address)."""
        if fields.get("to") == "S-EL0":
            self._ta_stack.append(str(fields.get("ta")))
        elif fields.get("frm") == "S-EL0" and self._ta_stack:
            self._ta_stack.pop()
        else:
            return
        vt = self.tracers.get("S-EL0")
        if vt is not None and self._ta_stack:
            vt.set_ta(self._ta_stack[-1])
