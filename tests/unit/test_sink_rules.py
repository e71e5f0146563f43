from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import DeadLetterReason, parse_contact_event
from sinks.clickhouse import Migration, redact_dsn
from sinks.rows import CONTACT_EVENT_COLUMNS, contact_event_row
from stream.dead_letter import (
    HEADER_ORIGINAL_SIZE,
    HEADER_REASON,
    DeadLetter,
    read_headers,
)
from stream.sink import dedup_token, next_backoff


def test_dedup_token_names_topic_partition_and_offset_range() -> None:
    assert dedup_token("contacts.events", 3, 100, 199) == "contacts.events:3:100-199"


def test_backoff_doubles_and_is_capped() -> None:
    assert [next_backoff(n, 30.0) for n in range(5)] == [0.2, 0.4, 0.8, 1.6, 3.2]
    assert next_backoff(50, 30.0) == 30.0


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("http://reader:s3cret@ch.internal:8123/contactpulse", "http://***@ch.internal:8123/contactpulse"),
        ("chdb:///var/lib/ch", "chdb:///var/lib/ch"),
    ],
)
def test_redact_dsn_hides_credentials(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


def test_row_has_one_value_per_column_in_utc() -> None:
    event = parse_contact_event(
        b'{"event_id":"e","type":"csat_submitted","score":2,"ticket_id":"T",'
        b'"occurred_at":"2026-11-24T10:00:00+03:00","channel":"chat","brand":"x"}'
    )
    row = dict(zip(CONTACT_EVENT_COLUMNS, contact_event_row(event, 2, 40), strict=True))
    assert row["occurred_at"] == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert row["score"] == 2
    assert row["channel"] == "chat"
    assert row["topic"] == ""
    assert row["extra"] == '{"brand":"x"}'
    assert (row["kafka_partition"], row["kafka_offset"]) == (2, 40)


def test_migration_statements_split_on_line_ending_semicolons(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "0002_two.sql"
    path.write_text(
        "-- a comment; with a semicolon\nCREATE TABLE a (x String DEFAULT ';') ENGINE = Log;\n"
        "\nALTER TABLE a ADD COLUMN y UInt8\n"
    )
    assert Migration("0002", path).statements() == [
        "CREATE TABLE a (x String DEFAULT ';') ENGINE = Log",
        "ALTER TABLE a ADD COLUMN y UInt8",
    ]


def test_dead_letter_headers_carry_reason_source_and_truncation() -> None:
    letter = DeadLetter(DeadLetterReason.OVERSIZED, "too big", "contacts.events", 1, 77)
    headers = read_headers(letter.headers())
    assert headers[HEADER_REASON] == "oversized"
    assert headers["contactpulse.source.offset"] == "77"
    assert HEADER_ORIGINAL_SIZE not in headers
    assert read_headers(letter.truncated(9_000_000).headers())[HEADER_ORIGINAL_SIZE] == "9000000"
