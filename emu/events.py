"""The event bus: every world switch, call, return and fault goes through here.

Tracing and the debugger subscribe to it; tests record from it. Events carry a sequence number
and the world that produced them. Emitting is cheap when nobody listens (``bus.active`` is
False), so hot paths guard their emits with ``if bus.active``.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str           # "world_switch", "smc", "smc_return", "fault", "msg", "ta_syscall", ...
    world: str          # "NS-EL1", "EL3", "S-EL1", "S-EL0"
    fields: dict[str, Any] = field(default_factory=dict)
    wall: float = 0.0   # wall time, for humans only; never compared or written to golden files

    def to_dict(self) -> dict[str, Any]:
        """Flat form; a field that collides with seq/kind/world is kept as ``<kind>_<name>``
        (an SMC's ``kind`` becomes ``smc_kind``) instead of overwriting the event's own."""
        out = {"seq": self.seq, "kind": self.kind, "world": self.world}
        for k, v in self.fields.items():
            out[f"{self.kind}_{k}" if k in out else k] = v
        return out


Sink = Callable[[Event], None]


class EventBus:
    """Fan-out of platform events to sinks, with an optional bounded recording."""

    def __init__(self, record: int = 0):
        self._sinks: list[Sink] = []
        self._seq = 0
        self.recorded: deque[Event] = deque(maxlen=record or None) if record else deque(maxlen=0)
        self.active = bool(record)

    def subscribe(self, sink: Sink) -> Callable[[], None]:
        """Add a sink; returns a function that removes it."""
        self._sinks.append(sink)
        self.active = True

        def unsubscribe() -> None:
            if sink in self._sinks:
                self._sinks.remove(sink)
            self.active = bool(self._sinks) or self.recorded.maxlen != 0
        return unsubscribe

    def start_recording(self, maxlen: int = 100_000) -> None:
        self.recorded = deque(maxlen=maxlen)
        self.active = True

    def emit(self, event_kind: str, world: str, /, **fields: Any) -> Event | None:
        if not self.active:
            return None
        self._seq += 1
        ev = Event(self._seq, event_kind, world, fields, time.time())
        if self.recorded.maxlen != 0:
            self.recorded.append(ev)
        for sink in self._sinks:
            sink(ev)
        return ev

    def of_kind(self, *kinds: str) -> list[Event]:
        return [e for e in self.recorded if e.kind in kinds]

    def clear(self) -> None:
        self.recorded.clear()

    def extend(self, events: Iterable[Event]) -> None:
        for e in events:
            self.emit(e.kind, e.world, **e.fields)
