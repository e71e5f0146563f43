"""Ticket snapshots sent as whole batches land where `send` would put them, every one of them."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from schemas.settings import Settings
from stream.deliveries import Deliveries
from stream.keyed_batches import KeyedBatches, partition_for
from stream.topics import ensure_topics
from tests.integration.conftest import consume_until_quiet

pytestmark = pytest.mark.integration


def test_a_key_gets_the_default_partitioners_partition() -> None:
    partitions = [0, 1, 2, 3]
    for n in range(2000):
        key = f"telegram:chat_{n:05x}".encode()
        assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
        assert partition_for(key, partitions) == partition_for(key, partitions)  # remembered, the same


async def test_every_record_arrives_once_on_its_keys_partition(isolated_settings: Settings) -> None:
    settings = isolated_settings
    await ensure_topics(settings)
    # 3,000 records of ~1 KB: many full batches per partition (16 KiB each here), and repeated keys.
    records = [(f"T-{n % 700}".encode(), f"{n:06d}".encode() + b"x" * 1000) for n in range(3000)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        deliveries = Deliveries()
        batches = KeyedBatches(producer, settings.topic_tickets, deliveries)
        assert await batches.send(iter(records)) == 3000
        await batches.handed_over()
        await deliveries.confirm(producer)  # raises if the broker refused any batch
    finally:
        await producer.stop()
    landed = await consume_until_quiet(settings.kafka_bootstrap_servers, settings.topic_tickets)
    assert sorted((r.key, r.value) for r in landed) == sorted(records)
    partitions = list(range(settings.topic_partitions))
    assert all(r.partition == DefaultPartitioner()(r.key, partitions, partitions) for r in landed)
    # Within a partition a key's records keep the order they were given in (the latest state last).
    for key in {key for key, _ in records}:
        given = [value for k, value in records if k == key]
        assert [r.value for r in sorted(landed, key=lambda r: r.offset) if r.key == key] == given
