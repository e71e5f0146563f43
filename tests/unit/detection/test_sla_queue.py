"""The queue trigger of first-response risk, on constructed queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.calendar import AlwaysOpen
from processors.sla_queue import Waiting, forecast
from schemas.event import ContactEvent
from tests.unit.detection.helpers import Run, config, event, msk

FR_RISK, FR_BREACH = "sla_first_response_at_risk", "sla_first_response_breached"
QUEUE_ON = config(queue_risk={"enabled": True})


def a_paced_hour(team: str = "L1", agents: tuple[str, ...] = ("a1",)) -> list[ContactEvent]:
    """09:00-09:55: the team's agents each answer four tickets, one every 15 minutes."""
    story = []
    for agent in agents:
        for n in range(4):
            ticket = f"P-{agent}-{n}"
            opened = msk(24, 9) + timedelta(minutes=15 * n)
            story += [
                event("contact_received", opened, ticket=ticket, priority="p3", channel="email"),
                event("assigned", opened + timedelta(minutes=1), ticket=ticket, team=team, agent=agent),
                event("agent_replied", opened + timedelta(minutes=10), ticket=ticket, agent=agent),
            ]
    return sorted(story, key=lambda e: e.occurred_at)


def ten_urgent_tickets(team: str = "L1", agent: str = "a1") -> list[ContactEvent]:
    """10:00-10:01: ten p1 tickets (15-minute first response, 24x7) land in the team's queue."""
    story = []
    for n in range(10):
        opened = msk(24, 10) + timedelta(seconds=6 * n)
        story += [
            event("contact_received", opened, ticket=f"Q-{n}", priority="p1", channel="email"),
            event("assigned", opened + timedelta(seconds=1), ticket=f"Q-{n}", team=team, agent=agent),
        ]
    return story


def test_one_agent_ten_tickets_fifteen_minute_targets_warns_at_the_first_evaluation() -> None:
    run = Run(QUEUE_ON)
    run.feed(*a_paced_hour(), *ten_urgent_tickets())
    run.advance(msk(24, 10, 12))
    queue_alerts = [a for a in run.of(FR_RISK) if a.labels.get("reason") == "queue"]
    # At 10:05 the pace is one agent, 4 first replies an hour: 15 min each. The first in line is answered
    # about 10:20, after its 10:15 due: all ten are at risk, six minutes before 75% of 15 min is spent.
    assert len(queue_alerts) == 10
    assert {a.starts_at for a in queue_alerts} == {msk(24, 10, 5)}
    first = next(a for a in queue_alerts if a.subject == {"ticket_id": "Q-0"})
    assert first.details["queue_position"] == 1
    assert first.details["expected_reply_at"] == msk(24, 10, 20).isoformat()
    assert first.details["due_at"] == msk(24, 10, 15).isoformat()
    assert (first.details["agents"], first.details["seconds_per_reply"], first.details["queued"]) == (
        1,
        900.0,
        10,
    )
    last = next(a for a in queue_alerts if a.subject == {"ticket_id": "Q-9"})
    assert last.details["expected_reply_at"] == msk(24, 12, 35).isoformat()
    assert first.labels["reason"] == "queue"
    assert first.summary == (
        "Ticket Q-0 (p1, email) is at risk: team L1's queue reaches it about 2026-11-24 10:20 MSK, after its "
        "first-response due 2026-11-24 10:15 MSK (number 1 of 10 waiting; one first reply every 15 min over "
        "the last hour, active agents: 1)."
    )
    # The time trigger at 10:11:15 adds nothing: the alert is already firing.
    assert len(run.of(FR_RISK)) == 10


def test_the_queue_warning_resolves_at_the_reply_and_a_breach_still_follows_it() -> None:
    run = Run(QUEUE_ON)
    run.feed(*a_paced_hour(), *ten_urgent_tickets())
    run.advance(msk(24, 10, 14))
    run.feed(event("agent_replied", msk(24, 10, 14), ticket="Q-0", agent="a1"))
    run.advance(msk(24, 10, 20))
    q0 = [(a.status.value, a.rule) for a in run.alerts if a.subject == {"ticket_id": "Q-0"}]
    assert q0 == [("firing", FR_RISK), ("resolved", FR_RISK)]
    q1 = [(a.status.value, a.rule, a.starts_at) for a in run.alerts if a.subject == {"ticket_id": "Q-1"}]
    assert q1 == [("firing", FR_RISK, msk(24, 10, 5)), ("firing", FR_BREACH, msk(24, 10, 15, 6))]


def test_a_queue_the_team_clears_in_time_raises_nothing_early() -> None:
    run = Run(QUEUE_ON)
    run.feed(*a_paced_hour(agents=("a1", "a2", "a3")))
    # Three agents at 15 min a reply; three p3 tickets (4 h first response, business hours).
    run.feed(
        *[
            event("contact_received", msk(24, 10), ticket=f"Q-{n}", priority="p3", channel="email")
            for n in range(3)
        ],
        *[event("assigned", msk(24, 10, 1), ticket=f"Q-{n}", team="L1", agent="a1") for n in range(3)],
    )
    run.advance(msk(24, 12))
    assert run.of(FR_RISK) == []


def test_no_pace_no_forecast() -> None:
    run = Run(QUEUE_ON)
    # Nobody on the team answered anything in the last hour: only the time trigger speaks.
    run.feed(*ten_urgent_tickets())
    run.advance(msk(24, 10, 13))
    assert [a.labels.get("reason") for a in run.of(FR_RISK)] == [None] * 10
    assert {a.starts_at for a in run.of(FR_RISK)} == {
        msk(24, 10, 11, 15) + timedelta(seconds=6 * n) for n in range(10)
    }


def test_off_by_default_the_queue_trigger_is_silent() -> None:
    run = Run()
    run.feed(*a_paced_hour(), *ten_urgent_tickets())
    run.advance(msk(24, 10, 10))
    assert run.of(FR_RISK) == []


def test_forecast_works_earliest_due_first_with_agents_in_parallel() -> None:
    now = datetime(2026, 11, 24, 7, 0, tzinfo=UTC).timestamp()
    always = AlwaysOpen()
    queue = [Waiting(now + 3600 * h, f"T-{h}", always) for h in (3, 1, 2, 4, 5)]
    result = forecast(queue, seconds_per_reply=1800, now=now)
    assert [(f.ticket_id, f.position, (f.answer_at - now) / 60) for f in result] == [
        ("T-1", 0, 30.0),
        ("T-2", 1, 60.0),
        ("T-3", 2, 90.0),
        ("T-4", 3, 120.0),
        ("T-5", 4, 150.0),
    ]
    assert not any(f.late for f in result)
    # One reply an hour for tickets due in 30 min, 1 h, 4 h, 5 h and 6 h: the first two are reached late.
    tight = [Waiting(now + 60 * m, f"U-{m}", always) for m in (240, 30, 300, 60, 360)]
    assert [(f.ticket_id, f.late) for f in forecast(tight, seconds_per_reply=3600, now=now)] == [
        ("U-30", True),
        ("U-60", True),
        ("U-240", False),
        ("U-300", False),
        ("U-360", False),
    ]
