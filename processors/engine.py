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

from processors.alerting import AlertBook
from processors.calendar import BusinessCalendar
from processors.features import FeatureClusters
from processors.incidents import IncidentDetector
from processors.repeats import RepeatContacts
from processors.silence import SilenceDetector
from processors.sla import TicketState
from processors.tickets import TicketBook
from processors.trends import TrendDetectors
from processors.windows import HOUR, hour_index, hour_of, next_hour_boundary
from schemas.alert import Alert
from schemas.config import DetectionConfig
from schemas.errors import DeadLetterReason
from schemas.event import ContactEvent, ContactKind, EventType

STATE_FORMAT: Final = 7
"""The shape of the engine's state as checkpoints pickle it; bump it when a state class changes."""


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"


REFUSAL_REASON: Final = {Verdict.DUPLICATE: DeadLetterReason.DUPLICATE, Verdict.LATE: DeadLetterReason.LATE}
"""The dead-letter reason of each verdict that does not apply an event (replay and the worker both use it)."""


@dataclass(slots=True)
class Outcome:
    verdict: Verdict
    alerts: list[Alert] = field(default_factory=list)
    detail: str = ""


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


# Enum members as module globals: on the hot path a class attribute look-up costs ten times more.
_CONTACT_RECEIVED: Final = EventType.CONTACT_RECEIVED
_FEATURE_REQUEST: Final = ContactKind.FEATURE_REQUEST
_ACCEPTED: Final = Verdict.ACCEPTED


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
        self.repeats = RepeatContacts(config, self.alerts)
        self.seen = SeenEvents()
        self.clock: datetime | None = None
        self._clock_ts = -math.inf
        """`clock` as epoch seconds: the hot path compares floats."""
        self.stream_start: datetime | None = None
        self._next_hour: datetime | None = None
        self._next_hour_ts = math.inf
        self._lateness_seconds = timedelta(minutes=config.engine.allowed_lateness_minutes).total_seconds()
        self._dedupe_seconds = timedelta(hours=config.engine.dedupe_hours).total_seconds()

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
        # Most events have no deadline before them: four float comparisons instead of the full search.
        if (
            self._next_hour_ts < ts
            or self.tickets.due_bound < ts
            or self.silence.due_bound < ts
            or self.incidents.due_bound < ts
        ):
            self._run_until(ts, False, alerts)
        if ts > self._clock_ts:
            self.clock = at
            self._clock_ts = ts
        self._apply(event, ts, alerts)
        return Outcome(_ACCEPTED, alerts)

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

    def _apply(self, event: ContactEvent, ts: float, alerts: list[Alert]) -> None:
        at = event.occurred_at
        tickets = self.tickets
        ticket = tickets.apply(event, ts, alerts)
        facts = tickets.facts
        if event.type is _CONTACT_RECEIVED:
            hour = hour_of(ts)
            self.trends.count_contact(event, hour)
            if event.channel is not None:
                alerts += self.silence.contact(str(event.channel), at, ts)
            if event.error_code:
                alerts += self.incidents.report(event.error_code, ticket.customer_id, ticket.ticket_id, at)
            kind = event.kind or ticket.kind
            if kind is _FEATURE_REQUEST:
                text = event.text or event.subject
                if text:
                    alerts += self.features.request(
                        event.event_id,
                        ticket.ticket_id,
                        ticket.customer_id,
                        text,
                        at,
                        _area_of(ticket),
                    )
            if facts.opened:
                self.trends.ticket_opened(ticket.topic, hour)
                alerts += self.repeats.ticket_opened(
                    ticket.ticket_id, ticket.customer_id, ticket.topic, at, ts
                )
        if facts.first_escalation and not ticket.first_seen_mid_life:
            self.trends.ticket_escalated(ticket.topic, hour_index(ticket.opened_at))
        if facts.resolution_seconds is not None:
            self.trends.ticket_resolved(ticket.topic, hour_of(ts), facts.resolution_seconds)
        if facts.finished:
            alerts += self.repeats.ticket_done(ticket.ticket_id, at)

    # -- time ------------------------------------------------------------------------------------------
    def _run_until(self, limit: float, inclusive: bool, alerts: list[Alert]) -> None:
        """Fire every deadline before `limit` (epoch seconds; at it too when `inclusive`), in time order."""
        assert self.stream_start is not None
        tickets, silence, incidents = self.tickets, self.silence, self.incidents
        while True:
            # Silence and incidents give a cheap lower bound first; their exact next check is asked for
            # only when that bound is within reach.
            silence_ts = silence.next_due() if silence.due_bound <= limit else math.inf
            incident_at = incidents.next_due() if incidents.due_bound <= limit else None
            incident_ts = incident_at.timestamp() if incident_at is not None else math.inf
            due = min(tickets.next_due(), silence_ts, incident_ts, self._next_hour_ts)
            if due > limit or (due == limit and not inclusive):
                return
            tickets.fire_due(due, alerts)
            if incident_at is not None and incident_ts == due:
                alerts += incidents.fire_due(incident_at)
            if silence_ts == due:
                alerts += silence.fire_due(due, self.stream_start)
            if self._next_hour is not None and self._next_hour_ts == due:
                alerts += self._hourly(self._next_hour)
                self._next_hour += HOUR
                self._next_hour_ts = self._next_hour.timestamp()

    def _hourly(self, at: datetime) -> list[Alert]:
        assert self.stream_start is not None
        alerts = self.trends.evaluate(at, self.stream_start)
        alerts += self.features.expire(at)
        self.silence.prune(at)
        self.incidents.prune(at)
        self.seen.prune(at.timestamp() - self._dedupe_seconds, self._clock_ts)
        if at.hour == 0:
            # Scans over every ticket and customer: once a day is enough to keep memory bounded.
            alerts += self.tickets.expire(at)
            self.repeats.prune(at)
        return alerts


def _area_of(ticket: TicketState) -> dict[str, str]:
    """The product area of a feature request: its ticket's topic and category, where known."""
    area = {}
    if ticket.topic:
        area["topic"] = ticket.topic
    if ticket.category is not None:
        area["category"] = ticket.category.value
    return area
