"""Rate rules on constructed weeks: first-contact resolution, misrouting, repeat contacts."""

from __future__ import annotations

from datetime import datetime, timedelta

from processors.rates import wilson_bound
from schemas.event import ContactEvent
from tests.unit.detection.helpers import Run, event, msk


def resolved_ticket(
    name: str,
    at: datetime,
    topic: str = "billing",
    replies: int = 1,
    teams: tuple[str, ...] = ("tier1",),
    customer: str | None = None,
) -> list[ContactEvent]:
    """A ticket opened at `at`, assigned to each of `teams` in turn, answered `replies` times, resolved
    50 minutes later."""
    story = [event("contact_received", at, ticket=name, topic=topic, customer_id=customer or f"c-{name}")]
    for n, team in enumerate(teams):
        story.append(event("assigned", at + timedelta(minutes=1 + n), ticket=name, team=team, agent="a1"))
    for n in range(replies):
        story.append(event("agent_replied", at + timedelta(minutes=10 + 10 * n), ticket=name, agent="a1"))
    story.append(event("status_changed", at + timedelta(minutes=50), ticket=name, status="resolved"))
    return story


def feed_in_order(run: Run, stories: list[list[ContactEvent]]) -> None:
    run.feed(*sorted((e for story in stories for e in story), key=lambda e: e.occurred_at))


def test_fcr_low_fires_under_seventy_percent_and_resolves_at_seventy_five() -> None:
    run = Run()
    # Monday 10:00-13:20: 40 billing tickets, every other one needing a second reply (FCR 50%).
    start = msk(23, 10)
    feed_in_order(
        run,
        [resolved_ticket(f"F-{n}", start + timedelta(minutes=5 * n), replies=1 + n % 2) for n in range(40)],
    )
    run.advance(msk(23, 15))
    (fired,) = run.of("fcr_low")
    # Resolved by 12:00: tickets opened up to 11:05 (14); by 13:00, 26; by 14:00, 38 of which 19 at first
    # contact. 50%, and the 90% upper bound (60%) is under the 70% target.
    assert (fired.status.value, fired.starts_at) == ("firing", msk(23, 14))
    assert fired.details == {"tickets": 38, "first_contact": 19, "rate": 0.5}
    assert fired.subject == {"dimension": "topic", "value": "billing"}
    assert fired.labels == {"topic": "billing"}
    assert fired.summary == (
        "Only 50% of this week's resolved 'billing' tickets were resolved at first contact (19 of 38; "
        "target 70%)."
    )
    # Tuesday from 09:00: 80 more, every two minutes, all resolved at first contact. At 11:00 the window
    # holds 56 of 76 (73.7%, still under 75%); at 12:00, 85 of 105: resolved.
    feed_in_order(run, [resolved_ticket(f"G-{n}", msk(24, 9) + timedelta(minutes=2 * n)) for n in range(80)])
    run.advance(msk(24, 14))
    assert [(a.status.value, a.ends_at) for a in run.of("fcr_low")] == [
        ("firing", None),
        ("resolved", msk(24, 12)),
    ]
    assert run.of("fcr_low")[-1].details == {"tickets": 105, "first_contact": 85, "rate": 0.8095}


def test_misrouting_high_is_per_team_that_took_the_ticket_first() -> None:
    run = Run()
    start = msk(23, 10)
    stories = []
    for n in range(40):
        # Every third ticket tier1 takes is for billing: handed on (13 of 40: 32.5%).
        teams = ("tier1", "billing") if n % 3 == 0 else ("tier1",)
        stories.append(resolved_ticket(f"M-{n}", start + timedelta(minutes=5 * n), teams=teams))
        stories.append(
            resolved_ticket(f"B-{n}", start + timedelta(minutes=5 * n, seconds=30), teams=("billing",))
        )
    feed_in_order(run, stories)
    run.advance(msk(23, 18))
    (fired,) = run.of("misrouting_high")  # the billing team, which got them in the end, is not blamed
    assert (fired.subject, fired.starts_at) == ({"dimension": "team", "value": "tier1"}, msk(23, 14))
    assert fired.labels == {"team": "tier1"}
    assert fired.details == {"tickets": 38, "handed_on": 13, "rate": 0.3421}
    assert fired.summary.startswith(
        "Team tier1 handed on 34.2% of the tickets it took first this week (13 of 38"
    )


def test_a_rate_rule_needs_its_minimum_number_of_tickets() -> None:
    run = Run()
    # 25 tickets, none at first contact: no verdict under 30.
    feed_in_order(
        run, [resolved_ticket(f"F-{n}", msk(23, 10) + timedelta(minutes=5 * n), replies=2) for n in range(25)]
    )
    run.advance(msk(23, 18))
    assert run.of("fcr_low") == []


def test_repeat_rate_high_counts_new_tickets_that_repeat_a_customers_ticket_within_a_week() -> None:
    run = Run()
    start = msk(23, 10)
    stories = [
        resolved_ticket(f"R-{n}", start + timedelta(minutes=5 * n), topic="delivery", customer=f"c{n}")
        for n in range(30)
    ]
    # Tuesday: 20 of those customers are back about delivery, and 10 new customers write.
    stories += [
        resolved_ticket(f"S-{n}", msk(24, 10) + timedelta(minutes=5 * n), topic="delivery", customer=f"c{n}")
        for n in range(30)
    ]
    feed_in_order(run, stories)
    run.advance(msk(24, 16))
    (fired,) = run.of("repeat_rate_high")
    assert fired.subject == {"dimension": "topic", "value": "delivery"}
    # At 11:00 the window holds Monday's 30 and Tuesday's first 12, all repeats (bound 20.6% > 15%).
    assert (fired.starts_at, fired.details) == (msk(24, 11), {"tickets": 42, "repeats": 12, "rate": 0.2857})


def test_the_wilson_bound_matches_its_formula_at_known_points() -> None:
    z = 1.2815515655446004  # one-sided 90%
    assert round(wilson_bound(5, 32, z, upper=False), 4) == 0.0911
    assert round(wilson_bound(30, 100, z, upper=False), 4) == 0.2449
    assert round(wilson_bound(70, 100, z, upper=True), 4) == 0.7551
    assert wilson_bound(3, 10, 0.0, upper=False) == 0.3
    assert wilson_bound(0, 0, z, upper=False) == 0.0
