"""Firing and resolving the alerts of one ticket (SLA thresholds, negative CSAT): the alert book, with the
ticket's own set of rules firing now kept beside it so the hot path needs no look-up in the book."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mypy_extensions import mypyc_attr

from processors.alerting import AlertBook
from processors.ticket_state import TicketState
from schemas.alert import Alert


@mypyc_attr(allow_interpreted_subclasses=True)
class TicketAlerts:
    def __init__(self, alerts: AlertBook) -> None:
        self._alerts = alerts

    def fire(
        self, ticket: TicketState, rule: str, labels: dict[str, str] | None = None, **alert: Any
    ) -> Alert | None:
        """`labels`: the ticket's routing labels by default."""
        ticket.firing_rules.add(rule)
        ticket.alerted = True
        # The book keeps a firing alert's labels as they were when it started (an update ignores these).
        return self._alerts.fire(
            rule,
            {"ticket_id": ticket.ticket_id},
            labels=ticket.labels() if labels is None else labels,
            **alert,
        )

    def resolve(self, ticket: TicketState, rules: Iterable[str], at: datetime, alerts: list[Alert]) -> None:
        """Resolve those of `rules` firing on the ticket; the changes are appended to `alerts`."""
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

    def forget(self, ticket: TicketState, rules: Iterable[str]) -> None:
        """Drop what the alert book keeps of the ticket (it is being forgotten; its rules resolved)."""
        if ticket.alerted:
            for rule in rules:
                self._alerts.forget(rule, {"ticket_id": ticket.ticket_id})
