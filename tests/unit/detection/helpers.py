"""Builders for detection tests: events at local Moscow times, an engine, the alerts it emits."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from processors.engine import DetectionEngine, Outcome
from processors.silence import SilenceDetector
from schemas.alert import Alert
from schemas.config import DetectionConfig
from schemas.event import ContactEvent

MSK = ZoneInfo("Europe/Moscow")
_ids = itertools.count(1)


def msk(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    """A Moscow wall-clock instant in 2026 (23 Nov 2026 is a Monday)."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=MSK)


def event(type_: str, at: datetime, ticket: str = "T-1", **fields: Any) -> ContactEvent:
    return ContactEvent.model_validate(
        {
            "event_id": fields.pop("event_id", f"e-{next(_ids)}"),
            "type": type_,
            "occurred_at": at,
            "ticket_id": ticket,
            **fields,
        }
    )


def config(**sections: Any) -> DetectionConfig:
    """Defaults, without a country's holiday table unless a test asks (tests pick their own dates)."""
    base: dict[str, Any] = {"business_hours": {"holiday_country": None}}
    for name, value in sections.items():
        base[name] = {**base.get(name, {}), **value} if isinstance(value, dict) else value
    return DetectionConfig.model_validate(base)


class Run:
    """An engine plus every alert state change it emitted, in order."""

    def __init__(self, cfg: DetectionConfig | None = None) -> None:
        self.engine = DetectionEngine(cfg or config())
        self.alerts: list[Alert] = []

    def feed(self, *events: ContactEvent) -> list[Outcome]:
        outcomes = []
        for item in events:
            outcome = self.engine.observe(item)
            self.alerts += outcome.alerts
            outcomes.append(outcome)
        return outcomes

    def advance(self, to: datetime) -> None:
        self.alerts += self.engine.advance_to(to)

    def use_silence(self, detector: type[SilenceDetector]) -> None:
        """Put an instance of `detector` (a SilenceDetector subclass that counts or changes a step)
        where the engine's own silence detector was, in every place the engine calls it from."""
        engine, old = self.engine, self.engine.silence
        new = detector(engine.config, engine.alerts)
        engine.silence = new
        engine.replace_detector(old, new)

    def of(self, rule: str) -> list[Alert]:
        return [a for a in self.alerts if a.rule == rule]

    def states(self, rule: str) -> list[tuple[str, datetime, datetime | None]]:
        return [(a.status.value, a.starts_at, a.ends_at) for a in self.of(rule)]


def every(start: datetime, step: timedelta, count: int) -> list[datetime]:
    return [start + step * n for n in range(count)]
