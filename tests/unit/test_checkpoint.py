from __future__ import annotations

import hashlib
import pickle
import zlib
from datetime import datetime, timedelta

import orjson

from processors.engine import DetectionEngine
from processors.simulator import MOSCOW, TrafficSimulator
from schemas.config import load_config
from schemas.event import ContactEvent, parse_contact_event
from sinks.rows import TICKET_COLUMNS, ticket_row
from stream import checkpoint


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
    restored = checkpoint.decode(dict(checkpoint.encode(first, next_offset=cut, checkpoint_id=7)))
    assert restored is not None
    assert restored.next_offset == cut
    assert before + run(restored.state, stream[cut:]) == uninterrupted
    assert len(uninterrupted) > 50


def test_large_state_is_chunked_and_a_manifest_comes_last() -> None:
    records = checkpoint.encode(b"x" * (3 * checkpoint.CHUNK_BYTES), next_offset=1, checkpoint_id=1)
    assert records[-1][0] == checkpoint.MANIFEST_KEY
    assert all(len(value) <= checkpoint.CHUNK_BYTES + 8 for _, value in records[:-1])


def test_an_incomplete_or_corrupt_checkpoint_is_ignored() -> None:
    old = dict(checkpoint.encode(list(range(200_000)), next_offset=5, checkpoint_id=1))
    new = checkpoint.encode(list(range(300_000)), next_offset=9, checkpoint_id=2)
    # The new manifest arrived but one chunk is still the old checkpoint's: not usable.
    mixed = {**old, **dict(new[1:])}
    assert checkpoint.decode(mixed) is None
    assert checkpoint.decode({}) is None
    corrupt = dict(new)
    key = b"chunk-0"
    corrupt[key] = corrupt[key][:-1] + bytes([corrupt[key][-1] ^ 1])
    assert checkpoint.decode(corrupt) is None
    good = checkpoint.decode(dict(new))
    assert good is not None
    assert good.next_offset == 9


def test_ticket_snapshot_maps_to_a_row_through_json() -> None:
    engine = DetectionEngine(load_config())
    run(engine, events()[:200])
    ticket = next(iter(engine.tickets.tickets.values()))
    row = dict(
        zip(TICKET_COLUMNS, ticket_row(orjson.loads(orjson.dumps(ticket.snapshot())), 42), strict=True)
    )
    assert row["ticket_id"] == ticket.ticket_id
    assert row["opened_at"] == ticket.opened_at
    assert row["version"] == 42
    assert row["priority"] == ticket.priority.value


def test_the_idle_clock_moves_only_with_quiet_time_beyond_the_grace() -> None:
    from stream.detector import idle_clock

    at = datetime(2026, 11, 24, 20, 0, tzinfo=MOSCOW)
    assert idle_clock(at, idle_seconds=120, grace_seconds=300) is None  # a short pause, or a backlog
    assert idle_clock(at, idle_seconds=1800, grace_seconds=300) == at + timedelta(minutes=25)
    assert idle_clock(at, idle_seconds=1800, grace_seconds=0) is None  # turned off
    assert idle_clock(None, idle_seconds=1800, grace_seconds=300) is None  # nothing seen yet


def test_a_checkpoint_of_another_state_format_or_unreadable_state_is_ignored() -> None:
    records = dict(checkpoint.encode([1, 2, 3], next_offset=4, checkpoint_id=3))
    manifest = orjson.loads(records[checkpoint.MANIFEST_KEY])
    assert manifest["format"] == checkpoint.STATE_FORMAT
    older = {**records, checkpoint.MANIFEST_KEY: orjson.dumps({**manifest, "format": manifest["format"] - 1})}
    assert checkpoint.decode(older) is None
    # Digest right, but the pickle names a class this version does not have.
    blob = zlib.compress(pickle.dumps(datetime(2026, 1, 1)).replace(b"datetime", b"datetimx"), 1)
    broken = {
        b"chunk-0": (3).to_bytes(8, "big") + blob,
        checkpoint.MANIFEST_KEY: orjson.dumps(
            {**manifest, "chunks": 1, "sha256": hashlib.sha256(blob).hexdigest()}
        ),
    }
    assert checkpoint.decode(broken) is None
    assert checkpoint.decode(records) == checkpoint.Checkpoint([1, 2, 3], 4)
