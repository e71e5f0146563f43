"""The ClickHouse sink against the real broker and the real engine: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from schemas.config import load_config
from schemas.errors import HEADER_REASON, HEADER_TOPIC, DeadLetterReason
from schemas.event import parse_contact_event
from schemas.settings import Settings
from sinks.clickhouse import ClickHouseWriter, apply_migrations, connect, connected, discover_migrations
from sinks.rows import CONTACT_EVENT_COLUMNS, contact_event_row
from stream.dead_letter import DeadLetter, read_headers
from stream.metrics import WorkerMetrics
from stream.sink import ClickHouseSink, SinkRoute, contact_events_route, dead_letters_route
from stream.topics import ensure_topics
from tests.integration.conftest import (
    WorkerProcess,
    consume_until_quiet,
    group_caught_up,
    produce,
    wait_for_metrics,
)

pytestmark = pytest.mark.integration


async def until_counted(counter: Any, at_least: float, deadline: float) -> None:
    """Wait until an in-process metric reaches `at_least`, or the deadline (monotonic) passes."""
    while counter._value.get() < at_least and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def event_bytes(n: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e-{n:05d}",
            "type": "contact_received",
            "ticket_id": f"T-{n}",
            "occurred_at": f"2026-11-2{n % 3}T1{n % 10}:00:00+03:00",
            "channel": "chat",
        }
    )


def event_row(record: ConsumerRecord[bytes, bytes]) -> tuple[Any, ...]:
    """A contact_events row straight from a record of contacts.events (these tests route that topic)."""
    return contact_event_row(parse_contact_event(record.value or b""), record.partition, record.offset)


async def sink_caught_up(settings: Settings) -> None:
    """Wait until the sink's consumer group has committed every partition's end offset of contacts.events."""
    bootstrap, partitions = settings.kafka_bootstrap_servers, settings.topic_partitions
    await group_caught_up(bootstrap, f"{settings.app_id}-clickhouse-sink", settings.topic_events, partitions)


def stored_counts(settings: Settings) -> tuple[int, int, int]:
    """(rows as stored, distinct event ids, rows a FINAL reader sees)."""
    with connected(settings.dsn()) as client:
        raw, distinct = client.query("SELECT count(), uniqExact(event_id) FROM contact_events").result_rows[0]
        final = client.query("SELECT count() FROM contact_events FINAL").result_rows[0][0]
    return int(raw), int(distinct), int(final)


async def test_worker_killed_with_a_buffered_batch_loses_nothing(
    isolated_settings: Settings, start_worker: Callable[[], WorkerProcess]
) -> None:
    # A long flush interval keeps the batch in the sink's buffer, unwritten and uncommitted, when the
    # worker is killed: the restarted worker must find and write all of it.
    settings = isolated_settings.model_copy(update={"sink_flush_interval_seconds": 30.0})
    await ensure_topics(settings)
    total = 1500
    await produce(
        settings.kafka_bootstrap_servers,
        settings.topic_events,
        [(str(n % 13).encode(), event_bytes(n)) for n in range(total)],
    )
    first = start_worker(settings)
    # The buffer holds the events and, as the detector publishes them, ticket and alert records too.
    at_kill = await wait_for_metrics(first, lambda m: m.get("contactpulse_sink_buffered_records", 0) >= total)
    first.stop(kill=True)  # SIGKILL: no flush, no commit, no goodbye
    assert at_kill.get("contactpulse_clickhouse_rows_written_total{table=contact_events}", 0) == 0

    restarted = settings.model_copy(update={"sink_flush_interval_seconds": 0.5})
    second = start_worker(restarted)
    await sink_caught_up(settings)
    second.stop()
    # The killed sink had written and committed nothing: the restarted one reads every event once.
    stored, distinct, final = stored_counts(settings)
    assert (stored, distinct, final) == (total, total, total)


async def test_batches_replayed_after_a_lost_commit_are_not_doubled(
    isolated_settings: Settings, start_worker: Callable[[], WorkerProcess]
) -> None:
    settings = isolated_settings.model_copy(update={"sink_max_batch_rows": 70})
    await ensure_topics(settings)
    total = 1000
    await produce(
        settings.kafka_bootstrap_servers,
        settings.topic_events,
        [(str(n % 13).encode(), event_bytes(n)) for n in range(total)],
    )
    first = start_worker(settings)
    await sink_caught_up(settings)
    first.stop()
    # What a crash between INSERT and commit leaves behind, for every batch at once: rows in
    # ClickHouse, offsets not committed. Rewind the sink's group to the start.
    await rewind_sink_group(settings)

    second = start_worker(settings.model_copy(update={"sink_max_batch_rows": 300}))
    await sink_caught_up(settings)
    second.stop()
    raw, distinct, final = stored_counts(settings)
    assert (distinct, final) == (total, total)
    assert raw >= total


async def rewind_sink_group(settings: Settings) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.app_id}-clickhouse-sink",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(settings.topic_events, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        await consumer.commit({tp: 0 for tp in partitions})
    finally:
        await consumer.stop()


async def test_failed_insert_is_retried_with_the_same_token_until_it_lands(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    await ensure_topics(settings)
    await produce(
        settings.kafka_bootstrap_servers, settings.topic_events, [(b"k", event_bytes(n)) for n in range(30)]
    )
    client = connect(settings.dsn())
    apply_migrations(client)

    # The table does not exist yet: every INSERT fails until the "late migration" below creates it.
    route = SinkRoute(settings.topic_events, "late_events", CONTACT_EVENT_COLUMNS, event_row)
    metrics = WorkerMetrics.create(CollectorRegistry())
    sink = ClickHouseSink(
        settings.model_copy(update={"sink_retry_max_backoff_seconds": 0.3}), metrics, [route]
    )
    await sink.start()
    try:
        failures = metrics.clickhouse_insert_failures.labels(table="late_events")
        deadline = time.monotonic() + 60
        await until_counted(failures, 3, deadline)
        assert failures._value.get() >= 3
        client.command("CREATE TABLE late_events AS contact_events")
        written = metrics.clickhouse_rows_written.labels(table="late_events")
        await until_counted(written, 30, deadline)
    finally:
        await sink.stop()
    assert written._value.get() == 30
    assert client.query("SELECT count() FROM late_events").result_rows[0][0] == 30
    client.close()


async def test_a_flush_of_every_partition_is_one_insert_and_one_commit(isolated_settings: Settings) -> None:
    # 40 events over the 4 partitions, all buffered before the flush (40 rows is the batch limit, the
    # interval is long): one INSERT for the table whatever the partitions (each INSERT costs ~20 ms,
    # one per partition held the worker near 1,500 events/s), and every partition's end committed.
    settings = isolated_settings.model_copy(
        update={"sink_max_batch_rows": 40, "sink_flush_interval_seconds": 30.0}
    )
    await ensure_topics(settings)
    await produce(
        settings.kafka_bootstrap_servers,
        settings.topic_events,
        [(f"k-{n}".encode(), event_bytes(n)) for n in range(40)],
    )
    client = connect(settings.dsn())
    apply_migrations(client)

    route = SinkRoute(settings.topic_events, "contact_events", CONTACT_EVENT_COLUMNS, event_row)
    metrics = WorkerMetrics.create(CollectorRegistry())
    sink = ClickHouseSink(settings, metrics, [route])
    await sink.start()
    try:
        written = metrics.clickhouse_rows_written.labels(table="contact_events")
        await until_counted(written, 40, time.monotonic() + 60)
        await sink_caught_up(settings)
    finally:
        await sink.stop()
    inserts = [
        sample.value
        for family in metrics.clickhouse_insert_seconds.collect()
        for sample in family.samples
        if sample.name.endswith("_count") and sample.labels.get("table") == "contact_events"
    ]
    assert inserts == [1.0]
    partitions = client.query("SELECT uniqExact(kafka_partition), count() FROM contact_events").result_rows
    assert partitions == [(4, 40)]
    client.close()


def test_a_retried_batch_is_stored_once(tmp_path: Path) -> None:
    client = connect(f"chdb://{tmp_path / 'ch'}")
    apply_migrations(client)
    writer = ClickHouseWriter(client)
    rows = [contact_event_row(parse_contact_event(event_bytes(n)), 0, n) for n in range(10)]
    for _ in range(3):  # the same batch, the same token: what a retry after a timeout sends
        writer.insert("contact_events", CONTACT_EVENT_COLUMNS, rows, "events:0:0-9")
    assert client.query("SELECT count() FROM contact_events").result_rows[0][0] == 10
    # Re-read after a crash with other boundaries: another token, so the copy lands, and the
    # ReplacingMergeTree key folds it away for every reader that asks for FINAL.
    writer.insert("contact_events", CONTACT_EVENT_COLUMNS, rows[3:], "events:0:3-9")
    assert client.query("SELECT count() FROM contact_events").result_rows[0][0] == 17
    assert client.query("SELECT count() FROM contact_events FINAL").result_rows[0][0] == 10
    client.close()


def test_migrations_apply_once_and_in_order(tmp_path: Path) -> None:
    client = connect(f"chdb://{tmp_path / 'ch'}")
    versions = [m.version for m in discover_migrations()]
    assert apply_migrations(client) == versions
    assert apply_migrations(client) == []
    recorded = client.query("SELECT version FROM schema_migrations FINAL ORDER BY version").result_rows
    assert [row[0] for row in recorded] == versions
    client.close()


async def test_dead_letters_become_rows_with_their_reason_and_origin_but_not_their_bytes(
    isolated_settings: Settings,
) -> None:
    settings = isolated_settings
    await ensure_topics(settings)
    letters = [
        DeadLetter(DeadLetterReason.INVALID_JSON, "Expecting value: line 1", settings.topic_events, 2, 40),
        DeadLetter(
            DeadLetterReason.SCHEMA_VIOLATION, "phone +7 999 123-45-67 invalid", settings.topic_raw, 0, 7
        ),
    ]
    withheld, _ = letters[1].withhold("unverified_sender", b"x" * 300)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic_dead_letter, b"{broken", headers=letters[0].headers())
        await producer.send_and_wait(settings.topic_dead_letter, b"", headers=withheld.headers())
        await producer.send_and_wait(settings.topic_dead_letter, b"no headers at all")
    finally:
        await producer.stop()
    metrics = WorkerMetrics.create(CollectorRegistry())
    sink = ClickHouseSink(settings, metrics, [dead_letters_route(settings)])
    await sink.start()
    try:
        written = metrics.clickhouse_rows_written.labels(table="dead_letters")
        await until_counted(written, 2, time.monotonic() + 60)
    finally:
        await sink.stop()
    client = connect(settings.dsn())
    rows = client.query(
        "SELECT reason, source_topic, source_partition, source_offset, size_bytes, withheld "
        "FROM dead_letters FINAL ORDER BY reason"
    ).result_rows
    every_column = str(client.query("SELECT * FROM dead_letters").result_rows)
    client.close()
    assert rows == [
        ("invalid_json", settings.topic_events, 2, 40, 7, False),
        ("schema_violation", settings.topic_raw, 0, 7, 300, True),
    ]
    # The detail (which may quote personal data) is not copied. ("999" alone once matched a timestamp's
    # 999000 microseconds: look for the text itself.)
    assert "123-45-67" not in every_column
    assert "phone" not in every_column
    assert metrics.sink_records_skipped.labels(table="dead_letters")._value.get() == 1  # no headers


async def test_the_sink_stores_what_it_admits_and_dead_letters_the_rest(isolated_settings: Settings) -> None:
    # contacts.events is written by producers outside the worker: the sink validates it (the detector's
    # check) and each refused record reaches the dead-letter topic, with its reason and origin, before
    # its offset is committed.
    settings = isolated_settings.model_copy(update={"sink_flush_interval_seconds": 0.3})
    await ensure_topics(settings)
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    bad = {
        b"{not json": "invalid_json",
        orjson.dumps({"event_id": "e-x", "type": "contact_received"}): "schema_violation",
        orjson.dumps(
            {
                "event_id": "e-future",
                "type": "contact_received",
                "ticket_id": "T-future",
                "occurred_at": future,
                "channel": "chat",
            }
        ): "future_timestamp",
    }
    good = [event_bytes(n) for n in range(25)]
    await produce(
        settings.kafka_bootstrap_servers,
        settings.topic_events,
        [(f"k-{n}".encode(), value) for n, value in enumerate([*good[:10], *bad, *good[10:]])],
    )
    metrics = WorkerMetrics.create(CollectorRegistry())
    sink = ClickHouseSink(settings, metrics, [contact_events_route(settings, load_config(None))])
    await sink.start()
    try:
        await sink_caught_up(settings)
    finally:
        await sink.stop()
    letters = await consume_until_quiet(settings.kafka_bootstrap_servers, settings.topic_dead_letter)
    refused = {record.value: read_headers(record.headers or ())[HEADER_REASON] for record in letters}
    assert refused == bad
    assert {read_headers(r.headers or ())[HEADER_TOPIC] for r in letters} == {settings.topic_events}
    client = connect(settings.dsn())
    ids = client.query("SELECT event_id FROM contact_events FINAL ORDER BY event_id").result_rows
    client.close()
    assert [row[0] for row in ids] == sorted(f"e-{n:05d}" for n in range(25))
    assert metrics.events_accepted._value.get() == 25
    assert metrics.records_consumed.labels(topic=settings.topic_events)._value.get() == 28
    assert {reason: metrics.dead_letters.labels(reason=reason)._value.get() for reason in bad.values()} == {
        "invalid_json": 1,
        "schema_violation": 1,
        "future_timestamp": 1,
    }
