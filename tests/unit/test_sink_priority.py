"""The ClickHouse sink's writing thread yields the CPU to the event loops: niced alone, not the process."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from prometheus_client import CollectorRegistry

from schemas.settings import Settings
from stream.metrics import WorkerMetrics
from stream.sink import ClickHouseSink

T = TypeVar("T")


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _in_a_new_thread(work: Callable[[], T]) -> T:
    """`work`'s result, run in a thread of its own (so whatever it changes of its thread's priority
    is not the test process's)."""
    seen: list[T] = []
    thread = threading.Thread(target=lambda: seen.append(work()))
    thread.start()
    thread.join()
    return seen[0]


def _niceness_of_a_thread_it_starts() -> int:
    # What chDB's own threads get: they are started by the thread that first runs a query.
    return _in_a_new_thread(_niceness)


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


def _nice_in_a_new_thread(roles: str, niceness: int, tmp_path: Path) -> tuple[bool, int, int]:
    """`nice_a_sink_only_worker` run in a thread of its own (the test process keeps its priority): whether
    it niced, the thread's niceness before and after."""
    from stream.sink import nice_a_sink_only_worker

    def run() -> tuple[bool, int, int]:
        before = _niceness()
        did = nice_a_sink_only_worker(Settings(data_dir=tmp_path, worker_roles=roles, sink_niceness=niceness))
        return did, before, _niceness()

    return _in_a_new_thread(run)


def test_a_worker_that_runs_only_the_sink_is_niced_and_one_with_the_detector_is_not(tmp_path: Path) -> None:
    did, before, after = _nice_in_a_new_thread("sink", 6, tmp_path)
    assert did
    assert after == min(19, before + 6)
    for roles in ("sink,detector", "detector"):
        did, before, after = _nice_in_a_new_thread(roles, 6, tmp_path)
        assert not did
        assert after == before
    did, before, after = _nice_in_a_new_thread("sink", 0, tmp_path)
    assert not did
    assert after == before
