"""Detector checkpoints on a compacted Kafka topic: the engine's whole state plus the input offset.

Recovery is load-the-latest-checkpoint, then re-read the ordered input from its offset: the engine is
deterministic, so the state it reaches is the one it had, and the alerts it re-sends carry the same ids
(a replayed alert is not a new page). Chunks keep each record under the broker's size limit; a manifest
written last names the chunks of one checkpoint and their digest, so a crash mid-write leaves the
previous checkpoint readable.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import pickle
import zlib
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from processors.engine import STATE_FORMAT

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 900 * 1024
MANIFEST_KEY: Final = b"manifest"


@dataclass(frozen=True)
class Checkpoint:
    state: Any
    next_offset: int


def encode(state: Any, next_offset: int, checkpoint_id: int) -> list[tuple[bytes, bytes]]:
    """The records of one checkpoint: chunks first, the manifest last."""
    blob = zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)
    chunks = [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
    records = [
        (f"chunk-{n}".encode(), checkpoint_id.to_bytes(8, "big") + chunk) for n, chunk in enumerate(chunks)
    ]
    manifest = {
        "id": checkpoint_id,
        "chunks": len(chunks),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "next_offset": next_offset,
        "format": STATE_FORMAT,
    }
    records.append((MANIFEST_KEY, orjson.dumps(manifest)))
    return records


def decode(latest: dict[bytes, bytes]) -> Checkpoint | None:
    """The checkpoint the latest record of each key describes, or None when it is incomplete."""
    raw_manifest = latest.get(MANIFEST_KEY)
    if raw_manifest is None:
        return None
    manifest = orjson.loads(raw_manifest)
    if manifest.get("format") != STATE_FORMAT:
        # Written by a version whose engine state had another shape: rebuild by re-reading the input.
        log.warning(
            "detector checkpoint %s has state format %s, this version reads %s; starting over",
            manifest.get("id"),
            manifest.get("format"),
            STATE_FORMAT,
        )
        return None
    parts = []
    for n in range(manifest["chunks"]):
        value = latest.get(f"chunk-{n}".encode())
        if value is None or int.from_bytes(value[:8], "big") != manifest["id"]:
            log.warning("detector checkpoint %s is incomplete (chunk %d); starting over", manifest["id"], n)
            return None
        parts.append(value[8:])
    blob = b"".join(parts)
    if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
        log.warning("detector checkpoint %s fails its digest; starting over", manifest["id"])
        return None
    try:
        state = pickle.loads(zlib.decompress(blob))
    except Exception:
        log.warning("detector checkpoint %s cannot be read; starting over", manifest["id"], exc_info=True)
        return None
    return Checkpoint(state, int(manifest["next_offset"]))


async def ensure_checkpoint_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            config = {"cleanup.policy": "compact", "max.message.bytes": str(2 * CHUNK_BYTES)}
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=config)])
    finally:
        await admin.close()


async def load_latest(bootstrap: str, topic: str) -> Checkpoint | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * CHUNK_BYTES,
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        latest: dict[bytes, bytes] = {}
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            for record in batch.get(partition, []):
                if record.key is not None and record.value is not None:
                    latest[record.key] = record.value
        return decode(latest)
    finally:
        await consumer.stop()


async def save(
    producer: AIOKafkaProducer, topic: str, state: Any, next_offset: int, checkpoint_id: int
) -> int:
    records = encode(state, next_offset, checkpoint_id)
    for key, value in records:
        await producer.send(topic, key=key, value=value, partition=0)
    await producer.flush()
    return sum(len(v) for _, v in records)
