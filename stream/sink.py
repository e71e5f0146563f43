"""The ClickHouse sink: its own Kafka consumer that commits offsets only after ClickHouse answered.

It is also where contacts.events is validated: each record is admitted with the detector's check
(`processors.admission.admit`), so a row exists exactly for what the alerts saw, and a refused record
goes to the dead-letter topic with its reason before its offset is committed. (Until 2026-12 a Faust
agent validated and forwarded to a `contacts.valid` topic that the sink read: two more Kafka crossings
per event in pure-Python clients, and the slowest stage of the worker.)

Why not inside a Faust agent: Faust acks an event when the agent raises, and `stream.take()` acks its
whole batch in a `finally`, so a failed INSERT there is silently lost. Here the order is fixed:
buffer -> dead letters acknowledged by Kafka -> INSERT (retried with the same deduplication token
until it succeeds, consumption paused) -> commit. A crash between INSERT and commit re-reads the
batch; the token (same boundaries) or the ReplacingMergeTree key (other boundaries) makes the second
copy vanish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord
from mode import Service
from pydantic import ValidationError

from processors.admission import admit
from schemas.alert import Alert
from schemas.config import DetectionConfig
from schemas.errors import DeadLetterReason, InvalidEvent
from schemas.settings import Settings
from schemas.ticket import TicketSnapshot
from sinks.clickhouse import ClickHouseWriter, apply_migrations, connect, redact_dsn
from sinks.rows import (
    ALERT_COLUMNS,
    CONTACT_EVENT_COLUMNS,
    DEAD_LETTER_COLUMNS,
    TICKET_COLUMNS,
    alert_row,
    contact_event_row,
    dead_letter_row,
    ticket_row,
)
from stream.dead_letter import DEAD_LETTER_MAX_BYTES, RECORD_HEADROOM_BYTES, DeadLetter, deliver, read_headers
from stream.metrics import WorkerMetrics
from stream.topics import fetch_batching

log = logging.getLogger(__name__)

ROWS_BETWEEN_YIELDS = 500

RowMapper = Callable[[ConsumerRecord[bytes, bytes]], tuple[Any, ...]]
"""A consumed record -> its row; raises InvalidEvent for a record that is not to be written."""


@dataclass(frozen=True)
class SinkRoute:
    topic: str
    table: str
    columns: Sequence[str]
    to_row: RowMapper
    validates: bool = False
    """The topic is written by producers outside the worker: a record `to_row` refuses is a dead letter
    (with its reason, counted), not just a skipped row as for the worker's own topics."""


def contact_events_route(settings: Settings, config: DetectionConfig) -> SinkRoute:
    tolerance = timedelta(minutes=config.engine.future_tolerance_minutes)

    def to_row(record: ConsumerRecord[bytes, bytes]) -> tuple[Any, ...]:
        # The detector's check: an event it refuses (a future timestamp, say) must not become a row
        # that the alerts never saw.
        event = admit(record.value or b"", datetime.now(UTC), tolerance)
        return contact_event_row(event, record.partition, record.offset)

    return SinkRoute(settings.topic_events, "contact_events", CONTACT_EVENT_COLUMNS, to_row, validates=True)


def alert_routes(settings: Settings) -> list[SinkRoute]:
    def to_row(record: ConsumerRecord[bytes, bytes]) -> tuple[Any, ...]:
        try:
            alert = Alert.model_validate_json(record.value or b"")
        except ValidationError as exc:
            raise InvalidEvent(DeadLetterReason.SCHEMA_VIOLATION, str(exc)) from None
        return alert_row(alert, record.partition, record.offset)

    return [
        SinkRoute(topic, "alerts", ALERT_COLUMNS, to_row)
        for topic in (settings.topic_alerts_oncall, settings.topic_alerts_product)
    ]


def tickets_route(settings: Settings) -> SinkRoute:
    def to_row(record: ConsumerRecord[bytes, bytes]) -> tuple[Any, ...]:
        try:
            snapshot = TicketSnapshot.model_validate_json(record.value or b"")
        except ValidationError as exc:
            raise InvalidEvent(DeadLetterReason.SCHEMA_VIOLATION, f"not a ticket snapshot: {exc}") from None
        return ticket_row(snapshot, record.offset)

    return SinkRoute(settings.topic_tickets, "tickets", TICKET_COLUMNS, to_row)


