"""Detector checkpoints on a compacted Kafka topic: the detector's whole state, input positions included.

Recovery is load-the-latest-checkpoint, then re-read every input partition from the position it holds:
the engine is deterministic and the reorder buffer is part of the state, so the state it reaches is the
one it had, and the alerts it re-sends carry the same ids (a replayed alert is not a new page).

Records. A checkpoint is chunks (each under the broker's size limit) and then a manifest naming them
and their digest; a crash mid-write leaves the previous checkpoint whole. Every key carries the
owner's epoch (the detector group's generation when it took ownership) and the checkpoint's number,
so an owner that was frozen and wakes up after another took over writes records of its own, older
epoch that can never be mixed into the newer owner's checkpoint; loading picks the newest complete
checkpoint by (epoch, number). Once a checkpoint is whole, the records of the one before it are
tombstoned so compaction removes them.

Speed. The state is pickled and compressed in a forked child (a copy-on-write snapshot, as Redis's
BGSAVE does): the event loop stalls only for the fork, a few milliseconds at 100,000 tickets,
instead of seconds of pickling, and keeps serving /ingest, /metrics, heartbeats and the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import pickle
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

import processors
from processors.engine import STATE_FORMAT
from stream.deliveries import Deliveries
from stream.topics import ensure_topic

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 900 * 1024
MANIFEST_PREFIX: Final = b"manifest-"


@dataclass(frozen=True, order=True)
class CheckpointId:
    epoch: int
    """The owner's generation in the detector group: a later owner always has a larger one."""
    number: int
    """Counts the owner's checkpoints."""

    @property
    def manifest_key(self) -> bytes:
        return MANIFEST_PREFIX + b"%012d" % self.epoch

    def chunk_key(self, n: int) -> bytes:
        return b"chunk-%012d-%012d-%d" % (self.epoch, self.number, n)


@dataclass(frozen=True)
class Checkpoint:
    state: Any
    ident: CheckpointId
    keys: frozenset[bytes]
    """The records it is made of (tombstoned once a newer checkpoint is whole)."""


CHILD_NICENESS: Final = 19
"""How much lower the checkpoint child runs than the worker: it pickles the whole state (seconds of CPU
at 100k tickets) while the worker keeps detecting, and on a machine with as many busy processes as
cores it took the core the detector needed: the worker bench saw event -> alert latency climb from
0.2 s to 0.8-1.4 s in the seconds a child ran. At 19 it gets the CPU nobody else wants (and about 1.5%
when all compete, so it always finishes); a checkpoint then takes longer, which delays the next one
and costs nothing else."""


def state_blob(state: Any) -> bytes:
    return zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)


