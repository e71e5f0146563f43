"""The Faust application, built explicitly from settings: no broker URL or env read at import time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest

from schemas.settings import Settings
from stream.dead_letter import DEAD_LETTER_MAX_BYTES, RECORD_HEADROOM_BYTES, DeadLetter, deliver
from stream.ingest import register_ingest
from stream.metrics import WorkerMetrics
from stream.sink import next_backoff

log = logging.getLogger(__name__)

# The producer waits this long for more records before it sends a batch: a few milliseconds of
# latency for far fewer produce requests.
PRODUCER_LINGER_SECONDS = 0.005


def broker_urls(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server.strip()]


@dataclass(frozen=True)
class Topics:
    raw: faust.TopicT
    events: faust.TopicT
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


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> ContactPulseApp:
    metrics_registry = registry if registry is not None else CollectorRegistry()
    metrics = WorkerMetrics.create(metrics_registry)
    # process_cpu_seconds_total, process_resident_memory_bytes, open fds: what an operator sizes a worker
    # by (and the worker bench reads CPU per event from).
    ProcessCollector(registry=metrics_registry)
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
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
        dead_letter=_bytes_topic(app, settings.topic_dead_letter, partitions),
        alerts_oncall=_bytes_topic(app, settings.topic_alerts_oncall, partitions),
        alerts_product=_bytes_topic(app, settings.topic_alerts_product, partitions),
    )

    async def produce_dead_letter(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        await (await topics.dead_letter.send(key=key, value=value, headers=headers))

    retry_delay = partial(next_backoff, ceiling=settings.sink_retry_max_backoff_seconds)

    async def send_dead_letter(key: bytes | None, value: bytes, letter: DeadLetter) -> None:
        written = await deliver(produce_dead_letter, key, value, letter, retry_delay)
        metrics.dead_letters.labels(reason=written.reason.value).inc()

    register_ingest(app, topics.raw, topics.events, settings, metrics, send_dead_letter)

    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(metrics_registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    app.page("/metrics")(MetricsView)
    return ContactPulseApp(app=app, topics=topics, metrics=metrics, registry=metrics_registry)
