"""The engine calls a detector's `observe` only for the event types it declares (`observes`): calling
every detector on every event must change nothing."""

from __future__ import annotations

from collections import deque
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

from processors.detector import ALL_EVENT_TYPES
from processors.engine import DetectionEngine
from schemas.config import load_config
from schemas.errors import InvalidEvent
from schemas.event import EventType, parse_contact_event
from simulation.traffic import MOSCOW, TrafficSimulator


def alerts_of(engine: DetectionEngine, lines: list[bytes]) -> list[bytes]:
    out = []
    for line in lines:
        try:
            event = parse_contact_event(line)
        except InvalidEvent:
            continue
        out += [alert.to_json_line() for alert in engine.observe(event).alerts]
    assert engine.clock is not None
    return out + [alert.to_json_line() for alert in engine.advance_to(engine.clock)]


def test_each_detector_sees_every_event_type_that_can_change_what_it_alerts() -> None:
    start = datetime(2026, 10, 5, tzinfo=MOSCOW)
    simulator = TrafficSimulator(seed=3, start=start, new_tickets_per_peak_hour=120.0)
    records = sorted(simulator.advance(start + timedelta(days=9)), key=lambda record: record.occurred_at)
    lines = [record.value for record in records if record.source is None]
    default = load_config()
    # The one detector off by default observes every type: on here, so it is held to the same.
    config = default.model_copy(
        update={"queue_risk": default.queue_risk.model_copy(update={"enabled": True})}
    )

    dispatched = DetectionEngine(config)
    every = DetectionEngine(config)
    every._observers = {kind: tuple(d for d in every.detectors if d.observes) for kind in EventType}
    assert dispatched._observers[EventType.AGENT_REPLIED] != every._observers[EventType.AGENT_REPLIED]
    assert any(d.observes == ALL_EVENT_TYPES for d in dispatched.detectors)

    expected = alerts_of(every, lines)
    assert len(expected) > 1_000
    assert alerts_of(dispatched, lines) == expected
    # And what each detector keeps (counts, windows, clusters), whether or not it fired in these days.
    for ours, reference in zip(dispatched.detectors, every.detectors, strict=True):
        assert plain(ours) == plain(reference), type(ours).__name__


def plain(value: Any, depth: int = 0) -> Any:
    """A detector's state as nested plain data (pickles of equal states differ in how they share
    objects), down to a depth that covers windows, counters and clusters."""
    if depth > 8 or value is None or isinstance(value, str | int | float | bool | date | Enum):
        return value
    if isinstance(value, dict):
        return {repr(plain(k, depth + 1)): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | deque):
        return [plain(item, depth + 1) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(repr(plain(item, depth + 1)) for item in value)
    if callable(value):
        return getattr(value, "__qualname__", type(value).__name__)
    names = [name for klass in type(value).__mro__ for name in getattr(klass, "__slots__", ())]
    names += list(getattr(value, "__dict__", {}))
    # (A term extractor is tables built from the config, with a cache of texts seen by either engine.)
    return {name: plain(getattr(value, name, None), depth + 1) for name in names if name != "_terms"}
