"""The Faust worker and `replay` run the same detectors: for the same input they emit the same alerts."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from processors.engine import DetectionEngine
from schemas.config import load_config
from schemas.errors import InvalidEvent
from schemas.event import parse_contact_event
from schemas.settings import Settings
from simulation.traffic import MOSCOW, TrafficSimulator
from sinks.clickhouse import connected
from stream.keyed_batches import partition_for
from stream.replay import ReplayReport, replay
from stream.topics import ensure_topics, topic_config
from tests.integration.conftest import (
    WorkerProcess,
    consume_all,
    consume_until_quiet,
    group_caught_up,
    judged,
    keyed_by_ticket,
    parsable_count,
    produce,
    set_topic_config,
    wait_for_metrics,
)

pytestmark = pytest.mark.integration


def simulated_lines() -> list[bytes]:
    start = datetime(2026, 11, 9, tzinfo=MOSCOW)
    simulator = TrafficSimulator(
        seed=21, start=start, incident_chance_per_business_hour=0.5, duplicate_share=0.02
    )
    return [r.value for r in simulator.advance(start + timedelta(days=2))]


def replayed(lines: list[bytes]) -> tuple[set[bytes], ReplayReport]:
    """The alert state changes `replay` emits for `lines` (what the worker must publish), and its report."""
    out = io.BytesIO()
    report = replay(lines, load_config(), out, errors=io.StringIO())
    return set(out.getvalue().splitlines()), report


async def published(settings: Settings) -> set[bytes]:
    """Every alert state change on the two alert topics."""
    bootstrap = settings.kafka_bootstrap_servers
    received = await consume_until_quiet(bootstrap, settings.topic_alerts_oncall)
    received += await consume_until_quiet(bootstrap, settings.topic_alerts_product)
    return {record.value for record in received}


async def test_worker_alerts_equal_replay_alerts(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    settings = isolated_settings  # 4 partitions, records keyed by ticket as producers key them
    lines = simulated_lines()
    parsable = parsable_count(lines)

    expected_out = io.BytesIO()
    report = replay(lines, load_config(), expected_out, errors=io.StringIO())
    expected = expected_out.getvalue().splitlines()
    assert report.alerts == len(expected) > 100
    assert report.rejected["duplicate"] > 0

    await ensure_topics(settings)
    await produce(settings.kafka_bootstrap_servers, settings.topic_events, keyed_by_ticket(lines))
    worker = start_worker(settings)
    read = "contactpulse_detector_events_total{verdict=%s}"
    metrics = await wait_for_metrics(
        worker,
        lambda m: (
            sum(m.get(read % v, 0) for v in ("accepted", "duplicate", "late")) == parsable
            and sum(v for k, v in m.items() if k.startswith("contactpulse_alerts_sent_total"))
            == len(expected)
        ),
        timeout=120,
    )
    # Every poll times its three phases (observed together at its end: a scrape may fall between them);
    # applying thousands of events took measurable time.
    poll = "contactpulse_detector_poll_seconds_%s{phase=%s}"
    polls = {phase: metrics[poll % ("count", phase)] for phase in ("fetch", "apply", "publish")}
    assert polls["apply"] > 0
    assert max(polls.values()) - min(polls.values()) <= 1
    assert metrics[poll % ("sum", "apply")] > 0
    for_product = sum(1 for line in expected if orjson.loads(line)["audience"] == "product")
    assert for_product > 0
    oncall = await consume_all(
        settings.kafka_bootstrap_servers, settings.topic_alerts_oncall, len(expected) - for_product
    )
    product = await consume_all(settings.kafka_bootstrap_servers, settings.topic_alerts_product, for_product)
    produced = [r.value for r in oncall + product]

    assert Counter(produced) == Counter(expected)

    # Per alert, the state changes come in the same order (one alert id, one partition).
    def by_id(values: list[bytes]) -> dict[str, list[bytes]]:
        grouped: dict[str, list[bytes]] = {}
        for value in values:
            grouped.setdefault(orjson.loads(value)["alert_id"], []).append(value)
        return grouped

    assert by_id(produced) == by_id(expected)

    # The same alerts and the engine's ticket state reach ClickHouse through the sink.
    engine = DetectionEngine(load_config())
    for line in lines:
        with contextlib.suppress(InvalidEvent):
            engine.observe(parse_contact_event(line))
    engine.advance_to(engine.clock)  # type: ignore[arg-type]
    for topic in (settings.topic_alerts_oncall, settings.topic_alerts_product, settings.topic_tickets):
        await group_caught_up(
            settings.kafka_bootstrap_servers, f"{settings.app_id}-clickhouse-sink", topic, 4
        )
    worker.stop()
    with connected(settings.dsn()) as client:
        stored_alerts = client.query("SELECT count() FROM alerts FINAL").result_rows[0][0]
        tickets = client.query(
            "SELECT ticket_id, status, priority, first_response_at, resolution_sla_seconds, touches "
            "FROM tickets FINAL ORDER BY ticket_id"
        ).result_rows
    assert stored_alerts == len(set(expected))
    snapshots = sorted(
        (engine.tickets.snapshot(t) for t in engine.tickets.tickets.values()), key=lambda s: s.ticket_id
    )
    assert [row[0] for row in tickets] == [s.ticket_id for s in snapshots]
    for row, snap in zip(tickets, snapshots, strict=True):
        first_response = snap.first_response_at
        assert row[1:3] == (snap.status, snap.priority)
        assert (row[3].replace(tzinfo=UTC) if row[3] else None) == (
            first_response.astimezone(UTC).replace(microsecond=first_response.microsecond // 1000 * 1000)
            if first_response
            else None
        )
        assert row[4] == snap.resolution_sla_seconds
        assert row[5] == snap.touches


async def test_detector_recovers_from_its_checkpoint_after_a_crash(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    settings = isolated_settings.model_copy(update={"detector_checkpoint_seconds": 0.5})
    lines = simulated_lines()
    half = len(lines) // 2
    expected, _ = replayed(lines)

    read = "contactpulse_detector_events_total{verdict=%s}"

    def detected(m: dict[str, float]) -> float:
        return sum(m.get(read % v, 0) for v in ("accepted", "duplicate", "late"))

    await ensure_topics(settings)
    await produce(settings.kafka_bootstrap_servers, settings.topic_events, keyed_by_ticket(lines[:half]))
    first = start_worker(settings)
    await wait_for_metrics(
        first,
        lambda m: (
            detected(m) == parsable_count(lines[:half])
            and m.get("contactpulse_detector_checkpoint_seconds_count", 0) >= 2
        ),
    )
    first.stop(kill=True)

    await produce(settings.kafka_bootstrap_servers, settings.topic_events, keyed_by_ticket(lines[half:]))
    second = start_worker(settings)
    await wait_for_metrics(second, lambda m: m.get(read % "accepted", 0) > 0)
    # Caught up: the detector has checkpointed past everything.
    await group_caught_up(
        settings.kafka_bootstrap_servers, f"{settings.app_id}-detector", settings.topic_events, 4
    )
    await asyncio.sleep(2)  # one idle poll: deadlines due at the stream clock fire
    second.stop()
    assert "detector restored from checkpoint" in second.log()
    offsets = second.log().split("detector restored from checkpoint ")[1].split(" at offsets ")[1].split()[0]
    restored_at = {int(p): int(o) for p, o in (pair.split(":") for pair in offsets.split(","))}
    assert len(restored_at) == 4
    assert sum(restored_at.values()) > 0

    # Every alert replay emits was published; alerts re-sent after the restart repeat the same bytes.
    assert await published(settings) == expected


async def test_alerts_kafka_refused_are_sent_again_from_the_last_checkpoint(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    """A send the broker refuses (here: every on-call alert too large for the topic) must not be covered
    by a checkpoint: once the topic takes them again, every alert replay emits is on its topic."""
    settings = isolated_settings.model_copy(update={"detector_checkpoint_seconds": 0.5})
    lines = simulated_lines()
    half = len(lines) // 2
    expected, _ = replayed(lines)
    bootstrap, oncall = settings.kafka_bootstrap_servers, settings.topic_alerts_oncall

    await ensure_topics(settings)
    worker = start_worker(settings)
    await wait_for_metrics(worker, lambda m: m.get("contactpulse_detector_owner") == 1)
    # After the worker's own `ensure_topics` (it re-applies the alert topics' settings at start).
    await set_topic_config(bootstrap, oncall, topic_config(settings, oncall) | {"max.message.bytes": "100"})
    await produce(bootstrap, settings.topic_events, keyed_by_ticket(lines[:half]))
    await wait_for_metrics(
        worker,
        lambda m: (
            judged(m) >= parsable_count(lines[:half])
            and m.get("contactpulse_detector_delivery_failures_total", 0) > 0
        ),
    )
    await asyncio.sleep(2)  # checkpoints are due every 0.5 s: none may cover a refused alert

    await set_topic_config(bootstrap, oncall, topic_config(settings, oncall))
    await produce(bootstrap, settings.topic_events, keyed_by_ticket(lines[half:]))
    await group_caught_up(bootstrap, f"{settings.app_id}-detector", settings.topic_events, 4)
    await asyncio.sleep(2)  # one idle poll: deadlines due at the stream clock fire
    worker.stop()

    assert await published(settings) == expected
    assert "rewinding to the last checkpoint" in worker.log()


async def test_a_burst_after_a_quiet_spell_loses_no_event_as_late(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    """Every partition idle (caught up, quiet past the idle time), then a backlog of hours arrives, one
    partition's share 0.1 s before the rest's: the first share must not overtake the others as if they
    had nothing older to say, or their events are late and dead-lettered."""
    # Partitions idle after 0.5 s; offsets committed with each checkpoint (caught up is read from them).
    settings = isolated_settings.model_copy(update={"detector_checkpoint_seconds": 1.0})
    lines = simulated_lines()
    warm, burst = lines[:300], lines[300:]
    expected, report = replayed(lines)
    assert report.rejected["late"] == 0
    bootstrap = settings.kafka_bootstrap_servers

    await ensure_topics(settings)
    worker = start_worker(settings)
    await produce(bootstrap, settings.topic_events, keyed_by_ticket(warm))
    await wait_for_metrics(worker, lambda m: judged(m) >= parsable_count(warm))
    await asyncio.sleep(1.5)  # every partition is idle now

    records = keyed_by_ticket(burst)
    first = [r for r in records if r[0] is not None and partition_for(r[0], [0, 1, 2, 3]) == 0]
    rest = [r for r in records if r[0] is None or partition_for(r[0], [0, 1, 2, 3]) != 0]
    assert len(first) > 500
    assert len(rest) > 1500
    await produce(bootstrap, settings.topic_events, first)
    await asyncio.sleep(0.1)  # within the idle time: the others still had time to deliver
    await produce(bootstrap, settings.topic_events, rest)
    metrics = await wait_for_metrics(worker, lambda m: judged(m) >= parsable_count(lines), timeout=120)
    assert metrics.get('contactpulse_detector_events_total{verdict="late"}', 0) == 0, worker.log()[-3000:]
    await group_caught_up(bootstrap, f"{settings.app_id}-detector", settings.topic_events, 4)
    await asyncio.sleep(2)  # one idle poll: deadlines due at the stream clock fire
    worker.stop()
    assert await published(settings) == expected


async def test_a_new_owner_releases_the_buffered_tail_of_its_checkpoint_with_no_new_input(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    """The owner checkpointed after reading everything, while the newest events still waited in the
    merge for the other partitions to go idle, and died. Its successor restores that buffer and has
    nothing new to read: the buffered events must still come out once the partitions are idle (the
    fault suite's failover lost a negative-CSAT alert this way: no arrival, so no release, ever)."""
    # Idle only after 8 s: the first owner's checkpoints (every 0.3 s) hold the tail before it leaves.
    settings = isolated_settings.model_copy(
        update={"detector_checkpoint_seconds": 0.3, "detector_partition_idle_seconds": 8.0}
    )
    lines = simulated_lines()
    expected, _ = replayed(lines)
    bootstrap = settings.kafka_bootstrap_servers
    buffered = "contactpulse_detector_buffered_events"

    await ensure_topics(settings)
    await produce(bootstrap, settings.topic_events, keyed_by_ticket(lines))
    first = start_worker(settings)
    await group_caught_up(bootstrap, f"{settings.app_id}-detector", settings.topic_events, 4)
    at_kill = await wait_for_metrics(first, lambda m: m.get(buffered, 0) > 0)
    first.stop(kill=True)
    assert judged(at_kill) < parsable_count(lines)  # the tail had not left the merge

    second = start_worker(settings)
    await wait_for_metrics(
        second,
        lambda m: m.get("contactpulse_detector_owner") == 1 and judged(m) > 0 and m.get(buffered, 1) == 0,
        timeout=60,
    )
    await asyncio.sleep(2)  # one idle poll: deadlines due at the stream clock fire
    second.stop()
    assert "detector restored from checkpoint" in second.log()
    assert await published(settings) == expected
