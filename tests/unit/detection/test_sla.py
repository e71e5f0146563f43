from __future__ import annotations

from datetime import date, timedelta

import pytest

from processors.engine import DetectionEngine
from processors.priority import derive_priority
from schemas import BusinessImpact, ContactKind, CustomerTier, Priority
from schemas.alert import AlertStatus, Severity
from tests.unit.detection.helpers import Run, config, event, msk

FR_RISK, FR_BREACH = "sla_first_response_at_risk", "sla_first_response_breached"
RES_RISK, RES_BREACH = "sla_resolution_at_risk", "sla_resolution_breached"


def test_p1_first_response_at_risk_and_breach_fire_at_exact_instants() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 10), priority="p1", channel="email"))
    run.advance(msk(24, 10, 20))
    assert run.states(FR_RISK) == [("firing", msk(24, 10, 11, 15), None)]
    assert run.states(FR_BREACH) == [("firing", msk(24, 10, 15), None)]
    breach = run.of(FR_BREACH)[0]
    assert breach.severity is Severity.CRITICAL
    assert breach.subject == {"ticket_id": "T-1"}
    assert breach.details["due_at"] == msk(24, 10, 15).isoformat()
    assert run.of(FR_RISK)[0].severity is Severity.WARNING

    run.feed(event("agent_replied", msk(24, 10, 21)))
    resolved = [a for a in run.alerts if a.status is AlertStatus.RESOLVED]
    assert {(a.rule, a.ends_at) for a in resolved} == {
        (FR_RISK, msk(24, 10, 21)),
        (FR_BREACH, msk(24, 10, 21)),
    }
    assert {a.alert_id for a in resolved} == {a.alert_id for a in run.of(FR_RISK)[:1] + run.of(FR_BREACH)[:1]}


def test_reply_before_the_at_risk_threshold_fires_nothing() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10), priority="p1"),
        event("agent_replied", msk(24, 10, 11, 14)),
        event("contact_received", msk(24, 12), ticket="T-2", priority="p4", channel="email"),
    )
    run.advance(msk(24, 12))
    assert run.of(FR_RISK) == []
    assert run.of(FR_BREACH) == []


def test_a_reply_at_the_due_instant_is_in_time() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10), priority="p1"),
        event("agent_replied", msk(24, 10, 15)),
    )
    run.advance(msk(24, 11))
    assert run.states(FR_RISK) == [
        ("firing", msk(24, 10, 11, 15), None),
        ("resolved", msk(24, 10, 11, 15), msk(24, 10, 15)),
    ]
    assert run.of(FR_BREACH) == []


def test_friday_evening_business_hours_ticket_is_due_monday() -> None:
    # p3, e-mail: 4 business hours. Friday 17:00 leaves one hour, Monday 09:00 gives three more.
    run = Run()
    run.feed(event("contact_received", msk(27, 17), channel="email", topic="billing"))
    run.advance(msk(30, 13))
    assert run.states(FR_RISK) == [("firing", msk(30, 11), None)]
    assert run.states(FR_BREACH) == [("firing", msk(30, 12), None)]
    assert run.of(FR_BREACH)[0].severity is Severity.WARNING  # p3


def test_ticket_opened_at_night_starts_counting_at_opening_time() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 2), channel="email"))
    run.advance(msk(24, 14))
    assert run.states(FR_BREACH) == [("firing", msk(24, 13), None)]


def test_fast_channel_gets_fifteen_minutes_on_the_priority_calendar() -> None:
    run = Run()
    run.feed(event("contact_received", msk(27, 17, 50), channel="telegram"))  # p3: business hours
    run.advance(msk(30, 10))
    assert run.states(FR_BREACH) == [("firing", msk(30, 9, 5), None)]
    assert run.of(FR_BREACH)[0].details["target_seconds"] == 900


def test_fast_channel_keeps_a_shorter_priority_target() -> None:
    cfg = config(sla={"fast_channel_first_response_minutes": 30})
    run = Run(cfg)
    run.feed(event("contact_received", msk(24, 10), channel="chat", priority="p1"))
    run.advance(msk(24, 11))
    assert run.states(FR_BREACH) == [("firing", msk(24, 10, 15), None)]


def test_holidays_from_config_are_skipped() -> None:
    cfg = config(business_hours={"holidays": [date(2026, 11, 30)]})
    run = Run(cfg)
    run.feed(event("contact_received", msk(27, 17), channel="email"))
    run.advance(msk(31 - 30 + 1, 13, month=12))  # Tuesday 1 December
    assert run.states(FR_BREACH) == [("firing", msk(1, 12, month=12), None)]


