"""The notifier: both alert topics -> Alertmanager, with the firing set re-sent before it expires.

Started by the worker when `CONTACTPULSE_ALERTMANAGER_URL` is set, or on its own (`contactpulse notify`).

- On start it reads both alert topics from the beginning to their current end (they are compacted by
  alert id, so that is the latest state of every alert) and rebuilds the set of alerts firing now;
  records past the offsets it last committed are changes not yet delivered (a resolve among them is
  posted as resolved). It posts all of that, then commits.
- Then, for each batch of new records: update the set, post the changes, commit the offsets only after
  every Alertmanager answered 200. A failed post is retried with backoff until it lands; nothing is
  skipped, and `contactpulse_notifier_oldest_unsent_seconds` says how long the oldest change has waited.
- Every `CONTACTPULSE_NOTIFIER_RESEND_SECONDS` it posts the whole firing set again with `endsAt` four
  intervals ahead, so an alert stays firing in Alertmanager through a notifier restart.

It assigns itself every partition (no group membership): a second notifier (two workers) posts the same
alerts, which Alertmanager folds into one (same labels). Offsets are committed under
`<app_id>-notifier` to mark what was delivered and to show the lag.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from mode import Service
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from processors.delivery import (
    FiringSet,
    Links,
    inhibitors_first,
    parse_url_templates,
    resend_due,
    to_alertmanager,
)
from schemas.alert import Alert, AlertStatus
from schemas.settings import Settings
from sinks.alertmanager import AlertmanagerClient, AlertmanagerError
from stream.sink import next_backoff
from stream.topics import partition_count

log = logging.getLogger(__name__)

HOLD_INTERVALS = 4
"""A firing alert's endsAt is this many re-send intervals ahead."""


@dataclass(frozen=True)
class NotifierMetrics:
    posted: Counter
    post_failures: Counter
    invalid_records: Counter
    firing: Gauge
    oldest_unsent_seconds: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> NotifierMetrics:
        return cls(
            posted=Counter(
                "contactpulse_notifier_posted_total",
                "Alerts Alertmanager took, by status (firing includes re-sends).",
                ["status"],
                registry=registry,
            ),
            post_failures=Counter(
                "contactpulse_notifier_post_failures_total",
                "Posts to Alertmanager that failed and are being retried.",
                registry=registry,
            ),
            invalid_records=Counter(
                "contactpulse_notifier_invalid_records_total",
                "Records on the alert topics that are no alert (the ClickHouse sink dead-letters them).",
                registry=registry,
            ),
            firing=Gauge(
                "contactpulse_notifier_firing_alerts",
                "Alerts firing now, as the notifier knows them.",
                registry=registry,
            ),
            oldest_unsent_seconds=Gauge(
                "contactpulse_notifier_oldest_unsent_seconds",
                "How long the oldest alert change not yet delivered to Alertmanager has waited (0: none).",
                registry=registry,
            ),
        )


def links_from(settings: Settings) -> Links:
    return Links(
        settings.ticket_url_template,
        settings.dashboard_url,
        parse_url_templates(settings.ticket_url_templates),
    )


