"""A quiet channel's silence checks skip the minutes at which no alert is possible, and the alerts stay
exactly those of a check every minute: in a zone without clock changes, across both clock changes of a
zone with daylight saving, and with contacts arriving late (minutes, and a week with the lateness
allowed for a backfill)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from processors.calendar import to_microsecond
from processors.silence import ChannelFlow, SilenceDetector
from schemas.config import DetectionConfig
from schemas.event import ContactEvent
from tests.unit.detection.helpers import Run, config, event


class Counted(SilenceDetector):
    checks = 0

    def _check(self, *args: Any) -> Any:
        type(self).checks += 1
        return super()._check(*args)


class EveryMinute(Counted):
    """The plain rule: a quiet check is followed by another a minute later, whatever the history."""

    checks = 0

    def _next_check(self, flow: ChannelFlow, at: float, stream_start: float) -> float:
        return to_microsecond(at + 60.0)


class Skipping(Counted):
    checks = 0


def traffic(zone: ZoneInfo, start: datetime, days: int, seed: int) -> list[ContactEvent]:
    """Two channels: busy office hours, a thin evening, empty nights, and whole dead spells (outages)
    on random afternoons; a few contacts arrive up to four minutes after later ones."""
    rng = random.Random(seed)
    events: list[tuple[datetime, ContactEvent]] = []
    number = 0
    for channel, busy in (("chat", 15), ("email", 11)):
        dead_days = set(rng.sample(range(21, days), 5))
        for day in range(days):
            date = (start + timedelta(days=day)).date()
            weekend = date.weekday() >= 5
            dead_from = rng.randrange(10, 16) if day in dead_days else None
            for hour in range(24):
                if dead_from is not None and dead_from <= hour < dead_from + 3:
                    continue
                if weekend or hour < 8 or hour >= 21:
                    mean = 0.2
                elif hour >= 18:
                    mean = 3.0
                else:
                    mean = busy * rng.uniform(0.7, 1.3)
                count = int(mean) + (rng.random() < mean - int(mean))
                for _ in range(count):
                    at = datetime(date.year, date.month, date.day, hour, tzinfo=zone) + timedelta(
                        seconds=rng.uniform(0, 3600)
                    )
                    number += 1
                    events.append(
                        (at, event("contact_received", at, ticket=f"{channel}-{number}", channel=channel))
                    )
    events.sort(key=lambda pair: pair[0])
    arrival = [(at + timedelta(minutes=4) if rng.random() < 0.03 else at, e) for at, e in events]
    arrival.sort(key=lambda pair: pair[0])
    return [e for _, e in arrival]


def silence_alerts(
    detector: type[Counted], zone: str, events: list[ContactEvent], until: datetime
) -> list[str]:
    run = Run(config(business_hours={"time_zone": zone, "holiday_country": None}))
    run.use_silence(detector)
    outcomes = run.feed(*events)
    assert all(o.verdict.value == "accepted" for o in outcomes)
    run.advance(until)
    return [a.to_json_line().decode() for a in run.of("channel_silent")]


@pytest.mark.parametrize(
    ("zone", "first_day", "seed"),
    [
        ("Europe/Moscow", datetime(2026, 9, 28), 1),
        ("Europe/Berlin", datetime(2026, 9, 28), 3),  # 25 October: clocks go back an hour
        ("Europe/Berlin", datetime(2026, 2, 23), 4),  # 29 March: clocks go forward an hour
    ],
)
def test_skipped_checks_give_the_alerts_of_a_check_every_minute(
    zone: str, first_day: datetime, seed: int
) -> None:
    tz = ZoneInfo(zone)
    start = first_day.replace(tzinfo=tz)
    events = traffic(tz, start, 35, seed)
    until = start + timedelta(days=35)
    Skipping.checks = EveryMinute.checks = 0
    skipping = silence_alerts(Skipping, zone, events, until)
    every_minute = silence_alerts(EveryMinute, zone, events, until)
    assert skipping == every_minute
    assert len(every_minute) >= 4  # the dead spells after the first weeks fire (and resolve)
    assert Skipping.checks * 10 < EveryMinute.checks


def test_a_quiet_night_is_one_check_then_the_morning() -> None:
    # Four weeks of 20 contacts an hour from 09:00 to 17:57 on weekdays, one every 3 minutes; then the
    # fifth Monday's last contact at 17:57. Checks every minute would run from 18:57 to Tuesday 09:28
    # (871 of them); the alert must come at 09:28 all the same, when the past four Tuesdays' 08:28-09:28
    # held 10 contacts each.
    tz = ZoneInfo("Europe/Moscow")
    start = datetime(2026, 11, 2, tzinfo=tz)
    events = []
    for day in range(29):
        date = start + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for hour in range(9, 18):
            for n in range(20):
                at = date.replace(hour=hour) + timedelta(minutes=3 * n)
                events.append(event("contact_received", at, ticket=f"T-{day}-{hour}-{n}", channel="chat"))
    run = Run(config(business_hours={"time_zone": "Europe/Moscow", "holiday_country": None}))
    run.use_silence(Skipping)
    run.feed(*events)
    Skipping.checks = 0
    monday = start + timedelta(days=28)
    tuesday = monday + timedelta(days=1)
    run.advance(monday.replace(hour=19))
    assert Skipping.checks == 1  # 18:57: each past Monday's 17:57 contact is in its window
    # The bound counts those 4 and each past Tuesday's contacts as they enter: the 36th entry (9 each,
    # 09:00 to 09:24) is the first instant forty could be reached.
    flow = run.engine.silence.channels["chat"]
    assert flow.next_check == tuesday.replace(hour=9, minute=24).timestamp()
    run.advance(tuesday.replace(hour=12))
    assert run.states("channel_silent") == [("firing", tuesday.replace(hour=9, minute=28), None)]
    assert Skipping.checks == 4  # 18:57, 09:24 (8 a week), 09:27 (9 a week), 09:28 (10: fires)


UTC = ZoneInfo("UTC")


def first_silence(
    detector: type[Counted], cfg: DetectionConfig, *steps: ContactEvent | datetime
) -> list[Any]:
    """Feed events and advance the clock in the given order; the channel's silence alert states."""
    run = Run(cfg)
    run.use_silence(detector)
    for step in steps:
        if isinstance(step, datetime):
            run.advance(step)
        else:
            assert run.feed(step)[0].verdict.value == "accepted"
    return run.states("channel_silent")


