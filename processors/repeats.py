"""`repeat_contact` (subject `{"customer_id","topic"}`): the customer is back with the same problem.

Fires when a customer opens a new ticket on a topic within 7 days after opening their previous ticket on
that topic. A further repeat while it fires updates it (same id). Resolves when the latest repeat ticket
is resolved or closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from processors.alerting import AlertBook
from processors.summaries import summarize
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig

REPEAT_CONTACT = "repeat_contact"


@dataclass
class _LastTicket:
    ticket_id: str
    opened_at: datetime


class RepeatContacts:
    def __init__(self, config: DetectionConfig, alerts: AlertBook) -> None:
        self._window = timedelta(days=config.repeat_contact.window_days)
        self._locale = config.locale
        self._alerts = alerts
        self.last: dict[tuple[str, str], _LastTicket] = {}
        self.open_repeats: dict[str, tuple[str, str]] = {}
        """repeat ticket id -> (customer, topic) whose alert it keeps firing."""
        self._latest_repeat: dict[tuple[str, str], str] = {}

    def ticket_opened(
        self, ticket_id: str, customer_id: str | None, topic: str | None, at: datetime
    ) -> list[Alert]:
        if not customer_id or not topic:
            return []
        key = (customer_id, topic)
        previous = self.last.get(key)
        if previous is None or at >= previous.opened_at:
            self.last[key] = _LastTicket(ticket_id, at)
        if (
            previous is None
            or previous.ticket_id == ticket_id
            or not (timedelta(0) <= at - previous.opened_at <= self._window)
        ):
            return []
        subject = {"customer_id": customer_id, "topic": topic}
        current = self._alerts.current(REPEAT_CONTACT, subject)
        tickets = list(current.details.get("ticket_ids", [])) if current else [previous.ticket_id]
        tickets.append(ticket_id)
        stale = self._latest_repeat.get(key)
        if stale is not None:
            self.open_repeats.pop(stale, None)
        self.open_repeats[ticket_id] = key
        self._latest_repeat[key] = ticket_id
        days = round((at - previous.opened_at).total_seconds() / 86400, 1)
        details: dict[str, Any] = {
            "ticket_id": ticket_id,
            "previous_ticket_id": previous.ticket_id,
            "previous_opened_at": previous.opened_at.isoformat(),
            "ticket_ids": tickets,
        }
        summary = summarize(
            REPEAT_CONTACT,
            self._locale,
            {
                "customer_id": customer_id,
                "ticket_id": ticket_id,
                "topic": topic,
                "days": days,
                "previous_ticket_id": previous.ticket_id,
            },
        )
        alert = self._alerts.fire(
            REPEAT_CONTACT,
            subject,
            severity=Severity.INFO,
            audience=Audience.ONCALL,
            starts_at=current.starts_at if current else at,
            summary=summary,
            details=details,
        )
        return [alert] if alert else []

    def ticket_done(self, ticket_id: str, at: datetime) -> list[Alert]:
        key = self.open_repeats.pop(ticket_id, None)
        if key is None:
            return []
        self._latest_repeat.pop(key, None)
        alert = self._alerts.resolve(REPEAT_CONTACT, {"customer_id": key[0], "topic": key[1]}, at)
        return [alert] if alert else []

    def prune(self, now: datetime) -> None:
        for key in [k for k, v in self.last.items() if v.opened_at < now - self._window]:
            del self.last[key]
