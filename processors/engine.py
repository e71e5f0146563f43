"""The detection engine: one clock, one stream of events, every detector, alert state changes out.

The same engine runs under `contactpulse replay` and inside the Faust worker. Its clock is the largest
`occurred_at` seen so far; a deadline (an SLA threshold, an hourly evaluation, a silence check, the end
of an incident) fires when the clock reaches it, in time order, before any event stamped later is
applied. An event stamped exactly at a deadline is applied first: a reply at the due instant is in
time. Input is at-least-once and slightly unordered: an id seen in the last 24 h of event time is a
duplicate; an event older than the clock by more than the allowed lateness (5 min) is late. Neither is
applied; the caller dead-letters them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from mypy_extensions import mypyc_attr

from processors.alerting import AlertBook
from processors.calendar import BusinessCalendar
from processors.detector import Detector, Observation
from processors.features import FeatureClusters
from processors.incidents import IncidentDetector
from processors.rates import TicketRates
from processors.repeats import RepeatContacts
from processors.silence import SilenceDetector
from processors.sla_queue import QueueRisk
from processors.tickets import TicketBook
from processors.trends import TrendDetectors
from processors.windows import HOUR, next_hour_boundary
from schemas.alert import Alert
from schemas.config import DetectionConfig
from schemas.errors import DeadLetterReason
from schemas.event import ContactEvent, EventType

STATE_FORMAT: Final = 14
"""The shape of the engine's state as checkpoints pickle it; bump it when a state class changes."""


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"


REFUSAL_REASON: Final = {Verdict.DUPLICATE: DeadLetterReason.DUPLICATE, Verdict.LATE: DeadLetterReason.LATE}
"""The dead-letter reason of each verdict that does not apply an event (replay and the worker both use it)."""


@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    alerts: list[Alert] = field(default_factory=list)
    detail: str = ""


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class SeenEvents:
    """Event ids seen in the last 24 to about 48 hours of event time, in two generations of sets.

    A generation is retired whole once it is older than the dedupe horizon, so remembering an id is one
    set insertion and forgetting costs nothing per id; an id is kept at least the horizon and at most
    twice that plus the hour between two prunes.
    """

    recent: set[str] = field(default_factory=set)
    older: set[str] = field(default_factory=set)
    recent_since: float = math.inf
    """The stream clock (epoch seconds) when `recent` began: every id in `older` is at or before it."""

    def seen(self, event_id: str) -> bool:
        return event_id in self.recent or event_id in self.older

    def add(self, event_id: str) -> None:
        """Remember an id; the caller keeps `recent_since` (the engine sets it at the stream's start)."""
        self.recent.add(event_id)

    def prune(self, before: float, clock: float) -> None:
        """Drop `older` once `recent` began at or before `before` (a horizon ago): every id in `older`
        is then at least a horizon old. `clock` is the stream clock, when the new `recent` begins."""
        if self.recent_since <= before:
            self.older, self.recent = self.recent, set()
            self.recent_since = clock


_ACCEPTED: Final = Verdict.ACCEPTED
_QUIET: Final = Outcome(Verdict.ACCEPTED)
"""The outcome of most events (accepted, no alert changed): one shared object, never changed."""