def test_country_holidays_come_from_the_holidays_package() -> None:
    # 4 November is Unity Day in Russia: a p3 ticket from Tuesday 3 Nov 17:00 is due Thursday 12:00.
    run = Run(config(business_hours={"holiday_country": "RU"}))
    run.feed(event("contact_received", msk(3, 17), channel="email"))
    run.advance(msk(5, 18))
    assert run.states(FR_BREACH) == [("firing", msk(5, 12), None)]


def test_resolution_clock_pauses_while_waiting_on_the_customer() -> None:
    # p2: 8 h resolution on 24x7. Four hours waiting on the customer move both thresholds by four hours.
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10), priority="p2"),
        event("agent_replied", msk(24, 10, 5)),
        event("status_changed", msk(24, 11), status="waiting_customer"),
        event("status_changed", msk(24, 15), status="in_progress"),
    )
    run.advance(msk(24, 23))
    assert run.states(RES_RISK) == [("firing", msk(24, 20), None)]
    assert run.states(RES_BREACH) == [("firing", msk(24, 22), None)]
    assert run.of(RES_BREACH)[0].details["spent_seconds"] == 8 * 3600


def test_no_deadline_fires_during_a_pause() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10), priority="p2"),
        event("agent_replied", msk(24, 10, 5)),
        event("status_changed", msk(24, 11), status="waiting_customer"),
    )
    run.advance(msk(26, 10))
    assert run.of(RES_RISK) == []
    assert run.of(RES_BREACH) == []


def test_resolution_meets_the_target_and_resolves_alerts() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 10), priority="p1"), event("agent_replied", msk(24, 10, 1)))
    run.advance(msk(24, 13, 30))
    run.feed(event("status_changed", msk(24, 13, 40), status="resolved"))
    run.advance(msk(24, 20))
    assert run.states(RES_RISK) == [("firing", msk(24, 13), None), ("resolved", msk(24, 13), msk(24, 13, 40))]
    assert run.of(RES_BREACH) == []


def test_reopen_resumes_the_clock_where_it_stopped() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10), priority="p2"),
        event("agent_replied", msk(24, 10, 5)),
        event("status_changed", msk(24, 12), status="resolved"),  # 2 h of 8 spent
        event("status_changed", msk(25, 10), status="in_progress"),
    )
    run.advance(msk(25, 20))
    assert run.states(RES_BREACH) == [("firing", msk(25, 16), None)]
    ticket = run.engine.tickets.tickets["T-1"]
    assert ticket.reopens == 1


def test_a_breach_after_a_reopen_is_a_new_episode_with_a_new_id() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 10), priority="p1"), event("agent_replied", msk(24, 10, 1)))
    run.advance(msk(24, 14, 30))
    run.feed(
        event("status_changed", msk(24, 15), status="resolved"),
        event("status_changed", msk(24, 16), status="in_progress"),
    )
    run.advance(msk(24, 17))
    breaches = run.of(RES_BREACH)
    assert [(a.status.value, a.starts_at) for a in breaches] == [
        ("firing", msk(24, 14)),
        ("resolved", msk(24, 14)),
        ("firing", msk(24, 16)),
    ]
    assert breaches[0].alert_id == breaches[1].alert_id != breaches[2].alert_id


def test_ticket_first_seen_mid_life_gets_no_first_response_alert() -> None:
    run = Run()
    run.feed(event("status_changed", msk(24, 10), status="in_progress", priority="p1"))
    run.advance(msk(24, 15))
    assert run.of(FR_RISK) == []
    assert run.states(RES_BREACH) == [("firing", msk(24, 14), None)]  # 4 h from first sight
    assert run.engine.tickets.tickets["T-1"].first_seen_mid_life


def test_priority_raised_mid_life_moves_the_deadlines() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10), channel="email"),  # p3: 4 business hours
        event("contact_received", msk(24, 10, 5), priority="p1"),  # now 15 minutes, 24x7
    )
    run.advance(msk(24, 11))
    assert run.states(FR_BREACH) == [("firing", msk(24, 10, 15), None)]


def test_closing_without_a_reply_resolves_first_response_alerts() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 10), priority="p1"))
    run.advance(msk(24, 10, 20))
    run.feed(event("status_changed", msk(24, 10, 30), status="closed"))
    assert [a.status.value for a in run.of(FR_BREACH)] == ["firing", "resolved"]


