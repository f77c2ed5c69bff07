"""emu.events: the event bus and the flat form of its events."""


def test_to_dict_keeps_the_event_kind_when_a_field_is_also_called_kind():
    from emu.events import EventBus
    bus = EventBus(record=10)
    bus.emit("fault", "NS-EL1", kind="read abort", pc=4)
    d = bus.recorded[-1].to_dict()
    assert d["kind"] == "fault" and d["fault_kind"] == "read abort" and d["pc"] == 4
