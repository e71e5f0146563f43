"""What every detector is to the engine: it sees each applied event, it may have deadlines, and it does
its hourly work. The engine loops over a list of them, in a fixed order, with no special case.

Time is epoch seconds for deadlines (compared on every event; datetimes compare slowly) and a datetime
at whole hours.

A habit of the hot path, in every detector module: enum members it compares per event are bound to
module globals (`_CONTACT_RECEIVED = EventType.CONTACT_RECEIVED`), since looking up a class attribute
costs about ten times more than a global.

`stream_start` is the first event's time: history-based rules know what they cannot know yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from processors.ticket_state import TicketState
from processors.windows import hour_of
from schemas.alert import Alert
from schemas.event import ContactEvent, EventType


@dataclass(slots=True)
class TicketFacts:
    """What the detectors learn from the last ticket event (computed once, by the ticket book)."""

    opened: bool = False
    finished: bool = False
    """Resolved or closed by this event (it was not before)."""
    first_escalation: bool = False
    resolution_seconds: float | None = None


@dataclass(slots=True)
class Observation:
    """One applied event as the detectors see it. One object, overwritten for each event (the detectors
    read it during `observe` and keep nothing of it): no allocation on the hot path."""

    event: ContactEvent = field(default=None)  # type: ignore[assignment]
    ts: float = 0.0
    """`event.occurred_at` as epoch seconds."""
    ticket: TicketState = field(default=None)  # type: ignore[assignment]
    """The event's ticket, after the event."""
    facts: TicketFacts = field(default_factory=TicketFacts)

    @property
    def hour(self) -> int:
        """`hour_index` of the event (computed when a detector asks: most events need none)."""
        return hour_of(self.ts)


ALL_EVENT_TYPES: Final = frozenset(EventType)
NO_EVENT_TYPES: Final[frozenset[EventType]] = frozenset()
NEW_CONTACTS: Final[frozenset[EventType]] = frozenset({EventType.CONTACT_RECEIVED})
"""What detectors of arrivals observe (volumes, clusters, silence). Detectors name one of these module
constants as `observes`: a compiled class attribute's value must be a constant."""
CONTACTS_AND_STATUS: Final[frozenset[EventType]] = NEW_CONTACTS | {EventType.STATUS_CHANGED}
"""Arrivals and status changes (trends by outcome, repeats after a solved ticket)."""
CONTACTS_STATUS_AND_ESCALATIONS: Final[frozenset[EventType]] = CONTACTS_AND_STATUS | {EventType.ESCALATED}
"""Everything the ticket-rate rules count (escalations, first-contact resolution, handoffs)."""


class Detector(Protocol):
    observes: frozenset[EventType]
    """The event types `observe` does anything on: the engine calls it for those only (most events are
    replies, assignments and ratings, which few detectors look at; a call per detector and event was a
    twentieth of replay's time)."""
    keeps_deadlines: bool
    """Whether it schedules deadlines (the engine compares only those bounds, on every event)."""

    @property
    def due_bound(self) -> float:
        """A lower bound of `next_due()` (inf: nothing scheduled), read on every event: only when an event
        is stamped past it does the engine ask for the exact next deadline."""
        ...

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        """Take one applied event into account; append the alert changes it causes to `alerts`."""
        ...

    def next_due(self) -> float:
        """The next deadline as epoch seconds, or inf."""
        ...

    def fire_due(self, now: float, stream_start: datetime) -> list[Alert]:
        """Act on every deadline at or before `now`."""
        ...

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        """Work due at each whole hour `at` (evaluations over whole hours, expiry, memory bounds)."""
        ...


class WithoutDeadlines:
    """The deadline half of `Detector` for one that keeps none (it works at whole hours or on events)."""

    keeps_deadlines = False
    due_bound = math.inf

    def next_due(self) -> float:
        return math.inf

    def fire_due(self, now: float, stream_start: datetime) -> list[Alert]:
        return []
