"""The ClickHouse sink's writing thread yields the CPU to the event loops: niced alone, not the process."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry

from schemas.settings import Settings
from stream.metrics import WorkerMetrics
from stream.sink import ClickHouseSink


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _niceness_of_a_thread_it_starts() -> int:
    # What chDB's own threads get: they are started by the thread that first runs a query.
    seen: list[int] = []
    child = threading.Thread(target=lambda: seen.append(_niceness()))
    child.start()
    child.join()
    return seen[0]


def test_the_sinks_thread_and_the_threads_it_starts_are_niced_and_the_loop_is_not(tmp_path: Path) -> None:
    loop_niceness = _niceness()
    settings = Settings(data_dir=tmp_path, sink_niceness=7)
    sink = ClickHouseSink(settings, WorkerMetrics.create(CollectorRegistry()), [])

    async def probe() -> tuple[int, int]:
        return (
            await sink._in_thread(_niceness),
            await sink._in_thread(_niceness_of_a_thread_it_starts),
        )

    try:
        writer, started_by_writer = asyncio.run(probe())
    finally:
        sink._executor.shutdown()
    assert writer == min(19, loop_niceness + 7)
    assert started_by_writer == writer
    assert _niceness() == loop_niceness


def test_a_niceness_of_zero_leaves_the_sink_at_the_loops_priority(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, sink_niceness=0)
    sink = ClickHouseSink(settings, WorkerMetrics.create(CollectorRegistry()), [])
    try:
        writer = asyncio.run(sink._in_thread(_niceness))
    finally:
        sink._executor.shutdown()
    assert writer == _niceness()