def test_ticket_metrics_are_kept() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10), priority="p2"),
        event("assigned", msk(24, 10, 1), team="tier1", agent="a1"),
        event("agent_replied", msk(24, 10, 10), agent="a1"),
        event("escalated", msk(24, 10, 20), team="tier2"),
        event("assigned", msk(24, 10, 21), team="tier2", agent="a2"),
        event("status_changed", msk(24, 11), status="waiting_customer"),
        event("status_changed", msk(24, 12), status="in_progress"),
        event("status_changed", msk(24, 13), status="resolved"),
        event("csat_submitted", msk(24, 14), score=5),
    )
    snapshot = run.engine.tickets.snapshot(run.engine.tickets.tickets["T-1"])
    assert snapshot.first_response_at == msk(24, 10, 10)
    assert snapshot.resolution_sla_seconds == 2 * 3600  # 3 h minus the 1 h wait
    assert snapshot.resolution_calendar_seconds == 3 * 3600
    assert (snapshot.touches, snapshot.handoffs, snapshot.escalations) == (2, 1, 1)
    assert snapshot.first_contact_resolution is True
    assert snapshot.csat_score == 5
    assert (snapshot.team, snapshot.agent) == ("tier2", "a2")
    assert snapshot.first_response_sla_seconds == 10 * 60
    assert (snapshot.first_response_breached, snapshot.resolution_breached) == (False, False)


def test_a_breach_marks_the_ticket_row_breached_when_it_fires_and_after_the_late_reply() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 10), priority="p1", channel="email"))
    run.engine.tickets.take_touched()
    run.advance(msk(24, 10, 14))
    assert run.engine.tickets.take_touched() == []  # at risk: the row has nothing new to say
    run.advance(msk(24, 10, 16))
    (ticket,) = run.engine.tickets.take_touched()  # the breach: its row is written again
    assert run.engine.tickets.snapshot(ticket).first_response_breached is True
    assert run.engine.tickets.snapshot(ticket).first_response_sla_seconds is None  # no reply yet
    assert run.engine.tickets.snapshot(ticket).first_response_due_at == msk(24, 10, 15)  # past due
    run.feed(event("agent_replied", msk(24, 10, 20)))
    snapshot = run.engine.tickets.snapshot(ticket)
    assert (snapshot.first_response_breached, snapshot.first_response_sla_seconds) == (True, 20 * 60)
    assert snapshot.first_response_due_at is None  # met: no clock runs
    assert snapshot.resolution_due_at is not None
    assert snapshot.resolution_breached is False


@pytest.mark.parametrize(
    ("category", "kind", "tier", "expected"),
    [
        (BusinessImpact.BLOCKS_PROCESS, None, None, Priority.P1),
        (BusinessImpact.REVENUE_LOSS, None, None, Priority.P2),
        (None, ContactKind.FEATURE_REQUEST, None, Priority.P4),
        (BusinessImpact.OPERATIONAL_COST, ContactKind.QUESTION, None, Priority.P3),
        (None, None, CustomerTier.KEY, Priority.P2),
        (BusinessImpact.BLOCKS_PROCESS, None, CustomerTier.KEY, Priority.P1),
        (None, ContactKind.FEATURE_REQUEST, CustomerTier.KEY, Priority.P3),
    ],
)
def test_derived_priority(
    category: BusinessImpact | None, kind: ContactKind | None, tier: CustomerTier | None, expected: Priority
) -> None:
    assert derive_priority(category, kind, tier) is expected


def test_explicit_priority_is_not_raised_for_key_customers() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 10), priority="p3", customer_tier="key", channel="email"))
    assert run.engine.tickets.tickets["T-1"].priority is Priority.P3


def test_first_matching_policy_wins() -> None:
    policies = [
        {
            "name": "key-accounts",
            "conditions": {"customer_tiers": ["key"]},
            "first_response_minutes": 5,
            "resolution_minutes": 60,
            "calendar": "24x7",
        },
        {"name": "everyone", "first_response_minutes": 600, "resolution_minutes": 6000},
    ]
    run = Run(config(sla={"policies": policies}))
    run.feed(
        event("contact_received", msk(24, 10), ticket="K", customer_tier="key", channel="email"),
        event("contact_received", msk(24, 10), ticket="S", customer_tier="standard", channel="email"),
    )
    run.advance(msk(24, 11))
    assert [a.subject["ticket_id"] for a in run.of(FR_BREACH)] == ["K"]
    assert run.of(FR_BREACH)[0].starts_at == msk(24, 10, 5)
    assert run.engine.tickets.tickets["S"].policy == "everyone"


