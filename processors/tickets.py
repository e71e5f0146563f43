"""The ticket book: every ticket the detector knows, changed by its events, and forgotten when long quiet.

It owns the ticket lifecycle (open, status, pause, reopen, resolve), the SLA policy each ticket falls
under, and expiry; it hands each clock to the schedule (`sla_schedule`), fires thresholds through
`sla_alerts` and ratings through `csat`, and tells the other detectors what an event did (`TicketFacts`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from mypy_extensions import mypyc_attr

from processors.alerting import AlertBook
from processors.calendar import AlwaysOpen, BusinessCalendar, SlaCalendar
from processors.csat import RULES as RATING_RULES
from processors.csat import Ratings
from processors.detector import NO_EVENT_TYPES, Observation, TicketFacts
from processors.sla import SlaTargets, sla_targets
from processors.sla_alerts import BREACH_RULES, SlaAlerts
from processors.sla_schedule import FIRST_RESPONSE_RULES, RESOLUTION_RULES, SlaSchedule
from processors.ticket_alerts import TicketAlerts
from processors.ticket_state import TicketState
from schemas.alert import Alert
from schemas.config import DetectionConfig
from schemas.event import ContactEvent, EventType, TicketStatus
from schemas.ticket import TicketSnapshot

_CLOCK_RULES: Final = (*FIRST_RESPONSE_RULES, *RESOLUTION_RULES)
_ALL_TICKET_RULES: Final = (*_CLOCK_RULES, *RATING_RULES)
_DONE: Final = (TicketStatus.RESOLVED, TicketStatus.CLOSED)

_CONTACT_RECEIVED: Final = EventType.CONTACT_RECEIVED
_AGENT_REPLIED: Final = EventType.AGENT_REPLIED
_STATUS_CHANGED: Final = EventType.STATUS_CHANGED
_ASSIGNED: Final = EventType.ASSIGNED
_ESCALATED: Final = EventType.ESCALATED
_CSAT_SUBMITTED: Final = EventType.CSAT_SUBMITTED
_WAITING_CUSTOMER: Final = TicketStatus.WAITING_CUSTOMER


@mypyc_attr(allow_interpreted_subclasses=True)
class TicketBook:
    def __init__(
        self,
        config: DetectionConfig,
        business: BusinessCalendar,
        alerts: AlertBook,
        track_changes: bool = True,
    ) -> None:
        self._config = config
        self._business = business
        self._always = AlwaysOpen()
        self._alerts = TicketAlerts(alerts)
        self._sla_alerts = SlaAlerts(config, self._alerts)
        self._ratings = Ratings(config, business, self._alerts)
        self._schedule = SlaSchedule(config.sla.at_risk_fraction)
        self.tickets: dict[str, TicketState] = {}
        self.touched: set[str] | None = set() if track_changes else None
        """Tickets whose state changed since the caller last took them (`take_touched`); None when the
        caller keeps no ticket-state table (replay), so nothing accumulates."""
        self.facts = TicketFacts()
        """The facts of the last `apply` (one object, overwritten: it is read right after each call)."""
        self._policies: dict[tuple[object, ...], SlaTargets | None] = {}

    # -- calendars -------------------------------------------------------------------------------------
    def calendar_of(self, ticket: TicketState) -> SlaCalendar:
        return self._business if ticket.calendar == "business" else self._always

    # -- events ----------------------------------------------------------------------------------------
    def snapshot(self, ticket: TicketState) -> TicketSnapshot:
        """The ticket's row for the `tickets` table."""
        return ticket.snapshot(self.calendar_of(ticket))

    def snapshot_json(self, ticket: TicketState) -> bytes:
        """The ticket's row as published (the bytes of `snapshot(ticket).to_json()`, built faster)."""
        return ticket.snapshot_json(self.calendar_of(ticket))

    def take_touched(self) -> list[TicketState]:
        """The tickets changed since the last call, for the ticket-state sink."""
        if self.touched is None:
            return []
        changed = [self.tickets[t] for t in sorted(self.touched) if t in self.tickets]
        self.touched.clear()
        return changed

    def apply(self, event: ContactEvent, ts: float, alerts: list[Alert]) -> TicketState:
        """Apply `event` (stamped `ts`, its epoch seconds) to its ticket; alerts are appended to `alerts`.

        What other detectors need to know is left in `self.facts`.
        """
        at = event.occurred_at
        ticket_id = event.ticket_id
        kind = event.type
        if self.touched is not None:
            self.touched.add(ticket_id)
        facts = self.facts
        facts.opened = facts.finished = facts.first_escalation = False
        facts.resolution_seconds = None
        # Whether each clock's target, run state or spent time may have moved (then its thresholds are
        # checked against what they were computed from).
        first_response_moved = resolution_moved = True
        tickets = self.tickets
        ticket = tickets.get(ticket_id)
        if ticket is None:
            ticket = TicketState(
                ticket_id=ticket_id,
                opened_at=at,
                first_seen_mid_life=kind is not _CONTACT_RECEIVED,
                last_event_at=at,
                last_event_ts=ts,
            )
            tickets[ticket_id] = ticket
            ticket.absorb(event)
            self._apply_policy(ticket, ts)
            if not ticket.first_seen_mid_life:
                # First seen mid-life (the stream started after it opened), a reply may already have
                # been sent: no first-response clock rather than a false alarm. The resolution clock
                # runs from the first event seen, which can only under-state the time spent.
                ticket.first_response.run(ts)
            ticket.resolution.run(ts)
            facts.opened = kind is _CONTACT_RECEIVED
        else:
            # Re-inserted so the book stays in order of last activity: `expire` reads only its head.
            del tickets[ticket_id]
            tickets[ticket_id] = ticket
            ticket.absorb(event)
            if (
                event.priority is not None
                or event.category is not None
                or event.customer_tier is not None
                or event.kind is not None
                or (event.channel is not None and ticket.policy is None)
            ):
                self._apply_policy(ticket, ts)
            else:
                resolution_moved = kind is _STATUS_CHANGED
                first_response_moved = ticket.first_response.met_at is None and (
                    resolution_moved or kind is _AGENT_REPLIED
                )
            if ts > ticket.last_event_ts:
                ticket.last_event_at = at
                ticket.last_event_ts = ts

        if event.agent is not None and (kind is _AGENT_REPLIED or kind is _ASSIGNED):
            ticket.agent = event.agent
        if kind is _AGENT_REPLIED:
            ticket.agent_replies += 1
            if ticket.first_response.met_at is None:
                ticket.first_response.meet(ts, self.calendar_of(ticket))
                if not ticket.first_seen_mid_life:
                    ticket.first_response_at = at
                if ticket.firing_rules:
                    self._alerts.resolve(ticket, FIRST_RESPONSE_RULES, at, alerts)
            self._ratings.answered(ticket, at, alerts)
        elif kind is _STATUS_CHANGED and event.status is not None:
            self._change_status(ticket, event.status, at, ts, facts, alerts)
        elif kind is _ASSIGNED:
            ticket.touches += 1
            if event.team:
                ticket.teams.append(event.team)
        elif kind is _ESCALATED:
            facts.first_escalation = ticket.escalations == 0
            ticket.escalations += 1
            if event.team:
                ticket.teams.append(event.team)
        elif kind is _CSAT_SUBMITTED and event.score is not None:
            alert = self._ratings.rated(ticket, event.score, at)
            if alert is not None:
                alerts.append(alert)
        if first_response_moved or resolution_moved:
            calendar = self.calendar_of(ticket)
            if first_response_moved:
                self._schedule.reschedule(ticket, ticket.first_response, FIRST_RESPONSE_RULES, calendar, ts)
            if resolution_moved:
                self._schedule.reschedule(ticket, ticket.resolution, RESOLUTION_RULES, calendar, ts)
        return ticket

    def _change_status(
        self,
        ticket: TicketState,
        status: TicketStatus,
        at: datetime,
        ts: float,
        facts: TicketFacts,
        alerts: list[Alert],
    ) -> None:
        was_done = ticket.done
        if status in _DONE:
            if not was_done:
                calendar = self.calendar_of(ticket)
                ticket.resolution.meet(ts, calendar)
                if ticket.first_response.met_at is None:
                    ticket.first_response.meet(ts, calendar)  # moot once the ticket is solved
                ticket.resolved_at = at
                facts.finished = True
                ticket.resolution_sla_seconds = ticket.resolution.spent_seconds
                ticket.resolution_calendar_seconds = (at - ticket.opened_at).total_seconds()
                if not ticket.resolution_recorded and not ticket.first_seen_mid_life:
                    ticket.resolution_recorded = True
                    facts.resolution_seconds = ticket.resolution_sla_seconds
                if ticket.firing_rules:
                    self._alerts.resolve(ticket, _CLOCK_RULES, at, alerts)
        elif status is _WAITING_CUSTOMER:
            if was_done:
                ticket.reopens += 1
                ticket.resolution.met_at = None
            ticket.resolution.pause(ts, self.calendar_of(ticket))
        else:
            if was_done:
                ticket.reopens += 1
                ticket.resolution.reopen(ts)
            else:
                ticket.resolution.run(ts)
        ticket.status = str(status)  # the plain value (str() of a StrEnum member)

    def _apply_policy(self, ticket: TicketState, ts: float) -> None:
        sla = self._config.sla
        # A policy depends on these fields only, and few combinations occur: choose each once.
        inputs = (
            ticket.channel,
            ticket.category,
            ticket.explicit_priority,
            ticket.kind,
            ticket.customer_tier,
        )
        if inputs in self._policies:
            targets = self._policies[inputs]
        else:
            targets = self._policies[inputs] = sla_targets(sla, ticket)
        if targets is None:
            ticket.policy = None
            ticket.first_response.target_seconds = 0.0
            ticket.resolution.target_seconds = 0.0
            return
        if ticket.policy is not None and ticket.calendar != targets.calendar:
            # Working time already spent was measured on the old calendar; carry it over as it is.
            for clock in (ticket.first_response, ticket.resolution):
                if clock.running_since is not None:
                    clock.spent_seconds = clock.spent(ts, self.calendar_of(ticket))
                    clock.running_since = ts
        ticket.policy = targets.policy
        ticket.calendar = targets.calendar
        ticket.first_response.target_seconds = targets.first_response_seconds
        ticket.resolution.target_seconds = targets.resolution_seconds

    # -- the detector protocol: SLA deadlines and expiry -------------------------------------------------
    # It observes nothing more: the book applied the event before the detectors see it (`apply`), and
    # the SLA alerts the event changed came out of that step.
    observes = NO_EVENT_TYPES
    keeps_deadlines = True

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        pass

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        # A scan over every ticket: once a day is enough to keep memory bounded.
        return self.expire(at) if at.hour == 0 else []

    @property
    def due_bound(self) -> float:
        ratings = self._ratings.due_bound
        thresholds = self._schedule.due_bound
        return ratings if ratings < thresholds else thresholds

    def next_due(self) -> float:
        return min(self._schedule.next_due(), self._ratings.next_due())

    def fire_due(self, now: float, stream_start: datetime) -> list[Alert]:
        """Fire every valid threshold due at or before `now` (epoch seconds), in time order."""
        alerts: list[Alert] = []
        schedule = self._schedule
        for deadline in schedule.pop_due(now):
            ticket, clock = deadline.ticket, deadline.clock
            calendar = self.calendar_of(ticket)
            alert, breach = self._sla_alerts.fire(ticket, clock, deadline.rule, deadline.due, calendar)
            if alert is not None:
                alerts.append(alert)
                if self.touched is not None and deadline.rule in BREACH_RULES:
                    self.touched.add(ticket.ticket_id)  # its row says breached from now on
            schedule.push_next(ticket, clock, deadline.rules, calendar, deadline.due, breach)
        if self._ratings.due_bound <= now:
            alerts += self._ratings.fire_due(now)
        return alerts

    # -- memory ----------------------------------------------------------------------------------------
    def expire(self, now: datetime) -> list[Alert]:
        """Forget tickets long closed or long silent, so memory stays bounded."""
        engine = self._config.engine
        closed_horizon = now.timestamp() - engine.closed_ticket_retention_days * 86400
        open_horizon = now.timestamp() - engine.open_ticket_retention_days * 86400
        alerts: list[Alert] = []
        # The book is in order of last activity (nearly of last_event_at: input is at most minutes out
        # of order), so the scan stops at the first ticket active within the shorter horizon.
        shorter = max(closed_horizon, open_horizon)
        expired = []
        for ticket_id, ticket in self.tickets.items():
            if ticket.last_event_ts >= shorter:
                break
            if ticket.last_event_ts < (closed_horizon if ticket.done else open_horizon):
                expired.append(ticket_id)
        for ticket_id in expired:
            ticket = self.tickets.pop(ticket_id)
            self._schedule.void(ticket)
            self._ratings.forget(ticket)
            self._alerts.resolve(ticket, _ALL_TICKET_RULES, now, alerts)
            self._alerts.forget(ticket, _ALL_TICKET_RULES)
        return alerts
