"""ISO weeks (`2026-W47`: Monday 00:00 to Monday 00:00 in the business calendar's zone), and when the
weekly report is due: a weekday and a time in that zone (`MON 09:00`).

Pure: the caller passes the time and the weeks already sent. The report covers the last full ISO week
before the slot; a slot missed (the worker was down) is caught up at the next check, for that week only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

_WEEKDAYS: Final = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
WEEK: Final = timedelta(days=7)


@dataclass(frozen=True)
class ReportSchedule:
    weekday: int
    """0 = Monday."""
    at: time
    zone: ZoneInfo


def parse_schedule(text: str, zone: ZoneInfo) -> ReportSchedule:
    """`MON 09:00` -> Monday 09:00 in `zone`; ValueError names what is wrong."""
    parts = text.split()
    if len(parts) != 2 or parts[0].upper()[:3] not in _WEEKDAYS:
        raise ValueError(f"report schedule {text!r}: expected a weekday and a time, e.g. 'MON 09:00'")
    try:
        at = time.fromisoformat(parts[1])
    except ValueError:
        raise ValueError(f"report schedule {text!r}: {parts[1]!r} is not a time like 09:00") from None
    return ReportSchedule(_WEEKDAYS.index(parts[0].upper()[:3]), at, zone)


def iso_week_of(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def parse_iso_week(text: str) -> tuple[int, int]:
    """ "2026-W47" -> (2026, 47); ValueError when it is not an ISO week that exists."""
    year_text, _, week_text = text.upper().partition("-W")
    if not (year_text.isdigit() and week_text.isdigit()):
        raise ValueError(f"{text!r} is not an ISO week like 2026-W47")
    year, week = int(year_text), int(week_text)
    try:
        date.fromisocalendar(year, week, 1)  # week 53 exists in some years only
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO week like 2026-W47 ({exc})") from None
    return year, week


def week_bounds(iso_week: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The week's first and last instant (exclusive): Monday 00:00 to the next Monday 00:00, local."""
    year, week = parse_iso_week(iso_week)
    monday = date.fromisocalendar(year, week, 1)
    starts = datetime.combine(monday, time(0), zone)
    return starts, datetime.combine(monday + WEEK, time(0), zone)


def last_full_week(now: datetime, zone: ZoneInfo) -> str:
    """The ISO week before the one `now` falls in, in `zone` (what a Monday-morning report covers)."""
    return iso_week_of(now.astimezone(zone) - WEEK)


def due_week(now: datetime, schedule: ReportSchedule, sent: set[str]) -> str | None:
    """The ISO week whose report is due at `now` and not in `sent`; None when nothing is due."""
    local = now.astimezone(schedule.zone)
    monday = local.date() - timedelta(days=local.weekday())
    slot = datetime.combine(monday + timedelta(days=schedule.weekday), schedule.at, schedule.zone)
    if local < slot:
        slot -= WEEK  # this week's slot is still ahead: the one before is the latest
    week = iso_week_of(slot - timedelta(days=slot.weekday() + 1))  # the full week before the slot's
    return None if week in sent else week
