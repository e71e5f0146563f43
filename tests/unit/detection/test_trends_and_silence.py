from __future__ import annotations

import bisect
import random
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from processors.windows import HourlySeries, binomial_upper_tail
from schemas.event import ContactEvent
from tests.unit.detection.helpers import MSK, Run, config, event, every, msk

STREAM_START = msk(2, 0)  # Monday 2 November 2026


def business_hours(first_day: datetime, days: int) -> list[datetime]:
    """Every business hour's start (Mon-Fri 09:00-17:00 starts) over `days` days from `first_day`."""
    hours = []
    for day in range(days):
        start = first_day + timedelta(days=day)
        if start.weekday() < 5:
            hours += [start.replace(hour=h) for h in range(9, 18)]
    return hours


def contacts_per_hour(per_hour: dict[datetime, int], **fields: str) -> list[ContactEvent]:
    events = []
    for hour, count in sorted(per_hour.items()):
        step = timedelta(minutes=60) / count
        for n in range(count):
            events.append(
                event("contact_received", hour + step * n, ticket=f"T-{hour:%m%d%H}-{n}-{fields}", **fields)
            )
    return events


def merged(*streams: list[ContactEvent]) -> list[ContactEvent]:
    return sorted((e for stream in streams for e in stream), key=lambda e: e.occurred_at)


def hour_marker_stream(until: datetime) -> list[ContactEvent]:
    """One event at the stream start keeps coverage exact; the clock is then driven by advance_to."""
    return [event("contact_received", STREAM_START, ticket="marker", channel="other")]


def test_binomial_tail_matches_exact_arithmetic() -> None:
    from fractions import Fraction
    from math import comb

    for n, k in [(10, 7), (40, 30), (200, 120), (510, 300)]:
        exact = sum(Fraction(comb(n, i), 2**n) for i in range(k, n + 1))
        assert abs(binomial_upper_tail(k, n) - float(exact)) <= 1e-12 * max(float(exact), 1e-300)
    assert binomial_upper_tail(0, 5) == 1.0
    assert binomial_upper_tail(6, 5) == 0.0


def test_steady_noisy_traffic_never_raises_a_spike() -> None:
    rng = random.Random(4)
    streams = []
    for topic in ("billing", "delivery", "api_integration"):
        per_hour = {hour: max(1, round(rng.gauss(6, 2))) for hour in business_hours(STREAM_START, 35)}
        streams.append(contacts_per_hour(per_hour, topic=topic, channel="email", category="operational_cost"))
    run = Run()
    run.feed(*merged(*streams))
    run.advance(STREAM_START + timedelta(days=36))
    assert run.of("volume_spike") == []


def spike_stream() -> list[ContactEvent]:
    before = {h: 5 for h in business_hours(STREAM_START, 14)}
    during = {h: 10 for h in business_hours(msk(16, 0), 7)}
    after = {h: 5 for h in business_hours(msk(23, 0), 21)}
    return contacts_per_hour({**before, **during, **after}, topic="billing")


def oracle(times: list[datetime], at: datetime) -> tuple[int, int]:
    week = timedelta(days=7)
    current = bisect.bisect_left(times, at) - bisect.bisect_left(times, at - week)
    previous = bisect.bisect_left(times, at - week) - bisect.bisect_left(times, at - 2 * week)
    return current, previous


def test_a_real_rise_fires_after_six_hourly_evaluations_and_resolves_when_it_ends() -> None:
    stream = spike_stream()
    times = [e.occurred_at for e in stream]
    hours = every(msk(16, 0), timedelta(hours=1), 24 * 30)

    def holds(at: datetime) -> bool:
        current, previous = oracle(times, at)
        return (
            current >= 30
            and current >= 1.25 * previous
            and binomial_upper_tail(current, current + previous) < 0.001
        )

    first = next(h for h in hours if holds(h))
    assert all(holds(first + timedelta(hours=n)) for n in range(6))
    end = next(h for h in hours if h > first and (lambda c, p: c < 1.10 * p)(*oracle(times, h)))

    run = Run()
    run.feed(*[e for e in stream if e.occurred_at < first + timedelta(hours=4, minutes=30)])
    run.advance(first + timedelta(hours=4, minutes=30))
    assert run.of("volume_spike") == []  # held at 5 evaluations: not yet
    run.feed(*[e for e in stream if first + timedelta(hours=4, minutes=30) <= e.occurred_at])
    run.advance(msk(14, 0, month=12))
    spikes = [a for a in run.of("volume_spike") if a.subject == {"dimension": "topic", "value": "billing"}]
    assert [(a.status.value, a.starts_at, a.ends_at) for a in spikes] == [
        ("firing", first, None),
        ("resolved", first, end),
    ]
    assert spikes[0].details["current"], spikes[0].details["previous"] == oracle(
        times, first + timedelta(hours=5)
    )


