from __future__ import annotations

import hashlib
import os
import pickle
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

import processors
from processors.engine import DetectionEngine
from processors.ordering import OrderedDetection
from schemas.config import load_config
from schemas.event import ContactEvent, parse_contact_event
from schemas.ticket import TicketSnapshot
from simulation.traffic import MOSCOW, TrafficSimulator
from sinks.rows import TICKET_COLUMNS, ticket_row
from stream import checkpoint
from stream.checkpoint import CheckpointId


def events() -> list[ContactEvent]:
    start = datetime(2026, 11, 16, tzinfo=MOSCOW)
    parsed = []
    for record in TrafficSimulator(seed=5, start=start).advance(start + timedelta(days=2)):
        if record.valid:
            parsed.append(parse_contact_event(record.value))
    return parsed


def run(engine: DetectionEngine, stream: list[ContactEvent]) -> list[bytes]:
    return [alert.to_json() for event in stream for alert in engine.observe(event).alerts]


def test_an_engine_restored_from_a_checkpoint_continues_exactly() -> None:
    stream = events()
    cut = len(stream) // 2
    uninterrupted = run(DetectionEngine(load_config()), stream)
    first = DetectionEngine(load_config())
    before = run(first, stream[:cut])
    restored = checkpoint.decode(dict(checkpoint.encode(first, CheckpointId(3, 7))))
    assert restored is not None
    assert restored.ident == CheckpointId(3, 7)
    assert before + run(restored.state, stream[cut:]) == uninterrupted
    assert len(uninterrupted) > 50


def test_the_merge_buffer_survives_a_checkpoint() -> None:
    """Events waiting in the event-time merge are part of the state: a restart re-reads none of them."""
    stream = events()
    cut = len(stream) // 2

    def feed(ordered: OrderedDetection[int], part: list[ContactEvent], offset: int) -> list[bytes]:
        out = []
        for n, event in enumerate(part, start=offset):
            for done in ordered.offer(n % 2, event, n):
                out += [alert.to_json() for alert in done.outcome.alerts]
        return out

    def finish(ordered: OrderedDetection[int]) -> list[bytes]:
        return [alert.to_json() for done in ordered.flush() for alert in done.outcome.alerts]

    whole: OrderedDetection[int] = OrderedDetection(DetectionEngine(load_config()), [0, 1])
    uninterrupted = feed(whole, stream, 0) + finish(whole)
    first: OrderedDetection[int] = OrderedDetection(DetectionEngine(load_config()), [0, 1])
    before = feed(first, stream[:cut], 0)
    assert first.merge.buffered() > 0
    restored = checkpoint.decode(dict(checkpoint.encode(first, CheckpointId(1, 1))))
    assert restored is not None
    after = feed(restored.state, stream[cut:], cut) + finish(restored.state)
    assert before + after == uninterrupted


def test_large_state_is_chunked_and_a_manifest_comes_last() -> None:
    records = checkpoint.encode(os.urandom(3 * checkpoint.CHUNK_BYTES), CheckpointId(1, 1))
    assert records[-1][0] == CheckpointId(1, 1).manifest_key
    assert len(records) > 2
    assert all(len(value) <= checkpoint.CHUNK_BYTES for _, value in records[:-1])


def test_an_incomplete_or_corrupt_checkpoint_falls_back_to_the_previous_whole_one() -> None:
    old = dict(checkpoint.encode(list(range(200_000)), CheckpointId(1, 1)))
    new = checkpoint.encode(list(range(300_000)), CheckpointId(1, 2))
    # A manifest whose chunk is missing is not used (one owner's manifests share a key, so the
    # owner's older checkpoint is no longer named either).
    missing_chunk = {**old, **dict(new[1:])}
    assert checkpoint.decode(missing_chunk) is None
    assert checkpoint.decode({}) is None
    corrupt = dict(new)
    key = CheckpointId(1, 2).chunk_key(0)
    corrupt[key] = corrupt[key][:-1] + bytes([corrupt[key][-1] ^ 1])
    assert checkpoint.decode(corrupt) is None
    good = checkpoint.decode(dict(new))
    assert good is not None
    assert good.state == list(range(300_000))
    # A newer owner's checkpoint that is incomplete: the older owner's whole one is used.
    newer = checkpoint.encode([1], CheckpointId(2, 1))
    fallback = checkpoint.decode({**dict(new), **dict(newer[1:])})
    assert fallback is not None
    assert fallback.ident == CheckpointId(1, 2)


def test_a_stale_owner_writing_after_a_newer_one_is_never_used() -> None:
    """A frozen owner (epoch 4) wakes after epoch 5 took over and writes its checkpoint last."""
    newer = checkpoint.encode(["epoch 5 state"], CheckpointId(5, 1))
    stale = checkpoint.encode(["epoch 4 state"], CheckpointId(4, 9))
    latest = dict(newer)
    latest.update(dict(stale))  # written later: on a compacted topic these are the latest records
    loaded = checkpoint.decode(latest)
    assert loaded is not None
    assert loaded.state == ["epoch 5 state"]
    assert loaded.keys == frozenset(key for key, _ in newer)
    assert not loaded.keys & frozenset(key for key, _ in stale)


