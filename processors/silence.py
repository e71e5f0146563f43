"""`channel_silent` (subject `{"channel"}`): a channel's new contacts stopped.

Fires when a channel has had no new contact for at least 60 minutes while, in the same 60 minutes of the
week (same weekday and local clock time) over up to 4 previous weeks covered by the stream, it received
at least 10 on average. No history, no alert. While the silence lasts the check repeats every minute,
so a channel that dies at night is caught when the morning's traffic should have started. Resolves
with the channel's next new contact.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from processors.alerting import AlertBook
from processors.summaries import summarize
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig

CHANNEL_SILENT = "channel_silent"
_MINUTE = timedelta(minutes=1)


@dataclass
class ChannelFlow:
    contacts: list[datetime] = field(default_factory=list)
    """Times of new contacts within the history horizon, sorted."""
    last_contact: datetime | None = None
    next_check: datetime | None = None
    firing: bool = False
    """Mirrors the alert book, so a contact on a flowing channel skips the look-up."""


class SilenceDetector:
    def __init__(self, config: DetectionConfig, alerts: AlertBook) -> None:
        self._cfg = config.channel_silence
        self._locale = config.locale
        self._zone = ZoneInfo(config.business_hours.time_zone)
        self._alerts = alerts
        self._silence = timedelta(minutes=self._cfg.silence_minutes)
        self.channels: dict[str, ChannelFlow] = {}
        self._next_due: datetime | None = None
        self._next_due_dirty = False
        self.due_bound = math.inf
        """A lower bound of the next check as epoch seconds, exact after each `next_due`."""

    def contact(self, channel: str, at: datetime) -> list[Alert]:
        flow = self.channels.get(channel)
        if flow is None:
            flow = self.channels[channel] = ChannelFlow()
        if not flow.contacts or at >= flow.contacts[-1]:
            flow.contacts.append(at)
        else:
            bisect.insort(flow.contacts, at)
        alerts = []
        if flow.last_contact is None or at > flow.last_contact:
            flow.last_contact = at
            flow.next_check = at + self._silence
            self._next_due_dirty = True
            # A check only moves later, except a new channel's first: the bound stays a lower bound.
            self.due_bound = min(self.due_bound, flow.next_check.timestamp())
            if flow.firing:
                flow.firing = False
                alert = self._alerts.resolve(CHANNEL_SILENT, {"channel": channel}, at)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def next_due(self) -> datetime | None:
        if self._next_due_dirty:
            checks = [flow.next_check for flow in self.channels.values() if flow.next_check is not None]
            self._next_due = min(checks) if checks else None
            self._next_due_dirty = False
            self.due_bound = self._next_due.timestamp() if self._next_due is not None else math.inf
        return self._next_due

    def fire_due(self, now: datetime, stream_start: datetime) -> list[Alert]:
        alerts = []
        self._next_due_dirty = True
        for channel, flow in self.channels.items():
            while flow.next_check is not None and flow.next_check <= now:
                at = flow.next_check
                alert = self._check(channel, flow, at, stream_start)
                if alert is not None:
                    alerts.append(alert)
                    flow.firing = True
                    flow.next_check = None  # firing: nothing to check until the next contact
                else:
                    flow.next_check = at + _MINUTE
        return alerts

    def _expected(self, flow: ChannelFlow, at: datetime, stream_start: datetime) -> tuple[float, int]:
        """Average contacts in the same 60 minutes of the week, over the covered previous weeks."""
        local_end = at.astimezone(self._zone)
        counts = []
        for week in range(1, self._cfg.history_weeks + 1):
            # Wall-clock arithmetic in the local zone: "same weekday and clock time" across DST.
            end = (local_end - timedelta(days=7 * week)).astimezone(at.tzinfo)
            start = end - self._silence
            if start < stream_start:
                break
            counts.append(bisect.bisect_left(flow.contacts, end) - bisect.bisect_left(flow.contacts, start))
        if not counts:
            return 0.0, 0
        return sum(counts) / len(counts), len(counts)

    def _check(self, channel: str, flow: ChannelFlow, at: datetime, stream_start: datetime) -> Alert | None:
        if flow.last_contact is None or at - flow.last_contact < self._silence:
            return None
        expected, weeks = self._expected(flow, at, stream_start)
        if weeks == 0 or expected < self._cfg.min_average_contacts:
            return None
        silent_minutes = int((at - flow.last_contact).total_seconds() // 60)
        details: dict[str, Any] = {
            "last_contact_at": flow.last_contact.isoformat(),
            "silent_minutes": silent_minutes,
            "expected_contacts": round(expected, 2),
            "history_weeks": weeks,
        }
        summary = summarize(
            CHANNEL_SILENT,
            self._locale,
            {
                "channel": channel,
                "silent_minutes": silent_minutes,
                "expected": round(expected, 1),
            },
        )
        return self._alerts.fire(
            CHANNEL_SILENT,
            {"channel": channel},
            severity=Severity.WARNING,
            audience=Audience.ONCALL,
            starts_at=at,
            summary=summary,
            details=details,
        )

    def prune(self, now: datetime) -> None:
        horizon = now - timedelta(days=7 * self._cfg.history_weeks) - self._silence - _MINUTE
        for flow in self.channels.values():
            cut = bisect.bisect_left(flow.contacts, horizon)
            if cut:
                del flow.contacts[:cut]
