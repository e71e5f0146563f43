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
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from processors.alerting import AlertBook
from processors.calendar import AlwaysOpen, BusinessCalendar, SlaCalendar
from processors.detector import Observation, TicketFacts
from processors.sla import (
    FIRST_RESPONSE_AT_RISK,
    FIRST_RESPONSE_BREACHED,
    RESOLUTION_AT_RISK,
    RESOLUTION_BREACHED,
    SlaClock,
    SlaTargets,
    TicketState,
    sla_targets,
)
from processors.summaries import duration_text, local_time, summarize, wall_clock
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig
from schemas.event import ContactEvent, EventType, Priority, TicketStatus

NEGATIVE_CSAT = "negative_csat"

_FIRST_RESPONSE_RULES = (FIRST_RESPONSE_AT_RISK, FIRST_RESPONSE_BREACHED)
_RESOLUTION_RULES = (RESOLUTION_AT_RISK, RESOLUTION_BREACHED)
_ALL_TICKET_RULES = (*_FIRST_RESPONSE_RULES, *_RESOLUTION_RULES, NEGATIVE_CSAT)
_CLOCK_RULES = (_FIRST_RESPONSE_RULES, _RESOLUTION_RULES)
_CLOCK_RULES_FLAT = (*_FIRST_RESPONSE_RULES, *_RESOLUTION_RULES)
_BREACH_RULES = frozenset({FIRST_RESPONSE_BREACHED, RESOLUTION_BREACHED})
_URGENT = frozenset({Priority.P1, Priority.P2})
_DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


_CONTACT_RECEIVED: Final = EventType.CONTACT_RECEIVED
_AGENT_REPLIED: Final = EventType.AGENT_REPLIED
_STATUS_CHANGED: Final = EventType.STATUS_CHANGED
_ASSIGNED: Final = EventType.ASSIGNED
_ESCALATED: Final = EventType.ESCALATED
_CSAT_SUBMITTED: Final = EventType.CSAT_SUBMITTED
_WAITING_CUSTOMER: Final = TicketStatus.WAITING_CUSTOMER
_WARNING: Final = Severity.WARNING
_CRITICAL: Final = Severity.CRITICAL
_ONCALL: Final = Audience.ONCALL


