"""The Faust application, built explicitly from settings: no broker URL or env read at import time."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import faust
from aiokafka.errors import MessageSizeTooLargeError
from faust.types import EventT, StreamT
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from processors.admission import admit
from schemas.config import DetectionConfig, load_config
from schemas.errors import DeadLetterReason, InvalidEvent
from schemas.settings import Settings
from stream.dead_letter import (
    DEAD_LETTER_MAX_BYTES,
    DEAD_LETTER_TRUNCATED_BYTES,
    RECORD_HEADROOM_BYTES,
    DeadLetter,
)
from stream.ingest import register_ingest
from stream.metrics import WorkerMetrics
from stream.sink import next_backoff

log = logging.getLogger(__name__)

# The producer waits this long for more records before it sends a batch: a few milliseconds of
# latency for far fewer produce requests.
PRODUCER_LINGER_SECONDS = 0.005
# The validating agent takes up to this many events at a time, or what came within this many
# seconds: the wait adds at most that much latency when traffic is light.
VALIDATE_BATCH_MAX = 500
VALIDATE_BATCH_WITHIN = 0.05


def broker_urls(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server.strip()]


@dataclass(frozen=True)
class Topics:
    raw: faust.TopicT
    events: faust.TopicT
    valid: faust.TopicT
    dead_letter: faust.TopicT
    alerts_oncall: faust.TopicT
    alerts_product: faust.TopicT


@dataclass(frozen=True)
class ContactPulseApp:
    app: faust.App
    topics: Topics
    metrics: WorkerMetrics
    registry: CollectorRegistry


def _bytes_topic(app: faust.App, name: str, partitions: int) -> faust.TopicT:
    # Raw bytes in, raw bytes out: validation is ours (schemas/), so a bad record is never lost
    # inside Faust's deserializer, where it would be logged and skipped.
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def create_app(
    settings: Settings, registry: CollectorRegistry | None = None, config: DetectionConfig | None = None
) -> ContactPulseApp:
    metrics_registry = registry if registry is not None else CollectorRegistry()
    metrics = WorkerMetrics.create(metrics_registry)
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    config = config or load_config(settings.config_file)
    future_tolerance = timedelta(minutes=config.engine.future_tolerance_minutes)
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        producer_acks=-1,
        # Without a linger every forwarded event became its own produce request: the event loop
        # spent a quarter of its time encoding and writing them (worker bench, issue 9).
        producer_linger=PRODUCER_LINGER_SECONDS,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka_session_timeout_seconds,
        broker_heartbeat_interval=settings.kafka_session_timeout_seconds / 10,
        # Oversized records (over the 1 MiB event limit) must still fit on the dead-letter topic.
        producer_max_request_size=DEAD_LETTER_MAX_BYTES + RECORD_HEADROOM_BYTES,
        consumer_max_fetch_size=DEAD_LETTER_MAX_BYTES + RECORD_HEADROOM_BYTES,
    )
    partitions = settings.topic_partitions
    topics = Topics(
        raw=_bytes_topic(app, settings.topic_raw, partitions),
        events=_bytes_topic(app, settings.topic_events, partitions),
        valid=_bytes_topic(app, settings.topic_valid, partitions),
        dead_letter=_bytes_topic(app, settings.topic_dead_letter, partitions),
        alerts_oncall=_bytes_topic(app, settings.topic_alerts_oncall, partitions),
        alerts_product=_bytes_topic(app, settings.topic_alerts_product, partitions),
    )

    async def send_dead_letter(key: bytes | None, value: bytes, letter: DeadLetter) -> None:
        # Never raise out of here: an exception would ack the record and lose it. Retry until Kafka
        # has the dead letter (acks=all), then the original record may be acked.
        attempt = 0
        while True:
            try:
                sent = await topics.dead_letter.send(key=key, value=value, headers=letter.headers())
                await sent
                break
            except MessageSizeTooLargeError:
                # Larger than even the dead-letter topic takes: keep the head and say so, rather
                # than retrying forever or losing the record.
                letter = letter.truncated(len(value))
                value = value[:DEAD_LETTER_TRUNCATED_BYTES]
            except Exception as exc:
                delay = next_backoff(attempt, settings.sink_retry_max_backoff_seconds)
                log.warning("dead letter not accepted by Kafka (%s); retry in %.1f s", exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
        metrics.dead_letters.labels(reason=letter.reason.value).inc()

    async def validate_one(record: EventT[bytes]) -> None:
        message = record.message
        metrics.records_consumed.labels(topic=message.topic).inc()
        value: bytes = record.value if isinstance(record.value, bytes) else b""
        try:
            event = admit(value, datetime.now(UTC), future_tolerance)
        except InvalidEvent as exc:
            letter = DeadLetter.for_record(exc.reason, exc.detail, message)
            log.info(
                "dead letter %s at %s[%d]@%d: %s",
                exc.reason,
                message.topic,
                message.partition,
                message.offset,
                exc.detail,
            )
            await send_dead_letter(record.key, value, letter)
            return
        except Exception as exc:
            # A bug of ours must not kill the agent (Faust would stop consuming quietly).
            log.exception("unexpected error on %s[%d]@%d", message.topic, message.partition, message.offset)
            letter = DeadLetter.for_failure(DeadLetterReason.PROCESSING_ERROR, exc, message)
            await send_dead_letter(record.key, value, letter)
            return
        metrics.events_accepted.inc()
        # Only what is admitted reaches the sink's table; the detector admits with the same check.
        # The record's own partition keeps the topics co-partitioned. Faust flushes its producer
        # before it commits the source offset: at least once.
        await topics.valid.send(key=event.ticket_id.encode(), value=value, partition=message.partition)

    @app.agent(topics.events, name="validate-contact-events")
    async def validate_contact_events(stream: StreamT[bytes]) -> None:
        # take_events acks a batch only after this loop body has run for all of it, so the
        # source offsets are committed after the forwarded records were handed to the producer,
        # as with one event at a time; it spares Faust's per-event iterator round trips
        # (40% more events per second through this agent in the worker bench).
        # StreamT does not declare take_events; every stream an agent gets is a faust.Stream.
        events = cast("faust.Stream[bytes]", stream).take_events
        async for batch in events(VALIDATE_BATCH_MAX, within=VALIDATE_BATCH_WITHIN):
            for record in batch:
                await validate_one(record)

    register_ingest(app, topics.raw, topics.events, settings, metrics, send_dead_letter)

    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(metrics_registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    app.page("/metrics")(MetricsView)
    return ContactPulseApp(app=app, topics=topics, metrics=metrics, registry=metrics_registry)
