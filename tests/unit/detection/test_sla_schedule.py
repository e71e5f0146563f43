"""The SLA schedule on its own: thresholds in time order, moved by a reschedule, dropped with their ticket."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from processors.calendar import AlwaysOpen
from processors.sla_schedule import FIRST_RESPONSE_RULES, RESOLUTION_RULES, SlaSchedule
from processors.ticket_state import TicketState

T0 = 1_790_000_000.0
CALENDAR = AlwaysOpen()


def ticket(ticket_id: str, first_response_minutes: float, resolution_minutes: float) -> TicketState:
    opened = datetime.fromtimestamp(T0, UTC)
    state = TicketState(ticket_id, opened, False, opened, T0)
    state.first_response.target_seconds = first_response_minutes * 60
    state.resolution.target_seconds = resolution_minutes * 60
    state.first_response.run(T0)
    state.resolution.run(T0)
    return state


def schedule_both(schedule: SlaSchedule, state: TicketState) -> None:
    schedule.reschedule(state, state.first_response, FIRST_RESPONSE_RULES, CALENDAR, T0)
    schedule.reschedule(state, state.resolution, RESOLUTION_RULES, CALENDAR, T0)


def test_thresholds_come_out_in_time_order_with_their_ticket_clock_and_rule() -> None:
    schedule = SlaSchedule(at_risk_fraction=0.75)
    a, b = ticket("A", 20, 600), ticket("B", 8, 100)
    schedule_both(schedule, a)
    schedule_both(schedule, b)
    assert schedule.next_due() == T0 + 6 * 60  # B's first response at 75% of 8 min
    due = [(d.due - T0, d.ticket.ticket_id, d.rule) for d in schedule.pop_due(T0 + 100 * 60)]
    # Only the at-risk thresholds were scheduled; the breach is pushed once the at-risk fires.
    assert due == [
        (6 * 60, "B", "sla_first_response_at_risk"),
        (15 * 60, "A", "sla_first_response_at_risk"),
        (75 * 60, "B", "sla_resolution_at_risk"),
    ]
    assert schedule.due_bound == T0 + 450 * 60  # A's resolution at risk


def test_the_breach_follows_the_at_risk_once_that_fires() -> None:
    schedule = SlaSchedule(at_risk_fraction=0.75)
    state = ticket("A", 20, 600)
    schedule.reschedule(state, state.first_response, FIRST_RESPONSE_RULES, CALENDAR, T0)
    fired = []
    for deadline in schedule.pop_due(T0 + 30 * 60):
        fired.append((deadline.due - T0, deadline.rule))
        state.firing_rules.add(deadline.rule)  # what firing its alert does
        schedule.push_next(state, deadline.clock, deadline.rules, CALENDAR, deadline.due)
    assert fired == [(15 * 60, "sla_first_response_at_risk"), (20 * 60, "sla_first_response_breached")]
    assert schedule.next_due() == math.inf  # both fired: nothing left for this clock


def test_a_reschedule_voids_the_old_threshold() -> None:
    schedule = SlaSchedule(at_risk_fraction=0.75)
    state = ticket("A", 20, 600)
    schedule.reschedule(state, state.first_response, FIRST_RESPONSE_RULES, CALENDAR, T0)
    state.first_response.target_seconds = 40 * 60  # a lower priority: a longer target
    schedule.reschedule(state, state.first_response, FIRST_RESPONSE_RULES, CALENDAR, T0)
    assert schedule.due_bound == T0 + 15 * 60  # the old entry is still in the heap: a lower bound only
    assert schedule.next_due() == T0 + 30 * 60  # ... and dropped when asked for the exact instant
    assert [d.due - T0 for d in schedule.pop_due(T0 + 60 * 60)] == [30 * 60]


def test_unchanged_inputs_schedule_nothing_new() -> None:
    schedule = SlaSchedule(at_risk_fraction=0.75)
    state = ticket("A", 20, 600)
    schedule.reschedule(state, state.first_response, FIRST_RESPONSE_RULES, CALENDAR, T0)
    version = state.first_response.version
    schedule.reschedule(state, state.first_response, FIRST_RESPONSE_RULES, CALENDAR, T0 + 60)
    assert state.first_response.version == version
    assert len(list(schedule.pop_due(T0 + 60 * 60))) == 1


def test_a_forgotten_ticket_never_fires_even_if_a_new_one_takes_its_id() -> None:
    schedule = SlaSchedule(at_risk_fraction=0.75)
    old = ticket("A", 20, 600)
    schedule_both(schedule, old)
    schedule.void(old)
    new = ticket("A", 40, 600)
    schedule.reschedule(new, new.first_response, FIRST_RESPONSE_RULES, CALENDAR, T0)
    due = [(d.due - T0, d.ticket is new) for d in schedule.pop_due(T0 + 600 * 60)]
    assert due == [(30 * 60, True)]