@mypyc_attr(allow_interpreted_subclasses=True)
class DetectionEngine:
    def __init__(self, config: DetectionConfig, track_ticket_changes: bool = True) -> None:
        """`track_ticket_changes`: keep the set of tickets changed since `tickets.take_touched()` (the
        worker writes them to ClickHouse); `replay` writes no ticket table and turns it off."""
        self.config = config
        self.alerts = AlertBook()
        self.calendar = BusinessCalendar(config.business_hours)
        self.tickets = TicketBook(config, self.calendar, self.alerts, track_ticket_changes)
        self.trends = TrendDetectors(config, self.alerts)
        self.silence = SilenceDetector(config, self.alerts)
        self.incidents = IncidentDetector(config, self.alerts)
        self.features = FeatureClusters(config, self.alerts)
        self.rates = TicketRates(config, self.alerts)
        self.queues = QueueRisk(config, self.alerts, self.tickets.calendar_of)
        self.repeats = RepeatContacts(config, self.alerts)
        self.detectors: tuple[Detector, ...] = (
            self.tickets,
            self.queues,
            self.silence,
            self.incidents,
            self.features,
            self.trends,
            self.rates,
            self.repeats,
        )
        """In the order they see each event, fire at one instant, and do their hourly work."""
        self._observers: dict[EventType, tuple[Detector, ...]] = {}
        """Per event type, the detectors whose `observe` does something with it."""
        self._timed: tuple[Detector, ...] = ()
        self._index_detectors()
        self.seen = SeenEvents()
        self.clock: datetime | None = None
        self._clock_ts = -math.inf
        """`clock` as epoch seconds: the hot path compares floats."""
        self.stream_start: datetime | None = None
        self._next_hour: datetime | None = None
        self._next_hour_ts = math.inf
        self._lateness_seconds = timedelta(minutes=config.engine.allowed_lateness_minutes).total_seconds()
        self._dedupe_seconds = timedelta(hours=config.engine.dedupe_hours).total_seconds()
        self._seen = Observation(facts=self.tickets.facts)

    def _index_detectors(self) -> None:
        self._observers = {kind: tuple(d for d in self.detectors if kind in d.observes) for kind in EventType}
        self._timed = tuple(d for d in self.detectors if d.keeps_deadlines)

    def replace_detector(self, old: Detector, new: Detector) -> None:
        """Put `new` where `old` was: in the same place of the order, for the same events and deadlines
        (a test's detector that counts or changes a step; the attribute naming it is the caller's)."""
        self.detectors = tuple(new if d is old else d for d in self.detectors)
        self._index_detectors()

    # -- input -----------------------------------------------------------------------------------------

    def observe(self, event: ContactEvent, ts: float | None = None) -> Outcome:
        """Apply one event; `ts` is `occurred_at` in epoch seconds when the caller has it already."""
        at = event.occurred_at
        if ts is None:
            ts = at.timestamp()
        seen = self.seen
        event_id = event.event_id
        if self.clock is not None:
            if seen.seen(event_id):
                return Outcome(Verdict.DUPLICATE, detail=f"event_id {event_id!r} was already processed")
            if ts < self._clock_ts - self._lateness_seconds:
                return Outcome(
                    Verdict.LATE,
                    detail=f"occurred_at {at.isoformat()} is {self._clock_ts - ts:.0f} s behind the stream "
                    f"clock {self.clock.isoformat()} (allowed: {self._lateness_seconds:.0f} s)",
                )
        else:
            self.clock = self.stream_start = at
            self._clock_ts = ts
            seen.recent_since = ts
            self._next_hour = next_hour_boundary(at)
            self._next_hour_ts = self._next_hour.timestamp()
        seen.add(event_id)
        alerts: list[Alert] = []
        # Most events have no deadline before them: a few float comparisons instead of the full search.
        if self._next_hour_ts < ts:
            self._run_until(ts, False, alerts)
        else:
            for detector in self._timed:
                if detector.due_bound < ts:
                    self._run_until(ts, False, alerts)
                    break
        if ts > self._clock_ts:
            self.clock = at
            self._clock_ts = ts
        observation = self._seen
        observation.ticket = self.tickets.apply(event, ts, alerts)
        observation.event, observation.ts = event, ts
        for detector in self._observers[event.type]:
            detector.observe(observation, alerts)
        return Outcome(_ACCEPTED, alerts) if alerts else _QUIET

    def advance_to(self, instant: datetime) -> list[Alert]:
        """Move the clock to `instant` (never back), firing every deadline up to and including it."""
        alerts: list[Alert] = []
        if self.clock is None:
            return alerts
        ts = instant.timestamp()
        self._run_until(ts, True, alerts)
        if ts > self._clock_ts:
            self.clock = instant
            self._clock_ts = ts
        return alerts

    # -- time ------------------------------------------------------------------------------------------
    def _run_until(self, limit: float, inclusive: bool, alerts: list[Alert]) -> None:
        """Fire every deadline before `limit` (epoch seconds; at it too when `inclusive`), in time order:
        at one instant, the detectors' deadlines in their order, then the hour's work."""
        start = self.stream_start
        assert start is not None
        while True:
            # A detector's exact next deadline is asked for only when its cheap bound is within reach.
            dues = [d.next_due() if d.due_bound <= limit else math.inf for d in self._timed]
            due = min(self._next_hour_ts, *dues)
            if due > limit or (due == limit and not inclusive):
                return
            for detector, detector_due in zip(self._timed, dues, strict=True):
                if detector_due == due:
                    alerts += detector.fire_due(due, start)
            if self._next_hour is not None and self._next_hour_ts == due:
                alerts += self._hourly(self._next_hour, start)
                self._next_hour += HOUR
                self._next_hour_ts = self._next_hour.timestamp()

    def _hourly(self, at: datetime, start: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        for detector in self.detectors:
            alerts += detector.hourly(at, start)
        self.seen.prune(at.timestamp() - self._dedupe_seconds, self._clock_ts)
        return alerts
