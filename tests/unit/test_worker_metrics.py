"""The worker's /metrics carries the process's own figures beside ContactPulse's."""

from __future__ import annotations

import gc
from pathlib import Path

from prometheus_client import CollectorRegistry

from schemas.settings import Settings
from stream.app import create_app
from stream.metrics import WorkerMetrics, observe_gc_pauses


def test_the_worker_reports_its_cpu_time_and_memory(tmp_path: Path) -> None:
    built = create_app(Settings(data_dir=tmp_path))
    sum(range(3_000_000))  # some CPU time of this process, whatever ran before
    value = built.registry.get_sample_value  # what /metrics renders (generate_latest of this registry)
    assert (value("process_cpu_seconds_total") or 0.0) > 0.0
    assert (value("process_resident_memory_bytes") or 0.0) > 10 * 1024 * 1024
    assert value("contactpulse_events_accepted_total") is not None


class _Cyclic:
    def __init__(self) -> None:
        self.other: _Cyclic | None = None


def test_every_collection_is_timed_and_what_it_found_counted() -> None:
    metrics = WorkerMetrics.create(CollectorRegistry())
    before = len(gc.callbacks)
    observe_gc_pauses(metrics)
    try:
        first, second = _Cyclic(), _Cyclic()
        first.other, second.other = second, first
        del first, second  # garbage only a collection finds
        gc.collect(2)
    finally:
        del gc.callbacks[before:]
    assert metrics.gc_pause_seconds.labels(generation="2")._sum.get() > 0.0
    assert metrics.gc_collected_objects.labels(generation="2")._value.get() >= 2
