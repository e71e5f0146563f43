"""`channel_silent` (subject `{"channel"}`): a channel's new contacts stopped.

Fires when a channel has had no new contact for at least 60 minutes while, in the same 60 minutes of the
week (same weekday and local clock time) over up to 4 previous weeks covered by the stream, it received
at least 10 on average. No history, no alert. While the silence lasts the check repeats every minute,
so a channel that dies at night is caught when the morning's traffic should have started. Resolves
with the channel's next new contact.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from processors.alerting import AlertBook, changes
from processors.calendar import to_microsecond
from processors.detector import NEW_CONTACTS, Observation
from processors.summaries import summarize
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig
from schemas.event import EventType

_CONTACT_RECEIVED: Final = EventType.CONTACT_RECEIVED

CHANNEL_SILENT = "channel_silent"

_ZONE_SLACK: Final = 3 * 3600.0
"""Past weeks' windows are found by wall-clock arithmetic in the local zone, so a window lies up to a
daylight-saving shift (an hour, two in a few historical zones) off "a week earlier" in epoch seconds:
a skip lands this much before the exact instant, never after it."""
_WEEK_SECONDS: Final = 7 * 86400.0
_LOOK_AHEAD_SECONDS: Final = 3 * 86400.0
"""How far one skip may reach at most; the check there looks ahead again (a channel silent for weeks
costs a check every three days)."""


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class ChannelFlow:
    """One channel's recent new contacts. Instants are epoch seconds (a contact is one list append)."""

    contacts: list[float] = field(default_factory=list)
    """Times of new contacts within the history horizon, sorted."""
    last_contact: float | None = None
    last_contact_at: datetime | None = None
    """`last_contact` as the event stamped it (offset kept), for the alert."""
    next_check: float | None = None
    firing: bool = False
    """Mirrors the alert book, so a contact on a flowing channel skips the look-up."""


@functools.lru_cache(maxsize=8192)
def _day_offset(zone: ZoneInfo, day: int) -> float:
    """The zone's UTC offset in seconds at the start of UTC day number `day` (a pure function, cached
    process-wide: the detector's state stays what checkpoints hold)."""
    delta = datetime.fromtimestamp(day * 86400.0, zone).utcoffset()
    return delta.total_seconds() if delta is not None else 0.0


