"""The event bus: every world switch, call, return and fault goes through here.

Tracing and the debugger subscribe to it; tests record from it. Events carry a sequence number
and the world that produced them. Emitting is cheap when nobody listens (``bus.active`` is
False), so hot paths guard their emits with ``if bus.active``.
"""
from __future__ import annotations

from time import time as _time
from collections import deque
from operator import itemgetter
from typing import Any, Callable, Iterable


class Event(tuple):
    """One event: ``seq``, ``kind`` ("world_switch", "smc", "smc_return", "fault", "msg",
    "ta_syscall", ...), ``world`` ("NS-EL1", "EL3", "S-EL1", "S-EL0"), ``fields`` and
    ``wall`` (wall time, for humans only; never compared or written to golden files).

    Immutable, like the frozen dataclass it replaces: a tuple underneath, because the bus
    makes one per event on hot paths and a tuple is made four times faster."""

    __slots__ = ()

    def __new__(cls, seq: int, kind: str, world: str, fields: dict[str, Any] | None = None,
                wall: float = 0.0) -> "Event":
        return _new(cls, (seq, kind, world, {} if fields is None else fields, wall))

    seq: int = property(itemgetter(0))                    # type: ignore[assignment]
    kind: str = property(itemgetter(1))                   # type: ignore[assignment]
    world: str = property(itemgetter(2))                  # type: ignore[assignment]
    fields: dict[str, Any] = property(itemgetter(3))      # type: ignore[assignment]
    wall: float = property(itemgetter(4))                 # type: ignore[assignment]

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return (f"Event(seq={self.seq!r}, kind={self.kind!r}, world={self.world!r}, "
                f"fields={self.fields!r}, wall={self.wall!r})")

    def to_dict(self) -> dict[str, Any]:
        """Flat form; a field that collides with seq/kind/world is kept as ``<kind>_<name>``
        (an SMC's ``kind`` becomes ``smc_kind``) instead of overwriting the event's own."""
        out = {"seq": self.seq, "kind": self.kind, "world": self.world}
        for k, v in self.fields.items():
            out[f"{self.kind}_{k}" if k in out else k] = v
        return out


_new = tuple.__new__


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
        self._seq = seq = self._seq + 1
        ev = _new(Event, (seq, event_kind, world, fields, _time()))
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
