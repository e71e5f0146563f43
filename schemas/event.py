"""The normalized contact event: the one shape every channel adapter produces.

This module is the public contract of `contacts.events`. `parse_contact_event` is the single entry point
from bytes: the Faust worker, the ClickHouse sink and `contactpulse replay` all call it, so a record is
judged the same way everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.errors import DeadLetterReason, InvalidEvent, describe_validation_error

MAX_EVENT_BYTES: Final = 1024 * 1024
"""A serialized event larger than this is rejected before it is parsed (dead letter `oversized`)."""

MAX_TEXT_BYTES: Final = 16 * 1024
"""`text` longer than this (UTF-8 bytes) is cut at a character boundary and `text_truncated` is set."""


class EventType(StrEnum):
    CONTACT_RECEIVED = "contact_received"
    AGENT_REPLIED = "agent_replied"
    STATUS_CHANGED = "status_changed"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    CSAT_SUBMITTED = "csat_submitted"


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    SOCIAL = "social"
    WEB_FORM = "web_form"
    OTHER = "other"


class CustomerTier(StrEnum):
    KEY = "key"
    STANDARD = "standard"


class ContactKind(StrEnum):
    INCIDENT = "incident"
    QUESTION = "question"
    COMPLAINT = "complaint"
    ORDER = "order"
    FEATURE_REQUEST = "feature_request"


class BusinessImpact(StrEnum):
    """The `category` field: what the contact costs the customer's business."""

    BLOCKS_PROCESS = "blocks_process"
    REVENUE_LOSS = "revenue_loss"
    OPERATIONAL_COST = "operational_cost"
    DEVELOPMENT = "development"


class Priority(StrEnum):
    P1 = "p1"
    P2 = "p2"
    P3 = "p3"
    P4 = "p4"


class TicketStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(max_length=1024)]


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut `text` to at most `max_bytes` of UTF-8 without splitting a character."""
    encoded = text.encode("utf-8", errors="surrogatepass")
    if len(encoded) <= max_bytes:
        return text, False
    return encoded[:max_bytes].decode("utf-8", errors="ignore"), True


_EARLIEST_INSTANT: Final = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST_INSTANT: Final = datetime(2100, 1, 1, tzinfo=UTC)


class ContactEvent(BaseModel):
    """One thing that happened to a ticket, in one source, at one instant."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        coerce_numbers_to_str=True,
        # Unknown fields are accepted on the wire (and kept in `extra`), so the published schema says so.
        json_schema_extra={"additionalProperties": True},
    )

    event_id: Identifier
    type: EventType
    occurred_at: datetime
    ticket_id: Identifier
    channel: Channel | None = None
    source: Identifier | None = None
    customer_id: Identifier | None = None
    customer_tier: CustomerTier | None = None
    kind: ContactKind | None = None
    category: BusinessImpact | None = None
    topic: Identifier | None = None
    priority: Priority | None = None
    subject: ShortText | None = None
    text: str | None = None
    text_truncated: bool = False
    error_code: Identifier | None = None
    product_version: Identifier | None = None
    status: TicketStatus | None = None
    team: Identifier | None = None
    agent: Identifier | None = None
    score: Annotated[int, Field(ge=1, le=5)] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _keep_unknown_fields_and_cut_text(cls, data: Any) -> Any:
        # Unknown fields are a producer's business, not an error: they survive in `extra`.
        if not isinstance(data, dict):
            return data
        unknown = data.keys() - _KNOWN_FIELDS
        text = data.get("text")
        if not unknown and not (isinstance(text, str) and len(text) > MAX_TEXT_BYTES // 4):
            return data
        data = dict(data)
        if unknown:
            extra = data.get("extra")
            merged: dict[str, Any] = dict(extra) if isinstance(extra, dict) else {}
            for key in sorted(unknown):
                merged[key] = data.pop(key)
            data["extra"] = merged
        if isinstance(text, str):
            cut, truncated = truncate_utf8(text, MAX_TEXT_BYTES)
            if truncated:
                data["text"] = cut
                data["text_truncated"] = True
        return data

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339_with_offset(cls, value: Any) -> datetime:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("must be an RFC 3339 timestamp such as 2026-11-24T10:00:00+03:00") from None
        else:
            raise ValueError("must be an RFC 3339 timestamp string with an offset")
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError("must carry a UTC offset (Z or +hh:mm); a local time is ambiguous")
        if not _EARLIEST_INSTANT <= parsed < _LATEST_INSTANT:
            # A broken sender clock, not a contact: calendars and windows are not built for year 1 or 9999.
            raise ValueError("must lie in the years 2000 to 2099")
        return parsed

    @model_validator(mode="after")
    def _fields_the_type_needs(self) -> ContactEvent:
        if self.type is EventType.STATUS_CHANGED and self.status is None:
            raise ValueError("a status_changed event needs `status`")
        if self.type is EventType.CSAT_SUBMITTED and self.score is None:
            raise ValueError("a csat_submitted event needs `score` (1..5)")
        return self

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_defaults=True))


_KNOWN_FIELDS: Final = frozenset(ContactEvent.model_fields)


def parse_contact_event(raw: bytes | str) -> ContactEvent:
    """Judge one serialized event; raise `InvalidEvent` with the reason a dead letter carries."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(
            DeadLetterReason.OVERSIZED, f"event is {size} bytes; the limit is {MAX_EVENT_BYTES} bytes"
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(DeadLetterReason.INVALID_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent(
            DeadLetterReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(data).__name__}"
        )
    return validate_contact_event(data)


def validate_contact_event(data: dict[str, Any]) -> ContactEvent:
    try:
        return ContactEvent.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(DeadLetterReason.SCHEMA_VIOLATION, describe_validation_error(exc)) from None
