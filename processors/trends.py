"""Week-over-week detectors, evaluated at every whole hour of the stream clock.

- `volume_spike` (subject `{"dimension","value"}`): new contacts in the trailing 7 days vs the 7 before,
  per category/topic/channel/kind/error-code value (an error code's rise is for engineering: audience
  `engineering`, label `error_code`). Fires when current >= previous x (1 + threshold), current >= 30,
  p < 0.001, held at 6 consecutive hourly evaluations; `starts_at` is the first of them (Prometheus'
  `for`). Resolves at the first evaluation where the rise is under 10%.
- `resolution_time_spike` (subject `{"dimension": "topic","value"}`): mean SLA-clock resolution time of
  tickets first resolved in each window; fires at +20% with >= 20 tickets in each; resolves under +10%.
Rates (escalations, first-contact resolution, misrouting) are `processors/rates.py`'s.
No week-over-week verdict until the stream covers both windows (for resolution time, both windows and a
week's warm-up before them: a stream's first resolutions are its fastest). Error codes count in their
normalized form (`ERR 502` = `ERR-502`), as incident clusters count them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from mypy_extensions import mypyc_attr

from processors.alerting import AlertBook
from processors.detector import CONTACTS_AND_STATUS, Observation, WithoutDeadlines
from processors.incidents import normalize_error_code
from processors.summaries import summarize
from processors.windows import HourlySeries, hour_index, rise_p_value
from schemas.alert import ROUTING_LABELS, Alert, Audience, Severity
from schemas.config import DetectionConfig
from schemas.event import ContactEvent, EventType

_CONTACT_RECEIVED: Final = EventType.CONTACT_RECEIVED
_ONCALL: Final = Audience.ONCALL
_ENGINEERING: Final = Audience.ENGINEERING

VOLUME_SPIKE = "volume_spike"
RESOLUTION_TIME_SPIKE = "resolution_time_spike"


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class _Streak:
    count: int = 0
    since: datetime | None = None


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class TrendState:
    contacts: dict[tuple[str, str], HourlySeries] = field(default_factory=dict)
    streaks: dict[tuple[str, str], _Streak] = field(default_factory=dict)
    resolution_sum: dict[str, HourlySeries] = field(default_factory=dict)
    resolution_count: dict[str, HourlySeries] = field(default_factory=dict)


@mypyc_attr(allow_interpreted_subclasses=True)
class TrendDetectors(WithoutDeadlines):
    def __init__(self, config: DetectionConfig, alerts: AlertBook) -> None:
        self._config = config
        self._alerts = alerts
        self.state = TrendState()
        self._week = config.volume_spike.window_days * 24
        self._dimensions = tuple(config.volume_spike.dimensions)

    # -- the detector protocol: inputs at each event, evaluations at whole hours --------------------------
    # Contacts, and resolutions (by a status change); it also evaluates at whole hours.
    observes = CONTACTS_AND_STATUS

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        event, ticket, facts = seen.event, seen.ticket, seen.facts
        if event.type is _CONTACT_RECEIVED:
            self.count_contact(event, seen.hour)
        if facts.resolution_seconds is not None:
            self.ticket_resolved(ticket.topic, seen.hour, facts.resolution_seconds)

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        return self.evaluate(at, stream_start)

    # -- inputs ----------------------------------------------------------------------------------------
    def count_contact(self, event: ContactEvent, hour: int) -> None:
        """Count a new contact in hour `hour` (`hour_index` of its time) under each dimension's value."""
        contacts = self.state.contacts
        for dimension in self._dimensions:
            value = getattr(event, dimension)
            if value is None:
                continue
            if dimension == "error_code":
                # "ERR 502" and "err-502" are one code, as incident clusters count it.
                value = normalize_error_code(value)
            # A StrEnum member hashes and compares as its value, so it finds the key; a new key is stored
            # with the plain value (it is pickled, compared and printed; str() of a member is its value).
            series = contacts.get((dimension, value))
            if series is None:
                series = contacts[(dimension, str(value))] = HourlySeries()
            series.add(hour)

    def ticket_resolved(self, topic: str | None, hour: int, sla_seconds: float) -> None:
        """A ticket was first resolved in hour `hour`, after `sla_seconds` on its SLA clock."""
        if topic:
            _series(self.state.resolution_sum, topic).add(hour, sla_seconds)
            _series(self.state.resolution_count, topic).add(hour)

    # -- evaluation ------------------------------------------------------------------------------------
    def evaluate(self, at: datetime, stream_start: datetime) -> list[Alert]:
        """Evaluate at a whole hour `at`; windows are the whole hours before it."""
        now = hour_index(at)
        previous_starts = datetime.fromtimestamp((now - 2 * self._week) * 3600, tz=at.tzinfo)
        alerts: list[Alert] = []
        if stream_start <= previous_starts:
            alerts += self._volume(at, now)
            # Tickets resolved early in a stream are its fast ones (the slow ones were opened before it),
            # so the previous window's mean is biased low until it starts `warmup_days` in.
            warmup = timedelta(days=self._config.resolution_time_spike.warmup_days)
            if stream_start + warmup <= previous_starts:
                alerts += self._resolution_time(at, now)
        self._prune(now)
        return alerts

    def _volume(self, at: datetime, now: int) -> list[Alert]:
        cfg = self._config.volume_spike
        alerts: list[Alert] = []
        for key, series in self.state.contacts.items():
            dimension, value = key
            current_sum, previous_sum = series.two_windows(now, self._week)
            current, previous = round(current_sum), round(previous_sum)
            threshold = cfg.threshold_by_dimension.get(dimension, cfg.threshold)
            subject = {"dimension": dimension, "value": value}
            firing = self._alerts.is_firing(VOLUME_SPIKE, subject)
            details: dict[str, Any] = {
                "current": current,
                "previous": previous,
                "rise": round(current / previous - 1, 4) if previous else None,
                "window_days": cfg.window_days,
            }
            if firing:
                if current < previous * (1 + cfg.resolve_below):
                    alert = self._alerts.resolve(VOLUME_SPIKE, subject, at, details)
                    if alert:
                        alerts.append(alert)
                    self.state.streaks.pop(key, None)
                continue
            holds = (
                current >= cfg.min_current
                and current >= previous * (1 + threshold)
                and rise_p_value(current, previous) < cfg.max_p_value
            )
            streak = self.state.streaks.get(key)
            if not holds:
                if streak is not None:
                    del self.state.streaks[key]
                continue
            if streak is None:
                streak = self.state.streaks[key] = _Streak(0, at)
            streak.count += 1
            if streak.count >= cfg.for_evaluations and streak.since is not None:
                details["p_value"] = rise_p_value(current, previous)
                details["evaluations"] = streak.count
                rise = round(100 * (current / previous - 1)) if previous else "∞"
                summary = summarize(
                    VOLUME_SPIKE,
                    self._config.locale,
                    {
                        "dimension": dimension,
                        "value": value,
                        "rise": rise,
                        "current": current,
                        "previous": previous,
                    },
                )
                alert = self._alerts.fire(
                    VOLUME_SPIKE,
                    subject,
                    severity=Severity.WARNING,
                    audience=_ENGINEERING if dimension == "error_code" else _ONCALL,
                    starts_at=streak.since,
                    summary=summary,
                    details=details,
                    labels=_labels_of(subject),
                )
                if alert:
                    alerts.append(alert)
        return alerts

    def _resolution_time(self, at: datetime, now: int) -> list[Alert]:
        cfg = self._config.resolution_time_spike
        alerts: list[Alert] = []
        for topic, counts in self.state.resolution_count.items():
            sums = self.state.resolution_sum[topic]
            n_current_sum, n_previous_sum = counts.two_windows(now, self._week)
            n_current, n_previous = round(n_current_sum), round(n_previous_sum)
            subject = {"dimension": "topic", "value": topic}
            seconds_current, seconds_previous = sums.two_windows(now, self._week)
            if n_current == 0 or n_previous == 0:
                continue
            mean_current = seconds_current / n_current
            mean_previous = seconds_previous / n_previous
            details: dict[str, Any] = {
                "current_mean_seconds": round(mean_current, 1),
                "previous_mean_seconds": round(mean_previous, 1),
                "current_tickets": n_current,
                "previous_tickets": n_previous,
                "rise": round(mean_current / mean_previous - 1, 4) if mean_previous else None,
            }
            rise = mean_current / mean_previous - 1 if mean_previous else 0.0
            alert = self._alerts.judge(
                RESOLUTION_TIME_SPIKE,
                subject,
                at,
                details,
                breaching=n_current >= cfg.min_tickets
                and n_previous >= cfg.min_tickets
                and mean_previous > 0
                and mean_current >= mean_previous * (1 + cfg.threshold),
                recovered=mean_current < mean_previous * (1 + cfg.resolve_below),
                severity=Severity.WARNING,
                audience=Audience.ONCALL,
                summary=summarize(
                    RESOLUTION_TIME_SPIKE,
                    self._config.locale,
                    {
                        "value": topic,
                        "rise": round(100 * rise),
                        "current_hours": round(mean_current / 3600, 1),
                        "previous_hours": round(mean_previous / 3600, 1),
                    },
                ),
                labels=_labels_of(subject),
            )
            if alert:
                alerts.append(alert)
        return alerts

    def _prune(self, now: int) -> None:
        horizon = now - 2 * self._week - 1
        _prune_family(self.state.contacts, horizon)
        _prune_family(self.state.resolution_sum, horizon)
        _prune_family(self.state.resolution_count, horizon)


def _series(family: dict[str, HourlySeries], topic: str) -> HourlySeries:
    """The topic's series, made on first use (setdefault would build a new one on every call)."""
    series = family.get(topic)
    if series is None:
        series = family[topic] = HourlySeries()
    return series


def _prune_family(family: dict[Any, HourlySeries], before_hour: int) -> None:
    for key in list(family):
        family[key].prune(before_hour)
        if not family[key]:
            del family[key]


def _labels_of(subject: dict[str, str]) -> dict[str, str]:
    """`{"dimension": "topic", "value": "billing"}` routes as `topic=billing`."""
    dimension = subject["dimension"]
    return {dimension: subject["value"]} if dimension in ROUTING_LABELS else {}
