"""The ticket book: every ticket's state, its SLA thresholds as deadlines, SLA and CSAT alerts.

Rules (subject `{"ticket_id"}`):
- `sla_first_response_at_risk` / `_breached`: 75% / 100% of the first-response target spent with no agent
  reply. Resolve at the first agent reply (or when the ticket is resolved or closed without one).
- `sla_resolution_at_risk` / `_breached`: the same for resolution; the clock pauses while the ticket waits
  on the customer. Resolve when the ticket is resolved or closed; a reopen starts a new episode.
- `negative_csat`: a CSAT score of 1 or 2; resolves at the next agent reply on the ticket.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from processors.alerting import AlertBook
from processors.calendar import AlwaysOpen, BusinessCalendar, SlaCalendar
from processors.sla import SlaClock, TicketState, choose_policy
from processors.summaries import duration_text, local_time, summarize
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig
from schemas.event import ContactEvent, EventType, Priority, TicketStatus

FIRST_RESPONSE_AT_RISK = "sla_first_response_at_risk"
FIRST_RESPONSE_BREACHED = "sla_first_response_breached"
RESOLUTION_AT_RISK = "sla_resolution_at_risk"
RESOLUTION_BREACHED = "sla_resolution_breached"
NEGATIVE_CSAT = "negative_csat"

_FIRST_RESPONSE_RULES = (FIRST_RESPONSE_AT_RISK, FIRST_RESPONSE_BREACHED)
_RESOLUTION_RULES = (RESOLUTION_AT_RISK, RESOLUTION_BREACHED)
_ALL_TICKET_RULES = (*_FIRST_RESPONSE_RULES, *_RESOLUTION_RULES, NEGATIVE_CSAT)
_CLOCK_RULES = (_FIRST_RESPONSE_RULES, _RESOLUTION_RULES)
_DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


# A deadline in the heap: (instant as epoch seconds, sequence, instant, (ticket id, clock index), rule,
# version of that clock's schedule). Plain tuples: the heap compares millions of them and a dataclass's
# generated __lt__ is ten times slower.
_ClockKey = tuple[str, int]
_Deadline = tuple[float, int, datetime, _ClockKey, str, int]


@dataclass
class TicketFacts:
    """What other detectors learn from a ticket event (computed once, here)."""

    opened: bool = False
    first_escalation: bool = False
    resolution_seconds: float | None = None


class TicketBook:
    def __init__(self, config: DetectionConfig, business: BusinessCalendar, alerts: AlertBook) -> None:
        self._config = config
        self._business = business
        self._always = AlwaysOpen()
        self._alerts = alerts
        self._zone = ZoneInfo(config.business_hours.time_zone)
        self.tickets: dict[str, TicketState] = {}
        self.touched: set[str] = set()
        """Tickets whose state changed since the caller last took them (`take_touched`)."""
        self._versions: dict[_ClockKey, int] = {}
        self._signatures: dict[_ClockKey, tuple[object, ...]] = {}
        self._deadlines: list[_Deadline] = []
        self._seq = 0
        hours = config.business_hours
        day = datetime.combine(datetime(2000, 1, 3).date(), hours.closes) - datetime.combine(
            datetime(2000, 1, 3).date(), hours.opens
        )
        self._business_day_seconds = day.total_seconds()

    # -- calendars -------------------------------------------------------------------------------------
    def calendar_of(self, ticket: TicketState) -> SlaCalendar:
        return self._business if ticket.calendar == "business" else self._always

    # -- events ----------------------------------------------------------------------------------------
    def take_touched(self) -> list[TicketState]:
        """The tickets changed since the last call, for the ticket-state sink."""
        changed = [self.tickets[t] for t in sorted(self.touched) if t in self.tickets]
        self.touched.clear()
        return changed

    def apply(self, event: ContactEvent) -> tuple[list[Alert], TicketFacts]:
        at = event.occurred_at
        self.touched.add(event.ticket_id)
        alerts: list[Alert] = []
        facts = TicketFacts()
        timing_changed = True  # whether a clock's target, run state or spent time may have moved
        ticket = self.tickets.get(event.ticket_id)
        if ticket is None:
            ticket = TicketState(
                ticket_id=event.ticket_id,
                opened_at=at,
                first_seen_mid_life=event.type is not EventType.CONTACT_RECEIVED,
                last_event_at=at,
            )
            self.tickets[event.ticket_id] = ticket
            ticket.absorb(event)
            self._apply_policy(ticket, at)
            if not ticket.first_seen_mid_life:
                # First seen mid-life (the stream started after it opened), a reply may already have
                # been sent: no first-response clock rather than a false alarm. The resolution clock
                # runs from the first event seen, which can only under-state the time spent.
                ticket.first_response.run(at)
            ticket.resolution.run(at)
            facts.opened = event.type is EventType.CONTACT_RECEIVED
        else:
            # Re-inserted so the book stays in order of last activity: `expire` reads only its head.
            del self.tickets[event.ticket_id]
            self.tickets[event.ticket_id] = ticket
            ticket.absorb(event)
            if (
                event.priority is not None
                or event.category is not None
                or event.customer_tier is not None
                or event.kind is not None
                or (event.channel is not None and ticket.policy is None)
            ):
                self._apply_policy(ticket, at)
            else:
                timing_changed = event.type is EventType.STATUS_CHANGED or (
                    event.type is EventType.AGENT_REPLIED and ticket.first_response.met_at is None
                )
        ticket.last_event_at = max(ticket.last_event_at, at)
        calendar = self.calendar_of(ticket)

        if event.type is EventType.AGENT_REPLIED:
            ticket.agent_replies += 1
            if ticket.first_response.met_at is None:
                ticket.first_response.meet(at, calendar)
                if not ticket.first_seen_mid_life:
                    ticket.first_response_at = at
                alerts += self._resolve(ticket, _FIRST_RESPONSE_RULES, at)
            if ticket.negative_csat_at is not None and at >= ticket.negative_csat_at:
                ticket.negative_csat_at = None
                alerts += self._resolve(ticket, (NEGATIVE_CSAT,), at)
        elif event.type is EventType.STATUS_CHANGED and event.status is not None:
            alerts += self._change_status(ticket, event.status, at, calendar, facts)
        elif event.type is EventType.ASSIGNED:
            ticket.touches += 1
            if event.team:
                ticket.teams.append(event.team)
        elif event.type is EventType.ESCALATED:
            facts.first_escalation = ticket.escalations == 0
            ticket.escalations += 1
            if event.team:
                ticket.teams.append(event.team)
        elif event.type is EventType.CSAT_SUBMITTED and event.score is not None:
            ticket.csat_score = event.score
            if event.score <= self._config.negative_csat.max_score:
                alerts += self._negative_csat(ticket, event.score, at)
        if timing_changed:
            self._schedule(ticket, at)
        return alerts, facts

    def _change_status(
        self,
        ticket: TicketState,
        status: TicketStatus,
        at: datetime,
        calendar: SlaCalendar,
        facts: TicketFacts,
    ) -> list[Alert]:
        alerts: list[Alert] = []
        was_done = ticket.done
        if status in _DONE:
            if not was_done:
                ticket.resolution.meet(at, calendar)
                if ticket.first_response.met_at is None:
                    ticket.first_response.meet(at, calendar)  # moot once the ticket is solved
                ticket.resolved_at = at
                ticket.resolution_sla_seconds = ticket.resolution.spent_seconds
                ticket.resolution_calendar_seconds = (at - ticket.opened_at).total_seconds()
                if not ticket.resolution_recorded and not ticket.first_seen_mid_life:
                    ticket.resolution_recorded = True
                    facts.resolution_seconds = ticket.resolution_sla_seconds
                alerts += self._resolve(ticket, (*_FIRST_RESPONSE_RULES, *_RESOLUTION_RULES), at)
        elif status is TicketStatus.WAITING_CUSTOMER:
            if was_done:
                ticket.reopens += 1
                ticket.resolution.met_at = None
            ticket.resolution.pause(at, calendar)
        else:
            if was_done:
                ticket.reopens += 1
                ticket.resolution.reopen(at)
            else:
                ticket.resolution.run(at)
        ticket.status = status.value
        return alerts

    def _negative_csat(self, ticket: TicketState, score: int, at: datetime) -> list[Alert]:
        ticket.negative_csat_at = at
        days = self._config.negative_csat.respond_within_business_days
        respond_by = self._business.add(
            self._business.next_working_instant(at), days * self._business_day_seconds
        ).astimezone(self._zone)
        details: dict[str, Any] = {
            "score": score,
            "respond_by": respond_by.isoformat(),
            "customer_id": ticket.customer_id,
            "channel": ticket.channel,
            "topic": ticket.topic,
        }
        summary = summarize(
            NEGATIVE_CSAT,
            self._config.locale,
            {"ticket_id": ticket.ticket_id, "score": score, "respond_by": local_time(respond_by, self._zone)},
        )
        if NEGATIVE_CSAT in ticket.firing_rules:
            return []
        alert = self._fire(
            ticket,
            NEGATIVE_CSAT,
            severity=Severity.WARNING,
            audience=Audience.ONCALL,
            starts_at=at,
            summary=summary,
            details=details,
        )
        return [alert] if alert else []

    def _apply_policy(self, ticket: TicketState, at: datetime) -> None:
        sla = self._config.sla
        policy = choose_policy(sla, ticket)
        if policy is None:
            ticket.policy = None
            ticket.first_response.target_seconds = 0.0
            ticket.resolution.target_seconds = 0.0
            return
        first_response = policy.first_response_minutes
        if ticket.channel in sla.fast_channels:
            first_response = min(first_response, sla.fast_channel_first_response_minutes)
        if ticket.policy is not None and ticket.calendar != policy.calendar:
            # Working time already spent was measured on the old calendar; carry it over as it is.
            for clock in (ticket.first_response, ticket.resolution):
                if clock.running_since is not None:
                    clock.spent_seconds = clock.spent(at, self.calendar_of(ticket))
                    clock.running_since = at
        ticket.policy = policy.name
        ticket.calendar = policy.calendar
        ticket.first_response.target_seconds = first_response * 60
        ticket.resolution.target_seconds = policy.resolution_minutes * 60

    def _resolve(self, ticket: TicketState, rules: tuple[str, ...], at: datetime) -> list[Alert]:
        if not ticket.firing_rules:
            return []
        subject = {"ticket_id": ticket.ticket_id}
        resolved = []
        for rule in rules:
            if rule in ticket.firing_rules:
                ticket.firing_rules.discard(rule)
                alert = self._alerts.resolve(rule, subject, at)
                if alert is not None:
                    resolved.append(alert)
        return resolved

    def _fire(self, ticket: TicketState, rule: str, **alert: Any) -> Alert | None:
        ticket.firing_rules.add(rule)
        return self._alerts.fire(rule, {"ticket_id": ticket.ticket_id}, **alert)

    # -- deadlines -------------------------------------------------------------------------------------
    def _schedule(self, ticket: TicketState, now: datetime) -> None:
        """(Re)schedule the thresholds of each clock whose timing inputs changed since last time."""
        for index, clock in enumerate((ticket.first_response, ticket.resolution)):
            key = (ticket.ticket_id, index)
            signature = (
                ticket.calendar,
                clock.target_seconds,
                clock.spent_seconds,
                clock.running_since,
                clock.met_at,
            )
            if self._signatures.get(key) == signature:
                continue  # nothing that moves this clock's thresholds changed: its deadlines stand
            self._signatures[key] = signature
            version = self._versions.get(key, 0) + 1
            self._versions[key] = version
            if clock.running_since is None or clock.met_at is not None or clock.target_seconds <= 0:
                continue
            self._push_next(ticket, index, version, now)

    def _push_next(self, ticket: TicketState, index: int, version: int, now: datetime) -> None:
        """Schedule the clock's next threshold not yet firing (the breach once the at-risk has fired)."""
        clock = ticket.first_response if index == 0 else ticket.resolution
        for rule, fraction in zip(_CLOCK_RULES[index], (self._config.sla.at_risk_fraction, 1.0), strict=True):
            if rule in ticket.firing_rules:
                continue
            crossing = clock.crossing(fraction, self.calendar_of(ticket))
            if crossing is None:
                return
            self._seq += 1
            due = max(crossing, now)
            key = (ticket.ticket_id, index)
            heapq.heappush(self._deadlines, (due.timestamp(), self._seq, due, key, rule, version))
            return

    def due_bound(self) -> float:
        """The earliest deadline in the heap as epoch seconds (perhaps a superseded one: a lower bound)."""
        return self._deadlines[0][0] if self._deadlines else math.inf

    def next_due(self) -> datetime | None:
        deadlines, versions = self._deadlines, self._versions
        while deadlines:
            _, _, at, key, _, version = deadlines[0]
            if versions.get(key) == version:
                return at
            heapq.heappop(deadlines)
        return None

    def fire_due(self, now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        limit = now.timestamp()
        while self._deadlines and self._deadlines[0][0] <= limit:
            _, _, at, key, rule, version = heapq.heappop(self._deadlines)
            ticket = self.tickets.get(key[0])
            if ticket is None or self._versions.get(key) != version:
                continue
            alert = self._fire_sla(ticket, rule, at)
            if alert is not None:
                alerts.append(alert)
            self._push_next(ticket, key[1], version, at)
        return alerts

    def _fire_sla(self, ticket: TicketState, rule: str, at: datetime) -> Alert | None:
        first_response = rule in _FIRST_RESPONSE_RULES
        clock: SlaClock = ticket.first_response if first_response else ticket.resolution
        if clock.met_at is not None or clock.running_since is None:
            return None
        breached = rule in (FIRST_RESPONSE_BREACHED, RESOLUTION_BREACHED)
        calendar = self.calendar_of(ticket)
        due = clock.crossing(1.0, calendar)
        assert due is not None
        spent = clock.spent(at, calendar)
        priority = ticket.priority
        severity = (
            Severity.CRITICAL if breached and priority in (Priority.P1, Priority.P2) else Severity.WARNING
        )
        details: dict[str, Any] = {
            "priority": priority.value,
            "sla_policy": ticket.policy,
            "calendar": ticket.calendar,
            "target_seconds": clock.target_seconds,
            "spent_seconds": round(spent, 3),
            "due_at": due.astimezone(self._zone).isoformat(),
            "channel": ticket.channel,
            "customer_id": ticket.customer_id,
            "customer_tier": ticket.customer_tier.value if ticket.customer_tier else None,
            "topic": ticket.topic,
            "opened_at": ticket.opened_at.isoformat(),
        }
        values = {
            "ticket_id": ticket.ticket_id,
            "priority": priority.value,
            "channel": ticket.channel or "unknown channel",
            "percent": round(100 * self._config.sla.at_risk_fraction),
            "target": duration_text(clock.target_seconds, self._config.locale),
            "due": local_time(due, self._zone),
        }
        return self._fire(
            ticket,
            rule,
            severity=severity,
            audience=Audience.ONCALL,
            starts_at=at,
            summary=summarize(rule, self._config.locale, values),
            details=details,
        )

    # -- memory ----------------------------------------------------------------------------------------
    def expire(self, now: datetime) -> list[Alert]:
        """Forget tickets long closed or long silent, so memory stays bounded."""
        engine = self._config.engine
        closed_horizon = now - timedelta(days=engine.closed_ticket_retention_days)
        open_horizon = now - timedelta(days=engine.open_ticket_retention_days)
        alerts: list[Alert] = []
        # The book is in order of last activity (nearly of last_event_at: input is at most minutes out
        # of order), so the scan stops at the first ticket active within the shorter horizon.
        shorter = max(closed_horizon, open_horizon)
        expired = []
        for ticket_id, ticket in self.tickets.items():
            if ticket.last_event_at >= shorter:
                break
            if ticket.last_event_at < (closed_horizon if ticket.done else open_horizon):
                expired.append(ticket_id)
        for ticket_id in expired:
            ticket = self.tickets.pop(ticket_id)
            for index in (0, 1):
                self._versions.pop((ticket_id, index), None)
                self._signatures.pop((ticket_id, index), None)
            alerts += self._resolve(ticket, _ALL_TICKET_RULES, now)
            for rule in _ALL_TICKET_RULES:
                self._alerts.forget(rule, {"ticket_id": ticket_id})
        return alerts
