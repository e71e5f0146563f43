from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    Channel,
    ContactEvent,
    DeadLetterReason,
    EventType,
    InvalidEvent,
    TicketStatus,
    parse_contact_event,
)
from schemas.event import MAX_EVENT_BYTES, MAX_TEXT_BYTES, truncate_utf8

MINIMAL: dict[str, Any] = {
    "event_id": "zd-1001-1",
    "type": "contact_received",
    "occurred_at": "2026-11-24T10:15:00+03:00",
    "ticket_id": "1001",
}


def encode(**changes: Any) -> bytes:
    event = {**MINIMAL, **changes}
    return orjson.dumps({k: v for k, v in event.items() if v is not ...})


def rejection(raw: bytes) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        parse_contact_event(raw)
    return caught.value


def test_minimal_event_parses_with_offset_kept() -> None:
    event = parse_contact_event(encode())
    assert event.type is EventType.CONTACT_RECEIVED
    assert event.occurred_at == datetime(2026, 11, 24, 7, 15, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(hours=3)
    assert event.channel is None
    assert event.extra == {}


def test_every_optional_field_round_trips() -> None:
    full = {
        **MINIMAL,
        "type": "status_changed",
        "channel": "telegram",
        "source": "telegram",
        "customer_id": "c-9",
        "customer_tier": "key",
        "kind": "incident",
        "category": "blocks_process",
        "topic": "api_integration",
        "priority": "p1",
        "subject": "API down",
        "text": "Не работает API",
        "error_code": "ERR-504",
        "product_version": "5.3.1",
        "status": "waiting_customer",
        "team": "platform",
        "agent": "agent-07",
    }
    event = parse_contact_event(orjson.dumps(full))
    assert event.status is TicketStatus.WAITING_CUSTOMER
    assert event.channel is Channel.TELEGRAM
    assert parse_contact_event(event.to_json()) == event


def test_utc_z_suffix_is_accepted() -> None:
    event = parse_contact_event(encode(occurred_at="2026-11-24T07:15:00Z"))
    assert event.occurred_at == datetime(2026, 11, 24, 7, 15, tzinfo=timezone.utc)  # noqa: UP017


def test_numeric_ids_are_read_as_strings() -> None:
    event = parse_contact_event(encode(ticket_id=1001, event_id=77))
    assert (event.ticket_id, event.event_id) == ("1001", "77")


def test_unknown_fields_are_kept_in_extra_not_rejected() -> None:
    event = parse_contact_event(encode(zendesk_brand="acme", sla_policy={"id": 3}))
    assert event.extra == {"zendesk_brand": "acme", "sla_policy": {"id": 3}}
    again = parse_contact_event(event.to_json())
    assert again.extra == event.extra


def test_long_text_is_truncated_at_a_character_boundary_and_flagged() -> None:
    text = "ж" * MAX_TEXT_BYTES  # two bytes each: twice the limit
    event = parse_contact_event(encode(text=text))
    assert event.text_truncated is True
    assert event.text is not None
    assert len(event.text.encode()) == MAX_TEXT_BYTES
    assert event.text == "ж" * (MAX_TEXT_BYTES // 2)


def test_text_at_the_limit_is_not_flagged() -> None:
    event = parse_contact_event(encode(text="a" * MAX_TEXT_BYTES))
    assert event.text_truncated is False


@given(st.text(max_size=300), st.integers(min_value=0, max_value=400))
def test_truncate_utf8_is_a_valid_prefix_within_budget(text: str, budget: int) -> None:
    cut, truncated = truncate_utf8(text, budget)
    assert text.startswith(cut)
    assert len(cut.encode("utf-8", errors="surrogatepass")) <= budget
    assert truncated == (cut != text)


def test_oversized_event_is_rejected_before_parsing() -> None:
    raw = encode(text="x" * (MAX_EVENT_BYTES + 10))
    error = rejection(raw)
    assert error.reason is DeadLetterReason.OVERSIZED
    assert str(len(raw)) in error.detail


def test_invalid_json() -> None:
    error = rejection(b'{"event_id": "a", ')
    assert error.reason is DeadLetterReason.INVALID_JSON


def test_non_utf8_bytes_are_invalid_json() -> None:
    error = rejection(b'{"event_id": "\xff\xfe"}')
    assert error.reason is DeadLetterReason.INVALID_JSON


def test_json_that_is_not_an_object() -> None:
    error = rejection(b"[1, 2]")
    assert error.reason is DeadLetterReason.NOT_AN_OBJECT
    assert "list" in error.detail


@pytest.mark.parametrize("field", ["event_id", "type", "occurred_at", "ticket_id"])
def test_each_required_field_is_named_when_missing(field: str) -> None:
    error = rejection(encode(**{field: ...}))
    assert error.reason is DeadLetterReason.SCHEMA_VIOLATION
    assert error.detail == f"{field}: required field is missing"


def test_unknown_enum_names_field_value_and_rule() -> None:
    error = rejection(encode(channel="pigeon"))
    assert error.reason is DeadLetterReason.SCHEMA_VIOLATION
    assert error.detail.startswith("channel: 'pigeon' rejected: Input should be 'phone', 'email'")
    assert error.detail.endswith("[enum]")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-24T10:15:00", "must carry a UTC offset"),
        ("24.11.2026 10:15", "must be an RFC 3339 timestamp"),
        ("", "must be an RFC 3339 timestamp"),
        (1795500000, "must be an RFC 3339 timestamp string"),
        ("0001-01-01T10:00:00+00:00", "must lie in the years 2000 to 2099"),
        ("9999-12-31T10:00:00+03:00", "must lie in the years 2000 to 2099"),
        ("1999-12-31T23:59:59Z", "must lie in the years 2000 to 2099"),
    ],
)
def test_bad_timestamps_are_rejected_with_the_rule(value: object, expected: str) -> None:
    error = rejection(encode(occurred_at=value))
    assert error.reason is DeadLetterReason.SCHEMA_VIOLATION
    assert error.detail.startswith(f"occurred_at: {value!r} rejected: {expected}")


@pytest.mark.parametrize("score", [0, 6, "bad"])
def test_csat_score_outside_one_to_five(score: object) -> None:
    error = rejection(encode(type="csat_submitted", score=score))
    assert error.detail.startswith(f"score: {score!r} rejected:")


def test_type_specific_fields_are_required() -> None:
    assert "needs `status`" in rejection(encode(type="status_changed")).detail
    assert "needs `score`" in rejection(encode(type="csat_submitted")).detail


def test_empty_ids_are_rejected() -> None:
    error = rejection(encode(ticket_id=""))
    assert error.detail.startswith("ticket_id: '' rejected:")


def test_several_problems_are_all_reported() -> None:
    error = rejection(encode(type="nope", priority="p9", ticket_id=...))
    fields = [part.split(":")[0] for part in error.detail.split("; ")]
    assert fields == ["type", "ticket_id", "priority"]


def test_long_bad_values_are_shortened_in_the_reason() -> None:
    error = rejection(encode(channel="y" * 500))
    assert len(error.detail) < 400
    assert "..." in error.detail


def test_event_is_immutable() -> None:
    event = parse_contact_event(encode())
    with pytest.raises(ValueError, match="frozen"):
        event.ticket_id = "other"  # type: ignore[misc]


def test_model_validate_accepts_datetime_objects_with_offset() -> None:
    event = ContactEvent.model_validate({**MINIMAL, "occurred_at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert event.occurred_at.year == 2026
