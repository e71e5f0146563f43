"""`Deliveries`: a checkpoint is refused while anything sent since the last one failed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from stream.deliveries import Deliveries, DeliveryFailed


class SettlingProducer:
    """Stands in for `AIOKafkaProducer.flush`: settles the futures it was given, as the broker answers."""

    def __init__(self, outcomes: list[tuple[asyncio.Future[Any], BaseException | None]]) -> None:
        self.outcomes = outcomes

    async def flush(self) -> None:
        await asyncio.sleep(0)
        for future, failure in self.outcomes:
            if failure is None:
                future.set_result("metadata")
            else:
                future.set_exception(failure)
        self.outcomes = []


async def test_a_refused_record_fails_the_next_confirmation_only() -> None:
    loop = asyncio.get_running_loop()
    sent = [loop.create_future() for _ in range(3)]
    deliveries = Deliveries()
    for future in sent:
        deliveries.track(future)
    refused = MessageSizeTooLargeError("too large for the topic")
    producer = SettlingProducer([(sent[0], None), (sent[1], refused), (sent[2], None)])

    with pytest.raises(DeliveryFailed) as failed:
        await deliveries.confirm(producer)  # type: ignore[arg-type]
    assert failed.value.failed == 1
    assert failed.value.first is refused
    assert "MessageSizeTooLargeError" in str(failed.value)
    await deliveries.confirm(producer)  # type: ignore[arg-type]  # counted once, then forgotten


async def test_failures_swept_between_polls_are_still_reported() -> None:
    loop = asyncio.get_running_loop()
    deliveries = Deliveries()
    early, late = loop.create_future(), loop.create_future()
    deliveries.track(early)
    early.set_exception(MessageSizeTooLargeError("refused"))
    deliveries.sweep()  # a poll later: the settled future is dropped, its failure kept
    deliveries.track(late)
    deliveries.sweep()  # an unsettled future stays tracked
    producer = SettlingProducer([(late, RuntimeError("batch expired"))])
    with pytest.raises(DeliveryFailed) as failed:
        await deliveries.confirm(producer)  # type: ignore[arg-type]
    assert failed.value.failed == 2
    assert isinstance(failed.value.first, MessageSizeTooLargeError)


async def test_a_forgotten_ledger_confirms_cleanly() -> None:
    loop = asyncio.get_running_loop()
    deliveries = Deliveries()
    lost = loop.create_future()
    lost.set_exception(RuntimeError("refused"))
    deliveries.track(lost)
    deliveries.sweep()
    deliveries.forget()  # the state that sent it was dropped and is read again from its checkpoint
    await deliveries.confirm(SettlingProducer([]))  # type: ignore[arg-type]
