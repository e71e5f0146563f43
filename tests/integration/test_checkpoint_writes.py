"""A checkpoint Kafka does not take whole must leave the one before it readable."""

from __future__ import annotations

import os
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from stream import checkpoint
from stream.deliveries import DeliveryFailed
from stream.topics import delete_topics_where
from tests.integration.conftest import set_topic_config

pytestmark = pytest.mark.integration


async def test_a_refused_chunk_keeps_the_previous_checkpoint(kafka_bootstrap: str) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}.checkpoints"
    await checkpoint.ensure_checkpoint_topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        first = checkpoint.encode({"tickets": 1}, checkpoint.CheckpointId(1, 1))
        await checkpoint.write(producer, topic, first)
        # The broker now refuses any record over 2 KB: the next checkpoint's chunk (20 KB of
        # incompressible bytes) is refused, its small manifest would not be.
        await set_topic_config(
            kafka_bootstrap, topic, {"cleanup.policy": "compact", "max.message.bytes": "2048"}
        )
        second = checkpoint.encode({"tickets": 2, "noise": os.urandom(20_000)}, checkpoint.CheckpointId(1, 2))
        assert len(second) == 2
        with pytest.raises(DeliveryFailed) as refused:
            await checkpoint.write(producer, topic, second, obsolete={key for key, _ in first})
        assert refused.value.failed == 1
        assert type(refused.value.first).__name__ == "MessageSizeTooLargeError"

        loaded = await checkpoint.load_latest(kafka_bootstrap, topic)
        assert loaded.checkpoint is not None
        assert loaded.checkpoint.ident == checkpoint.CheckpointId(1, 1)
        assert loaded.checkpoint.state == {"tickets": 1}
    finally:
        await producer.stop()
        await delete_topics_where(kafka_bootstrap, lambda name: name == topic)
