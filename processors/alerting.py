"""The book of alerts: which are firing, how many episodes a subject has had, and the state changes.

Detectors decide; the book turns decisions into alert state changes with deterministic ids. A subject's
first episode has the plain id of rule + subject; a later episode (the same ticket breaching again after
a reopen) gets the episode number, so it is a new page, while a replay of the same stream is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from mypy_extensions import mypyc_attr

from processors.summaries import Summary
from schemas.alert import ROUTING_LABELS, Alert, AlertStatus, Audience, Severity, alert_id_for


def subject_key(rule: str, subject: dict[str, str]) -> str:
    """A flat key for (rule, subject); subjects are small str->str maps, so this stays cheap."""
    if len(subject) == 1:
        ((name, value),) = subject.items()
        return f"{rule}\x1f{name}={value}"
    if len(subject) == 2:
        (first, first_value), (second, second_value) = subject.items()
        if second < first:
            first, first_value, second, second_value = second, second_value, first, first_value
        return f"{rule}\x1f{first}={first_value}\x1f{second}={second_value}"
    return rule + "".join(f"\x1f{name}={subject[name]}" for name in sorted(subject))


_FIRING: Final = AlertStatus.FIRING
_RESOLVED: Final = AlertStatus.RESOLVED

LISTED_AT_MOST: Final = 50
"""How many items a list in an alert's details holds (`ticket_ids`, a cluster's `customers`).

A cluster's alert is sent again at every request it takes: with every ticket listed, a feature cluster of
3,000 requests (and their customers) made each update 57 kB, 143 us to validate in the sink, and one
of about 60,000 tickets would pass Kafka's default 1 MiB record limit. A person reads ten of them
(`processors/delivery.py`); the total count goes beside the list."""


def listing(details: dict[str, Any], name: str, items: list[str], newest_last: bool) -> None:
    """Put `items` in `details[name]`, at most `LISTED_AT_MOST` of them (the last ones when
    `newest_last`, else the first), and their number in `details[name + "_total"]`."""
    if len(items) <= LISTED_AT_MOST:
        details[name] = list(items)
    else:
        details[name] = items[-LISTED_AT_MOST:] if newest_last else items[:LISTED_AT_MOST]
    details[name + "_total"] = len(items)


def listed_total(details: dict[str, Any], name: str) -> int:
    """How many items the list `name` of an alert's details stands for: its `_total` (see `listing`), or,
    in an alert from before 2026-12-04 that listed them all, its length."""
    total = details.get(name + "_total")
    if isinstance(total, int):
        return total
    items = details.get(name)
    return len(items) if isinstance(items, list) else 0


def changes(*alerts: Alert | None) -> list[Alert]:
    """The alert state changes among `fire`/`resolve` results (None: nothing changed), as a detector
    returns them."""
    if len(alerts) == 1:  # nearly every call, once per new ticket: no comprehension's frame
        (alert,) = alerts
        return [] if alert is None else [alert]
    return [alert for alert in alerts if alert is not None]


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class AlertBook:
    firing: dict[str, Alert] = field(default_factory=dict)
    """subject key -> the firing alert of that rule and subject."""
    episodes: dict[str, int] = field(default_factory=dict)
    """subject key -> how many episodes have started (kept while the subject may fire again)."""

    def is_firing(self, rule: str, subject: dict[str, str]) -> bool:
        return subject_key(rule, subject) in self.firing

    def fire(
        self,
        rule: str,
        subject: dict[str, str],
        *,
        severity: Severity,
        audience: Audience,
        starts_at: datetime,
        summary: Summary | str,
        details: dict[str, Any],
        episode: str | None = None,
        key: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> Alert | None:
        """Start firing, or update a firing alert whose details changed; None when nothing changed.

        `episode` given explicitly (e.g. the repeat ticket's id) overrides the episode counter. `key`:
        `subject_key(rule, subject)` when the caller already has it. `labels`: routing labels beyond
        those the subject names itself (a ticket's team and priority); they are fixed when the alert
        starts firing, since a router tells alerts apart by their labels. `summary`: `summarize`'s (with
        every language), or one sentence.
        """
        translations: dict[str, str]
        if isinstance(summary, str):
            text, translations = summary, {}
        else:
            text, translations = summary
        if key is None:
            key = subject_key(rule, subject)
        existing = self.firing.get(key)
        if existing is not None:
            if existing.details == details and existing.summary == text:
                return None
            updated = existing.changed(details=details, summary=text, summaries=translations)
            self.firing[key] = updated
            return updated
        if episode is None:
            number = self.episodes.get(key, 0) + 1
            self.episodes[key] = number
            episode = "" if number == 1 else str(number)
        routing: dict[str, str] = {name: subject[name] for name in ROUTING_LABELS if name in subject}
        if labels:
            routing.update(labels)
        alert = Alert.trusted(
            alert_id=alert_id_for(rule, subject, episode),
            rule=rule,
            status=_FIRING,
            severity=severity,
            audience=audience,
            subject=subject,
            starts_at=starts_at,
            ends_at=None,
            summary=text,
            details=details,
            labels=routing,
            summaries=translations,
        )
        self.firing[key] = alert
        return alert

    def judge(
        self,
        rule: str,
        subject: dict[str, str],
        at: datetime,
        details: dict[str, Any],
        *,
        breaching: bool,
        recovered: bool,
        severity: Severity,
        audience: Audience,
        summary: Summary | str,
        labels: dict[str, str] | None = None,
    ) -> Alert | None:
        """One evaluation of a rate rule with hysteresis: a firing alert resolves once `recovered` and is
        otherwise left as it is (no update per evaluation); a quiet one fires once `breaching`. The two
        conditions differ (a lower level to resolve, a minimum volume to fire), so a rate that hovers at
        its threshold does not flap."""
        if self.is_firing(rule, subject):
            return self.resolve(rule, subject, at, details) if recovered else None
        if not breaching:
            return None
        return self.fire(
            rule,
            subject,
            severity=severity,
            audience=audience,
            starts_at=at,
            summary=summary,
            details=details,
            labels=labels,
        )

    def resolve(
        self, rule: str, subject: dict[str, str], ends_at: datetime, details: dict[str, Any] | None = None
    ) -> Alert | None:
        alert = self.firing.pop(subject_key(rule, subject), None)
        if alert is None:
            return None
        update: dict[str, Any] = {"status": _RESOLVED, "ends_at": max(ends_at, alert.starts_at)}
        if details is not None:
            update["details"] = details
        return alert.changed(**update)

    def forget(self, rule: str, subject: dict[str, str]) -> None:
        """Drop the episode counter of a subject that can no longer fire (expired state)."""
        key = subject_key(rule, subject)
        if key not in self.firing:
            self.episodes.pop(key, None)