def test_no_week_over_week_verdict_before_two_full_weeks() -> None:
    # A doubling inside the second week of the stream: the previous window is not covered yet.
    stream = contacts_per_hour(
        {**{h: 5 for h in business_hours(STREAM_START, 7)}, **{h: 20 for h in business_hours(msk(9, 0), 6)}},
        topic="billing",
    )
    run = Run()
    run.feed(*stream)
    run.advance(msk(15, 23))
    assert run.of("volume_spike") == []


def test_channel_threshold_is_twenty_percent() -> None:
    # +22% on a channel: a spike for `channel` (20%), not for `topic` (25%).
    base = {h: 50 for h in business_hours(STREAM_START, 14)}
    rise = {h: 61 for h in business_hours(msk(16, 0), 7)}
    run = Run()
    run.feed(*contacts_per_hour({**base, **rise}, topic="billing", channel="chat"))
    run.advance(msk(23, 12))
    firing = {(a.subject["dimension"], a.subject["value"]) for a in run.of("volume_spike")}
    assert firing == {("channel", "chat")}


def silence_history(channel: str, weeks: int, start: datetime = STREAM_START) -> list[ContactEvent]:
    """20 contacts every business hour (one every 3 minutes from 09:00)."""
    return contacts_per_hour({h: 20 for h in business_hours(start, 7 * weeks)}, channel=channel)


def test_channel_silent_in_business_hours_fires_after_sixty_minutes() -> None:
    history = silence_history("chat", 4)
    monday = msk(30, 0)
    today = [
        e
        for e in contacts_per_hour({monday.replace(hour=9): 20}, channel="chat")
        if e.occurred_at < msk(30, 9, 58)
    ]  # last contact 09:57
    run = Run()
    run.feed(*history, *today)
    run.advance(msk(30, 11, 20))
    assert run.states("channel_silent") == [("firing", msk(30, 10, 57), None)]
    alert = run.of("channel_silent")[0]
    assert alert.subject == {"channel": "chat"}
    assert alert.details["expected_contacts"] == 20
    assert alert.details["history_weeks"] == 4
    run.feed(event("contact_received", msk(30, 11, 30), ticket="back", channel="chat"))
    assert run.states("channel_silent")[-1] == ("resolved", msk(30, 10, 57), msk(30, 11, 30))


def test_channel_that_died_at_night_is_caught_when_the_morning_traffic_is_due() -> None:
    # Last contact Friday 17:57, nothing after. The weekend and the early morning have no history,
    # so no alert; at Monday 09:28 the same hour of past weeks held 10 contacts (09:00 ... 09:27).
    history = silence_history("chat", 4)
    friday = contacts_per_hour({h: 20 for h in business_hours(msk(30, 0), 5)}, channel="chat")
    run = Run()
    run.feed(*history, *friday)
    run.advance(msk(7, 12, month=12))
    assert run.states("channel_silent") == [("firing", msk(7, 9, 28, month=12), None)]


def test_no_history_no_silence_alert() -> None:
    run = Run()
    run.feed(*contacts_per_hour({h: 20 for h in business_hours(msk(23, 0), 1)}, channel="whatsapp"))
    run.advance(msk(24, 18))
    assert run.of("channel_silent") == []


def test_escalation_rate_high_fires_above_twenty_percent_with_evidence() -> None:
    run = Run()
    opened = every(msk(24, 10), timedelta(minutes=5), 25)
    for n, at in enumerate(opened):
        run.feed(event("contact_received", at, ticket=f"E-{n}", topic="delivery"))
        if n % 2 == 0:
            run.feed(event("escalated", at + timedelta(minutes=1), ticket=f"E-{n}", team="tier2"))
    run.advance(msk(24, 13))
    alerts = run.of("escalation_rate_high")
    # At 11:00, 12 tickets (under 20); at 12:00, 24 tickets opened before it, 12 escalated: 50%, and the
    # 90% Wilson bound (37%) is over 20% too.
    assert [(a.status.value, a.starts_at) for a in alerts] == [("firing", msk(24, 12))]
    assert alerts[0].details == {"tickets": 24, "escalated": 12, "rate": 0.5}
    assert alerts[0].subject == {"dimension": "topic", "value": "delivery"}
    assert alerts[0].summary == "50% of this week's 'delivery' tickets were escalated (12 of 24)."


