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
from processors.tickets import TicketBook
from processors.trends import TrendDetectors
from processors.windows import HOUR, next_hour_boundary
from schemas.alert import Alert
from schemas.config import DetectionConfig
from schemas.event import ContactEvent, ContactKind, EventType

STATE_FORMAT: Final = 2
"""The shape of the engine's state as checkpoints pickle it; bump it when a state class changes."""


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"


@dataclass
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
    recent_since: datetime | None = None
    latest: datetime | None = None

    def seen(self, event_id: str) -> bool:
        return event_id in self.recent or event_id in self.older

    def add(self, event_id: str, at: datetime) -> None:
        self.recent.add(event_id)
        if self.latest is None or at > self.latest:
            self.latest = at
        if self.recent_since is None:
            self.recent_since = at

    def prune(self, before: datetime) -> None:
        """Forget ids whose generation started before `before` and ended a horizon ago."""
        if self.recent_since is not None and self.recent_since <= before:
            self.older, self.recent = self.recent, set()
            self.recent_since = self.latest


class DetectionEngine:
    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.alerts = AlertBook()
        self.calendar = BusinessCalendar(config.business_hours)
        self.tickets = TicketBook(config, self.calendar, self.alerts)
        self.trends = TrendDetectors(config, self.alerts)
        self.silence = SilenceDetector(config, self.alerts)
        self.incidents = IncidentDetector(config, self.alerts)
        self.features = FeatureClusters(config, self.alerts)
        self.repeats = RepeatContacts(config, self.alerts)
        self.seen = SeenEvents()
        self.clock: datetime | None = None
        self.stream_start: datetime | None = None
        self._next_hour: datetime | None = None
        self._next_hour_ts = math.inf
        self._lateness = timedelta(minutes=config.engine.allowed_lateness_minutes)
        self._dedupe = timedelta(hours=config.engine.dedupe_hours)

    # -- input -----------------------------------------------------------------------------------------
    def observe(self, event: ContactEvent) -> Outcome:
        at = event.occurred_at
        if self.clock is not None and self.seen.seen(event.event_id):
            return Outcome(Verdict.DUPLICATE, detail=f"event_id {event.event_id!r} was already processed")
        if self.clock is not None and at < self.clock - self._lateness:
            behind = (self.clock - at).total_seconds()
            allowed = self._lateness.total_seconds()
            return Outcome(
                Verdict.LATE,
                detail=f"occurred_at {at.isoformat()} is {behind:.0f} s behind the stream clock "
                f"{self.clock.isoformat()} (allowed: {allowed:.0f} s)",
            )
        if self.clock is None:
            self.clock = self.stream_start = at
            self._next_hour = next_hour_boundary(at)
            self._next_hour_ts = self._next_hour.timestamp()
        self.seen.add(event.event_id, at)
        # Most events have no deadline before them: four float comparisons instead of the full search.
        due_before = self._due_bound() < at.timestamp()
        alerts = self._run_until(at, inclusive=False) if due_before else []
        if at > self.clock:
            self.clock = at
        alerts += self._apply(event)
        return Outcome(Verdict.ACCEPTED, alerts)

    def advance_to(self, instant: datetime) -> list[Alert]:
        """Move the clock to `instant` (never back), firing every deadline up to and including it."""
        if self.clock is None or instant <= self.clock:
            return self._run_until(instant, inclusive=True) if self.clock is not None else []
        alerts = self._run_until(instant, inclusive=True)
        self.clock = instant
        return alerts

    def _apply(self, event: ContactEvent) -> list[Alert]:
        at = event.occurred_at
        alerts, facts = self.tickets.apply(event)
        ticket = self.tickets.tickets[event.ticket_id]
        if event.type is EventType.CONTACT_RECEIVED:
            self.trends.count_contact(event)
            if event.channel is not None:
                alerts += self.silence.contact(event.channel.value, at)
            if event.error_code:
                alerts += self.incidents.report(event.error_code, ticket.customer_id, ticket.ticket_id, at)
            kind = event.kind or ticket.kind
            text = event.text or event.subject
            if kind is ContactKind.FEATURE_REQUEST and text:
                alerts += self.features.request(
                    event.event_id, ticket.ticket_id, ticket.customer_id, text, at
                )
        if facts.opened:
            self.trends.ticket_opened(ticket.topic, ticket.opened_at)
            alerts += self.repeats.ticket_opened(ticket.ticket_id, ticket.customer_id, ticket.topic, at)
        if facts.first_escalation and not ticket.first_seen_mid_life:
            self.trends.ticket_escalated(ticket.topic, ticket.opened_at)
        if facts.resolution_seconds is not None:
            self.trends.ticket_resolved(ticket.topic, at, facts.resolution_seconds)
        if ticket.done:
            alerts += self.repeats.ticket_done(ticket.ticket_id, at)
        return alerts

    # -- time ------------------------------------------------------------------------------------------
    def _due_bound(self) -> float:
        """A lower bound of the next deadline, as epoch seconds (each part may be early, never late)."""
        return min(
            self._next_hour_ts,
            self.tickets.due_bound(),
            self.silence.due_bound(),
            self.incidents.due_bound(),
        )

    def _next_due(self) -> datetime | None:
        due = self._next_hour
        for candidate in (self.tickets.next_due(), self.silence.next_due(), self.incidents.next_due()):
            if candidate is not None and (due is None or candidate < due):
                due = candidate
        return due

    def _run_until(self, limit: datetime, inclusive: bool) -> list[Alert]:
        alerts: list[Alert] = []
        assert self.stream_start is not None
        while True:
            due = self._next_due()
            if due is None or due > limit or (due == limit and not inclusive):
                return alerts
            alerts += self.tickets.fire_due(due)
            if self.incidents.next_due() == due:
                alerts += self.incidents.fire_due(due)
            if self.silence.next_due() == due:
                alerts += self.silence.fire_due(due, self.stream_start)
            if self._next_hour == due:
                alerts += self._hourly(due)
                self._next_hour = due + HOUR
                self._next_hour_ts = self._next_hour.timestamp()

    def _hourly(self, at: datetime) -> list[Alert]:
        assert self.stream_start is not None
        alerts = self.trends.evaluate(at, self.stream_start)
        alerts += self.features.expire(at)
        self.silence.prune(at)
        self.incidents.prune(at)
        self.seen.prune(at - self._dedupe)
        if at.hour == 0:
            # Scans over every ticket and customer: once a day is enough to keep memory bounded.
            alerts += self.tickets.expire(at)
            self.repeats.prune(at)
        return alerts
