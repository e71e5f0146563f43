"""Map domain objects to ClickHouse rows: one function per table, nothing else (like snuba's processors)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import orjson

from schemas.alert import Alert
from schemas.errors import (
    HEADER_OFFSET,
    HEADER_ORIGINAL_SIZE,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_TOPIC,
    HEADER_WITHHELD,
)
from schemas.event import ContactEvent
from schemas.ticket import TicketSnapshot

CONTACT_EVENT_COLUMNS: Final = (
    "event_id",
    "type",
    "occurred_at",
    "ticket_id",
    "channel",
    "source",
    "customer_id",
    "customer_tier",
    "kind",
    "category",
    "topic",
    "priority",
    "subject",
    "text",
    "text_truncated",
    "error_code",
    "product_version",
    "status",
    "team",
    "agent",
    "score",
    "extra",
    "kafka_partition",
    "kafka_offset",
)


def contact_event_row(event: ContactEvent, partition: int, offset: int) -> tuple[Any, ...]:
    """A `contact_events` row; absent optional strings become '' (LowCardinality, Grafana-friendly)."""
    return (
        event.event_id,
        event.type.value,
        event.occurred_at.astimezone(UTC),
        event.ticket_id,
        event.channel.value if event.channel else "",
        event.source or "",
        event.customer_id or "",
        event.customer_tier.value if event.customer_tier else "",
        event.kind.value if event.kind else "",
        event.category.value if event.category else "",
        event.topic or "",
        event.priority.value if event.priority else "",
        event.subject or "",
        event.text or "",
        event.text_truncated,
        event.error_code or "",
        event.product_version or "",
        event.status.value if event.status else "",
        event.team or "",
        event.agent or "",
        event.score,
        orjson.dumps(event.extra).decode() if event.extra else "",
        partition,
        offset,
    )


ALERT_COLUMNS: Final = (
    "alert_id",
    "rule",
    "status",
    "severity",
    "audience",
    "subject",
    "starts_at",
    "ends_at",
    "summary",
    "details",
    "kafka_partition",
    "kafka_offset",
)


def alert_row(alert: Alert, partition: int, offset: int) -> tuple[Any, ...]:
    return (
        alert.alert_id,
        alert.rule,
        alert.status.value,
        alert.severity.value,
        alert.audience.value,
        orjson.dumps(alert.subject, option=orjson.OPT_SORT_KEYS).decode(),
        alert.starts_at.astimezone(UTC),
        alert.ends_at.astimezone(UTC) if alert.ends_at else None,
        alert.summary,
        orjson.dumps(alert.details, option=orjson.OPT_SORT_KEYS).decode(),
        partition,
        offset,
    )


_TICKET_FIELDS: Final = tuple(TicketSnapshot.model_fields)
TICKET_COLUMNS: Final = (*_TICKET_FIELDS, "version")
"""The `tickets` table's columns: the snapshot's fields, then the record's offset (the newest wins)."""


def ticket_row(snapshot: TicketSnapshot, version: int) -> tuple[Any, ...]:
    """A `tickets` row from a ticket snapshot; instants in UTC, as the table keeps them."""
    values: list[Any] = []
    for name in _TICKET_FIELDS:
        value = getattr(snapshot, name)
        values.append(value.astimezone(UTC) if isinstance(value, datetime) else value)
    values.append(version)
    return tuple(values)


DEAD_LETTER_COLUMNS: Final = (
    "dead_lettered_at",
    "reason",
    "source_topic",
    "source_partition",
    "source_offset",
    "size_bytes",
    "withheld",
    "kafka_partition",
    "kafka_offset",
)


def dead_letter_row(
    headers: dict[str, str], size: int, timestamp_ms: int, partition: int, offset: int
) -> tuple[Any, ...]:
    """A `dead_letters` row from a dead letter's decoded headers (`schemas.errors`' names); the
    record's own bytes and the detail stay out (either can hold personal data).

    Raises KeyError or ValueError when the headers are not a dead letter's.
    """
    original_size = headers.get(HEADER_ORIGINAL_SIZE)
    return (
        datetime.fromtimestamp(timestamp_ms / 1000, UTC),
        headers[HEADER_REASON],
        headers.get(HEADER_TOPIC, ""),
        int(headers.get(HEADER_PARTITION, "-1")),
        int(headers.get(HEADER_OFFSET, "-1")),
        int(original_size) if original_size is not None else size,
        HEADER_WITHHELD in headers,
        partition,
        offset,
    )
