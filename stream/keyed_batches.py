"""Many keyed records to one topic, as whole batches: the detector's ticket states and its alerts.

`AIOKafkaProducer.send` costs about 15 µs of pure Python a record (a future, the accumulator, and the
default partitioner's murmur2 hash in Python); at one ticket snapshot per event that was a fifth of the
detector's time in the worker bench. Here each partition's records go into batches built directly
(`create_batch`/`send_batch`), and the partition of a key is remembered: a ticket is written several
times in its life. Alerts go the same way since 2026-12-03 (against the real broker, 40 alerts a poll:
2-3 µs of CPU an alert, 9-12 µs through `send`). The partition is the default partitioner's (murmur2
of the key, as Kafka's Java clients and Faust place keyed records), so a ticket's snapshots and an
alert's changes land where they always did.

`send_batch` waits while the producer still holds an unsent batch of that partition, and aiokafka keeps
one produce request in flight per broker: awaited in the detector's poll, every poll waited for the
broker to answer the previous one's request. `KeyedBatches` hands batches over in a task per partition
instead, and records that come meanwhile join the batch waiting its turn (a ticket touched in two polls
may then be in it twice, in order: the later state last, as before).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from stream.deliveries import Deliveries

WAITING_BATCHES_PER_PARTITION = 4
"""Full batches a partition may hold before `send` waits for the producer: memory bounded (256 KiB each
for the detector's producer), and a slow broker slows the detector instead of filling memory."""


@lru_cache(maxsize=1 << 17)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition the default partitioner gives `key` among `partitions` (sorted)."""
    return partitions[_key_hash(key) % len(partitions)]


class KeyedBatches:
    """Keyed records for one topic, in per-partition batches handed to the producer in order, in tasks
    of their own rather than on the caller's path."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, deliveries: Deliveries) -> None:
        self._producer = producer
        self._topic = topic
        self._deliveries = deliveries
        self._waiting: dict[int, deque[Any]] = {}
        """Per partition, batches not yet handed to the producer, oldest first; the last one still open."""
        self._handing: dict[int, asyncio.Task[None]] = {}

    async def send(self, records: Iterable[tuple[bytes, bytes]]) -> int:
        """Put `records` (key, value) in their partitions' batches and start handing them over; the
        number put. Returns without waiting for the producer unless a partition holds more than
        `WAITING_BATCHES_PER_PARTITION` full batches. `handed_over` then `Deliveries.confirm` tell
        whether Kafka took them."""
        partitions = sorted(await self._producer.partitions_for(self._topic))
        touched: set[int] = set()
        sent = 0
        for key, value in records:
            partition = partition_for(key, partitions)
            waiting = self._waiting.get(partition)
            if waiting is None:
                waiting = self._waiting[partition] = deque()
            if not waiting or waiting[-1].append(key=key, value=value, timestamp=None) is None:
                batch = self._producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any record
                waiting.append(batch)
            touched.add(partition)
            sent += 1
        for partition in touched:
            task = self._handing.get(partition)
            if task is None or task.done():
                task = self._handing[partition] = asyncio.create_task(self._hand_over(partition))
            if len(self._waiting[partition]) > WAITING_BATCHES_PER_PARTITION:
                await asyncio.shield(task)
        return sent

    async def _hand_over(self, partition: int) -> None:
        waiting = self._waiting[partition]
        while waiting:
            batch = waiting.popleft()  # out of the deque first: nothing may join it once handed over
            try:
                delivery = await self._producer.send_batch(batch, self._topic, partition=partition)
            except asyncio.CancelledError:
                raise
            except Exception as failure:  # a closed producer, a timeout: the checkpoint must not pass it
                delivery = asyncio.get_running_loop().create_future()
                delivery.set_exception(failure)
            self._deliveries.track(delivery)

    async def handed_over(self) -> None:
        """Wait until the producer holds every batch (then `producer.flush` covers all of them)."""
        while running := [task for task in self._handing.values() if not task.done()]:
            await asyncio.wait(running)

    def forget(self) -> None:
        """Drop what was not yet handed over (the state that sent it is being dropped too)."""
        for task in self._handing.values():
            task.cancel()
        for waiting in self._waiting.values():
            waiting.clear()  # a hand-over task holds its deque: it must find nothing left to send
        self._handing.clear()
        self._waiting.clear()