def encode_blob(blob: bytes, ident: CheckpointId) -> list[tuple[bytes, bytes]]:
    """The records of one checkpoint: chunks first, the manifest last."""
    chunks = [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
    records = [(ident.chunk_key(n), chunk) for n, chunk in enumerate(chunks)]
    manifest = {
        "epoch": ident.epoch,
        "number": ident.number,
        "chunks": len(chunks),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "format": STATE_FORMAT,
        "build": processors.BUILD,
    }
    records.append((ident.manifest_key, orjson.dumps(manifest)))
    return records


def encode(state: Any, ident: CheckpointId) -> list[tuple[bytes, bytes]]:
    return encode_blob(state_blob(state), ident)


def decode(latest: dict[bytes, bytes]) -> Checkpoint | None:
    """The newest complete checkpoint among the latest record of each key, or None."""
    manifests = []
    for key, value in latest.items():
        if key.startswith(MANIFEST_PREFIX):
            try:
                manifest = orjson.loads(value)
                manifests.append((CheckpointId(int(manifest["epoch"]), int(manifest["number"])), manifest))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.warning("detector checkpoint manifest %r cannot be read; skipped", key)
    for ident, manifest in sorted(manifests, key=lambda pair: pair[0], reverse=True):
        state = _read(latest, ident, manifest)
        if state is not None:
            keys = frozenset([ident.manifest_key, *(ident.chunk_key(n) for n in range(manifest["chunks"]))])
            return Checkpoint(state[0], ident, keys)
    return None


def _read(latest: dict[bytes, bytes], ident: CheckpointId, manifest: dict[str, Any]) -> tuple[Any] | None:
    if manifest.get("format") != STATE_FORMAT:
        # Written by a version whose state had another shape: rebuild by re-reading the input.
        log.warning(
            "detector checkpoint %s has state format %s, this version reads %s; not used",
            ident,
            manifest.get("format"),
            STATE_FORMAT,
        )
        return None
    if manifest.get("build", "sources") != processors.BUILD:
        # Compiled and interpreted classes pickle their state differently: re-read the input instead.
        log.warning(
            "detector checkpoint %s was written by the %s build, this worker runs the %s; not used",
            ident,
            manifest.get("build", "sources"),
            processors.BUILD,
        )
        return None
    parts = []
    for n in range(int(manifest["chunks"])):
        value = latest.get(ident.chunk_key(n))
        if value is None:
            log.warning("detector checkpoint %s is incomplete (chunk %d); not used", ident, n)
            return None
        parts.append(value)
    blob = b"".join(parts)
    if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
        log.warning("detector checkpoint %s fails its digest; not used", ident)
        return None
    try:
        return (pickle.loads(zlib.decompress(blob)),)
    except Exception:
        log.warning("detector checkpoint %s cannot be read; not used", ident, exc_info=True)
        return None


async def ensure_checkpoint_topic(bootstrap: str, topic: str) -> None:
    config = {"cleanup.policy": "compact", "max.message.bytes": str(2 * CHUNK_BYTES)}
    await ensure_topic(bootstrap, topic, 1, config)


@dataclass(frozen=True)
class Loaded:
    checkpoint: Checkpoint | None
    keys: frozenset[bytes]
    """Every live key of the topic: all of them are obsolete once the new owner's first checkpoint is
    whole (the loaded one included)."""


async def load_latest(bootstrap: str, topic: str) -> Loaded:
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
                if record.key is None:
                    continue
                if record.value is None:  # a tombstone
                    latest.pop(record.key, None)
                else:
                    latest[record.key] = record.value
        return Loaded(decode(latest), frozenset(latest))
    finally:
        await consumer.stop()


async def write(
    producer: AIOKafkaProducer,
    topic: str,
    records: list[tuple[bytes, bytes]],
    obsolete: Iterable[bytes] = (),
) -> int:
    """Write a checkpoint's records (`encode_blob`'s: chunks, then the manifest); then tombstone the
    obsolete keys.

    The manifest goes out only once Kafka has taken every chunk: it replaces the owner's previous
    manifest (one key per epoch), which must stay while the new checkpoint is incomplete. Raises
    `DeliveryFailed` if any record was refused, before tombstoning anything: recovery then still finds
    the checkpoint before."""
    *chunks, manifest = records
    deliveries = Deliveries()
    for part in (chunks, [manifest]):
        for key, value in part:
            deliveries.track(await producer.send(topic, key=key, value=value, partition=0))
        await deliveries.confirm(producer)
    written = {key for key, _ in records}
    for key in obsolete:
        if key not in written:
            await producer.send(topic, key=key, value=None, partition=0)
    return sum(len(value) for _, value in records)


_snapshots = itertools.count(1)


class Snapshot:
    """`state_blob(state)` computed in a forked child from a copy-on-write image of this process.

    `fork` returns as soon as the child exists: the caller's loop stalls only for fork() and may change
    the state right after; `blob()` waits for the child without blocking the loop. Where fork is
    missing (not Linux or macOS) the blob is made inline.
    """

    def __init__(self, path: Path | None, pid: int, inline: bytes | None = None) -> None:
        self._path, self._pid, self._inline = path, pid, inline

    @classmethod
    def fork(cls, state: Any, workdir: Path) -> Snapshot:
        if not hasattr(os, "fork"):
            return cls(None, 0, state_blob(state))
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"detector-snapshot-{os.getpid()}-{next(_snapshots)}.bin"
        pid = os.fork()
        if pid == 0:  # the child: write, then leave without running the parent's exit handlers
            code = 1
            try:
                os.nice(CHILD_NICENESS)
                partial = path.with_suffix(".partial")
                partial.write_bytes(state_blob(state))
                partial.rename(path)
                code = 0
            finally:
                os._exit(code)
        return cls(path, pid)

    async def blob(self) -> bytes:
        if self._path is None:
            return self._inline or b""
        path = self._path
        await asyncio.to_thread(_reap, self._pid)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise RuntimeError("the checkpoint child wrote no snapshot") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # reaped by someone else's handler: the file tells
        os.waitpid(pid, 0)