def test_russian_summaries() -> None:
    run = Run(config(locale="ru"))
    run.feed(event("contact_received", msk(24, 10), priority="p1", channel="email"))
    run.advance(msk(24, 10, 16))
    assert run.of(FR_BREACH)[0].summary.startswith("Тикет T-1 (p1, email) нарушил срок первого ответа 15 мин")


def test_replaying_the_same_stream_gives_byte_identical_alerts() -> None:
    events = [
        event("contact_received", msk(24, 10), priority="p1", event_id="a"),
        event("contact_received", msk(24, 10, 3), ticket="T-2", priority="p2", event_id="b"),
        event("agent_replied", msk(24, 10, 40), ticket="T-2", event_id="c"),
    ]
    outputs = []
    for _ in range(2):
        run = Run()
        run.feed(*events)
        run.advance(msk(24, 12))
        outputs.append([a.to_json() for a in run.alerts])
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 2


def test_duplicate_events_count_once() -> None:
    run = Run()
    first = event("csat_submitted", msk(24, 10), score=1, event_id="dup")
    outcomes = run.feed(event("contact_received", msk(24, 9, 59)), first, first)
    assert [o.verdict.value for o in outcomes] == ["accepted", "accepted", "duplicate"]
    assert len(run.of("negative_csat")) == 1


def test_an_id_is_remembered_for_at_least_a_day_and_about_two_at_most() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 10), event_id="once"))
    # Hourly traffic keeps the clock moving; the id is still known 23 h 59 min later...
    for hour in range(11, 34):
        run.feed(event("assigned", msk(24, 0) + timedelta(hours=hour), event_id=f"tick-{hour}"))
    again = event("contact_received", msk(25, 9, 59), event_id="once")
    assert [o.verdict.value for o in run.feed(again)] == ["duplicate"]
    # ... and forgotten (memory stays bounded) once about two days of event time have passed.
    for hour in range(34, 62):
        run.feed(event("assigned", msk(24, 0) + timedelta(hours=hour), event_id=f"tick-{hour}"))
    assert not run.engine.seen.seen("once")
    assert run.engine.seen.seen("tick-61")
    assert len(run.engine.seen.recent) + len(run.engine.seen.older) < 50


def test_late_events_beyond_five_minutes_are_refused() -> None:
    run = Run()
    outcomes = run.feed(
        event("contact_received", msk(24, 10)),
        event("contact_received", msk(24, 9, 55, 30), ticket="T-2"),
        event("contact_received", msk(24, 9, 54, 59), ticket="T-3"),
    )
    assert [o.verdict.value for o in outcomes] == ["accepted", "accepted", "late"]
    assert "T-3" not in run.engine.tickets.tickets


def test_expiry_keeps_open_tickets_and_forgets_closed_ones_behind_them() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(2, 10), ticket="OPEN", priority="p3"),
        event("contact_received", msk(2, 11), ticket="DONE", priority="p3"),
        event("status_changed", msk(3, 12), ticket="DONE", status="closed"),
    )
    # Expiry runs daily; by the one after DONE's 8 days, OPEN (older, still open) is kept.
    run.advance(msk(13, 4))
    assert list(run.engine.tickets.tickets) == ["OPEN"]
    run.advance(msk(2, 10) + timedelta(days=61))
    assert run.engine.tickets.tickets == {}


def test_closed_tickets_are_forgotten_after_retention() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(2, 10), priority="p2"),
        event("agent_replied", msk(2, 10, 5)),
        event("status_changed", msk(2, 11), status="closed"),
    )
    run.advance(msk(2, 10) + timedelta(days=9, hours=15))
    assert run.engine.tickets.tickets == {}


def test_changed_tickets_are_handed_over_once_and_not_kept_when_nobody_takes_them() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10), ticket="B"), event("assigned", msk(24, 10, 5), ticket="A")
    )
    assert [t.ticket_id for t in run.engine.tickets.take_touched()] == ["A", "B"]
    assert run.engine.tickets.take_touched() == []
    replaying = DetectionEngine(config(), track_ticket_changes=False)
    replaying.observe(event("contact_received", msk(24, 10), ticket="C"))
    assert replaying.tickets.touched is None
    assert replaying.tickets.take_touched() == []
    assert "C" in replaying.tickets.tickets
