"""Ticket states are handed to the producer without the detector's poll waiting for the broker.

The producer here is a stand-in that takes a batch only when the test opens its gate: what aiokafka does
while its one produce request to the broker is in flight and the partition's previous batch is unsent.
Delivery through the real broker: tests/integration/test_keyed_batches.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream.deliveries import Deliveries, DeliveryFailed
from stream.keyed_batches import WAITING_BATCHES_PER_PARTITION, KeyedBatches, partition_for

PARTITIONS = [0, 1, 2, 3]


class SmallBatch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes, bytes]] = []

    def append(self, *, key: bytes, value: bytes, timestamp: int | None) -> object | None:
        if len(self.records) >= self.capacity:
            return None  # full, as aiokafka's BatchBuilder says it
        self.records.append((key, value))
        return object()


class GatedProducer:
    def __init__(self, capacity: int = 1000, refuse: bool = False) -> None:
        self.gate = asyncio.Event()
        self.capacity = capacity
        self.refuse = refuse
        self.taken: list[tuple[int, list[tuple[bytes, bytes]]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(PARTITIONS)

    def create_batch(self) -> SmallBatch:
        return SmallBatch(self.capacity)

    async def send_batch(self, batch: SmallBatch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        await self.gate.wait()
        if self.refuse:
            raise RuntimeError("producer closed")
        self.taken.append((partition, list(batch.records)))
        delivered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    async def flush(self) -> None:
        return None


def records(first: int, count: int) -> list[tuple[bytes, bytes]]:
    return [(f"T-{n % 7}".encode(), f"{n}".encode()) for n in range(first, first + count)]


async def test_a_poll_does_not_wait_for_the_producer_and_later_polls_join_the_waiting_batch() -> None:
    producer = GatedProducer()
    batches = KeyedBatches(producer, "tickets", Deliveries())  # type: ignore[arg-type]
    polls = [records(0, 20), records(20, 20), records(40, 20)]
    for poll in polls:  # each returns while the producer takes nothing
        assert await asyncio.wait_for(batches.send(poll), timeout=1) == 20
    assert producer.taken == []
    producer.gate.set()
    await batches.handed_over()
    sent = [record for poll in polls for record in poll]
    for partition in PARTITIONS:
        mine = [record for record in sent if partition_for(record[0], PARTITIONS) == partition]
        handed = [batch for p, batch in producer.taken if p == partition]
        # The first poll's batch went first; the two that came while it waited share the next one.
        assert len(handed) == 2
        first = [record for record in polls[0] if partition_for(record[0], PARTITIONS) == partition]
        assert handed[0] == first
        assert handed[0] + handed[1] == mine  # every record once, each key's states in order


async def test_a_partition_with_too_many_full_batches_waits_for_the_producer() -> None:
    producer = GatedProducer(capacity=1)
    batches = KeyedBatches(producer, "tickets", Deliveries())  # type: ignore[arg-type]
    one_key = [(b"T-1", f"{n}".encode()) for n in range(WAITING_BATCHES_PER_PARTITION + 2)]
    sending = asyncio.create_task(batches.send(one_key))
    await asyncio.sleep(0.05)
    assert not sending.done()  # memory is bounded: it waits instead of queueing without end
    producer.gate.set()
    assert await asyncio.wait_for(sending, timeout=1) == len(one_key)
    await batches.handed_over()
    assert [batch for _, batch in producer.taken] == [[record] for record in one_key]


async def test_a_batch_the_producer_refuses_fails_the_next_confirmation() -> None:
    producer = GatedProducer(refuse=True)
    deliveries = Deliveries()
    batches = KeyedBatches(producer, "tickets", deliveries)  # type: ignore[arg-type]
    await batches.send(records(0, 5))
    producer.gate.set()
    await batches.handed_over()
    with pytest.raises(DeliveryFailed, match="producer closed"):
        await deliveries.confirm(producer)  # type: ignore[arg-type]


async def test_forgetting_drops_what_was_not_handed_over() -> None:
    producer = GatedProducer()
    batches = KeyedBatches(producer, "tickets", Deliveries())  # type: ignore[arg-type]
    await batches.send(records(0, 10))
    batches.forget()  # the state that made them is being dropped; its successor sends its own
    producer.gate.set()
    await batches.handed_over()
    await asyncio.sleep(0.01)
    assert producer.taken == []
    await batches.send(records(10, 3))
    await batches.handed_over()
    assert sorted(record for _, batch in producer.taken for record in batch) == sorted(records(10, 3))
