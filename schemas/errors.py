"""Typed reasons a record is refused. Pure code raises these; the edges turn them into dead letters."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from pydantic import ValidationError

_MAX_SHOWN_VALUE: Final = 80


class DeadLetterReason(StrEnum):
    """The machine-readable reason on every dead letter (header `contactpulse.reason`, metric label)."""

    OVERSIZED = "oversized"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    SCHEMA_VIOLATION = "schema_violation"
    FUTURE_TIMESTAMP = "future_timestamp"
    DUPLICATE = "duplicate"
    LATE = "late"
    UNPARSABLE_PAYLOAD = "unparsable_payload"
    ADAPTER_ERROR = "adapter_error"
    UNMAPPED_PAYLOAD = "unmapped_payload"
    BAD_SIGNATURE = "bad_signature"
    PROCESSING_ERROR = "processing_error"


class InvalidEvent(Exception):
    """A record that cannot become a contact event, with the reason and a human sentence."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _show(value: Any) -> str:
    shown = repr(value)
    if len(shown) > _MAX_SHOWN_VALUE:
        shown = shown[: _MAX_SHOWN_VALUE - 3] + "..."
    return shown


_INSTANT_RULES: Final = {
    "timezone_aware": "must carry a UTC offset (Z or +hh:mm); a local time is ambiguous",
    "datetime_parsing": "must be an RFC 3339 timestamp such as 2026-11-24T10:00:00+03:00",
    "datetime_from_date_parsing": "must be an RFC 3339 timestamp such as 2026-11-24T10:00:00+03:00",
    "datetime_type": "must be an RFC 3339 timestamp string with an offset",
    "greater_than_equal": "must lie in the years 2000 to 2099",
    "less_than": "must lie in the years 2000 to 2099",
}
"""`occurred_at` is checked inside pydantic-core; these say its rules in the contract's words."""


def describe_validation_error(exc: ValidationError) -> str:
    """One line per failed rule: the field, the bad value and the rule it broke."""
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "(event)"
        message = error["msg"].removeprefix("Value error, ")
        if field == "occurred_at":
            message = _INSTANT_RULES.get(error["type"], message)
        if error["type"] == "missing":
            parts.append(f"{field}: required field is missing")
        else:
            parts.append(f"{field}: {_show(error['input'])} rejected: {message} [{error['type']}]")
    return "; ".join(parts)


# The dead-letter record's headers (the value is the refused record itself; see stream/dead_letter.py).
HEADER_REASON: Final = "contactpulse.reason"
HEADER_DETAIL: Final = "contactpulse.detail"
HEADER_TOPIC: Final = "contactpulse.source.topic"
HEADER_PARTITION: Final = "contactpulse.source.partition"
HEADER_OFFSET: Final = "contactpulse.source.offset"
HEADER_ORIGINAL_SIZE: Final = "contactpulse.original-size"
HEADER_WITHHELD: Final = "contactpulse.withheld"
HEADER_SHA256: Final = "contactpulse.sha256"
