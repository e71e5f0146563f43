"""Working-time arithmetic: how much SLA time lies between two instants, and when a target falls due.

Two calendars: `AlwaysOpen` (24x7) and `BusinessCalendar` (working hours on working days in a time
zone, minus holidays). Instants are timezone-aware datetimes; each working period is built in local
time and converted, so a DST change shortens or lengthens the wall-clock day exactly as people live it.
Public holidays come from the maintained `holidays` package (country code in config) plus the dates the
config lists; the intraday arithmetic is ours, small and tested case by case.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

import holidays as holiday_tables
from mypy_extensions import mypyc_attr

from schemas.config import BusinessHours

_MAX_DAYS_SEARCHED: Final = 3660
_CHUNK_DAYS: Final = 366


class NoWorkingTime(ValueError):
    """The calendar has no working period within ten years of the instant asked about."""


def to_microsecond(ts: float) -> float:
    """`ts` on the microsecond grid, as `datetime.timestamp()` gives it for the same datetime.

    Computed instants (a threshold, a due time) are put on this grid so that they compare equal to an
    event stamped at the same microsecond: a reply exactly at the due instant is in time.
    """
    return round(ts * 1_000_000) / 1_000_000


class SlaCalendar(Protocol):
    """Both questions in epoch seconds (the hot path: SLA clocks keep floats) and in datetimes."""

    name: str

    def working_between(self, start: float, end: float) -> float:
        """Working seconds in [start, end) (epoch seconds); 0 when end <= start."""
        ...

    def due_after(self, start: float, seconds: float) -> float:
        """The epoch second at which `seconds` of working time have elapsed since `start`."""
        ...

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time in [start, end); 0 when end <= start."""
        ...

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which `seconds` of working time have elapsed since `start`."""
        ...


@mypyc_attr(allow_interpreted_subclasses=True)
class AlwaysOpen:
    name = "24x7"

    def working_between(self, start: float, end: float) -> float:
        return end - start if end > start else 0.0

    def due_after(self, start: float, seconds: float) -> float:
        return start + seconds if seconds > 0 else start

    def working_seconds(self, start: datetime, end: datetime) -> float:
        return max(0.0, (end - start).total_seconds())

    def add(self, start: datetime, seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)


@mypyc_attr(allow_interpreted_subclasses=True)
class BusinessCalendar:
    """Working periods as epoch seconds with a running total, so both questions are two binary searches.

    Periods are built a year at a time around the instants asked about (in local time, then converted,
    so DST is exact); `working_seconds` is the difference of the running total at both ends and `add`
    the inverse look-up. SLA thresholds are asked for on every ticket event: this is the hot path.
    """

    name = "business"

    def __init__(self, hours: BusinessHours) -> None:
        self._hours = hours
        self._zone = ZoneInfo(hours.time_zone)
        self._weekdays = frozenset(hours.weekdays)
        self._holidays = set(hours.holidays)
        self._extra_working = frozenset(hours.extra_working_days)
        country = holiday_tables.country_holidays(hours.holiday_country) if hours.holiday_country else None
        # The table's own `__contains__`: it fills in a year's holidays when first asked about it, which a
        # lookup as a plain dict (what compiled code does with a dict subclass) would skip.
        self._in_country: Callable[[date], bool] | None = None if country is None else country.__contains__
        self._first_day: date | None = None
        self._end_day: date | None = None  # exclusive
        self._covered_from = math.inf  # the instants of the table's first and end local midnights
        self._covered_to = -math.inf
        self._opens: list[float] = []
        self._closes: list[float] = []
        self._before: list[float] = []
        """Working seconds in all periods before period i."""
        self._through: list[float] = []
        """Working seconds in all periods up to and including period i."""

    def is_working_day(self, day: date) -> bool:
        if day in self._extra_working:
            return True
        if day.weekday() not in self._weekdays or day in self._holidays:
            return False
        return not (self._in_country is not None and self._in_country(day))

    def period(self, day: date) -> tuple[datetime, datetime] | None:
        """The working period of a local date, as UTC instants, or None on a day off."""
        if not self.is_working_day(day):
            return None
        opens = datetime.combine(day, self._hours.opens, self._zone).astimezone(UTC)
        closes = datetime.combine(day, self._hours.closes, self._zone).astimezone(UTC)
        return opens, closes

    # -- the table of periods --------------------------------------------------------------------------
    def _cover(self, first: date, end: date) -> None:
        """Make the table hold every period of the local dates in [first, end)."""
        if self._first_day is not None and self._end_day is not None:
            if self._first_day <= first and end <= self._end_day:
                return
            first, end = min(first, self._first_day), max(end, self._end_day)
        opens: list[float] = []
        closes: list[float] = []
        day = first
        while day < end:
            period = self.period(day)
            if period is not None:
                opens.append(period[0].timestamp())
                closes.append(period[1].timestamp())
            day += timedelta(days=1)
        before, through, total = [], [], 0.0
        for begin, finish in zip(opens, closes, strict=True):
            before.append(total)
            total += finish - begin
            through.append(total)
        self._first_day, self._end_day = first, end
        self._covered_from = datetime.combine(first, time(0), self._zone).timestamp()
        self._covered_to = datetime.combine(end, time(0), self._zone).timestamp()
        self._opens, self._closes, self._before, self._through = opens, closes, before, through

    def _cover_instant(self, ts: float) -> None:
        if self._covered_from <= ts < self._covered_to:
            return
        day = datetime.fromtimestamp(ts, self._zone).date()
        self._cover(day - timedelta(days=_CHUNK_DAYS // 2), day + timedelta(days=_CHUNK_DAYS))

    def _elapsed(self, ts: float) -> float:
        """Working seconds from the table's start to `ts` (which the table covers)."""
        i = bisect.bisect_right(self._opens, ts) - 1
        if i < 0:
            return 0.0
        return self._before[i] + min(ts, self._closes[i]) - self._opens[i]

    # -- the arithmetic --------------------------------------------------------------------------------
    def working_between(self, start: float, end: float) -> float:
        if end <= start:
            return 0.0
        if not self._covered_from <= start < self._covered_to:
            self._cover_instant(start)
        if not self._covered_from <= end < self._covered_to:
            self._cover_instant(end)
        return self._elapsed(end) - self._elapsed(start)

    def due_after(self, start: float, seconds: float) -> float:
        if seconds <= 0:
            return start
        if not self._covered_from <= start < self._covered_to:
            self._cover_instant(start)
        target = self._elapsed(start) + seconds
        searched = 0
        while True:
            j = bisect.bisect_left(self._through, target)
            if j < len(self._through):
                return self._opens[j] + target - self._before[j]
            if searched >= _MAX_DAYS_SEARCHED:
                after = datetime.fromtimestamp(start, UTC).isoformat()
                raise NoWorkingTime(f"no working time within {_MAX_DAYS_SEARCHED} days after {after}")
            # Beyond the table: extend it by a year (the running totals from its start stay valid).
            assert self._first_day is not None
            assert self._end_day is not None
            self._cover(self._first_day, self._end_day + timedelta(days=_CHUNK_DAYS))
            searched += _CHUNK_DAYS

    def working_seconds(self, start: datetime, end: datetime) -> float:
        if end <= start:
            return 0.0
        return self.working_between(start.timestamp(), end.timestamp())

    def add(self, start: datetime, seconds: float) -> datetime:
        if seconds <= 0:
            return start
        return datetime.fromtimestamp(self.due_after(start.timestamp(), seconds), start.tzinfo)

    def next_working_instant(self, instant: datetime) -> datetime:
        """`instant` itself when inside working hours, else the next opening."""
        day = instant.astimezone(self._zone).date()
        for _ in range(_MAX_DAYS_SEARCHED):
            period = self.period(day)
            if period is not None and instant < period[1]:
                return max(instant, period[0])
            day += timedelta(days=1)
        raise NoWorkingTime(f"no working time within {_MAX_DAYS_SEARCHED} days after {instant.isoformat()}")
