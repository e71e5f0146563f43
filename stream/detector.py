"""The detector: the engine of `processors/` over `contacts.detect`, alerts out to the alert topics.

It reads the single ordered partition the validating agent fills, so the worker sees events in the
order `replay` of that topic would, and runs the same `DetectionEngine`. Its state is checkpointed
(the whole engine and the next input offset) to a compacted topic; after a crash or a move to
another worker it loads the latest checkpoint and re-reads the input from there, re-sending the
alerts of that stretch with the same ids. Duplicates and late events go to the dead-letter topic.

With `detector_idle_advance_seconds` > 0 the clock also follows the wall clock (minus that grace)
when events are quiet, so SLA deadlines and silence checks fire on time at night.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from mode import Service

from processors.engine import DetectionEngine, Verdict
from schemas.alert import Alert, Audience
from schemas.config import DetectionConfig
from schemas.errors import DeadLetterReason, InvalidEvent
from schemas.event import parse_contact_event
from schemas.settings import Settings
from stream import checkpoint
from stream.dead_letter import DEAD_LETTER_MAX_BYTES, DeadLetter
from stream.metrics import WorkerMetrics

log = logging.getLogger(__name__)


def idle_clock(
    clock_at_arrival: datetime | None, idle_seconds: float, grace_seconds: float
) -> datetime | None:
    """Where the stream clock may go after `idle_seconds` without input (None: stay).

    Only time the input was quiet beyond the grace moves it: a backlog being read (after a restart, or
    a backfill of old events) keeps arriving, so its events are never overtaken and made late; a
    quiet night moves the clock with the wall, `grace` behind, so deadlines fire on time.
    """
    if grace_seconds <= 0 or clock_at_arrival is None or idle_seconds <= grace_seconds:
        return None
    return clock_at_arrival + timedelta(seconds=idle_seconds - grace_seconds)


def checkpoint_topic(settings: Settings) -> str:
    return f"{settings.app_id}-detector-checkpoint"


class DetectorService(Service):
    def __init__(
        self, settings: Settings, config: DetectionConfig, metrics: WorkerMetrics, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._config = config
        self._metrics = metrics
        self._input = TopicPartition(settings.topic_detect, 0)
        self._engine = DetectionEngine(config)
        self._next_offset = 0
        self._checkpoint_id = 0
        self._last_checkpoint = time.monotonic()
        self._last_arrival = time.monotonic()
        self._clock_at_arrival: datetime | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def on_start(self) -> None:
        bootstrap = self._settings.kafka_bootstrap_servers
        topic = checkpoint_topic(self._settings)
        await checkpoint.ensure_checkpoint_topic(bootstrap, topic)
        restored = await checkpoint.load_latest(bootstrap, topic)
        if restored is not None:
            self._engine = restored.state
            self._next_offset = restored.next_offset
            self._clock_at_arrival = self._engine.clock  # a quiet input moves the clock from here
            log.info("detector restored from checkpoint at offset %d", self._next_offset)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=5,
            max_request_size=DEAD_LETTER_MAX_BYTES + 64 * 1024,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"{self._settings.app_id}-detector",
            enable_auto_commit=False,
            max_partition_fetch_bytes=DEAD_LETTER_MAX_BYTES + 64 * 1024,
        )
        await self._consumer.start()
        self._consumer.assign([self._input])
        self._consumer.seek(self._input, self._next_offset)

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.flush()
            await self._producer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self._consumer is not None
        while not self.should_stop:
            batch = await self._consumer.getmany(self._input, timeout_ms=500, max_records=1000)
            records = batch.get(self._input, [])
            alerts: list[Alert] = []
            for record in records:
                alerts += await self._observe(record.value or b"", record.offset)
                self._next_offset = record.offset + 1
            if records:
                self._last_arrival = time.monotonic()
                self._clock_at_arrival = self._engine.clock
            if not records:
                alerts += self._on_idle()
            await self._publish_tickets()
            await self._publish(alerts)
            if time.monotonic() - self._last_checkpoint >= self._settings.detector_checkpoint_seconds:
                await self._checkpoint()

    async def _observe(self, value: bytes, offset: int) -> list[Alert]:
        try:
            event = parse_contact_event(value)
        except InvalidEvent as exc:  # cannot happen for records the agent forwarded; never lose one
            await self._dead_letter(value, offset, exc.reason, exc.detail)
            return []
        outcome = self._engine.observe(event)
        self._metrics.detector_events.labels(verdict=outcome.verdict.value).inc()
        if outcome.verdict is Verdict.DUPLICATE:
            await self._dead_letter(value, offset, DeadLetterReason.DUPLICATE, outcome.detail)
        elif outcome.verdict is Verdict.LATE:
            await self._dead_letter(value, offset, DeadLetterReason.LATE, outcome.detail)
        return outcome.alerts

    def _on_idle(self) -> list[Alert]:
        """No new input in this poll: fire what is due at the stream clock; once the input has been
        quiet for longer than the grace, let the clock follow the time that passed since."""
        engine = self._engine
        if engine.clock is None:
            return []
        alerts = engine.advance_to(engine.clock)
        target = idle_clock(
            self._clock_at_arrival,
            time.monotonic() - self._last_arrival,
            self._settings.detector_idle_advance_seconds,
        )
        if target is not None and target > engine.clock:
            alerts += engine.advance_to(target)
        self._metrics.detector_clock_lag_seconds.set((datetime.now(UTC) - engine.clock).total_seconds())
        return alerts

    async def _publish(self, alerts: list[Alert]) -> None:
        """Send the batch's alerts; then wait until Kafka has them and the batch's dead letters."""
        assert self._producer is not None
        for alert in alerts:
            topic = (
                self._settings.topic_alerts_product
                if alert.audience is Audience.PRODUCT
                else self._settings.topic_alerts_oncall
            )
            await self._producer.send(topic, key=alert.alert_id.encode(), value=alert.to_json())
            self._metrics.alerts_sent.labels(rule=alert.rule, status=alert.status.value).inc()
        await self._producer.flush()

    async def _publish_tickets(self) -> None:
        """Send the state of every ticket the batch changed (flushed with the alerts)."""
        assert self._producer is not None
        for ticket in self._engine.tickets.take_touched():
            await self._producer.send(
                self._settings.topic_tickets,
                key=ticket.ticket_id.encode(),
                value=orjson.dumps(ticket.snapshot()),
            )

    async def _dead_letter(self, value: bytes, offset: int, reason: DeadLetterReason, detail: str) -> None:
        assert self._producer is not None
        letter = DeadLetter(reason, detail, self._input.topic, self._input.partition, offset)
        # Not awaited one by one: `_publish` flushes the producer once per batch, before any checkpoint.
        await self._producer.send(self._settings.topic_dead_letter, value=value, headers=letter.headers())
        self._metrics.dead_letters.labels(reason=reason.value).inc()

    async def _checkpoint(self) -> None:
        assert self._producer is not None
        assert self._consumer is not None
        started = time.perf_counter()
        self._checkpoint_id += 1
        size = await checkpoint.save(
            self._producer,
            checkpoint_topic(self._settings),
            self._engine,
            self._next_offset,
            self._checkpoint_id,
        )
        # The committed offset is for monitoring (consumer lag); recovery trusts the checkpoint.
        await self._consumer.commit({self._input: self._next_offset})
        self._last_checkpoint = time.monotonic()
        self._metrics.detector_checkpoint_seconds.observe(time.perf_counter() - started)
        self._metrics.detector_checkpoint_bytes.set(size)
        await asyncio.sleep(0)
