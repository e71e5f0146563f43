"""What the producer was handed, and whether Kafka took all of it: the check before a checkpoint.

`AIOKafkaProducer.flush()` waits until every batch is acknowledged *or has failed*, and raises nothing
either way: a record the broker refused (too large for the topic, an authorization error) or one whose
batch expired during a long outage (`request_timeout_ms`) leaves only an exception on its future. A
checkpoint written after such a flush covers the input that produced the lost record, so a restart
never sends it again. Every send's future is kept here until it settles, and `confirm` raises
`DeliveryFailed` when any failed since the last call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer


class DeliveryFailed(Exception):
    def __init__(self, failed: int, first: BaseException) -> None:
        super().__init__(f"{failed} record(s) not delivered; the first: {type(first).__name__}: {first}")
        self.failed = failed
        self.first = first


class Deliveries:
    """The futures of sends not yet known to have settled, and the failures among those that have."""

    def __init__(self) -> None:
        self._unsettled: list[asyncio.Future[Any]] = []
        self._failed = 0
        self._first_failure: BaseException | None = None

    def track(self, future: asyncio.Future[Any]) -> None:
        self._unsettled.append(future)

    def sweep(self) -> None:
        """Forget the futures that settled, remembering their failures (once a poll keeps this short)."""
        unsettled: list[asyncio.Future[Any]] = []
        for future in self._unsettled:
            if not future.done():
                unsettled.append(future)
            elif future.cancelled():
                self._record(asyncio.CancelledError("the send was cancelled"))
            elif (failure := future.exception()) is not None:
                self._record(failure)
        self._unsettled = unsettled

    async def confirm(self, producer: AIOKafkaProducer) -> None:
        """Wait until everything sent so far has settled; raise `DeliveryFailed` if anything since the
        last call failed (the count starts again either way)."""
        await producer.flush()
        if any(not future.done() for future in self._unsettled):
            await asyncio.wait(self._unsettled)
        self.sweep()
        failed, first = self._failed, self._first_failure
        self._failed, self._first_failure = 0, None
        if first is not None:
            raise DeliveryFailed(failed, first)

    def forget(self) -> None:
        """Drop everything tracked (the state that sent it is being dropped too)."""
        self._unsettled.clear()
        self._failed, self._first_failure = 0, None

    def _record(self, failure: BaseException) -> None:
        self._failed += 1
        if self._first_failure is None:
            self._first_failure = failure
