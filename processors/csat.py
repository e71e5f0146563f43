"""Ratings: `negative_csat` (subject `{"ticket_id"}`) fires on a score of `negative_csat.max_score` or
less (default 2 of 5) and resolves at the next agent reply on the ticket. The alert says by when the
customer should hear back: `respond_within_business_days` working days after the rating (from the next
working instant, so a rating on Saturday counts from Monday's opening)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from processors.calendar import BusinessCalendar
from processors.summaries import local_time, summarize
from processors.ticket_alerts import TicketAlerts
from processors.ticket_state import TicketState
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig

NEGATIVE_CSAT: Final = "negative_csat"
_RULES: Final = (NEGATIVE_CSAT,)


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

    def rated(self, ticket: TicketState, score: int, at: datetime) -> Alert | None:
        """Take a rating; the alert it fires, if it is negative and none fires on the ticket yet."""
        ticket.csat_score = score
        ticket.csat_at = at
        if score > self._config.negative_csat.max_score:
            return None
        ticket.negative_csat_at = at
        if NEGATIVE_CSAT in ticket.firing_rules:
            return None
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
            self._alerts.resolve(ticket, _RULES, at, alerts)