def dead_letters_route(settings: Settings) -> SinkRoute:
    """Every refused record as a row (reason, origin, size), for the operations dashboard."""

    def to_row(record: ConsumerRecord[bytes, bytes]) -> tuple[Any, ...]:
        try:
            return dead_letter_row(
                read_headers(record.headers or ()),
                len(record.value or b""),
                record.timestamp,
                record.partition,
                record.offset,
            )
        except (KeyError, ValueError) as exc:
            raise InvalidEvent(DeadLetterReason.SCHEMA_VIOLATION, f"not a dead letter: {exc}") from None

    return SinkRoute(settings.topic_dead_letter, "dead_letters", DEAD_LETTER_COLUMNS, to_row)


def dedup_token(topic: str, partition: int, first_offset: int, last_offset: int) -> str:
    return f"{topic}:{partition}:{first_offset}-{last_offset}"


def batch_token(topic: str, ranges: Sequence[tuple[int, int, int]]) -> str:
    """The token of one INSERT of several partitions' offset ranges `(partition, first, last)`: the same
    batch retried gives the same token, so ClickHouse drops a copy that did land."""
    return ",".join(dedup_token(topic, partition, first, last) for partition, first, last in sorted(ranges))


def next_backoff(attempt: int, ceiling: float) -> float:
    """0.2 s, 0.4 s, 0.8 s ... capped at `ceiling`."""
    return float(min(ceiling, 0.2 * (2 ** min(attempt, 20))))


def lower_this_threads_priority(niceness: int) -> None:
    """Nice the calling thread alone (Linux keeps a nice value per thread; threads it starts inherit it)."""
    thread = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, thread)
    os.setpriority(os.PRIO_PROCESS, thread, min(19, current + niceness))


def nice_a_sink_only_worker(settings: Settings) -> bool:
    """In a worker that runs the sink and not the detector, nice the calling thread (the main thread,
    before any other starts, so every thread of the process inherits it); whether it did.

    On two cores shared with a detector process, the sink's event loop (admission and row mapping of
    20,000-row flushes) competed with the detector at equal priority: in the worker bench's latency
    window at 15,700-19,900 events/s asked p99 was 674-1,472 ms; with the sink process niced by hand,
    148-327 ms at 11,400-16,100 in four runs of five (1,786 ms at 18,300, the detector's own limit).
    `/ingest` runs in that process too: under load it waits behind the detector; it is cheap."""
    if not settings.runs("sink") or settings.runs("detector") or settings.sink_niceness == 0:
        return False
    lower_this_threads_priority(settings.sink_niceness)
    return True


@dataclass
class _PartitionBuffer:
    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)


