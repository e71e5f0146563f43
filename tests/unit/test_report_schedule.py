"""The weekly report's schedule: which week is due when, at most once, and a missed slot caught up."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from processors.report_schedule import due_week, last_full_week, parse_iso_week, parse_schedule, week_bounds
from schemas.settings import Settings
from stream.cli import report_settings_problem

MSK = ZoneInfo("Europe/Moscow")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=MSK)


def test_monday_nine_sends_the_week_that_just_ended_once() -> None:
    schedule = parse_schedule("MON 09:00", MSK)
    # Monday 30 Nov 2026 begins ISO week 49; the full week before is W48 (23-29 Nov).
    assert due_week(at(30, 8, 59), schedule, set()) == "2026-W47"  # W48's slot is a minute ahead
    assert due_week(at(30, 9, 0), schedule, set()) == "2026-W48"
    assert due_week(at(30, 9, 0), schedule, {"2026-W48"}) is None
    # The worker was down all Monday: on Wednesday W48 is still due, and nothing older.
    wednesday = datetime(2026, 12, 2, 14, 0, tzinfo=MSK)
    assert due_week(wednesday, schedule, {"2026-W47"}) == "2026-W48"


def test_the_slot_is_local_time_whatever_the_clock_zone() -> None:
    schedule = parse_schedule("fri 18:30", MSK)
    friday_utc = datetime(2026, 11, 27, 15, 30, tzinfo=ZoneInfo("UTC"))  # 18:30 MSK
    assert due_week(friday_utc, schedule, set()) == "2026-W47"  # the full week before W48's Friday
    assert due_week(friday_utc.replace(minute=29), schedule, set()) == "2026-W46"


@pytest.mark.parametrize("text", ["", "MON", "09:00 MON", "MON 9am", "MONDAY 25:00"])
def test_a_schedule_that_is_not_a_weekday_and_a_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="report schedule"):
        parse_schedule(text, MSK)


def test_the_worker_refuses_a_schedule_it_cannot_keep() -> None:
    scheduled = Settings(report_schedule="MON 09:00")  # type: ignore[call-arg]
    assert "nobody to send it to" in str(report_settings_problem(scheduled, []))
    assert "CONTACTPULSE_SMTP_HOST" in str(report_settings_problem(scheduled, ["head@example.org"]))
    with_smtp = scheduled.model_copy(update={"smtp_host": "smtp.example.org"})
    assert report_settings_problem(with_smtp, ["head@example.org"]) is None
    garbled = with_smtp.model_copy(update={"report_schedule": "every monday"})
    assert "expected a weekday and a time" in str(report_settings_problem(garbled, ["head@example.org"]))


def test_iso_weeks_and_the_last_full_one() -> None:
    assert parse_iso_week("2026-w47") == (2026, 47)
    starts, ends = week_bounds("2026-W01", MSK)
    assert (starts, ends) == (datetime(2025, 12, 29, tzinfo=MSK), datetime(2026, 1, 5, tzinfo=MSK))
    for text in ("2026-47", "W47", "2026-W54"):
        with pytest.raises(ValueError, match="is not an ISO week"):
            parse_iso_week(text)
    sunday_night = datetime(2026, 11, 29, 21, 30, tzinfo=ZoneInfo("UTC"))  # Monday 00:30 in Moscow
    assert last_full_week(sunday_night, MSK) == "2026-W48"
    assert last_full_week(sunday_night, ZoneInfo("UTC")) == "2026-W47"
