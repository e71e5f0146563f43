"""`incident_cluster` (subject `{"error_code"}`, critical): many customers, one error code.

Fires when at least 5 distinct customers report the same normalized error code within 30 minutes.
While it fires, every further report adds its ticket to `details.ticket_ids` (the tickets to merge: the
latest 50, `ticket_ids_total` counts them all) and the alert is re-sent with the same id. Resolves 30
minutes after the last report.
A report without a customer id counts its ticket as the reporter, so anonymous contacts still count.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from mypy_extensions import mypyc_attr

from processors.alerting import AlertBook, changes, listing
from processors.detector import NEW_CONTACTS, Observation
from processors.summaries import summarize
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig
from schemas.event import EventType

_CONTACT_RECEIVED: Final = EventType.CONTACT_RECEIVED

INCIDENT_CLUSTER = "incident_cluster"
_SEPARATORS = re.compile(r"[\s_\-–—.:/]+")


def normalize_error_code(raw: str) -> str:
    """`err 504`, `ERR-504`, ` Err_504 ` -> `ERR-504`."""
    return _SEPARATORS.sub("-", raw.strip().upper()).strip("-")


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class _Report:
    at: datetime
    customer: str
    ticket_id: str


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class _Incident:
    reports: deque[_Report] = field(default_factory=deque)
    ticket_ids: list[str] = field(default_factory=list)
    customers: set[str] = field(default_factory=set)
    last_report: datetime | None = None
    firing: bool = False


@mypyc_attr(allow_interpreted_subclasses=True)
class IncidentDetector:
    def __init__(self, config: DetectionConfig, alerts: AlertBook) -> None:
        self._cfg = config.incident_cluster
        self._locale = config.locale
        self._alerts = alerts
        self._window = timedelta(minutes=self._cfg.window_minutes)
        self._quiet = timedelta(minutes=self._cfg.resolve_after_quiet_minutes)
        self.codes: dict[str, _Incident] = {}
        self._any_firing = False
        self.due_bound = math.inf
        """No later than the first firing incident's end (inf: none fires). A report only moves an end
        later, so the bound stays a bound until `next_due` makes it exact again. (It was -inf while an
        incident fired: every event then searched the deadlines, 12,000 searches in the realistic month.)"""

    observes = NEW_CONTACTS
    keeps_deadlines = True

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        event = seen.event
        if event.type is _CONTACT_RECEIVED and event.error_code:
            ticket = seen.ticket
            alerts += self.report(event.error_code, ticket.customer_id, ticket.ticket_id, event.occurred_at)

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        self.prune(at)
        return []

    def report(self, raw_code: str, customer_id: str | None, ticket_id: str, at: datetime) -> list[Alert]:
        code = normalize_error_code(raw_code)
        if not code:
            return []
        incident = self.codes.get(code)
        if incident is None:
            incident = self.codes[code] = _Incident()
        customer = customer_id or f"ticket:{ticket_id}"
        incident.reports.append(_Report(at, customer, ticket_id))
        incident.last_report = at if incident.last_report is None else max(incident.last_report, at)
        while incident.reports and incident.reports[0].at < at - self._window:
            incident.reports.popleft()
        if incident.firing:
            if ticket_id not in incident.ticket_ids:
                incident.ticket_ids.append(ticket_id)
            incident.customers.add(customer)
            return self._send(code, incident, at)
        in_window = [r for r in incident.reports if at - self._window <= r.at <= at]
        customers = {r.customer for r in in_window}
        if len(customers) < self._cfg.min_customers:
            return []
        incident.firing = True
        self._any_firing = True
        ends = (incident.last_report + self._quiet).timestamp()
        if ends < self.due_bound:
            self.due_bound = ends
        incident.customers = customers
        incident.ticket_ids = list(dict.fromkeys([r.ticket_id for r in in_window]))
        return self._send(code, incident, at)

    def _send(self, code: str, incident: _Incident, at: datetime) -> list[Alert]:
        details: dict[str, Any] = {}
        listing(details, "ticket_ids", incident.ticket_ids, newest_last=True)
        details["customers"] = len(incident.customers)
        details["last_report_at"] = incident.last_report.isoformat() if incident.last_report else None
        summary = summarize(
            INCIDENT_CLUSTER,
            self._locale,
            {
                "customers": len(incident.customers),
                "error_code": code,
                "window": self._cfg.window_minutes,
                "tickets": len(incident.ticket_ids),
            },
        )
        alert = self._alerts.fire(
            INCIDENT_CLUSTER,
            {"error_code": code},
            severity=Severity.CRITICAL,
            audience=Audience.ONCALL,
            starts_at=at,
            summary=summary,
            details=details,
        )
        return changes(alert)

    def next_due(self) -> float:
        """When the earliest firing incident has been quiet long enough, as epoch seconds, or inf."""
        if not self._any_firing:
            return math.inf
        due = [
            (i.last_report + self._quiet).timestamp()
            for i in self.codes.values()
            if i.firing and i.last_report
        ]
        self._any_firing = bool(due)
        self.due_bound = min(due) if due else math.inf
        return self.due_bound

    def fire_due(self, now: float, stream_start: datetime) -> list[Alert]:
        alerts = []
        for code, incident in self.codes.items():
            if (
                incident.firing
                and incident.last_report
                and (incident.last_report + self._quiet).timestamp() <= now
            ):
                incident.firing = False
                ends_at = incident.last_report + self._quiet
                alert = self._alerts.resolve(INCIDENT_CLUSTER, {"error_code": code}, ends_at)
                if alert:
                    alerts.append(alert)
                incident.ticket_ids, incident.customers = [], set()
        return alerts

    def prune(self, now: datetime) -> None:
        for code in [
            c
            for c, i in self.codes.items()
            if not i.firing and (i.last_report is None or i.last_report < now - self._window)
        ]:
            del self.codes[code]
