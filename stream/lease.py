"""Which worker runs the detector: the member of a consumer group that holds a one-partition lease topic.

The detector needs every partition of its input in one place (one clock, one order), so the group's
usual split of partitions cannot decide it. Instead each worker joins the group
`<app_id>-detector-owner` subscribed to `<app_id>-detector-lease`, a topic of one partition that nobody
writes: Kafka's group protocol gives that partition to exactly one live member, and hands it to another
within the session timeout when that member dies or stops heartbeating. Holding the partition is owning
the detector.

The group's generation when ownership was granted is the owner's epoch. It grows with every
rebalance, so a newer owner's checkpoints always outrank an older one's, even if the older one was
frozen and writes after it wakes (see `stream/checkpoint.py`).
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

log = logging.getLogger(__name__)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, lease: DetectorLease) -> None:
        self._lease = lease

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if self._lease.epoch is not None:
            log.info("detector ownership lost (epoch %d)", self._lease.epoch)
        self._lease.epoch = None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            self._lease.epoch = self._lease.generation()
            log.info("detector ownership taken (epoch %d)", self._lease.epoch)


class DetectorLease:
    def __init__(self, bootstrap: str, group: str, topic: str, session_timeout_seconds: float) -> None:
        self._topic = topic
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group,
            "enable_auto_commit": False,
            "session_timeout_ms": int(session_timeout_seconds * 1000),
            "heartbeat_interval_ms": int(session_timeout_seconds * 1000 / 10),
            # Sticky: a worker joining the group does not take the detector from the one that has it.
            "partition_assignment_strategy": (StickyPartitionAssignor, RoundRobinPartitionAssignor),
        }
        self.epoch: int | None = None
        """Set while this worker owns the detector."""
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Join the group (the consumer is made here: aiokafka binds it to the running loop)."""
        self._consumer = AIOKafkaConsumer(**self._options)
        await self._consumer.start()
        self._consumer.subscribe([self._topic], listener=_Listener(self))

    async def stop(self) -> None:
        """Leave the group: another worker takes over at once, without waiting for the session timeout."""
        self.epoch = None
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self, timeout_ms: int = 0) -> None:
        """Keep the membership alive (the group drops a member that stops polling for too long)."""
        assert self._consumer is not None
        await self._consumer.getmany(timeout_ms=timeout_ms)

    def generation(self) -> int:
        # aiokafka keeps the generation on its coordinator and offers no public accessor for it.
        coordinator: Any = getattr(self._consumer, "_coordinator", None)
        return int(getattr(coordinator, "generation", 0))