class Notifier(Service):
    def __init__(self, settings: Settings, metrics: NotifierMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._metrics = metrics
        self._links = links_from(settings)
        self._interval = settings.notifier_resend_seconds
        self._firing = FiringSet()
        self._consumer: AIOKafkaConsumer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._client: AlertmanagerClient | None = None
        self._last_resend: float | None = None

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=f"{self._settings.app_id}-notifier",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        self._session = aiohttp.ClientSession()
        self._client = AlertmanagerClient(self._settings.alertmanager_urls(), self._session)

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._session is not None:
            await self._session.close()

    async def _partitions(self) -> list[TopicPartition]:
        topics = (self._settings.topic_alerts_oncall, self._settings.topic_alerts_product)
        bootstrap = self._settings.kafka_bootstrap_servers
        while not self.should_stop:
            counts = {topic: await partition_count(bootstrap, topic) for topic in topics}
            if all(counts.values()):
                return [TopicPartition(topic, p) for topic in topics for p in range(counts[topic])]
            await self.sleep(1.0)  # the worker declares them when it starts
        return []

    def _parse(self, value: bytes | None) -> Alert | None:
        try:
            return Alert.model_validate_json(value or b"")
        except ValidationError:
            self._metrics.invalid_records.inc()
            log.warning("a record on an alert topic is no alert; skipped (the ClickHouse sink keeps it)")
            return None

    async def _rebuild(
        self, partitions: list[TopicPartition]
    ) -> tuple[list[Alert], dict[TopicPartition, int]]:
        """The firing set from the beginning of the topics; the undelivered changes past the commits."""
        consumer = self._consumer
        assert consumer is not None
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        committed = {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
        await consumer.seek_to_beginning(*partitions)
        undelivered: dict[str, Alert] = {}
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining and not self.should_stop:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= end[tp]:
                        break
                    alert = self._parse(record.value)
                    if alert is None:
                        continue
                    self._firing.observe(alert)
                    if record.offset >= committed[tp]:
                        undelivered[alert.alert_id] = alert
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        for tp in partitions:
            consumer.seek(tp, end[tp])
        resolved = [a for a in undelivered.values() if a.status is AlertStatus.RESOLVED]
        log.info(
            "notifier: %d alerts firing, %d changes not yet delivered", len(self._firing), len(undelivered)
        )
        return resolved, end

    async def _deliver(self, alerts: list[Alert], read_at: float) -> bool:
        """Post until every Alertmanager took them; False only when stopping first."""
        assert self._client is not None
        attempt = 0
        while not self.should_stop:
            now = datetime.now(UTC)
            hold = HOLD_INTERVALS * self._interval
            body = [
                to_alertmanager(a, now, hold, self._links, self._firing.announced_at(a.alert_id))
                for a in inhibitors_first(alerts)
            ]
            try:
                await self._client.post(body)
            except AlertmanagerError as exc:
                self._metrics.post_failures.inc()
                self._metrics.oldest_unsent_seconds.set(time.monotonic() - read_at)
                delay = next_backoff(attempt, 30.0)
                log.warning(
                    "Alertmanager did not take %d alerts (%s); retry in %.1f s", len(alerts), exc, delay
                )
                attempt += 1
                await self.sleep(delay)
                continue
            self._firing.taken(alerts, now)
            for alert in alerts:
                self._metrics.posted.labels(status=alert.status.value).inc()
            self._metrics.oldest_unsent_seconds.set(0)
            return True
        return False

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        if offsets:
            await self._consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})

    @Service.task
    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        partitions = await self._partitions()
        started = time.monotonic()
        resolved, end = await self._rebuild(partitions)
        if not await self._deliver(self._firing.firing() + resolved, started):
            return
        self._last_resend = time.monotonic()
        await self._commit(end)
        self._metrics.firing.set(len(self._firing))
        while not self.should_stop:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            read_at = time.monotonic()
            changes: dict[str, Alert] = {}
            positions: dict[TopicPartition, int] = {}
            for tp, records in batch.items():
                for record in records:
                    alert = self._parse(record.value)
                    if alert is not None:
                        self._firing.observe(alert)
                        changes[alert.alert_id] = alert
                if records:
                    positions[tp] = records[-1].offset + 1
            if changes and not await self._deliver(list(changes.values()), read_at):
                return
            await self._commit(positions)
            self._metrics.firing.set(len(self._firing))
            now = time.monotonic()
            if resend_due(self._last_resend, now, self._interval) and len(self._firing):
                if not await self._deliver(self._firing.firing(), now):
                    return
                self._last_resend = time.monotonic()


def run_notifier(settings: Settings) -> int:
    """`contactpulse notify`: the notifier alone, its metrics on `CONTACTPULSE_NOTIFIER_WEB_PORT`."""
    from mode import Worker
    from prometheus_client import start_http_server

    if not settings.alertmanager_urls():
        log.error("CONTACTPULSE_ALERTMANAGER_URL is not set: nowhere to deliver alerts")
        return 2
    registry = CollectorRegistry()
    start_http_server(settings.notifier_web_port, addr=settings.web_host, registry=registry)
    notifier = Notifier(settings, NotifierMetrics.create(registry))
    Worker(notifier, loglevel=settings.log_level, quiet=True).execute_from_commandline()
    return 0
