"""From our alerts to Alertmanager's: the label set a router matches, the annotations a message template
shows, and the set of alerts firing now that must be re-sent before Alertmanager forgets them.

Alertmanager (API v2, `POST /api/v2/alerts`) identifies an alert by its labels and keeps it firing until
its `endsAt`; a client must re-send a firing alert before then. So a firing alert goes out with `endsAt`
= now + `hold_seconds` (longer than the re-send interval, so one missed re-send does not resolve it), and
a resolved one with `endsAt` = now, which resolves it on receipt. Pure: the caller passes the time.

`startsAt` is when Alertmanager first took the alert from us, not the event time our rule fired at (that
travels in the `fired_at` annotation). Alertmanager flushes a new group at once, skipping `group_wait`,
when the alert that opens it started more than `group_wait` ago (`aggrGroup.insert` in its dispatcher).
With event times, every alert from a backlog, a replay or a notifier restart would go out alone, before
the breach or incident posted beside it could inhibit it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from processors.alerting import listed_total
from schemas.alert import Alert, AlertStatus

_LABEL_NAME: Final = re.compile(r"[^a-zA-Z0-9_]")
_MAX_DETAIL_ITEMS: Final = 10
_MAX_ANNOTATION_CHARS: Final = 2000


@dataclass(frozen=True, slots=True)
class Links:
    """Where a person clicks through: a ticket in the helpdesk, the dashboard."""

    ticket_url_template: str | None = None
    """e.g. `https://support.example.com/agent/tickets/{ticket_id}`; `{ticket_id}` is our ticket id."""
    dashboard_url: str | None = None
    ticket_url_templates_by_source: tuple[tuple[str, str], ...] = ()
    """(source, template) pairs that win over `ticket_url_template` for that source's tickets; a
    template may use `{number}`, the vendor's own id: `zendesk:35501` -> 35501, `jira:SUP-42` -> SUP-42."""

    def ticket_url(self, ticket_id: str) -> str | None:
        source, _, number = ticket_id.partition(":")
        for name, template in self.ticket_url_templates_by_source:
            if name == source and number:
                return template.format(ticket_id=ticket_id, number=number)
        if self.ticket_url_template:
            return self.ticket_url_template.format(ticket_id=ticket_id, number=number or ticket_id)
        return None


def parse_url_templates(raw: str) -> tuple[tuple[str, str], ...]:
    """`zendesk=https://acme.zendesk.com/agent/tickets/{number},jira=...` as (source, template) pairs."""
    pairs = []
    for item in raw.split(","):
        source, sep, template = item.strip().partition("=")
        if not sep or not source.strip() or not template.strip():
            if item.strip():
                raise ValueError(f"{item.strip()!r} is not SOURCE=URL_TEMPLATE")
            continue
        pairs.append((source.strip(), template.strip()))
    return tuple(pairs)


def label_name(key: str) -> str:
    """A subject key as an Alertmanager label name ([a-zA-Z_][a-zA-Z0-9_]*)."""
    name = _LABEL_NAME.sub("_", key)
    return name if name[:1].isalpha() or name[:1] == "_" else f"_{name}"


def labels_of(alert: Alert) -> dict[str, str]:
    """`alertname` = rule; severity and audience; the subject's keys; the routing labels; and the alert
    id, so two episodes of one subject (a reopened ticket breaching again) stay two alerts."""
    labels = {
        "alertname": alert.rule,
        "severity": alert.severity.value,
        "audience": alert.audience.value,
        "alert_id": alert.alert_id,
    }
    for key, value in alert.subject.items():
        labels[label_name(key)] = value
    for key, value in alert.labels.items():
        labels.setdefault(label_name(key), value)
    return {name: value for name, value in labels.items() if value != ""}


