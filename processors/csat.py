"""Ratings: `negative_csat` (subject `{"ticket_id"}`) fires on a score of `negative_csat.max_score` or
less (default 2 of 5) and resolves at the next agent reply on the ticket. The alert says by when the
customer should hear back: `respond_within_business_days` working days after the rating (from the next
working instant, so a rating on Saturday counts from Monday's opening). `csat_response_overdue` (same
subject) fires at that instant when no agent has replied since the rating, and resolves at the reply."""

from __future__ import annotations

import heapq
import math
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from processors.calendar import BusinessCalendar
from processors.summaries import local_time, summarize
from processors.ticket_alerts import TicketAlerts
from processors.ticket_state import TicketState
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig

NEGATIVE_CSAT: Final = "negative_csat"
CSAT_RESPONSE_OVERDUE: Final = "csat_response_overdue"
RULES: Final = (NEGATIVE_CSAT, CSAT_RESPONSE_OVERDUE)

# A negative rating awaiting its answer: (respond-by instant in epoch seconds, sequence, the ticket, when
# it was rated, the score). Void once the ticket's `negative_csat_at` is no longer that rating's.
_Pending = tuple[float, int, TicketState, datetime, int]


@mypyc_attr(allow_interpreted_subclasses=True)
class Ratings:
    def __init__(self, config: DetectionConfig, business: BusinessCalendar, alerts: TicketAlerts) -> None:
        self._config = config
        self._business = business
        self._zone = ZoneInfo(config.business_hours.time_zone)
        self._alerts = alerts
        hours = config.business_hours
        day = datetime(2000, 1, 3)  # any date: only the opening hours' length is wanted
        self._business_day_seconds = (
            datetime.combine(day, hours.closes) - datetime.combine(day, hours.opens)
        ).total_seconds()
        self._pending: list[_Pending] = []
        self._seq = 0
        self.due_bound = math.inf
        """The earliest respond-by instant waiting (perhaps answered since: a lower bound), or inf."""

    def rated(self, ticket: TicketState, score: int, at: datetime) -> Alert | None:
        """Take a rating; the alert it fires, if it is negative and none fires on the ticket yet."""
        ticket.csat_score = score
        ticket.csat_at = at
        if score > self._config.negative_csat.max_score:
            return None
        ticket.negative_csat_at = at
        days = self._config.negative_csat.respond_within_business_days
        respond_by = self._business.add(
            self._business.next_working_instant(at), days * self._business_day_seconds
        ).astimezone(self._zone)
        self._seq += 1
        due = respond_by.timestamp()
        heapq.heappush(self._pending, (due, self._seq, ticket, at, score))
        if due < self.due_bound:
            self.due_bound = due
        if NEGATIVE_CSAT in ticket.firing_rules:
            return None
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
        return self._alerts.fire(
            ticket,
            NEGATIVE_CSAT,
            severity=Severity.WARNING,
            audience=Audience.ONCALL,
            starts_at=at,
            summary=summary,
            details=details,
        )

    def answered(self, ticket: TicketState, at: datetime, alerts: list[Alert]) -> None:
        """An agent replied: a negative rating given before the reply has its answer."""
        if ticket.negative_csat_at is not None and at >= ticket.negative_csat_at:
            ticket.negative_csat_at = None
            self._alerts.resolve(ticket, RULES, at, alerts)

    # -- respond-by deadlines --------------------------------------------------------------------------
    def next_due(self) -> float:
        """The earliest respond-by instant of a rating still unanswered (others are dropped), or inf."""
        pending = self._pending
        while pending and pending[0][2].negative_csat_at != pending[0][3]:
            heapq.heappop(pending)
        self.due_bound = pending[0][0] if pending else math.inf
        return self.due_bound

    def fire_due(self, now: float) -> list[Alert]:
        """`csat_response_overdue` for every rating still unanswered at its respond-by instant <= `now`."""
        alerts: list[Alert] = []
        pending = self._pending
        while pending and pending[0][0] <= now:
            due, _, ticket, rated_at, score = heapq.heappop(pending)
            if ticket.negative_csat_at != rated_at or CSAT_RESPONSE_OVERDUE in ticket.firing_rules:
                continue
            respond_by = datetime.fromtimestamp(due, self._zone)
            alert = self._alerts.fire(
                ticket,
                CSAT_RESPONSE_OVERDUE,
                severity=Severity.WARNING,
                audience=Audience.ONCALL,
                starts_at=respond_by,
                summary=summarize(
                    CSAT_RESPONSE_OVERDUE,
                    self._config.locale,
                    {
                        "ticket_id": ticket.ticket_id,
                        "score": score,
                        "rated": local_time(rated_at, self._zone),
                        "respond_by": local_time(respond_by, self._zone),
                    },
                ),
                details={
                    "score": score,
                    "rated_at": rated_at.isoformat(),
                    "respond_by": respond_by.isoformat(),
                    "customer_id": ticket.customer_id,
                    "channel": ticket.channel,
                    "topic": ticket.topic,
                },
            )
            if alert is not None:
                alerts.append(alert)
        self.due_bound = pending[0][0] if pending else math.inf
        return alerts

    @staticmethod
    def forget(ticket: TicketState) -> None:
        """The ticket is being forgotten: its pending rating will not be asked about."""
        ticket.negative_csat_at = None