@mypyc_attr(allow_interpreted_subclasses=True)
class SilenceDetector:
    def __init__(self, config: DetectionConfig, alerts: AlertBook) -> None:
        self._cfg = config.channel_silence
        self._locale = config.locale
        self._zone = ZoneInfo(config.business_hours.time_zone)
        self._alerts = alerts
        self._silence = timedelta(minutes=self._cfg.silence_minutes)
        self._silence_seconds = self._silence.total_seconds()
        self.channels: dict[str, ChannelFlow] = {}
        self._next_due = math.inf
        self._next_due_dirty = False
        self.due_bound = math.inf
        """A lower bound of the next check as epoch seconds, exact after each `next_due`."""
        lateness = config.engine.allowed_lateness_minutes * 60.0
        self._look_ahead = min(_LOOK_AHEAD_SECONDS, _WEEK_SECONDS - _ZONE_SLACK - lateness)
        """How far one skip may reach. A contact up to `lateness` late joins a past week's window a week
        after it happened; no skip reaches that instant, so a late contact never needs one undone."""

    observes = NEW_CONTACTS
    keeps_deadlines = True

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        event = seen.event
        if event.type is _CONTACT_RECEIVED and event.channel is not None:
            alerts += self.contact(str(event.channel), event.occurred_at, seen.ts)

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        self.prune(at)
        return []

    def contact(self, channel: str, at: datetime, ts: float) -> list[Alert]:
        """A new contact on `channel` at `at` (`ts` in epoch seconds)."""
        flow = self.channels.get(channel)
        if flow is None:
            flow = self.channels[channel] = ChannelFlow()
        contacts = flow.contacts
        if not contacts or ts >= contacts[-1]:
            contacts.append(ts)
        else:
            bisect.insort(contacts, ts)
        if flow.last_contact is not None and ts <= flow.last_contact:
            return []
        flow.last_contact, flow.last_contact_at = ts, at
        flow.next_check = to_microsecond(ts + self._silence_seconds)
        self._next_due_dirty = True
        # A check only moves later, except a new channel's first: the bound stays a lower bound.
        if flow.next_check < self.due_bound:
            self.due_bound = flow.next_check
        if not flow.firing:
            return []
        flow.firing = False
        alert = self._alerts.resolve(CHANNEL_SILENT, {"channel": channel}, at)
        return changes(alert)

    def next_due(self) -> float:
        """The next check as epoch seconds, or inf."""
        if self._next_due_dirty:
            checks = [flow.next_check for flow in self.channels.values() if flow.next_check is not None]
            self._next_due = min(checks, default=math.inf)
            self._next_due_dirty = False
            self.due_bound = self._next_due
        return self._next_due

    def fire_due(self, now: float, stream_start: datetime) -> list[Alert]:
        """Run every check due at or before `now` (epoch seconds)."""
        alerts = []
        self._next_due_dirty = True
        start = stream_start.timestamp()
        for channel, flow in self.channels.items():
            while flow.next_check is not None and flow.next_check <= now:
                at = flow.next_check
                alert = self._check(channel, flow, at, start)
                if alert is not None:
                    alerts.append(alert)
                    flow.firing = True
                    flow.next_check = None  # firing: nothing to check until the next contact
                else:
                    flow.next_check = self._next_check(flow, at, start)
        return alerts

    def _next_check(self, flow: ChannelFlow, at: float, stream_start: float) -> float:
        """The check after a quiet one at `at`: a minute later, or the first minute of that grid at which
        the past weeks' average could reach the minimum (a quiet channel at night, or one that never has
        that many, made a check a minute: two fifths of replay's deadline work).

        The bound: with the covered weeks fixed (no week joins before the returned instant), a week's
        count at any later instant is at most its contacts from its window's start now to its window's
        end then; that sum grows by one at each contact's entry, a week after it happened. Every check
        before the entry that would make it reach the minimum finds too few, so skipping them leaves
        the alerts exactly as they were. Where the zone's offset changes within the weeks looked at,
        windows may lie a clock change off "a week earlier", and each is widened by a slack for it."""
        contacts = flow.contacts
        if self._look_ahead <= 60.0:
            return to_microsecond(at + 60.0)
        horizon = at + self._look_ahead
        history = self._cfg.history_weeks * _WEEK_SECONDS + self._silence_seconds
        slack = 0.0 if self._steady_offset(at - history, horizon) else _ZONE_SLACK
        soonest = horizon
        covered = 0
        counted = 0
        entries: list[float] = []
        for week in range(1, self._cfg.history_weeks + 1):
            shift = week * _WEEK_SECONDS
            window_start = at - shift - self._silence_seconds
            if window_start < stream_start + slack:
                # Perhaps not covered yet: it joins once its window starts after the stream's start
                # (an instant already past if it is covered: no skip). Later weeks join later still.
                soonest = min(soonest, stream_start + self._silence_seconds + shift - slack)
                break
            covered += 1
            first = bisect.bisect_left(contacts, window_start - slack)
            entering = bisect.bisect_left(contacts, at - shift + slack)
            counted += entering - first
            # Contacts after the window enter it in order; those past the look-ahead do not matter.
            last = bisect.bisect_left(contacts, horizon - shift + slack, entering)
            entries += [c + shift - slack for c in contacts[entering:last]]
        if covered:
            room = math.ceil(self._cfg.min_average_contacts * covered - counted)
            if room <= 0:
                return to_microsecond(at + 60.0)
            if room <= len(entries):
                # The `room`-th entry over all weeks brings the bound to the minimum.
                soonest = min(soonest, heapq.nsmallest(room, entries)[-1])
        minutes = math.ceil((soonest - at) / 60.0)
        return to_microsecond(at + 60.0 * max(1, minutes))

    def _steady_offset(self, since: float, until: float) -> bool:
        """Whether the zone's UTC offset is the same on every day from `since` to `until` (a day either
        side included): then "the same time a week earlier" is exactly a week earlier."""
        first, last = int(since // 86400) - 1, int(until // 86400) + 1
        offset = _day_offset(self._zone, first)
        return all(_day_offset(self._zone, day) == offset for day in range(first + 1, last + 1))

    def _expected(self, flow: ChannelFlow, at: datetime, stream_start: float) -> tuple[float, int]:
        """Average contacts in the same 60 minutes of the week, over the covered previous weeks."""
        local_end = at.astimezone(self._zone)
        counts = []
        for week in range(1, self._cfg.history_weeks + 1):
            # Wall-clock arithmetic in the local zone: "same weekday and clock time" across DST.
            end = (local_end - timedelta(days=7 * week)).timestamp()
            start = end - self._silence_seconds
            if start < stream_start:
                break
            counts.append(bisect.bisect_left(flow.contacts, end) - bisect.bisect_left(flow.contacts, start))
        if not counts:
            return 0.0, 0
        return sum(counts) / len(counts), len(counts)

    def _check(self, channel: str, flow: ChannelFlow, ts: float, stream_start: float) -> Alert | None:
        if flow.last_contact is None or flow.last_contact_at is None:
            return None
        if ts - flow.last_contact < self._silence_seconds:
            return None
        at = datetime.fromtimestamp(ts, flow.last_contact_at.tzinfo)
        expected, weeks = self._expected(flow, at, stream_start)
        if weeks == 0 or expected < self._cfg.min_average_contacts:
            return None
        silent_minutes = int((ts - flow.last_contact) // 60)
        details: dict[str, Any] = {
            "last_contact_at": flow.last_contact_at.isoformat(),
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
        # A past week's window lies up to a clock change earlier than "a week earlier" in epoch seconds.
        horizon = (
            now.timestamp() - _WEEK_SECONDS * self._cfg.history_weeks - self._silence_seconds - _ZONE_SLACK
        )
        for flow in self.channels.values():
            cut = bisect.bisect_left(flow.contacts, horizon)
            if cut:
                del flow.contacts[:cut]