def details_text(details: dict[str, Any]) -> str:
    """The details as lines a person reads: `ticket_ids: T-1, T-2, ... (+12 more)`.

    A list the alert holds only part of comes with its full count as `<name>_total`
    (`processors.alerting.listing`): the "more" counts from that, and the count is not a line of its own.
    """
    lines = []
    for key, value in details.items():
        if value is None or value == [] or value == {}:
            continue
        if key.endswith("_total") and isinstance(details.get(key.removesuffix("_total")), list):
            continue
        if isinstance(value, list):
            shown = ", ".join(str(item) for item in value[:_MAX_DETAIL_ITEMS])
            total = max(listed_total(details, key), len(value))
            if total > _MAX_DETAIL_ITEMS:
                shown += f", ... (+{total - min(len(value), _MAX_DETAIL_ITEMS)} more)"
        elif isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in list(value.items())[:_MAX_DETAIL_ITEMS])
        else:
            shown = str(value)
        lines.append(f"{key}: {shown}")
    return "\n".join(lines)[:_MAX_ANNOTATION_CHARS]


def annotations_of(alert: Alert, links: Links) -> dict[str, str]:
    annotations = {
        "summary": alert.summary,
        "details": details_text(alert.details),
        "fired_at": alert.starts_at.isoformat(),
    }
    # Both languages, whatever the configured one: a template (or a second receiver) picks its own.
    for locale, text in alert.summaries.items():
        annotations[f"summary_{locale}"] = text
    if alert.ends_at is not None:
        annotations["ended_at"] = alert.ends_at.isoformat()
    ticket_id = alert.subject.get("ticket_id")
    url = links.ticket_url(ticket_id) if ticket_id else None
    if url:
        annotations["ticket_url"] = url
    if links.dashboard_url:
        annotations["dashboard_url"] = links.dashboard_url
    return annotations


def to_alertmanager(
    alert: Alert, now: datetime, hold_seconds: float, links: Links, announced_at: datetime | None = None
) -> dict[str, Any]:
    """One element of the `POST /api/v2/alerts` body; `announced_at`: when Alertmanager first took this
    firing alert from us (None: it has not yet)."""
    starts_at = announced_at or now
    resolved = alert.status is AlertStatus.RESOLVED
    ends_at = now if resolved else now + timedelta(seconds=hold_seconds)
    body: dict[str, Any] = {
        "labels": labels_of(alert),
        "annotations": annotations_of(alert, links),
        "startsAt": starts_at.isoformat(),
        "endsAt": ends_at.isoformat(),
    }
    if links.dashboard_url:
        body["generatorURL"] = links.dashboard_url
    return body


@dataclass
class FiringSet:
    """The alerts firing now, by id: what a restart must re-send and what every re-send posts."""

    alerts: dict[str, Alert] = field(default_factory=dict)
    announced: dict[str, datetime] = field(default_factory=dict)
    """When Alertmanager first took each firing alert (its `startsAt`, the same in every re-send)."""

    def observe(self, alert: Alert) -> None:
        if alert.status is AlertStatus.FIRING:
            self.alerts[alert.alert_id] = alert
        else:
            self.alerts.pop(alert.alert_id, None)
            self.announced.pop(alert.alert_id, None)

    def announced_at(self, alert_id: str) -> datetime | None:
        return self.announced.get(alert_id)

    def taken(self, alerts: list[Alert], at: datetime) -> None:
        """Alertmanager took these at `at`: the firing ones keep that as their start from now on."""
        for alert in alerts:
            if alert.alert_id in self.alerts:
                self.announced.setdefault(alert.alert_id, at)

    def firing(self) -> list[Alert]:
        return list(self.alerts.values())

    def __len__(self) -> int:
        return len(self.alerts)


_INHIBITORS: Final = ("incident_cluster", "channel_silent")


def inhibitors_first(alerts: list[Alert]) -> list[Alert]:
    """Alerts that hold others back (an incident, a silent channel, a breach) ahead of the rest, so
    Alertmanager has them when it groups the alerts they inhibit, even within one post."""

    def rank(alert: Alert) -> int:
        if alert.rule in _INHIBITORS:
            return 0
        return 1 if alert.rule.endswith("_breached") else 2

    return sorted(alerts, key=rank)


def resend_due(last_sent: float | None, now: float, interval: float) -> bool:
    """Whether the whole firing set is due again (never sent yet, or `interval` has passed)."""
    return last_sent is None or now - last_sent >= interval
