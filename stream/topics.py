"""Declare the worker's topics with the configured partition count before anything produces to them.

A broker that auto-creates topics would otherwise give a topic the first producer touched one partition,
and Faust tables need their source topics co-partitioned. Each topic takes records up to 8 MiB, so an
oversized event (over the 1 MiB contract limit) reaches the worker and is dead-lettered whole instead of
being refused at some producer where nobody sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from schemas.settings import Settings
from stream.dead_letter import DEAD_LETTER_MAX_BYTES, RECORD_HEADROOM_BYTES

log = logging.getLogger(__name__)


FETCH_MIN_BYTES = 1024 * 1024
"""What a held fetch waits for (or its time limit): more than a steady stream brings in the wait, so
the wait decides; a backlog has it at once and is not held."""


def fetch_batching(wait_seconds: float) -> dict[str, int]:
    """aiokafka consumer options that let the broker hold a fetch up to `wait_seconds` to gather records.

    By default the broker answers a fetch as soon as one record is there: a steady stream then comes
    one small fetch after another, and in a Python client each fetch, its poll and what the poll sends
    cost more than the records in it (in the worker bench at 4,500 events/s, the detector's socket
    writes alone were a tenth of its CPU). Held up to 25 ms, the detector's CPU an event fell by a
    quarter (151 -> 105-115 us) and its median alert latency rose by 35 ms. Nothing ({}) for 0."""
    if wait_seconds <= 0:
        return {}
    return {"fetch_min_bytes": FETCH_MIN_BYTES, "fetch_max_wait_ms": max(1, round(wait_seconds * 1000))}


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Every topic the worker uses and its partition count. The detector merges the partitions of
    contacts.events in event-time order (`processors/ordering.py`)."""
    return {
        settings.topic_raw: settings.topic_partitions,
        settings.topic_events: settings.topic_partitions,
        settings.topic_tickets: settings.topic_partitions,
        settings.topic_dead_letter: settings.topic_partitions,
        settings.topic_alerts_oncall: settings.topic_partitions,
        settings.topic_alerts_product: settings.topic_partitions,
    }


def topic_config(settings: Settings, name: str) -> dict[str, str]:
    config = {"max.message.bytes": str(DEAD_LETTER_MAX_BYTES + RECORD_HEADROOM_BYTES)}
    if name == settings.topic_raw:
        # Native payloads carry phone numbers and addresses in clear: keep them only as long as needed.
        config["retention.ms"] = str(int(settings.raw_retention_hours * 3600 * 1000))
    if name == settings.topic_dead_letter:
        # Refused payloads of authenticated senders are kept whole, personal data included.
        config["retention.ms"] = str(int(settings.dead_letter_retention_hours * 3600 * 1000))
    if name in (settings.topic_alerts_oncall, settings.topic_alerts_product):
        # Keyed by alert id: compaction keeps every alert's latest state for as long as it fires (the
        # notifier rebuilds the firing set from it); a week of full history stays for other readers.
        config["cleanup.policy"] = "compact"
        config["min.compaction.lag.ms"] = str(7 * 24 * 3600 * 1000)
    return config


def retention_bound_topics(settings: Settings) -> list[str]:
    """Topics whose retention follows a setting or changed with a release, re-applied at every start
    (a changed setting takes effect on a topic that already exists)."""
    return [
        settings.topic_raw,
        settings.topic_dead_letter,
        settings.topic_alerts_oncall,
        settings.topic_alerts_product,
    ]


async def served(admin: AIOKafkaAdminClient, names: list[str], patience: float = 10.0) -> bool:
    """Wait until the broker's metadata lists `names` with a leader for every partition (False if that
    takes longer than `patience` seconds: it is logged, and clients then retry as before).

    A KRaft broker answers CreateTopics once the controller has the topics, and learns of them from the
    metadata log a moment later: a consumer that asks in between is told the topic does not exist, and
    aiokafka logs an ERROR per topic per retry (the demo printed a dozen at every start)."""
    deadline = time.monotonic() + patience
    wanted = set(names)
    while True:
        found = await admin.describe_topics(names)
        ready = {
            topic["topic"]
            for topic in found
            if topic["error_code"] == 0
            and topic["partitions"]
            and all(partition["leader"] >= 0 for partition in topic["partitions"])
        }
        if ready >= wanted:
            return True
        if time.monotonic() > deadline:
            log.warning(
                "topics %s not yet served by the broker after %.0f s", sorted(wanted - ready), patience
            )
            return False
        await asyncio.sleep(0.05)


async def ensure_topics(settings: Settings, replication_factor: int = 1) -> list[str]:
    """Create the missing topics; return the names created. Existing topics are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = topic_partitions(settings)
        missing = [name for name in wanted if name not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            wanted[name],
                            replication_factor,
                            topic_configs=topic_config(settings, name),
                        )
                        for name in missing
                    ]
                )
            except TopicAlreadyExistsError:
                log.info("another process created some of %s first", missing)
            await served(admin, missing)
        # The legacy AlterConfigs request replaces a topic's whole set of overrides: send all of ours.
        await admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, topic_config(settings, name))
                for name in retention_bound_topics(settings)
            ]
        )
        return missing
    finally:
        await admin.close()


async def ensure_topic(
    bootstrap: str, topic: str, partitions: int = 1, config: dict[str, str] | None = None
) -> None:
    """Create one topic of the worker's own (checkpoints, the detector lease) unless it exists."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=config or {})])
            await served(admin, [topic])
    finally:
        await admin.close()


async def _partition_count(admin: AIOKafkaAdminClient, topic: str) -> int:
    described = await admin.describe_topics([topic])
    return len(described[0].get("partitions", [])) if described else 0


async def partition_count(bootstrap: str, topic: str) -> int:
    """How many partitions a topic has (0 when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await _partition_count(admin, topic)
    finally:
        await admin.close()


async def delete_topics_where(bootstrap: str, doomed: Callable[[str], bool]) -> list[str]:
    """Delete every topic whose name `doomed` accepts; return their names.

    For runs that make topics of their own (the demo, tests): a broker kept between runs loads every
    partition's log at start, and with thousands of leftovers it took over a minute to open its port.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics() if doomed(name))
        if names:
            await admin.delete_topics(names, timeout_ms=15_000)
        return names
    finally:
        await admin.close()
