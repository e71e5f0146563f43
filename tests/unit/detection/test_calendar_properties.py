"""Property tests of the working-time arithmetic (hypothesis), plus a few fixed cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.calendar import AlwaysOpen, BusinessCalendar, NoWorkingTime
from schemas.config import BusinessHours
from tests.unit.detection.helpers import msk

CALENDAR = BusinessCalendar(BusinessHours(holiday_country=None, holidays=(date(2026, 12, 31),)))
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
durations = st.floats(min_value=1, max_value=40 * 24 * 3600, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(instants, durations)
def test_add_then_measure_gives_back_the_duration(start: datetime, seconds: float) -> None:
    due = CALENDAR.add(start, seconds)
    assert due > start
    assert CALENDAR.working_seconds(start, due) == pytest.approx(seconds, abs=1e-3)


@settings(max_examples=300, deadline=None)
@given(instants, instants, instants)
def test_working_time_is_additive(a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    total = CALENDAR.working_seconds(a, c)
    assert total == pytest.approx(CALENDAR.working_seconds(a, b) + CALENDAR.working_seconds(b, c), abs=1e-3)
    assert 0 <= total <= (c - a).total_seconds()


@settings(max_examples=200, deadline=None)
@given(instants, durations)
def test_a_due_instant_lies_in_working_hours(start: datetime, seconds: float) -> None:
    due = CALENDAR.add(start, seconds).astimezone(msk(1, 0).tzinfo)
    assert due.weekday() < 5
    assert time(9, 0) < due.time() <= time(18, 0)
    assert due.date() != date(2026, 12, 31)


def test_always_open_is_wall_time() -> None:
    start = msk(24, 10)
    assert AlwaysOpen().add(start, 3600) == msk(24, 11)
    assert AlwaysOpen().working_seconds(msk(24, 11), start) == 0


def test_a_calendar_without_working_days_says_so() -> None:
    never = BusinessCalendar(BusinessHours(holiday_country=None, weekdays=()))
    with pytest.raises(NoWorkingTime):
        never.add(msk(24, 10), 60)


def test_weekend_and_night_add_no_working_time() -> None:
    assert CALENDAR.working_seconds(msk(27, 18), msk(30, 9)) == 0  # Friday close to Monday open
    assert CALENDAR.working_seconds(msk(24, 17), msk(25, 10)) == 2 * 3600


def test_a_zero_duration_is_the_start_itself() -> None:
    assert CALENDAR.add(msk(28, 3), 0) == msk(28, 3)
    assert CALENDAR.next_working_instant(msk(28, 3)) == msk(30, 9)
    assert CALENDAR.next_working_instant(msk(30, 12)) == msk(30, 12)


def test_the_period_table_grows_to_any_instant_asked_about() -> None:
    calendar = BusinessCalendar(BusinessHours(holiday_country=None))
    # First a question in 2026, then one years later and one years earlier: same answers as a fresh table.
    assert calendar.working_seconds(msk(24, 9), msk(24, 18)) == 9 * 3600
    later = datetime(2031, 3, 3, 9, tzinfo=msk(1, 0).tzinfo)  # a Monday
    assert calendar.add(later, 9 * 3600 + 60) == datetime(2031, 3, 4, 9, 1, tzinfo=later.tzinfo)
    earlier = datetime(2019, 1, 4, 17, tzinfo=msk(1, 0).tzinfo)  # a Friday
    assert calendar.add(earlier, 2 * 3600) == datetime(2019, 1, 7, 10, tzinfo=earlier.tzinfo)
    # Monday 4 January 2027 to Monday 1 January 2029 is 104 whole weeks (no holiday table here).
    two_years = calendar.working_seconds(datetime(2027, 1, 4, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC))
    assert two_years == 104 * 5 * 9 * 3600
    fresh = BusinessCalendar(BusinessHours(holiday_country=None))
    assert fresh.add(earlier, 2 * 3600) == calendar.add(earlier, 2 * 3600)
    # A target beyond the table extends it forward.
    assert calendar.add(later, 300 * 9 * 3600).year == 2032
