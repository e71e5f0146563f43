"""The alerts of SLA thresholds: what `sla_*_at_risk` and `sla_*_breached` say and carry.

Rules (subject `{"ticket_id"}`):
- `sla_first_response_at_risk` / `_breached`: 75% / 100% of the first-response target spent with no agent
  reply. Resolve at the first agent reply (or when the ticket is resolved or closed without one).
- `sla_resolution_at_risk` / `_breached`: the same for resolution; the clock pauses while the ticket waits
  on the customer. Resolve when the ticket is resolved or closed; a reopen starts a new episode.

A breach of a p1 or p2 ticket is critical, anything else a warning.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from processors.calendar import SlaCalendar
from processors.sla import FIRST_RESPONSE_BREACHED, RESOLUTION_BREACHED, SlaClock
from processors.summaries import Duration, summarize, wall_clock
from processors.ticket_alerts import TicketAlerts
from processors.ticket_state import TicketState
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig
from schemas.event import Priority

BREACH_RULES: Final = frozenset({FIRST_RESPONSE_BREACHED, RESOLUTION_BREACHED})
_URGENT: Final = frozenset({Priority.P1, Priority.P2})
_WARNING: Final = Severity.WARNING
_CRITICAL: Final = Severity.CRITICAL
_ONCALL: Final = Audience.ONCALL


@mypyc_attr(allow_interpreted_subclasses=True)
class SlaAlerts:
    def __init__(self, config: DetectionConfig, alerts: TicketAlerts) -> None:
        self._locale = config.locale
        self._zone = ZoneInfo(config.business_hours.time_zone)
        self._percent = round(100 * config.sla.at_risk_fraction)
        self._alerts = alerts
        self._due_texts: dict[float, tuple[str, str]] = {}
        """due instant -> (isoformat, wall clock): a clock's at-risk and breach alerts share their due."""

    def fire(
        self, ticket: TicketState, clock: SlaClock, rule: str, at: float, calendar: SlaCalendar
    ) -> tuple[Alert | None, float | None]:
        """The threshold's alert (None if nothing changed) and the clock's 100% crossing, if it runs."""
        if clock.met_at is not None or clock.running_since is None:
            return None, None
        due = clock.crossing(1.0, calendar)
        assert due is not None
        if rule in ticket.firing_rules:
            return None, due  # warned already, by the queue forecast (`sla_queue`)
        priority = ticket.priority
        severity = _CRITICAL if rule in BREACH_RULES and priority in _URGENT else _WARNING
        due_iso, due_wall = self._due_text(due)
        priority_name = str(priority)  # str() of a StrEnum member is its value, without the descriptor
        details: dict[str, Any] = {
            "priority": priority_name,
            "sla_policy": ticket.policy,
            "calendar": ticket.calendar,
            "target_seconds": clock.target_seconds,
            "spent_seconds": round(clock.spent(at, calendar), 3),
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
            "target": Duration(clock.target_seconds),
            "due": due_wall,
        }
        alert = self._alerts.fire(
            ticket,
            rule,
            severity=severity,
            audience=_ONCALL,
            # In the offset the ticket's events are stamped in, as the rest of its alerts.
            starts_at=datetime.fromtimestamp(at, ticket.opened_at.tzinfo),
            summary=summarize(rule, self._locale, values),
            details=details,
        )
        return alert, due

    def _due_text(self, due: float) -> tuple[str, str]:
        texts = self._due_texts.get(due)
        if texts is None:
            if len(self._due_texts) > 4096:
                self._due_texts.clear()
            due_local = datetime.fromtimestamp(due, self._zone)
            due_iso = due_local.isoformat()
            texts = self._due_texts[due] = (due_iso, wall_clock(due_local, due_iso))
        return texts
