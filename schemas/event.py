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
    GetCoreSchemaHandler,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

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


class _RFC3339Instant:
    """`occurred_at`'s rule, checked by pydantic-core itself: no Python runs per event for it.

    On the wire (JSON) only an RFC 3339 string with an offset is an instant; a number is refused, not
    read as Unix time. From Python (adapters, tests) a datetime or such a string. Either way the year
    lies in 2000-2099: a broken sender clock is not a contact, and calendars and windows are not built
    for year 1 or 9999. The sentences a dead letter shows are in `schemas.errors`.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        def instant(strict: bool) -> CoreSchema:
            return core_schema.datetime_schema(
                strict=strict, tz_constraint="aware", ge=_EARLIEST_INSTANT, lt=_LATEST_INSTANT
            )

        return core_schema.json_or_python_schema(json_schema=instant(True), python_schema=instant(False))


Instant = Annotated[datetime, _RFC3339Instant()]


_STATUS_CHANGED: Final = EventType.STATUS_CHANGED
_CSAT_SUBMITTED: Final = EventType.CSAT_SUBMITTED
_TEXT_CHARS_SURELY_WITHIN: Final = MAX_TEXT_BYTES // 4
"""A text of at most this many characters is within MAX_TEXT_BYTES (UTF-8 needs at most 4 bytes each)."""


class ContactEvent(BaseModel):
    """One thing that happened to a ticket, in one source, at one instant."""

    model_config = ConfigDict(
        frozen=True,
        # Unknown fields are a producer's business, not an error: they are accepted and moved into
        # `extra` (see `_fields_the_type_needs`); the published schema says so.
        extra="allow",
        coerce_numbers_to_str=True,
        json_schema_extra={"additionalProperties": True},
    )

    event_id: Identifier
    type: EventType
    occurred_at: Instant
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

    @model_validator(mode="after")
    def _fields_the_type_needs(self) -> ContactEvent:
        # The one Python step of validation (the rest runs in pydantic-core), so it does all the
        # cross-field work: the fields a type needs, unknown fields into `extra`, an overlong text cut.
        # It runs once per event: fields are read from __dict__ and the enum members are module globals.
        fields = self.__dict__
        kind = fields["type"]
        if kind is _STATUS_CHANGED and fields["status"] is None:
            raise ValueError("a status_changed event needs `status`")
        if kind is _CSAT_SUBMITTED and fields["score"] is None:
            raise ValueError("a csat_submitted event needs `score` (1..5)")
        unknown = self.__pydantic_extra__
        if unknown:
            merged = dict(fields["extra"])
            for key in sorted(unknown):
                merged[key] = unknown[key]
            unknown.clear()
            fields["extra"] = merged
        text = fields["text"]
        if text is not None and len(text) > _TEXT_CHARS_SURELY_WITHIN:
            cut, truncated = truncate_utf8(text, MAX_TEXT_BYTES)
            if truncated:
                fields["text"] = cut
                fields["text_truncated"] = True
        return self

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_defaults=True))


def parse_contact_event(raw: bytes | str) -> ContactEvent:
    """Judge one serialized event; raise `InvalidEvent` with the reason a dead letter carries."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(
            DeadLetterReason.OVERSIZED, f"event is {size} bytes; the limit is {MAX_EVENT_BYTES} bytes"
        )
    try:
        # pydantic-core reads the JSON itself: no intermediate dict of Python objects per event.
        event: ContactEvent = _validate_json(raw)
        return event
    except ValidationError as exc:
        raise _judge(exc) from None


def _judge(exc: ValidationError) -> InvalidEvent:
    """The dead-letter reason of a record pydantic refused: not JSON, not an object, or the contract."""
    errors = exc.errors(include_url=False)
    if len(errors) == 1 and not errors[0]["loc"]:
        error = errors[0]
        if error["type"] == "json_invalid":
            message = error["ctx"].get("error", error["msg"]) if "ctx" in error else error["msg"]
            return InvalidEvent(DeadLetterReason.INVALID_JSON, f"not valid JSON: {message}")
        if error["type"] in ("model_type", "model_attributes_type"):
            kind = type(error["input"]).__name__
            return InvalidEvent(DeadLetterReason.NOT_AN_OBJECT, f"expected a JSON object, got {kind}")
    return InvalidEvent(DeadLetterReason.SCHEMA_VIOLATION, describe_validation_error(exc))


_validate_json = ContactEvent.__pydantic_validator__.validate_json
"""`ContactEvent.model_validate_json` without its Python wrapper (called once per event)."""