def test_ticket_snapshot_maps_to_a_row_through_json() -> None:
    engine = DetectionEngine(load_config())
    run(engine, events()[:200])
    ticket = next(iter(engine.tickets.tickets.values()))
    published = TicketSnapshot.model_validate_json(engine.tickets.snapshot(ticket).to_json())
    row = dict(zip(TICKET_COLUMNS, ticket_row(published, 42), strict=True))
    assert row["ticket_id"] == ticket.ticket_id
    assert row["opened_at"] == ticket.opened_at
    assert row["opened_at"].tzinfo is UTC
    assert row["version"] == 42
    assert row["priority"] == ticket.priority.value
    assert row["first_response_target_seconds"] == ticket.first_response.target_seconds


def test_a_snapshot_published_before_migration_0004_reads_with_the_defaults_of_its_new_columns() -> None:
    engine = DetectionEngine(load_config())
    run(engine, events()[:200])
    ticket = next(iter(engine.tickets.tickets.values()))
    published = orjson.loads(engine.tickets.snapshot(ticket).to_json())
    added = {"team", "agent", "first_response_sla_seconds", "first_response_breached", "resolution_breached"}
    added |= {"first_response_due_at", "resolution_due_at", "csat_at"}
    old = TicketSnapshot.model_validate({k: v for k, v in published.items() if k not in added})
    assert (old.team, old.agent, old.first_response_breached, old.csat_at) == ("", "", False, None)
    assert old.ticket_id == ticket.ticket_id
    with pytest.raises(ValidationError):  # a field every snapshot has had is required
        TicketSnapshot.model_validate({k: v for k, v in published.items() if k != "status"})


def test_the_idle_clock_moves_only_with_quiet_time_beyond_the_grace() -> None:
    from stream.detector import idle_clock

    at = datetime(2026, 11, 24, 20, 0, tzinfo=MOSCOW)
    assert idle_clock(at, idle_seconds=120, grace_seconds=300) is None  # a short pause, or a backlog
    assert idle_clock(at, idle_seconds=1800, grace_seconds=300) == at + timedelta(minutes=25)
    assert idle_clock(at, idle_seconds=1800, grace_seconds=0) is None  # turned off
    assert idle_clock(None, idle_seconds=1800, grace_seconds=300) is None  # nothing seen yet


def test_a_checkpoint_of_another_state_format_or_unreadable_state_is_ignored() -> None:
    ident = CheckpointId(2, 3)
    records = dict(checkpoint.encode([1, 2, 3], ident))
    manifest = orjson.loads(records[ident.manifest_key])
    assert manifest["format"] == checkpoint.STATE_FORMAT
    older = {**records, ident.manifest_key: orjson.dumps({**manifest, "format": manifest["format"] - 1})}
    assert checkpoint.decode(older) is None
    # Written by the other build (compiled or sources): its classes pickle differently.
    assert manifest["build"] == processors.BUILD
    other = "sources" if processors.BUILD == "compiled" else "compiled"
    by_other = {**records, ident.manifest_key: orjson.dumps({**manifest, "build": other})}
    assert checkpoint.decode(by_other) is None
    # Digest right, but the pickle names a class this version does not have.
    blob = zlib.compress(pickle.dumps(datetime(2026, 1, 1)).replace(b"datetime", b"datetimx"), 1)
    broken = {
        ident.chunk_key(0): blob,
        ident.manifest_key: orjson.dumps(
            {**manifest, "chunks": 1, "sha256": hashlib.sha256(blob).hexdigest()}
        ),
    }
    assert checkpoint.decode(broken) is None
    assert checkpoint.decode({ident.manifest_key: b"{not json"}) is None
    restored = checkpoint.decode(records)
    assert restored is not None
    assert restored.state == [1, 2, 3]


class _Niceness:
    """State that records, when pickled, the priority of the process pickling it."""

    def __init__(self) -> None:
        self.seen: int | None = None

    def __getstate__(self) -> dict[str, int]:
        return {"seen": os.nice(0)}


async def test_the_checkpoint_child_pickles_at_the_lowest_priority_and_the_worker_keeps_its_own(
    tmp_path: Path,
) -> None:
    ours = os.nice(0)
    snapshot = checkpoint.Snapshot.fork(_Niceness(), tmp_path)
    restored = pickle.loads(zlib.decompress(await snapshot.blob()))
    assert restored.seen == min(19, ours + checkpoint.CHILD_NICENESS) == 19
    assert os.nice(0) == ours
