"""When SLA thresholds fire: every running clock's next threshold (at risk, then breached) in one heap.

A clock's thresholds move whenever its timing inputs change (a pause, a priority change, a reply). Rather
than find and remove the old entry, each reschedule gives the clock a new `version` and pushes a new
`Deadline`; an entry whose version no longer matches its clock is void and is dropped when it reaches the
top. Versions are unique across the book, so a forgotten ticket's entries can never match a later ticket.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from typing import NamedTuple

from mypy_extensions import mypyc_attr

from processors.calendar import SlaCalendar
from processors.sla import (
    FIRST_RESPONSE_AT_RISK,
    FIRST_RESPONSE_BREACHED,
    RESOLUTION_AT_RISK,
    RESOLUTION_BREACHED,
    SlaClock,
)
from processors.ticket_state import TicketState


class ClockRules(NamedTuple):
    """The two rules of one clock, in the order they fire."""

    at_risk: str
    breached: str


FIRST_RESPONSE_RULES = ClockRules(FIRST_RESPONSE_AT_RISK, FIRST_RESPONSE_BREACHED)
RESOLUTION_RULES = ClockRules(RESOLUTION_AT_RISK, RESOLUTION_BREACHED)

_VOID = 0
"""A version no schedule gives (they count from 1)."""


class Deadline(NamedTuple):
    """One scheduled threshold. A tuple, because the heap compares millions of them in C: `due`, then the
    unique `seq`, so the fields after it are never compared."""

    due: float
    """Epoch seconds."""
    seq: int
    ticket: TicketState
    clock: SlaClock
    rules: ClockRules
    """The clock's pair, to schedule the breach once the at-risk has fired."""
    rule: str
    version: int
    """The clock's version when this was scheduled: void once the clock has another."""


@mypyc_attr(allow_interpreted_subclasses=True)
class SlaSchedule:
    def __init__(self, at_risk_fraction: float) -> None:
        self._at_risk = at_risk_fraction
        self._heap: list[Deadline] = []
        self._seq = 0
        self.due_bound = math.inf
        """The heap's earliest entry as epoch seconds (perhaps a void one: a lower bound)."""

    def reschedule(
        self, ticket: TicketState, clock: SlaClock, rules: ClockRules, calendar: SlaCalendar, now: float
    ) -> None:
        """Schedule the clock's next threshold again if its timing inputs changed since it was computed."""
        inputs = (
            ticket.calendar,
            clock.target_seconds,
            clock.spent_seconds,
            clock.running_since,
            clock.met_at,
        )
        if clock.scheduled_from == inputs:
            return  # e.g. "in progress" while it already ran: its thresholds stand
        clock.scheduled_from = inputs
        self._seq += 1
        clock.version = self._seq
        if clock.running_since is not None and clock.met_at is None and clock.target_seconds > 0:
            self.push_next(ticket, clock, rules, calendar, now)

    def push_next(
        self,
        ticket: TicketState,
        clock: SlaClock,
        rules: ClockRules,
        calendar: SlaCalendar,
        now: float,
        breach: float | None = None,
    ) -> None:
        """Schedule the clock's next threshold not yet firing (the breach once the at-risk has fired).

        `breach`: the clock's 100% crossing when the caller has just computed it (firing the at-risk).
        """
        firing = ticket.firing_rules
        if rules.at_risk not in firing:
            rule, fraction = rules.at_risk, self._at_risk
        elif rules.breached not in firing:
            rule, fraction = rules.breached, 1.0
        else:
            return
        if fraction == 1.0 and breach is not None:
            crossing: float | None = breach
        else:
            crossing = clock.crossing(fraction, calendar)
        if crossing is None:
            return
        self._seq += 1
        due = crossing if crossing > now else now
        heapq.heappush(self._heap, Deadline(due, self._seq, ticket, clock, rules, rule, clock.version))
        if due < self.due_bound:
            self.due_bound = due

    @staticmethod
    def void(ticket: TicketState) -> None:
        """Make every scheduled threshold of a ticket void (it is being forgotten)."""
        ticket.first_response.version = ticket.resolution.version = _VOID

    def next_due(self) -> float:
        """The earliest valid threshold as epoch seconds (void ones are dropped on the way), or inf."""
        heap = self._heap
        while heap:
            top = heap[0]
            if top[3].version == top[6]:  # clock.version == version, by index: void entries are many
                self.due_bound = top[0]
                return top[0]
            heapq.heappop(heap)
        self.due_bound = math.inf
        return math.inf

    def pop_due(self, now: float) -> Iterator[Deadline]:
        """Every valid threshold due at or before `now`, in time order, including those the caller pushes
        while iterating."""
        heap = self._heap
        while heap and heap[0].due <= now:
            deadline = heapq.heappop(heap)
            if deadline.clock.version == deadline.version:
                yield deadline
        self.due_bound = heap[0].due if heap else math.inf