def test_an_escalation_rate_over_the_threshold_by_chance_alone_does_not_fire() -> None:
    run = Run()
    for n, at in enumerate(every(msk(24, 10), timedelta(minutes=5), 25)):
        run.feed(event("contact_received", at, ticket=f"E-{n}", topic="delivery"))
        if n % 4 == 0:
            run.feed(event("escalated", at + timedelta(minutes=1), ticket=f"E-{n}", team="tier2"))
    run.advance(msk(24, 13))
    # 6 of 24 is 25%, but its 90% bound is 15.5%: no evidence of more than 20%.
    assert run.of("escalation_rate_high") == []
    run = Run(config(escalation_rate={"confidence": 0}))  # the observed share decides
    for n, at in enumerate(every(msk(24, 10), timedelta(minutes=5), 25)):
        run.feed(event("contact_received", at, ticket=f"E-{n}", topic="delivery"))
        if n % 4 == 0:
            run.feed(event("escalated", at + timedelta(minutes=1), ticket=f"E-{n}", team="tier2"))
    run.advance(msk(24, 13))
    assert [a.details["rate"] for a in run.of("escalation_rate_high")] == [0.25]


def test_escalation_rate_needs_twenty_tickets() -> None:
    run = Run()
    for n, at in enumerate(every(msk(24, 10), timedelta(minutes=5), 19)):
        run.feed(
            event("contact_received", at, ticket=f"E-{n}", topic="delivery"),
            event("escalated", at + timedelta(minutes=1), ticket=f"E-{n}"),
        )
    run.advance(msk(24, 13))
    assert run.of("escalation_rate_high") == []


def test_resolution_time_spike_compares_mean_sla_time_week_over_week() -> None:
    run = Run()
    run.feed(event("contact_received", STREAM_START, ticket="start", topic="other"))
    for week, minutes in ((0, 60), (1, 60), (2, 80)):  # +33% in the third week
        for n, at in enumerate(every(msk(3 + 7 * week, 10), timedelta(hours=6), 22)):
            ticket = f"R-{week}-{n}"
            run.feed(
                event("contact_received", at, ticket=ticket, topic="billing", priority="p2"),
                event("agent_replied", at + timedelta(minutes=1), ticket=ticket),
                event("status_changed", at + timedelta(minutes=minutes), ticket=ticket, status="resolved"),
            )
    run.advance(msk(23, 12))
    alerts = run.of("resolution_time_spike")
    assert [a.status.value for a in alerts] == ["firing"]
    assert alerts[0].details["current_mean_seconds"] > 1.2 * alerts[0].details["previous_mean_seconds"]
    assert alerts[0].subject == {"dimension": "topic", "value": "billing"}


def test_hourly_evaluations_are_on_the_hour_in_utc() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 10, 17), ticket="x"))
    assert run.engine._next_hour == datetime(2026, 11, 24, 8, 0, tzinfo=MSK).astimezone(MSK).replace(hour=11)


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 80)),
            st.tuples(st.just("evaluate"), st.integers(1, 3)),
        ),
        max_size=80,
    )
)
def test_hourly_series_prunes_and_slides_like_a_plain_dict(steps: list[tuple[str, int]]) -> None:
    # As the trend detectors use it: evaluations at rising hours, each followed by a prune of the
    # hours behind both windows; additions at any hour, late ones before the pruned horizon too.
    series, reference, now = HourlySeries(), {}, 10
    for action, value in steps:
        if action == "add":
            series.add(value)
            reference[value] = reference.get(value, 0.0) + 1.0
        else:
            now += value
            current = sum(n for h, n in reference.items() if now - 5 <= h < now)
            previous = sum(n for h, n in reference.items() if now - 10 <= h < now - 5)
            assert series.two_windows(now, 5) == (current, previous)
            series.prune(now - 11)
            reference = {h: n for h, n in reference.items() if h >= now - 11}
        assert series.buckets == reference