# A threshold in the heap: (instant in epoch seconds, sequence, ticket id, clock index, rule, version of
# that clock's schedule). Plain tuples: the heap compares millions of them, and the sequence breaks ties
# before anything else is compared.
_Deadline = tuple[float, int, str, int, str, int]


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
        self._alerts = alerts
        self._zone = ZoneInfo(config.business_hours.time_zone)
        self.tickets: dict[str, TicketState] = {}
        self.touched: set[str] | None = set() if track_changes else None
        """Tickets whose state changed since the caller last took them (`take_touched`); None when the
        caller keeps no ticket-state table (replay), so nothing accumulates."""
        self.facts = TicketFacts()
        """The facts of the last `apply` (one object, overwritten: it is read right after each call)."""
        self._deadlines: list[_Deadline] = []
        self.due_bound = math.inf
        """The heap's earliest threshold as epoch seconds (perhaps a void one: a lower bound)."""
        self._seq = 0
        self._at_risk = config.sla.at_risk_fraction
        self._percent = round(100 * config.sla.at_risk_fraction)
        self._policies: dict[tuple[object, ...], SlaTargets | None] = {}
        self._targets: dict[float, str] = {}
        """target seconds -> its text in the summary (a handful of distinct targets)."""
        self._due_texts: dict[float, tuple[str, str]] = {}
        """due instant -> (isoformat, wall clock): a clock's at-risk and breach alerts share their due."""
        hours = config.business_hours
        day = datetime.combine(datetime(2000, 1, 3).date(), hours.closes) - datetime.combine(
            datetime(2000, 1, 3).date(), hours.opens
        )
        self._business_day_seconds = day.total_seconds()

    # -- calendars -------------------------------------------------------------------------------------
    def calendar_of(self, ticket: TicketState) -> SlaCalendar:
        return self._business if ticket.calendar == "business" else self._always

    # -- events ----------------------------------------------------------------------------------------
    def snapshot(self, ticket: TicketState) -> dict[str, object]:
        """The ticket's row for the `tickets` table."""
        return ticket.snapshot(self.calendar_of(ticket))

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
                    self._resolve(ticket, _FIRST_RESPONSE_RULES, at, alerts)
            if ticket.negative_csat_at is not None and at >= ticket.negative_csat_at:
                ticket.negative_csat_at = None
                self._resolve(ticket, (NEGATIVE_CSAT,), at, alerts)
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
            ticket.csat_score = event.score
            ticket.csat_at = at
            if event.score <= self._config.negative_csat.max_score:
                alert = self._negative_csat(ticket, event.score, at)
                if alert is not None:
                    alerts.append(alert)
        if first_response_moved:
            self._schedule(ticket, 0, ticket.first_response, ts)
        if resolution_moved:
            self._schedule(ticket, 1, ticket.resolution, ts)
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
                    self._resolve(ticket, _CLOCK_RULES_FLAT, at, alerts)
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

    def _negative_csat(self, ticket: TicketState, score: int, at: datetime) -> Alert | None:
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
            return None
        return self._fire(
            ticket,
            NEGATIVE_CSAT,
            severity=_WARNING,
            audience=_ONCALL,
            starts_at=at,
            summary=summary,
            details=details,
        )

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

    def _resolve(
        self, ticket: TicketState, rules: tuple[str, ...], at: datetime, alerts: list[Alert]
    ) -> None:
        firing = ticket.firing_rules
        subject = None
        for rule in rules:
            if rule in firing:
                firing.discard(rule)
                if subject is None:
                    subject = {"ticket_id": ticket.ticket_id}
                alert = self._alerts.resolve(rule, subject, at)
                if alert is not None:
                    alerts.append(alert)

    def _fire(self, ticket: TicketState, rule: str, **alert: Any) -> Alert | None:
        ticket.firing_rules.add(rule)
        ticket.alerted = True
        # The book keeps a firing alert's labels as they were when it started (an update ignores these).
        return self._alerts.fire(rule, {"ticket_id": ticket.ticket_id}, labels=ticket.labels(), **alert)

    # -- deadlines -------------------------------------------------------------------------------------
    def _schedule(self, ticket: TicketState, index: int, clock: SlaClock, now: float) -> None:
        """(Re)schedule the clock's thresholds if its timing inputs changed since they were computed."""
        inputs = (
            ticket.calendar,
            clock.target_seconds,
            clock.spent_seconds,
            clock.running_since,
            clock.met_at,
        )
        if clock.scheduled_from == inputs:
            return  # e.g. "in progress" while it already ran: its thresholds stand
        clock.scheduled_from = inputs
        # Unique across the book, so a threshold left by an expired ticket can never match a later
        # ticket with the same id.
        self._seq += 1
        clock.version = self._seq
        if clock.running_since is not None and clock.met_at is None and clock.target_seconds > 0:
            self._push_next(ticket, index, clock, now)

    def _push_next(
        self, ticket: TicketState, index: int, clock: SlaClock, now: float, breach: float | None = None
    ) -> None:
        """Schedule the clock's next threshold not yet firing (the breach once the at-risk has fired).

        `breach`: the clock's 100% crossing when the caller has just computed it (firing the at-risk).
        """
        at_risk, breached = _CLOCK_RULES[index]
        firing = ticket.firing_rules
        if at_risk not in firing:
            rule, fraction = at_risk, self._at_risk
        elif breached not in firing:
            rule, fraction = breached, 1.0
        else:
            return
        if fraction == 1.0 and breach is not None:
            crossing: float | None = breach
        else:
            crossing = clock.crossing(fraction, self.calendar_of(ticket))
        if crossing is None:
            return
        self._seq += 1
        due = crossing if crossing > now else now
        heapq.heappush(self._deadlines, (due, self._seq, ticket.ticket_id, index, rule, clock.version))
        if due < self.due_bound:
            self.due_bound = due

    def _live(self, deadline: _Deadline) -> TicketState | None:
        """The ticket of a scheduled threshold still valid (its clock not rescheduled since), or None."""
        ticket = self.tickets.get(deadline[2])
        if ticket is None:
            return None
        clock = ticket.first_response if deadline[3] == 0 else ticket.resolution
        return ticket if clock.version == deadline[5] else None

    def next_due(self) -> float:
        """The earliest valid threshold as epoch seconds (void ones are dropped on the way), or inf."""
        deadlines, tickets = self._deadlines, self.tickets
        while deadlines:
            top = deadlines[0]
            ticket = tickets.get(top[2])  # `_live`, inlined: void thresholds are many
            if ticket is not None:
                clock = ticket.first_response if top[3] == 0 else ticket.resolution
                if clock.version == top[5]:
                    self.due_bound = top[0]
                    return top[0]
            heapq.heappop(deadlines)
        self.due_bound = math.inf
        return math.inf

    # The detector protocol: SLA deadlines and expiry. It observes nothing more: the book applied the event
    # before the detectors see it (`apply`), and the SLA alerts the event changed came out of that step.
    observes = False
    keeps_deadlines = True

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        pass

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        # A scan over every ticket: once a day is enough to keep memory bounded.
        return self.expire(at) if at.hour == 0 else []

    def fire_due(self, now: float, stream_start: datetime) -> list[Alert]:
        """Fire every valid threshold due at or before `now` (epoch seconds), in time order."""
        alerts: list[Alert] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline = heapq.heappop(deadlines)
            ticket = self._live(deadline)
            if ticket is None:
                continue
            at, index = deadline[0], deadline[3]
            clock = ticket.first_response if index == 0 else ticket.resolution
            alert, breach = self._fire_sla(ticket, clock, deadline[4], at)
            if alert is not None:
                alerts.append(alert)
                if self.touched is not None and deadline[4] in _BREACH_RULES:
                    self.touched.add(ticket.ticket_id)  # its row says breached from now on
            self._push_next(ticket, index, clock, at, breach)
        self.due_bound = deadlines[0][0] if deadlines else math.inf
        return alerts

    def _fire_sla(
        self, ticket: TicketState, clock: SlaClock, rule: str, at: float
    ) -> tuple[Alert | None, float | None]:
        """The threshold's alert (None if nothing changed) and the clock's 100% crossing, if it runs."""
        if clock.met_at is not None or clock.running_since is None:
            return None, None
        breached = rule in _BREACH_RULES
        calendar = self.calendar_of(ticket)
        due = clock.crossing(1.0, calendar)
        assert due is not None
        spent = clock.spent(at, calendar)
        priority = ticket.priority
        severity = _CRITICAL if breached and priority in _URGENT else _WARNING
        due_texts = self._due_texts.get(due)
        if due_texts is None:
            if len(self._due_texts) > 4096:
                self._due_texts.clear()
            due_local = datetime.fromtimestamp(due, self._zone)
            due_iso = due_local.isoformat()
            due_texts = self._due_texts[due] = (due_iso, wall_clock(due_local, due_iso))
        due_iso, due_wall = due_texts
        priority_name = str(priority)  # str() of a StrEnum member is its value, without the descriptor
        target = self._targets.get(clock.target_seconds)
        if target is None:
            target = self._targets[clock.target_seconds] = duration_text(
                clock.target_seconds, self._config.locale
            )
        details: dict[str, Any] = {
            "priority": priority_name,
            "sla_policy": ticket.policy,
            "calendar": ticket.calendar,
            "target_seconds": clock.target_seconds,
            "spent_seconds": round(spent, 3),
            "due_at": due_iso,
            "channel": ticket.channel,
            "customer_id": ticket.customer_id,
            "customer_tier": str(ticket.customer_tier) if ticket.customer_tier else None,
            "topic": ticket.topic,
            "opened_at": ticket.opened_iso(),
        }
        values = {
            "ticket_id": ticket.ticket_id,
            "priority": priority_name,
            "channel": ticket.channel or "unknown channel",
            "percent": self._percent,
            "target": target,
            "due": due_wall,
        }
        alert = self._fire(
            ticket,
            rule,
            severity=severity,
            audience=_ONCALL,
            # In the offset the ticket's events are stamped in, as the rest of its alerts.
            starts_at=datetime.fromtimestamp(at, ticket.opened_at.tzinfo),
            summary=summarize(rule, self._config.locale, values),
            details=details,
        )
        return alert, due

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
            ticket = self.tickets.pop(ticket_id)  # its scheduled thresholds are void: no ticket, no clock
            self._resolve(ticket, _ALL_TICKET_RULES, now, alerts)
            if ticket.alerted:
                for rule in _ALL_TICKET_RULES:
                    self._alerts.forget(rule, {"ticket_id": ticket_id})
        return alerts
