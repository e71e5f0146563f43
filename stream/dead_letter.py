"""The dead-letter record format: the original bytes untouched as the value, the reason in headers.

Keeping the value byte-for-byte means a fixed record can be re-produced to its topic as it is, and
nothing about the failure (encoding, size, broken JSON) is hidden by re-serialization.

A payload whose sender was not authenticated (no valid signature or token), or that came while its
source was over its dead-letter budget, is *withheld*: the value is empty and the headers carry its
SHA-256, its size and why (`contactpulse.withheld`), so it is counted and traceable (the sender can
match the hash) without storing whatever bytes and personal data an anonymous sender chose.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from aiokafka.errors import MessageSizeTooLargeError

from schemas.errors import (
    HEADER_DETAIL,
    HEADER_OFFSET,
    HEADER_ORIGINAL_SIZE,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_SHA256,
    HEADER_TOPIC,
    HEADER_WITHHELD,
    DeadLetterReason,
)

__all__ = [
    "HEADER_DETAIL",
    "HEADER_OFFSET",
    "HEADER_ORIGINAL_SIZE",
    "HEADER_PARTITION",
    "HEADER_REASON",
    "HEADER_SHA256",
    "HEADER_TOPIC",
    "HEADER_WITHHELD",
    "DeadLetter",
    "deliver",
    "read_headers",
]
log = logging.getLogger(__name__)

WITHHELD_UNVERIFIED: Final = "unverified_sender"
WITHHELD_OVER_BUDGET: Final = "over_budget"
_MAX_DETAIL_BYTES: Final = 4096

DEAD_LETTER_MAX_BYTES: Final = 8 * 1024 * 1024
"""Records up to this size are dead-lettered whole: the broker's message.max.bytes (deploy/kafka/kafkactl,
docker-compose.yml), so any record a producer could write."""
RECORD_HEADROOM_BYTES: Final = 64 * 1024
"""What headers and batch framing add to a record's value, in producer request and topic size limits."""

DEAD_LETTER_TRUNCATED_BYTES: Final = 64 * 1024
"""A record the dead-letter topic refuses as too large is kept as its first 64 KiB."""


@dataclass(frozen=True)
class DeadLetter:
    reason: DeadLetterReason
    detail: str
    topic: str
    partition: int
    offset: int
    original_size: int | None = None
    withheld: str | None = None
    sha256: str | None = None

    @classmethod
    def for_record(cls, reason: DeadLetterReason, detail: str, message: Any) -> DeadLetter:
        """The letter of a consumed Kafka record (anything with topic, partition and offset)."""
        return cls(reason, detail, message.topic, message.partition, message.offset)

    @classmethod
    def for_failure(cls, reason: DeadLetterReason, exc: BaseException, message: Any) -> DeadLetter:
        return cls.for_record(reason, f"{type(exc).__name__}: {exc}", message)

    def truncated(self, original_size: int) -> DeadLetter:
        """The same letter for a value cut to DEAD_LETTER_TRUNCATED_BYTES."""
        return replace(self, original_size=original_size)

    def withhold(self, why: str, value: bytes) -> tuple[DeadLetter, bytes]:
        """This letter without the record's bytes: their hash, size and `why` instead."""
        letter = replace(
            self, withheld=why, sha256=hashlib.sha256(value).hexdigest(), original_size=len(value)
        )
        return letter, b""

    def headers(self) -> list[tuple[str, bytes]]:
        detail = self.detail.encode("utf-8")[:_MAX_DETAIL_BYTES]
        headers = [
            (HEADER_REASON, self.reason.value.encode()),
            (HEADER_DETAIL, detail),
            (HEADER_TOPIC, self.topic.encode()),
            (HEADER_PARTITION, str(self.partition).encode()),
            (HEADER_OFFSET, str(self.offset).encode()),
        ]
        if self.original_size is not None:
            headers.append((HEADER_ORIGINAL_SIZE, str(self.original_size).encode()))
        if self.withheld is not None and self.sha256 is not None:
            headers += [(HEADER_WITHHELD, self.withheld.encode()), (HEADER_SHA256, self.sha256.encode())]
        return headers


def read_headers(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes]) -> dict[str, str]:
    """Decode the dead-letter headers of a consumed record (the sink, tests, the demo, operators' tools)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {key: value.decode("utf-8", errors="replace") for key, value in items}


DeadLetterProduce = Callable[[bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[None]]
"""Write one record (key, value, headers) to the dead-letter topic; returns once Kafka acknowledged it."""


async def deliver(
    produce: DeadLetterProduce,
    key: bytes | None,
    value: bytes,
    letter: DeadLetter,
    delay_for: Callable[[int], float],
) -> DeadLetter:
    """Write a dead letter until Kafka has it (acks=all); return the letter as written.

    Never raises for a Kafka error: the caller acks the original record only after this returns, so
    giving up would lose it. A record larger than even the dead-letter topic takes is kept as its head,
    and the letter says so, rather than retried forever.
    """
    attempt = 0
    while True:
        try:
            await produce(key, value, letter.headers())
            return letter
        except MessageSizeTooLargeError:
            letter = letter.truncated(len(value))
            value = value[:DEAD_LETTER_TRUNCATED_BYTES]
        except Exception as exc:
            delay = delay_for(attempt)
            log.warning("dead letter not accepted by Kafka (%s); retry in %.1f s", exc, delay)
            attempt += 1
            await asyncio.sleep(delay)
