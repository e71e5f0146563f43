"""Rate rules: the share of a group's tickets with some property over a trailing window, evaluated at every
whole hour of the stream clock. A rule fires when the share is past its threshold with evidence: the
Wilson score bound at `confidence` (90% by default, one-sided) is past it, not only the observed share,
so 5 of 32 tickets (16%, bound 9%) does not fire a 15% rule while 30 of 100 (bound 24%) does. It needs a
minimum number of tickets, and resolves at a level short of the threshold (hysteresis), so a share that
hovers at its threshold pages nobody and does not flap.

- `escalation_rate_high` (subject `{"dimension": "topic","value"}`): the share of the window's new tickets
  that were escalated (counted in the hour the ticket opened); fires above 20% with >= 20 tickets,
  resolves at or below 15%.
- `fcr_low` (topic): the share of the window's resolved tickets resolved at first contact (one agent reply
  at most, never reopened); fires under 70% with >= 30 tickets, resolves at 75% or more.
- `misrouting_high` (subject `{"dimension": "team","value"}`): the share of the window's resolved tickets
  a team took first that were handed on to another team; fires above 15% with >= 30 tickets, resolves at
  or below 12%.
- `repeat_rate_high` (topic) is kept by the repeat-contact detector, which knows a repeat when it sees one
  (`processors/repeats.py`), with the same `Shares`.
Tickets first seen mid-life are not counted: their first reply and team may have been missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from statistics import NormalDist
from typing import Any, Final

from mypy_extensions import mypyc_attr

from processors.alerting import AlertBook
from processors.detector import CONTACTS_STATUS_AND_ESCALATIONS, Observation, WithoutDeadlines
from processors.summaries import summarize
from processors.windows import HourlySeries, hour_index
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig, RateRuleConfig

ESCALATION_RATE_HIGH: Final = "escalation_rate_high"
FCR_LOW: Final = "fcr_low"
MISROUTING_HIGH: Final = "misrouting_high"


@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class ShareRule:
    rule: str
    dimension: str
    """What the subject groups by (`topic`, `team`): also the routing label it carries."""
    counted: str
    """The name of the tickets with the property, in the alert's details and summary."""
    window_hours: int
    min_tickets: int
    fire_at: float
    resolve_at: float
    confidence: float = 0.9
    """How sure the share is past `fire_at` before it fires (0: the observed share decides)."""
    low_is_bad: bool = False
    """Fires when the share falls under `fire_at` (a share that should be high), not above it."""
    severity: Severity = Severity.WARNING
    audience: Audience = Audience.ONCALL


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class _Group:
    tickets: HourlySeries = field(default_factory=HourlySeries)
    counted: HourlySeries = field(default_factory=HourlySeries)


@mypyc_attr(allow_interpreted_subclasses=True)
class Shares:
    """One rate rule's counts, per group value and hour, and its hourly verdicts."""

    def __init__(self, spec: ShareRule, alerts: AlertBook, locale: str) -> None:
        self.spec = spec
        self._alerts = alerts
        self._locale = locale
        self.groups: dict[str, _Group] = {}
        self._z = NormalDist().inv_cdf(spec.confidence) if spec.confidence > 0 else 0.0

    @classmethod
    def of(
        cls,
        rule: str,
        dimension: str,
        counted: str,
        config: RateRuleConfig,
        fire_at: float,
        resolve_at: float,
        alerts: AlertBook,
        locale: str,
        low_is_bad: bool = False,
    ) -> Shares:
        """A rule from its config section (window, minimum volume, confidence) and its two levels."""
        spec = ShareRule(
            rule,
            dimension,
            counted,
            config.window_days * 24,
            config.min_tickets,
            fire_at,
            resolve_at,
            config.confidence,
            low_is_bad,
        )
        return cls(spec, alerts, locale)

    def ticket(self, value: str | None, hour: int, counted: bool = False) -> None:
        """A ticket of group `value` in hour `hour` (`hour_index`), with the property or not."""
        if not value:
            return
        group = self._group(value)
        group.tickets.add(hour)
        if counted:
            group.counted.add(hour)

    def counted_later(self, value: str | None, hour: int) -> None:
        """A ticket already counted in hour `hour` turned out to have the property (an escalation)."""
        if value:
            self._group(value).counted.add(hour)

    def evaluate(self, at: datetime, now: int) -> list[Alert]:
        """The verdicts at whole hour `at` (`now` its hour index) over the window's whole hours."""
        spec = self.spec
        alerts: list[Alert] = []
        for value, group in self.groups.items():
            tickets = round(group.tickets.two_windows(now, spec.window_hours)[0])
            counted = round(group.counted.two_windows(now, spec.window_hours)[0])
            share = counted / tickets if tickets else 0.0
            if spec.low_is_bad:
                bad = wilson_bound(counted, tickets, self._z, upper=True) < spec.fire_at
                recovered = share >= spec.resolve_at
            else:
                bad = wilson_bound(counted, tickets, self._z, upper=False) > spec.fire_at
                recovered = share <= spec.resolve_at
            subject = {"dimension": spec.dimension, "value": value}
            enough = tickets >= spec.min_tickets
            if not (enough and bad) and not self._alerts.is_firing(spec.rule, subject):
                continue  # the usual hour: nothing fires, nothing to resolve; no sentence to write
            details: dict[str, Any] = {"tickets": tickets, spec.counted: counted, "rate": round(share, 4)}
            alert = self._alerts.judge(
                spec.rule,
                subject,
                at,
                details,
                breaching=enough and bad,
                recovered=recovered or not enough,
                severity=spec.severity,
                audience=spec.audience,
                summary=summarize(
                    spec.rule,
                    self._locale,
                    {
                        "value": value,
                        "percent": _percent(share),
                        spec.counted: counted,
                        "tickets": tickets,
                        "limit": _percent(spec.fire_at),
                    },
                ),
                labels={spec.dimension: value},
            )
            if alert:
                alerts.append(alert)
        return alerts

    def prune(self, now: int) -> None:
        horizon = now - self.spec.window_hours - 1
        for value in list(self.groups):
            group = self.groups[value]
            group.tickets.prune(horizon)
            group.counted.prune(horizon)
            if not group.tickets and not group.counted:
                del self.groups[value]

    def _group(self, value: str) -> _Group:
        group = self.groups.get(value)
        if group is None:
            group = self.groups[value] = _Group()
        return group


