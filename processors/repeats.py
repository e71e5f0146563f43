"""`repeat_contact` (subject `{"customer_id","topic"}`): the customer is back with the same problem.

Fires when a customer opens a new ticket on a topic within 7 days after opening their previous ticket on
that topic. A further repeat while it fires updates it (same id); `details.ticket_ids` lists the streak's
latest 50 tickets and `ticket_ids_total` counts them all. Resolves when the latest repeat ticket
is resolved or closed.

`repeat_rate_high` (subject `{"dimension": "topic","value"}`): the share of a topic's new tickets in the
trailing 7 days that were repeats; fires above 15% with >= 30 tickets, resolves at or below 12% (a rate
rule, `processors/rates.py`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from mypy_extensions import mypyc_attr

from processors.alerting import LISTED_AT_MOST, AlertBook, changes, listed_total, subject_key
from processors.detector import CONTACTS_AND_STATUS, Observation, WithoutDeadlines
from processors.rates import Shares
from processors.summaries import Duration, summarize
from processors.windows import hour_index, hour_of
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig
from schemas.event import EventType

REPEAT_CONTACT = "repeat_contact"
REPEAT_RATE_HIGH: Final = "repeat_rate_high"
_INFO: Final = Severity.INFO
_ONCALL: Final = Audience.ONCALL
_CONTACT_RECEIVED: Final = EventType.CONTACT_RECEIVED


# A customer's latest ticket on a topic: (ticket id, opened at as epoch seconds, opened at). A tuple:
# one is made per new ticket.
_LastTicket = tuple[str, float, datetime]


@mypyc_attr(allow_interpreted_subclasses=True)
class RepeatContacts(WithoutDeadlines):
    def __init__(self, config: DetectionConfig, alerts: AlertBook) -> None:
        self._window = timedelta(days=config.repeat_contact.window_days)
        self._window_seconds = self._window.total_seconds()
        self._locale = config.locale
        self._alerts = alerts
        self.last: dict[tuple[str, str], _LastTicket] = {}
        self.open_repeats: dict[str, tuple[str, str]] = {}
        """repeat ticket id -> (customer, topic) whose alert it keeps firing."""
        self._latest_repeat: dict[tuple[str, str], str] = {}
        rate = config.repeat_rate
        self.rate = Shares.of(
            REPEAT_RATE_HIGH,
            "topic",
            "repeats",
            rate,
            rate.threshold,
            rate.resolve_at_or_below,
            alerts,
            config.locale,
        )

    # Tickets opened (by a contact) and finished.
    observes = CONTACTS_AND_STATUS

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        facts, ticket = seen.facts, seen.ticket
        if facts.opened and seen.event.type is _CONTACT_RECEIVED:
            alerts += self.ticket_opened(
                ticket.ticket_id, ticket.customer_id, ticket.topic, seen.event.occurred_at, seen.ts
            )
        if facts.finished:
            alerts += self.ticket_done(ticket.ticket_id, seen.event.occurred_at)

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        if at.hour == 0:  # a scan over every customer and topic: once a day bounds memory
            self.prune(at)
        now = hour_index(at)
        alerts = self.rate.evaluate(at, now)
        self.rate.prune(now)
        return alerts

    def ticket_opened(
        self, ticket_id: str, customer_id: str | None, topic: str | None, at: datetime, ts: float
    ) -> list[Alert]:
        """A new ticket opened at `at` (`ts` in epoch seconds)."""
        if not customer_id or not topic:
            return []
        repeat, alert = self._repeat(ticket_id, customer_id, topic, at, ts)
        self.rate.ticket(topic, hour_of(ts), counted=repeat)
        return changes(alert)

    def _repeat(
        self, ticket_id: str, customer_id: str, topic: str, at: datetime, ts: float
    ) -> tuple[bool, Alert | None]:
        """Whether the ticket repeats the customer's last one on the topic, and the alert's change."""
        key = (customer_id, topic)
        previous = self.last.get(key)
        if previous is None:
            self.last[key] = (ticket_id, ts, at)
            return False, None
        previous_id, previous_ts, previous_at = previous
        if ts >= previous_ts:
            self.last[key] = (ticket_id, ts, at)
        # A cheap float test first; the exact one (to the microsecond) when it may hold.
        if previous_id == ticket_id or not -1.0 < ts - previous_ts < self._window_seconds + 1.0:
            return False, None
        if not timedelta(0) <= at - previous_at <= self._window:
            return False, None
        subject = {"customer_id": customer_id, "topic": topic}
        alert_key = subject_key(REPEAT_CONTACT, subject)
        current = self._alerts.firing.get(alert_key)
        if current is None:
            tickets, streak = [previous_id, ticket_id], 2
        else:
            # The streak's latest tickets and its length, from the alert itself (nothing else holds them).
            tickets = [*current.details["ticket_ids"][1 - LISTED_AT_MOST :], ticket_id]
            streak = listed_total(current.details, "ticket_ids") + 1
        stale = self._latest_repeat.get(key)
        if stale is not None:
            self.open_repeats.pop(stale, None)
        self.open_repeats[ticket_id] = key
        self._latest_repeat[key] = ticket_id
        details: dict[str, Any] = {
            "ticket_id": ticket_id,
            "previous_ticket_id": previous_id,
            "previous_opened_at": previous_at.isoformat(),
            "ticket_ids": tickets,
            "ticket_ids_total": streak,
        }
        summary = summarize(
            REPEAT_CONTACT,
            self._locale,
            {
                "customer_id": customer_id,
                "ticket_id": ticket_id,
                "topic": topic,
                "gap": Duration(ts - previous_ts, days_from=86400.0),
                "previous_ticket_id": previous_id,
            },
        )
        return True, self._alerts.fire(
            REPEAT_CONTACT,
            subject,
            severity=_INFO,
            audience=_ONCALL,
            starts_at=current.starts_at if current else at,
            summary=summary,
            details=details,
            key=alert_key,
        )

    def ticket_done(self, ticket_id: str, at: datetime) -> list[Alert]:
        key = self.open_repeats.pop(ticket_id, None)
        if key is None:
            return []
        self._latest_repeat.pop(key, None)
        alert = self._alerts.resolve(REPEAT_CONTACT, {"customer_id": key[0], "topic": key[1]}, at)
        return changes(alert)

    def prune(self, now: datetime) -> None:
        horizon = now.timestamp() - self._window_seconds
        for key in [key for key, (_, opened, _) in self.last.items() if opened < horizon]:
            del self.last[key]
