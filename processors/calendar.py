"""Working-time arithmetic: how much SLA time lies between two instants, and when a target falls due.

Two calendars: `AlwaysOpen` (24x7) and `BusinessCalendar` (working hours on working days in a time
zone, minus holidays). Instants are timezone-aware datetimes; each working period is built in local
time and converted, so a DST change shortens or lengthens the wall-clock day exactly as people live it.
Public holidays come from the maintained `holidays` package (country code in config) plus the dates the
config lists; the intraday arithmetic is ours, small and tested case by case.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

import holidays as holiday_tables

from schemas.config import BusinessHours

_MAX_DAYS_SEARCHED: Final = 3660


class NoWorkingTime(ValueError):
    """The calendar has no working period within ten years of the instant asked about."""


class SlaCalendar(Protocol):
    name: str

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time in [start, end); 0 when end <= start."""
        ...

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which `seconds` of working time have elapsed since `start`."""
        ...


class AlwaysOpen:
    name = "24x7"

    def working_seconds(self, start: datetime, end: datetime) -> float:
        return max(0.0, (end - start).total_seconds())

    def add(self, start: datetime, seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)


class BusinessCalendar:
    name = "business"

    def __init__(self, hours: BusinessHours) -> None:
        self._hours = hours
        self._zone = ZoneInfo(hours.time_zone)
        self._weekdays = frozenset(hours.weekdays)
        self._holidays = set(hours.holidays)
        self._extra_working = frozenset(hours.extra_working_days)
        self._country = (
            holiday_tables.country_holidays(hours.holiday_country) if hours.holiday_country else None
        )
        self._periods: dict[date, tuple[datetime, datetime] | None] = {}

    def is_working_day(self, day: date) -> bool:
        if day in self._extra_working:
            return True
        if day.weekday() not in self._weekdays or day in self._holidays:
            return False
        return not (self._country is not None and day in self._country)

    def period(self, day: date) -> tuple[datetime, datetime] | None:
        """The working period of a local date, as UTC instants, or None on a day off."""
        if day not in self._periods:
            if not self.is_working_day(day):
                self._periods[day] = None
            else:
                opens = datetime.combine(day, self._hours.opens, self._zone).astimezone(UTC)
                closes = datetime.combine(day, self._hours.closes, self._zone).astimezone(UTC)
                self._periods[day] = (opens, closes)
        return self._periods[day]

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()

    def working_seconds(self, start: datetime, end: datetime) -> float:
        if end <= start:
            return 0.0
        total = 0.0
        day = self._local_date(start)
        last = self._local_date(end)
        while day <= last:
            period = self.period(day)
            if period is not None:
                overlap = (min(end, period[1]) - max(start, period[0])).total_seconds()
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return total

    def add(self, start: datetime, seconds: float) -> datetime:
        if seconds <= 0:
            return start
        remaining = seconds
        day = self._local_date(start)
        for _ in range(_MAX_DAYS_SEARCHED):
            period = self.period(day)
            if period is not None:
                begin = max(start, period[0])
                available = (period[1] - begin).total_seconds()
                if available > 0:
                    if remaining <= available:
                        return begin + timedelta(seconds=remaining)
                    remaining -= available
            day += timedelta(days=1)
        raise NoWorkingTime(f"no working time within {_MAX_DAYS_SEARCHED} days after {start.isoformat()}")

    def next_working_instant(self, instant: datetime) -> datetime:
        """`instant` itself when inside working hours, else the next opening."""
        day = self._local_date(instant)
        for _ in range(_MAX_DAYS_SEARCHED):
            period = self.period(day)
            if period is not None and instant < period[1]:
                return max(instant, period[0])
            day += timedelta(days=1)
        raise NoWorkingTime(f"no working time within {_MAX_DAYS_SEARCHED} days after {instant.isoformat()}")


def calendar_for(name: str, business: BusinessCalendar) -> SlaCalendar:
    return business if name == "business" else AlwaysOpen()