def test_a_skip_just_after_the_clocks_go_back_still_sees_the_shifted_window() -> None:
    # Berlin, one week of history, five contacts an hour expected. Monday 19 October (summer time):
    # four contacts at 08:50-08:56 and one at 09:09 local (06:50-07:09 UTC). Monday 26 October, after
    # the clocks went back: the last contact at 08:00 local (07:00 UTC). At 09:00 local the same hour a
    # week earlier held four: quiet. At 09:10 it holds five: the alert. That hour lies an hour before
    # "exactly a week earlier" in epoch seconds, where only the 09:09 contact is; a skip computed on
    # that would reach three days ahead and miss it.
    cfg = config(
        business_hours={"time_zone": "Europe/Berlin", "holiday_country": None},
        channel_silence={"history_weeks": 1, "min_average_contacts": 5},
    )
    steps: list[ContactEvent | datetime] = [
        event("contact_received", datetime(2026, 10, 18, 12, tzinfo=UTC), ticket="start", channel="email")
    ]
    for minute in (50, 52, 54, 56):
        at = datetime(2026, 10, 19, 6, minute, tzinfo=UTC)
        steps.append(event("contact_received", at, ticket=f"A-{minute}", channel="chat"))
    steps.append(
        event("contact_received", datetime(2026, 10, 19, 7, 9, tzinfo=UTC), ticket="B", channel="chat")
    )
    steps.append(event("contact_received", datetime(2026, 10, 26, 7, tzinfo=UTC), ticket="C", channel="chat"))
    steps.append(datetime(2026, 10, 26, 12, tzinfo=UTC))
    expected = [("firing", datetime(2026, 10, 26, 8, 10, tzinfo=UTC), None)]
    assert first_silence(EveryMinute, cfg, *steps) == expected
    assert first_silence(Skipping, cfg, *steps) == expected


def test_with_a_week_of_allowed_lateness_no_check_is_skipped_a_late_contact_could_need() -> None:
    # A backfill with eight days of allowed lateness. Monday 2 November had no contacts from 08:00 to
    # the next day; Monday 9 November's last contact is at 08:00, and the checks from 09:00 to 09:30
    # find nothing expected (with the default lateness the next would be the next day). Then five
    # contacts stamped 2 November 08:45 arrive, a week late: from 09:31 the same hour a week earlier
    # holds five. A check a minute fires at 09:31; the skipping one must too.
    cfg = config(
        business_hours={"time_zone": "Europe/Moscow", "holiday_country": None},
        channel_silence={"history_weeks": 1, "min_average_contacts": 5},
        engine={"allowed_lateness_minutes": 8 * 24 * 60},
    )
    msk = ZoneInfo("Europe/Moscow")
    steps: list[ContactEvent | datetime] = [
        event("contact_received", datetime(2026, 11, 1, 12, tzinfo=msk), ticket="start", channel="email"),
        event("contact_received", datetime(2026, 11, 2, 7, 30, tzinfo=msk), ticket="A", channel="chat"),
        event("contact_received", datetime(2026, 11, 3, 12, tzinfo=msk), ticket="B", channel="chat"),
        event("contact_received", datetime(2026, 11, 9, 8, tzinfo=msk), ticket="C", channel="chat"),
        datetime(2026, 11, 9, 9, 30, tzinfo=msk),
    ]
    steps += [
        event(
            "contact_received", datetime(2026, 11, 2, 8, 45, tzinfo=msk), ticket=f"late-{n}", channel="chat"
        )
        for n in range(5)
    ]
    steps.append(datetime(2026, 11, 9, 12, tzinfo=msk))
    expected = [("firing", datetime(2026, 11, 9, 9, 31, tzinfo=msk), None)]
    assert first_silence(EveryMinute, cfg, *steps) == expected
    assert first_silence(Skipping, cfg, *steps) == expected
