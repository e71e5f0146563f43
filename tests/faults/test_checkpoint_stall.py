"""A checkpoint of a large state never freezes the worker: the snapshot is pickled in a forked child."""

from __future__ import annotations

import asyncio
import pickle
import tempfile
import time
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from processors.engine import DetectionEngine
from schemas.config import load_config
from schemas.event import ContactEvent
from simulation.traffic import MOSCOW
from stream import checkpoint, huge_pages
from tests.faults.conftest import FaultRow

pytestmark = pytest.mark.faults


def large_engine(open_tickets: int) -> DetectionEngine:
    engine = DetectionEngine(load_config())
    start = datetime(2026, 11, 16, 9, tzinfo=MOSCOW)
    for n in range(open_tickets):
        engine.observe(
            ContactEvent.model_validate(
                {
                    "event_id": f"e{n}",
                    "type": "contact_received",
                    "occurred_at": start + timedelta(seconds=n // 4),
                    "ticket_id": f"T-{n}",
                    "channel": "email",
                    "customer_id": f"C-{n % 5000}",
                    "topic": ("billing", "login", "export")[n % 3],
                    "text": "Не работает выгрузка отчёта, ошибка при входе",
                }
            )
        )
    return engine


async def test_a_forked_snapshot_of_100k_tickets_stalls_the_loop_under_50_ms(
    fault_report: list[FaultRow],
) -> None:
    engine = large_engine(100_000)
    assert len(engine.tickets.tickets) == 100_000
    stalls: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            stalls.append(time.perf_counter() - started - 0.005)

    probe = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    with tempfile.TemporaryDirectory() as workdir:
        stalls.clear()
        # As the detector does: the heap into huge pages in a thread, then the fork on the loop.
        await asyncio.to_thread(huge_pages.collapse_heap)
        collapse_stall = max(stalls, default=0.0)
        started = time.perf_counter()
        forked = checkpoint.Snapshot.fork(engine, Path(workdir))
        fork_seconds = time.perf_counter() - started
        blob = await forked.blob()
        child_seconds = time.perf_counter() - started
        left = await asyncio.to_thread(lambda: list(Path(workdir).iterdir()))
        assert left == []  # the snapshot file is gone
    running = False
    await probe
    assert pickle.loads(zlib.decompress(blob)).tickets.tickets.keys() == engine.tickets.tickets.keys()
    longest = max(stalls) * 1000
    print(
        f"snapshot in the child: {child_seconds * 1000:.0f} ms; fork {fork_seconds * 1000:.1f} ms; longest "
        f"loop stall: {longest:.1f} ms ({collapse_stall * 1000:.1f} ms while the heap was collapsed)"
    )
    note = f"child {child_seconds:.1f} s; longest loop stall {longest:.0f} ms (limit 50)"
    fault_report.append(FaultRow("checkpoint of 100k open tickets", 100_000, 100_000, 0, 0, note))
    assert child_seconds > 0.5  # the work kept off the loop is real: the loop ticked all along
    assert len(stalls) > 50
    assert max(stalls) < 0.05
