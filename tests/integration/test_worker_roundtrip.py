"""Real round trip: produce to the broker, the Faust worker consumes, valid events reach ClickHouse and
invalid ones reach the dead-letter topic with their reason and their original bytes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.settings import Settings
from sinks.clickhouse import connected
from stream.dead_letter import HEADER_OFFSET, HEADER_REASON, read_headers
from stream.topics import ensure_topics
from tests.integration.conftest import WorkerProcess, consume_all, produce, wait_for_metrics

pytestmark = pytest.mark.integration

BASE_TIME = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def valid_events(count: int) -> list[bytes]:
    events = []
    for n in range(count):
        event = {
            "event_id": f"ev-{n:03d}",
            "type": "contact_received" if n % 3 == 0 else "agent_replied",
            "occurred_at": (BASE_TIME + timedelta(minutes=n)).isoformat(),
            "ticket_id": f"T-{n // 3}",
            "channel": "telegram" if n % 2 else "email",
            "customer_id": f"cust-{n % 7}",
            "topic": "billing",
            "text": "Счёт выставлен дважды",
        }
        if n == 0:
            event["zendesk_brand"] = "acme"  # unknown field: kept in `extra`
        events.append(orjson.dumps(event))
    return events


def broken_records() -> list[tuple[str, bytes]]:
    good = {
        "event_id": "bad",
        "type": "contact_received",
        "occurred_at": "2026-11-23T09:00:00Z",
        "ticket_id": "T-x",
    }
    return [
        ("invalid_json", b'{"event_id": "bad-1", "type": '),
        ("invalid_json", b'{"event_id": "\xff\xfe"}'),
        ("not_an_object", b'["contact_received"]'),
        ("schema_violation", orjson.dumps({k: v for k, v in good.items() if k != "ticket_id"})),
        ("schema_violation", orjson.dumps({**good, "channel": "pigeon"})),
        ("schema_violation", orjson.dumps({**good, "occurred_at": "2026-11-23 09:00:00"})),
        ("schema_violation", orjson.dumps({**good, "occurred_at": "yesterday"})),
        ("schema_violation", orjson.dumps({**good, "type": "csat_submitted", "score": 9})),
        ("oversized", orjson.dumps({**good, "text": "x" * (1024 * 1024 + 1)})),
        # Valid, but a day ahead of the wall clock: refused, and (before the sink read the validated
        # topic) it still became a row. It must not, nor reach the detectors.
        (
            "future_timestamp",
            orjson.dumps(
                {
                    **good,
                    "event_id": "future",
                    "occurred_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                }
            ),
        ),
    ]


async def test_valid_events_reach_clickhouse_and_invalid_ones_the_dead_letter_topic(
    isolated_settings: Settings, start_worker: Callable[[], WorkerProcess]
) -> None:
    settings = isolated_settings
    await ensure_topics(settings)
    valid = valid_events(40)
    broken = broken_records()
    redelivered = valid[5]  # at-least-once: the same bytes twice
    records = [(b"T", value) for value in valid] + [(b"T", redelivered)]
    records += [(b"T", value) for _, value in broken]
    await produce(settings.kafka_bootstrap_servers, settings.topic_events, records)

    worker = start_worker()
    consumed = f"contactpulse_records_consumed_total{{topic={settings.topic_events}}}"
    rows = "contactpulse_clickhouse_rows_written_total{table=contact_events}"

    def dead_letters(m: dict[str, float]) -> float:
        return sum(v for k, v in m.items() if k.startswith("contactpulse_dead_letters_total{"))

    metrics = await wait_for_metrics(
        worker,
        lambda m: (
            m.get(consumed) == len(records)
            and m.get(rows) == len(valid) + 1
            and dead_letters(m) == len(broken) + 1  # + the redelivered copy, from the detector
        ),
    )
    assert metrics["contactpulse_events_accepted_total"] == len(valid) + 1
    for reason in ("invalid_json", "not_an_object", "schema_violation", "oversized", "future_timestamp"):
        expected = sum(1 for r, _ in broken if r == reason)
        assert metrics[f"contactpulse_dead_letters_total{{reason={reason}}}"] == expected
    assert metrics["contactpulse_dead_letters_total{reason=duplicate}"] == 1
    assert metrics["contactpulse_detector_events_total{verdict=accepted}"] == len(valid)

    letters = await consume_all(settings.kafka_bootstrap_servers, settings.topic_dead_letter, len(broken) + 1)
    assert len(letters) == len(broken) + 1
    by_value = {letter.value: read_headers(list(letter.headers)) for letter in letters}
    assert by_value[redelivered][HEADER_REASON] == "duplicate"
    assert by_value[redelivered]["contactpulse.source.topic"] == settings.topic_events
    for reason, value in broken:
        headers = by_value[value]  # the original bytes, untouched
        assert headers[HEADER_REASON] == reason
        assert int(headers[HEADER_OFFSET]) >= 0
    pigeon = next(h for v, h in by_value.items() if b"pigeon" in v)
    assert pigeon["contactpulse.detail"].startswith("channel: 'pigeon' rejected: Input should be")

    worker.stop()
    with connected(settings.dsn()) as client:
        stored = client.query(
            "SELECT event_id, type, occurred_at, channel, text, extra FROM contact_events FINAL "
            "ORDER BY event_id"
        ).result_rows
    assert [row[0] for row in stored] == [f"ev-{n:03d}" for n in range(40)]
    first = stored[0]
    assert first[1] == "contact_received"
    assert first[2].replace(tzinfo=UTC) == BASE_TIME
    assert first[3] == "email"
    assert first[4] == "Счёт выставлен дважды"
    assert orjson.loads(first[5]) == {"zendesk_brand": "acme"}
