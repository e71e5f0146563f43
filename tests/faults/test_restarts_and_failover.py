"""Backlogs, crashes and failover on the real broker: the worker's alerts equal `replay`'s, exactly.

Each scenario produces a simulated stream keyed by ticket to 4 partitions (the default), runs the
worker as a subprocess through the fault, and compares what reached the alert topics and ClickHouse
with `replay` of the same lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from schemas.config import load_config
from schemas.errors import InvalidEvent
from schemas.event import parse_contact_event
from schemas.settings import Settings
from simulation.traffic import MOSCOW, TrafficSimulator
from sinks.clickhouse import connected
from stream.replay import replay
from stream.topics import ensure_topics
from tests.faults.conftest import FaultRow
from tests.integration.conftest import (
    WorkerProcess,
    consume_until_quiet,
    free_port,
    group_caught_up,
    keyed_by_ticket,
    parsable_count,
    produce,
    scrape,
    wait_for_metrics,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

READ = "contactpulse_detector_events_total{verdict=%s}"


def simulated(hours: float, seed: int) -> list[bytes]:
    start = datetime(2026, 11, 9, 8, tzinfo=MOSCOW)
    simulator = TrafficSimulator(
        seed=seed, start=start, incident_chance_per_business_hour=0.5, duplicate_share=0.02
    )
    return [record.value for record in simulator.advance(start + timedelta(hours=hours))]


def valid_ids(lines: list[bytes]) -> set[str]:
    ids = set()
    for line in lines:
        with contextlib.suppress(InvalidEvent):
            ids.add(parse_contact_event(line).event_id)
    return ids


def replayed(lines: list[bytes]) -> list[bytes]:
    out = io.BytesIO()
    report = replay(lines, load_config(), out, errors=io.StringIO())
    assert report.rejected["late"] == 0
    return out.getvalue().splitlines()


async def published_alerts(settings: Settings) -> list[bytes]:
    bootstrap = settings.kafka_bootstrap_servers
    records = await consume_until_quiet(bootstrap, settings.topic_alerts_oncall, quiet=3.0)
    records += await consume_until_quiet(bootstrap, settings.topic_alerts_product, quiet=3.0)
    return [record.value for record in records]


def compare(scenario: str, expected: list[bytes], published: list[bytes], note: str) -> FaultRow:
    want, got = Counter(expected), Counter(published)
    lost = sum((want - got).values())
    doubled = sum((got - want).values())
    return FaultRow(scenario, len(expected), len(expected) - lost, lost, doubled, note)


async def caught_up(settings: Settings) -> None:
    """The agent forwarded everything, the detector checkpointed past it, the sink wrote it."""
    bootstrap = settings.kafka_bootstrap_servers
    await group_caught_up(bootstrap, f"{settings.app_id}-detector", settings.topic_events, 4, timeout=120)
    await group_caught_up(
        bootstrap, f"{settings.app_id}-clickhouse-sink", settings.topic_events, 4, timeout=120
    )


def stored_events(settings: Settings) -> tuple[int, int]:
    """(rows a FINAL reader sees, distinct event ids among them)."""
    with connected(settings.dsn()) as client:
        row = client.query("SELECT count(), uniqExact(event_id) FROM contact_events FINAL").result_rows[0]
    return int(row[0]), int(row[1])


async def test_a_backlog_on_four_partitions_loses_nothing_as_late(
    isolated_settings: Settings,
    start_worker: Callable[[Settings], WorkerProcess],
    fault_report: list[FaultRow],
) -> None:
    """12 hours of traffic wait on 4 partitions when the worker starts (it was down, or new).

    Before the event-time merge the detector took 1,422 of 4,963 valid events and dropped the rest
    as late: each partition's backlog came in bulk and moved the clock past the others.
    """
    settings = isolated_settings.model_copy(update={"detector_checkpoint_seconds": 2.0})
    lines = simulated(hours=12, seed=31)
    expected = replayed(lines)
    assert len(expected) > 200
    await ensure_topics(settings)
    await produce(settings.kafka_bootstrap_servers, settings.topic_events, keyed_by_ticket(lines))
    worker = start_worker(settings)
    metrics = await wait_for_metrics(
        worker,
        lambda m: sum(m.get(READ % v, 0) for v in ("accepted", "duplicate", "late")) == parsable_count(lines),
        timeout=120,
    )
    assert metrics[READ % "late"] == 0
    assert metrics["contactpulse_dead_letters_total{reason=late}"] == 0
    await caught_up(settings)
    published = await published_alerts(settings)
    worker.stop()
    rows, distinct = stored_events(settings)
    row = compare("backlog of 12 h on 4 partitions", expected, published, f"late=0, rows={rows}")
    fault_report.append(row)
    assert Counter(published) == Counter(expected)
    assert rows == distinct == len(valid_ids(lines))


async def test_three_kills_mid_stream_lose_and_double_nothing(
    isolated_settings: Settings,
    start_worker: Callable[[Settings], WorkerProcess],
    fault_report: list[FaultRow],
) -> None:
    settings = isolated_settings.model_copy(update={"detector_checkpoint_seconds": 0.5})
    lines = simulated(hours=36, seed=32)
    expected = replayed(lines)
    bootstrap = settings.kafka_bootstrap_servers
    await ensure_topics(settings)
    slices = [lines[n * len(lines) // 4 : (n + 1) * len(lines) // 4] for n in range(4)]
    kills = 0
    for part in slices[:3]:
        await produce(bootstrap, settings.topic_events, keyed_by_ticket(part))
        worker = start_worker(settings)
        # Killed while it works: some of this slice read and at least one checkpoint written.
        enough = len(part) // 3
        await wait_for_metrics(
            worker,
            lambda m, n=enough: (
                m.get(READ % "accepted", 0) >= n
                and m.get("contactpulse_detector_checkpoint_seconds_count", 0) >= 1
            ),
            timeout=120,
        )
        worker.stop(kill=True)
        kills += 1
    await produce(bootstrap, settings.topic_events, keyed_by_ticket(slices[3]))
    last = start_worker(settings)
    await wait_for_metrics(last, lambda m: m.get("contactpulse_detector_owner", 0) == 1)
    await caught_up(settings)
    await asyncio.sleep(2)  # idle polls: the merge flushes, deadlines due at the clock fire
    published = await published_alerts(settings)
    last.stop()
    rows, distinct = stored_events(settings)
    row = compare(f"kill -9 x{kills} mid-stream", expected, published, f"rows={rows}/{distinct} distinct")
    fault_report.append(row)
    assert set(published) == set(expected)  # every alert replay finds, nothing replay does not
    assert row.lost == 0
    # Re-sent copies carry the same ids (no new page); the counts say how many a restart re-sent.
    assert rows == distinct == len(valid_ids(lines))


async def test_two_workers_one_publisher_and_a_takeover_within_the_session_timeout(
    isolated_settings: Settings,
    start_worker: Callable[[Settings], WorkerProcess],
    fault_report: list[FaultRow],
) -> None:
    base = isolated_settings.model_copy(update={"detector_checkpoint_seconds": 1.0})
    other = base.model_copy(
        update={
            "web_port": free_port(),
            "data_dir": base.data_dir.parent / "data-b",
            "clickhouse_dsn": f"chdb://{base.data_dir.parent / 'clickhouse-b'}",
        }
    )
    lines = simulated(hours=36, seed=33)
    expected = replayed(lines)
    bootstrap = base.kafka_bootstrap_servers
    await ensure_topics(base)
    half = len(lines) // 2
    await produce(bootstrap, base.topic_events, keyed_by_ticket(lines[:half]))
    first = start_worker(base)
    await wait_for_metrics(first, lambda m: m.get("contactpulse_detector_owner", 0) == 1)
    second = start_worker(other)
    await wait_for_metrics(second, lambda m: "contactpulse_detector_owner" in m)
    await wait_for_metrics(
        first,
        lambda m: (
            sum(m.get(READ % v, 0) for v in ("accepted", "duplicate", "late")) >= parsable_count(lines[:half])
        ),
        timeout=120,
    )
    await asyncio.sleep(base.kafka_session_timeout_seconds)  # a rebalance, if any, has settled
    # One publisher at a time: the second worker joined the group and took nothing from the first.
    before_a, before_b = await scrape(first.metrics_url), await scrape(second.metrics_url)
    assert before_a["contactpulse_detector_owner"] == 1
    assert before_b["contactpulse_detector_owner"] == 0
    sent = "contactpulse_alerts_sent_total"
    assert sum(v for k, v in before_b.items() if k.startswith(sent)) == 0
    assert sum(v for k, v in before_a.items() if k.startswith(sent)) > 0

    await produce(bootstrap, base.topic_events, keyed_by_ticket(lines[half:]))
    await asyncio.sleep(0.5)
    first.stop(kill=True)
    killed_at = time.monotonic()
    await wait_for_metrics(
        second,
        lambda m: m.get("contactpulse_detector_owner", 0) == 1,
        timeout=base.kafka_session_timeout_seconds + 30,
    )
    takeover = time.monotonic() - killed_at
    await caught_up(other)
    await asyncio.sleep(2)
    published = await published_alerts(base)
    second.stop()
    row = compare(
        "two workers, owner killed", expected, published, f"takeover {takeover:.1f} s (session timeout 6 s)"
    )
    fault_report.append(row)
    assert set(published) == set(expected)
    assert row.lost == 0
    assert takeover <= base.kafka_session_timeout_seconds + 10