def wilson_bound(hits: int, n: int, z: float, upper: bool) -> float:
    """The Wilson score interval's lower (or upper) end for `hits` of `n` at normal quantile `z`; the
    observed share itself when `z` is 0."""
    if n == 0:
        return 0.0
    share = hits / n
    if z == 0:
        return share
    z2 = z * z
    centre = share + z2 / (2 * n)
    spread = z * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n))
    return (centre + spread if upper else centre - spread) / (1 + z2 / n)


def _percent(share: float) -> str:
    """`15.1` for 0.1509, `25` for 0.25: whole when it is, else one decimal (15% vs "over 15%" reads
    as no change)."""
    percent = round(100 * share, 1)
    return f"{percent:g}"


@mypyc_attr(allow_interpreted_subclasses=True)
class TicketRates(WithoutDeadlines):
    """Escalation, first-contact resolution and misrouting rates, from what the ticket book reports."""

    def __init__(self, config: DetectionConfig, alerts: AlertBook) -> None:
        escalation = config.escalation_rate
        fcr = config.first_contact_resolution
        misrouting = config.misrouting
        locale = config.locale
        self.escalations = Shares.of(
            ESCALATION_RATE_HIGH,
            "topic",
            "escalated",
            escalation,
            escalation.threshold,
            escalation.resolve_at_or_below,
            alerts,
            locale,
        )
        self.first_contact = Shares.of(
            FCR_LOW,
            "topic",
            "first_contact",
            fcr,
            fcr.target,
            fcr.resolve_at_or_above,
            alerts,
            locale,
            low_is_bad=True,
        )
        self.misrouting = Shares.of(
            MISROUTING_HIGH,
            "team",
            "handed_on",
            misrouting,
            misrouting.threshold,
            misrouting.resolve_at_or_below,
            alerts,
            locale,
        )
        self._all = (self.escalations, self.first_contact, self.misrouting)

    # Tickets opened, finished and escalated; it also evaluates at whole hours.
    observes = CONTACTS_STATUS_AND_ESCALATIONS

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        facts, ticket = seen.facts, seen.ticket
        if ticket.first_seen_mid_life:
            return
        if facts.opened:
            self.escalations.ticket(ticket.topic, seen.hour)
        if facts.first_escalation:
            self.escalations.counted_later(ticket.topic, hour_index(ticket.opened_at))
        if facts.finished and ticket.resolved_at is not None:
            self.first_contact.ticket(ticket.topic, seen.hour, ticket.first_contact_resolution)
            if ticket.teams:
                self.misrouting.ticket(ticket.teams[0], seen.hour, ticket.handoffs > 0)

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        now = hour_index(at)
        alerts: list[Alert] = []
        for shares in self._all:
            alerts += shares.evaluate(at, now)
            shares.prune(now)
        return alerts
