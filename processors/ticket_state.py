"""A ticket's state as the detector keeps it: what its events said (channel, customer, topic, priority...),
its status, its two SLA clocks, and the metrics the ticket row reports (replies, touches, handoffs,
escalations, reopens, rating, first-contact resolution).

The ticket book (`tickets`) changes it as events arrive; `snapshot` is its row (`schemas.ticket`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import orjson
from mypy_extensions import mypyc_attr

from processors.calendar import SlaCalendar
from processors.priority import derive_priority
from processors.sla import FIRST_RESPONSE_BREACHED, RESOLUTION_BREACHED, SlaClock
from schemas.event import BusinessImpact, ContactEvent, ContactKind, CustomerTier, Priority
from schemas.ticket import TicketSnapshot

_DONE = frozenset({"resolved", "closed"})


def _instant(epoch_seconds: float | None) -> datetime | None:
    return None if epoch_seconds is None else datetime.fromtimestamp(epoch_seconds, UTC)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class TicketState:
    ticket_id: str
    opened_at: datetime
    first_seen_mid_life: bool
    last_event_at: datetime
    last_event_ts: float
    """`last_event_at` in epoch seconds (compared on every event; datetimes compare slowly)."""
    channel: str | None = None
    customer_id: str | None = None
    customer_tier: CustomerTier | None = None
    category: BusinessImpact | None = None
    kind: ContactKind | None = None
    topic: str | None = None
    explicit_priority: Priority | None = None
    error_code: str | None = None
    status: str = "new"
    policy: str | None = None
    calendar: str = "business"
    first_response: SlaClock = field(default_factory=SlaClock)
    resolution: SlaClock = field(default_factory=SlaClock)
    # metrics kept for the sinks
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution_sla_seconds: float | None = None
    resolution_calendar_seconds: float | None = None
    agent_replies: int = 0
    touches: int = 0
    teams: list[str] = field(default_factory=list)
    escalations: int = 0
    reopens: int = 0
    csat_score: int | None = None
    csat_at: datetime | None = None
    agent: str | None = None
    """The agent who last replied to or was assigned the ticket."""
    negative_csat_at: datetime | None = None
    resolution_recorded: bool = False
    firing_rules: set[str] = field(default_factory=set)
    """The ticket's rules firing now (mirrors the alert book, to skip look-ups on the hot path)."""
    opened_iso_text: str | None = None
    """`opened_at.isoformat()`, made at the ticket's first alert and kept for the next ones."""
    alerted: bool = False
    """Whether any rule ever fired on the ticket (else the alert book holds nothing to forget)."""

    def opened_iso(self) -> str:
        if self.opened_iso_text is None:
            self.opened_iso_text = self.opened_at.isoformat()
        return self.opened_iso_text

    @property
    def priority(self) -> Priority:
        return self.explicit_priority or derive_priority(self.category, self.kind, self.customer_tier)

    @property
    def done(self) -> bool:
        return self.status in _DONE

    @property
    def handoffs(self) -> int:
        teams = self.teams
        if len(teams) < 2:  # most tickets: no generator for them (asked at each ticket's resolution)
            return 0
        return sum(1 for previous, team in pairwise(teams) if team != previous)

    @property
    def first_contact_resolution(self) -> bool:
        return self.resolved_at is not None and self.agent_replies <= 1 and self.reopens == 0

    def absorb(self, event: ContactEvent) -> None:
        """Take the descriptive fields an event carries; later values win."""
        if event.channel is not None and self.channel is None:
            self.channel = str(event.channel)
        if event.customer_id is not None:
            self.customer_id = event.customer_id
        if event.customer_tier is not None:
            self.customer_tier = event.customer_tier
        if event.category is not None:
            self.category = event.category
        if event.kind is not None:
            self.kind = event.kind
        if event.topic is not None:
            self.topic = event.topic
        if event.priority is not None:
            self.explicit_priority = event.priority
        if event.error_code is not None:
            self.error_code = event.error_code

    def labels(self) -> dict[str, str]:
        """The routing labels of this ticket's alerts (what is known when the alert fires)."""
        known = {
            "priority": self.priority.value,
            "team": self.teams[-1] if self.teams else None,
            "topic": self.topic,
            "category": self.category.value if self.category else None,
            "channel": self.channel,
            "customer_tier": self.customer_tier.value if self.customer_tier else None,
            "error_code": self.error_code,
        }
        return {name: value for name, value in known.items() if value}

    def snapshot(self, calendar: SlaCalendar) -> TicketSnapshot:
        """The ticket's row as the model (tests, analytics); `calendar` is the ticket's (due instants).

        Built without validation (`model_construct`): every field comes typed from this state
        (`tests/unit/test_ticket_snapshot.py` holds it to its validated copy)."""
        return TicketSnapshot.model_construct(**self.snapshot_fields(calendar))

    def snapshot_json(self, calendar: SlaCalendar) -> bytes:
        """The ticket's row as published on the tickets topic: the same bytes as `snapshot().to_json()`.

        The detector writes one for every ticket a poll touched (each event of a new ticket). Through
        the model (`model_construct`, then pydantic's serializer) a new ticket's event cost the
        detector's poll about 115 µs, 60 of them the snapshot; as orjson of the fields, 95 and 35
        (2026-12-02, CPU time without Kafka; `tests/unit/test_ticket_snapshot.py` holds the bytes
        equal)."""
        return orjson.dumps(self.snapshot_fields(calendar), option=orjson.OPT_UTC_Z)

    def snapshot_fields(self, calendar: SlaCalendar) -> dict[str, Any]:
        """The row's fields in `TicketSnapshot`'s order (its JSON keeps the model's field order)."""
        first_response, resolution = self.first_response, self.resolution
        return {
            "ticket_id": self.ticket_id,
            "opened_at": self.opened_at,
            "first_seen_mid_life": self.first_seen_mid_life,
            "last_event_at": self.last_event_at,
            "channel": self.channel or "",
            "customer_id": self.customer_id or "",
            "customer_tier": self.customer_tier.value if self.customer_tier else "",
            "category": self.category.value if self.category else "",
            "kind": self.kind.value if self.kind else "",
            "topic": self.topic or "",
            "priority": self.priority.value,
            "status": self.status,
            "team": self.teams[-1] if self.teams else "",
            "agent": self.agent or "",
            "sla_policy": self.policy or "",
            "sla_calendar": self.calendar,
            "first_response_target_seconds": first_response.target_seconds,
            "first_response_at": self.first_response_at,
            "first_response_sla_seconds": (
                first_response.spent_seconds
                if self.first_response_at is not None and first_response.met_at is not None
                else None
            ),
            "first_response_breached": first_response.met_late()
            or FIRST_RESPONSE_BREACHED in self.firing_rules,
            "resolution_target_seconds": resolution.target_seconds,
            "resolved_at": self.resolved_at,
            "resolution_sla_seconds": self.resolution_sla_seconds,
            "resolution_calendar_seconds": self.resolution_calendar_seconds,
            "resolution_breached": resolution.met_late() or RESOLUTION_BREACHED in self.firing_rules,
            "first_response_due_at": _instant(first_response.crossing(1.0, calendar)),
            "resolution_due_at": _instant(resolution.crossing(1.0, calendar)),
            "touches": self.touches,
            "handoffs": self.handoffs,
            "escalations": self.escalations,
            "reopens": self.reopens,
            "agent_replies": self.agent_replies,
            "first_contact_resolution": self.first_contact_resolution,
            "csat_score": self.csat_score,
            "csat_at": self.csat_at,
        }
