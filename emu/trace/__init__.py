"""Firmware traces: decoded protocol events, instruction traces, Perfetto timelines.

A :class:`Tracer` subscribes to the event bus (synchronously, so decoders read descriptors
from memory before the other world can change them), stamps every event with the virtual clock
and hands decoded records to a writer (``writers.py``: text, JSON lines, Perfetto). On demand it
also traces instructions or blocks of the CPU views (``insn.py``).

The cost per event is what tracing costs a run (issue 7), so the event path is split: when an
event happens only what cannot wait is done — the clock, and :meth:`Decoder.early` (SMCs and
their returns, which read messages and descriptors from memory and move the protocol state; the
open call of a world switch). The rest of the decoding and the formatting run in batches of
:attr:`Tracer.BATCH` events, in event order, where caches stay warm; the output is the same.

The clock: every view counts its retired instructions (``icount.py``); an event's timestamp
``ts`` is the sum of all views' counts plus the number of events before it. Each event thus
advances time by one tick, which keeps events that happen at the same instruction count in
order, and an instruction's timestamp falls between the events around it. Wall time is never
written unless asked for (``wall=True``), so traces of the same run are byte-identical.

Events are decoded and written in batches, so a record keeps references to its event's
fields until its batch is written: fields are treated as immutable, like the
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
                               row_record, validate)

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
        self._index: dict[str, int] = {}
        #: events seen but not yet decoded and handed to the writer (see :meth:`_record`)
        self._pending: list[tuple[Event, int, int | None, Any]] = []
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
                vt = ViewTracer(view, self.counters[world], self.symbolizer, self._raw,
                                self.writer.insn_format, ranges, self.memory)
                vt.install_insn() if self.insn else vt.install_blocks()
                self.tracers[world] = vt
        if self.tracers:                      # events only: nothing to flush or rebase per run
            for view in self.views.values():
                self._wrap_run(view)
        self._rebase()
        mode = "insn" if self.insn else "blocks" if self.blocks else "events"
        self.writer.header({"format": "tzemu-trace", "version": TRACE_VERSION,
                            "clock": "retired instructions + events", "mode": mode,
                            "icount": load_native()[1], "worlds": list(self.views), **self.meta})
        self._index = {world: i for i, world in enumerate(self.views)}
        self._early_kinds = frozenset(self.decoder.EARLY)
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
        self._flush()
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
    #: events decoded and written together: a batch runs with warm caches, while one event at a
    #: time between stretches of guest code costs several times more (issue 7)
    BATCH = 256

    def _on_event(self, ev: Event) -> None:
        """Record one event; a tracing bug is kept in ``errors``, never raised into the run."""
        try:
            self._record(ev)
        except Exception as exc:  # noqa: BLE001 - tracing must not change the run
            self.errors.append(f"event #{ev.seq} {ev.kind}: {type(exc).__name__}: {exc}")

    def _record(self, ev: Event) -> None:
        """The hot path: only what cannot wait is done now — the clock, the world's count,
        and :meth:`Decoder.early` (memory snapshots, open calls). Decoding proper and
        formatting happen in :meth:`_flush`, in order, so the output is the same."""
        tracers = self.tracers
        if tracers:
            for vt in tracers.values():
                vt.drain()
        counts, kind = self._counts, ev.kind
        i = self._index.get(ev.world)
        pending = self._pending
        pending.append((ev, self.nevents + sum(counts), None if i is None else counts[i],
                        self.decoder.early(kind, ev.world, ev.fields)
                        if kind in self._early_kinds else None))
        self.nevents += 1
        if tracers:
            if ev.kind == "world_switch":
                self._track_ta(ev.fields)
            self._rebase()
        if len(pending) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        """Decode the pending events, in order, and hand them to the writer."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        late, wall, rows = self.decoder.late, self.wall, []
        for ev, ts, icount, early in pending:
            seq, kind, world, fields, when = ev
            try:
                decoded = late(kind, world, fields, early)
            except Exception as exc:  # noqa: BLE001 - tracing must not change the run
                decoded = {"decode_error": f"{type(exc).__name__}: {exc}"}
            rows.append((seq, ts, icount, world, kind, fields, decoded, when if wall else None))
        many = getattr(self.writer, "events", None)
        if many is not None:
            try:
                many(rows)
                return
            except Exception:  # noqa: BLE001 - retried one by one below, to name the event
                pass
        for row in rows:
            try:
                self.writer.event(row_record(row))
            except Exception as exc:  # noqa: BLE001 - tracing must not change the run
                self.errors.append(f"event #{row[0]} {row[4]}: {type(exc).__name__}: {exc}")

    def _raw(self, text: str) -> None:
        """Instruction text: the events before it go first."""
        if self._pending:
            self._flush()
        self.writer.raw(text)

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