class ClickHouseSink(Service):
    """A mode service started beside the Faust app by the worker."""

    def __init__(
        self, settings: Settings, metrics: WorkerMetrics, routes: Sequence[SinkRoute], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._metrics = metrics
        self._routes = {route.topic: route for route in routes}
        self._buffers: dict[TopicPartition, _PartitionBuffer] = {}
        self._oldest_buffered: float | None = None
        # chDB and clickhouse-connect are synchronous; one dedicated thread owns the client. It is
        # niced, and so are chDB's threads, which it starts and which inherit its priority: on two
        # busy cores the sink's INSERTs otherwise take the time the detector needs for its alerts
        # (the sink catches up; an alert late is a page late).
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="clickhouse",
            initializer=lower_this_threads_priority,
            initargs=(settings.sink_niceness,),
        )
        self._writer: ClickHouseWriter | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._flush_lock = asyncio.Lock()

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def on_start(self) -> None:
        dsn = self._settings.dsn()
        log.info("ClickHouse sink connecting to %s", redact_dsn(dsn))
        client = await self._in_thread(connect, dsn)
        applied = await self._in_thread(apply_migrations, client)
        if applied:
            log.info("ClickHouse migrations applied: %s", ", ".join(applied))
        self._writer = ClickHouseWriter(client)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=f"{self._settings.app_id}-clickhouse-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._settings.sink_max_batch_rows,
            # Rows wait for the next flush anyway, so fetches may be held up to half of it (0.5 s at
            # most): fewer and larger, at no cost in freshness (the sink's CPU an event in the worker
            # bench's window: 85-92 -> 79-90 us, within the noise). Records a held fetch has not yet
            # returned when the worker stops are not committed: the next start writes them.
            **fetch_batching(min(0.5, self._settings.sink_flush_interval_seconds / 2)),
            session_timeout_ms=int(self._settings.kafka_session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(self._settings.kafka_session_timeout_seconds * 100),
        )
        self._consumer.subscribe(list(self._routes), listener=_FlushOnRevoke(self))
        if any(route.validates for route in self._routes.values()):
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.kafka_bootstrap_servers,
                acks="all",
                linger_ms=5,
                # An oversized event (over the 1 MiB contract) is dead-lettered whole.
                max_request_size=DEAD_LETTER_MAX_BYTES + RECORD_HEADROOM_BYTES,
            )
            await self._producer.start()
        await self._consumer.start()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._flush(list(self._buffers))
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self._writer is not None:
            await self._in_thread(self._writer.close)
        self._executor.shutdown(wait=True)

    @Service.task
    async def _consume(self) -> None:
        assert self._consumer is not None
        interval = self._settings.sink_flush_interval_seconds
        while not self.should_stop:
            timeout = interval
            if self._oldest_buffered is not None:
                timeout = max(0.0, self._oldest_buffered + interval - time.monotonic())
            fetched = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
            for tp, records in fetched.items():
                if records:
                    self._buffers.setdefault(tp, _PartitionBuffer()).records.extend(records)
                    if self._oldest_buffered is None:
                        self._oldest_buffered = time.monotonic()
            buffered = sum(len(buffer.records) for buffer in self._buffers.values())
            self._metrics.sink_buffered_records.set(buffered)
            due = self._oldest_buffered is not None and time.monotonic() - self._oldest_buffered >= interval
            if buffered >= self._settings.sink_max_batch_rows or (buffered and due):
                await self._flush(list(self._buffers))

    async def _flush(self, partitions: Sequence[TopicPartition]) -> None:
        """One INSERT per table for what `partitions` buffered, then one commit for all of them.

        An INSERT costs 35-45 ms of CPU whatever its size (new parts on disk; `contact_events`' two
        materialized views are 25-30 ms of it, measured on chDB: 10 rows 34-37 ms, without the views
        9-10 ms): one per partition and topic held the whole worker to about 1,500 events/s through
        ClickHouse, and batches of 5,000 rows cost a steady 14,000 events/s a fifth of a core (hence
        20,000 rows a batch at most since 2026-12-03)."""
        async with self._flush_lock:
            by_topic: dict[str, list[tuple[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]] = {}
            for tp in partitions:
                buffer = self._buffers.pop(tp, None)
                if buffer is not None and buffer.records:
                    by_topic.setdefault(tp.topic, []).append((tp, buffer.records))
            for topic, parts in by_topic.items():
                await self._write_until_acknowledged(topic, parts)
            offsets = {tp: records[-1].offset + 1 for parts in by_topic.values() for tp, records in parts}
            if offsets:
                await self._commit(offsets)
            if not self._buffers:
                self._oldest_buffered = None
            self._metrics.sink_buffered_records.set(sum(len(b.records) for b in self._buffers.values()))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A partition moved to another worker mid-flush: it re-reads from the last commit and the
            # rows it writes again collapse in ClickHouse (same token or same ReplacingMergeTree key).
            log.warning("commit of %s refused after a rebalance: %s", offsets, exc)

    def _rows(
        self,
        route: SinkRoute,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        refused: list[tuple[ConsumerRecord[bytes, bytes], DeadLetter]],
    ) -> list[tuple[Any, ...]]:
        """The rows of `records`; on a validating route, each record refused is added to `refused`."""
        rows = []
        for record in records:
            try:
                rows.append(route.to_row(record))
            except InvalidEvent as exc:
                if route.validates:
                    refused.append((record, DeadLetter.for_record(exc.reason, exc.detail, record)))
                else:
                    self._metrics.sink_records_skipped.labels(table=route.table).inc()
            except Exception as exc:
                if not route.validates:
                    raise
                # A bug of ours must not stop the sink: the record is kept as a dead letter.
                log.exception("unexpected error on %s[%d]@%d", record.topic, record.partition, record.offset)
                letter = DeadLetter.for_failure(DeadLetterReason.PROCESSING_ERROR, exc, record)
                refused.append((record, letter))
        if route.validates:
            self._metrics.records_consumed.labels(topic=route.topic).inc(len(records))
            self._metrics.events_accepted.inc(len(rows))
        return rows

    async def _dead_letter(self, refused: Sequence[tuple[ConsumerRecord[bytes, bytes], DeadLetter]]) -> None:
        """Write the refused records to the dead-letter topic; returns once Kafka has all of them."""
        producer = self._producer
        assert producer is not None
        topic = self._settings.topic_dead_letter

        async def produce(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
            await (await producer.send(topic, value, key=key, headers=headers))

        retry_delay = partial(next_backoff, ceiling=self._settings.sink_retry_max_backoff_seconds)

        async def one(record: ConsumerRecord[bytes, bytes], letter: DeadLetter) -> None:
            log.info(
                "dead letter %s at %s[%d]@%d: %s",
                letter.reason,
                record.topic,
                record.partition,
                record.offset,
                letter.detail,
            )
            written = await deliver(produce, record.key, record.value or b"", letter, retry_delay)
            self._metrics.dead_letters.labels(reason=written.reason.value).inc()

        await asyncio.gather(*(one(record, letter) for record, letter in refused))

    async def _write_until_acknowledged(
        self, topic: str, parts: Sequence[tuple[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]]
    ) -> None:
        assert self._writer is not None
        route = self._routes[topic]
        rows = []
        refused: list[tuple[ConsumerRecord[bytes, bytes], DeadLetter]] = []
        for _, records in parts:
            for first in range(0, len(records), ROWS_BETWEEN_YIELDS):
                rows += self._rows(route, records[first : first + ROWS_BETWEEN_YIELDS], refused)
                # A flush maps thousands of records (~35 us each): let the detector and /ingest, on
                # the same loop in a one-process worker, run in between.
                await asyncio.sleep(0)
        if refused:
            await self._dead_letter(refused)
        token = batch_token(
            topic, [(tp.partition, records[0].offset, records[-1].offset) for tp, records in parts]
        )
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await self._in_thread(self._writer.insert, route.table, route.columns, rows, token)
            except Exception as exc:  # any failure: keep the batch, keep the token, pause, retry
                self._metrics.clickhouse_insert_failures.labels(table=route.table).inc()
                delay = next_backoff(attempt, self._settings.sink_retry_max_backoff_seconds)
                log.warning(
                    "INSERT into %s failed (%s: %s); retry %d in %.1f s with token %s",
                    route.table,
                    type(exc).__name__,
                    exc,
                    attempt + 1,
                    delay,
                    token,
                )
                attempt += 1
                await self._pause_for(delay)
                continue
            self._metrics.clickhouse_insert_seconds.labels(table=route.table).observe(
                time.perf_counter() - started
            )
            self._metrics.clickhouse_rows_written.labels(table=route.table).inc(len(rows))
            return

    async def _pause_for(self, delay: float) -> None:
        # Polling a paused consumer keeps it in the group (max.poll.interval) without fetching more.
        assert self._consumer is not None
        assignment = list(self._consumer.assignment())
        self._consumer.pause(*assignment)
        try:
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                await self._consumer.getmany(timeout_ms=int(min(0.5, delay) * 1000))
        finally:
            self._consumer.resume(*[tp for tp in assignment if tp in self._consumer.assignment()])


class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Write and commit what is buffered for partitions this worker is about to lose."""

    def __init__(self, sink: ClickHouseSink) -> None:
        self._sink = sink

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        log.info("ClickHouse sink losing partitions %s: writing what is buffered for them", revoked)
        if self._sink._flush_lock.locked():
            # A flush is retrying right now (it polls while paused); waiting for it here would wait
            # for ourselves. Its commit will be refused and the new owner re-reads: nothing is lost.
            return
        await self._sink._flush(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
