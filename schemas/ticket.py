"""The ticket snapshot: one ticket's state and SLA outcome as the detector publishes it on the tickets
topic, and as the ClickHouse `tickets` table stores it (one column per field, plus the record's offset as
`version`). Empty string = not known, as in the table's `LowCardinality(String)` columns.

The fields migration 0004 added have defaults, so a snapshot published before it still reads.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class TicketSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    ticket_id: str
    opened_at: datetime
    first_seen_mid_life: bool
    """Its first event seen was not its first contact (the stream started later): no first-response
    clock, and no resolution time in the metrics."""
    last_event_at: datetime
    channel: str
    customer_id: str
    customer_tier: str
    category: str
    kind: str
    topic: str
    priority: str
    status: str
    team: str = ""
    """The team holding it: the latest assignment or escalation."""
    agent: str = ""
    """The agent who last replied to or was assigned the ticket."""
    sla_policy: str
    sla_calendar: str
    first_response_target_seconds: float
    first_response_at: datetime | None
    first_response_sla_seconds: float | None = None
    """Working time (on the policy's calendar) to the first reply."""
    first_response_breached: bool = False
    """Met late, or past due while still unanswered."""
    resolution_target_seconds: float
    resolved_at: datetime | None
    resolution_sla_seconds: float | None
    """Working time to resolution, without the time waiting on the customer."""
    resolution_calendar_seconds: float | None
    resolution_breached: bool = False
    first_response_due_at: datetime | None = None
    """Where the running clock reaches its target (None: met, paused or no policy): the SLA board's
    "time left". It moves only with the ticket's own events, which publish the snapshot again."""
    resolution_due_at: datetime | None = None
    touches: int
    handoffs: int
    escalations: int
    reopens: int
    agent_replies: int
    first_contact_resolution: bool
    csat_score: int | None
    csat_at: datetime | None = None
    """When the latest rating came."""

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)
