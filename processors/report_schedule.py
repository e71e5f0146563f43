"""When the weekly report is due: a weekday and a time in the business calendar's zone (`MON 09:00`).

Pure: the caller passes the time and the weeks already sent. The report covers the last full ISO week
before the slot; a slot missed (the worker was down) is caught up at the next check, for that week only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

_WEEKDAYS: Final = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


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


def due_week(now: datetime, schedule: ReportSchedule, sent: set[str]) -> str | None:
    """The ISO week whose report is due at `now` and not in `sent`; None when nothing is due."""
    local = now.astimezone(schedule.zone)
    monday = local.date() - timedelta(days=local.weekday())
    slot = datetime.combine(monday + timedelta(days=schedule.weekday), schedule.at, schedule.zone)
    if local < slot:
        slot -= timedelta(days=7)  # this week's slot is still ahead: the one before is the latest
    week = iso_week_of(slot - timedelta(days=slot.weekday() + 1))  # the full week before the slot's
    return None if week in sent else week
