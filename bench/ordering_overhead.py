"""What the event-time merge costs replay: the engine fed the same parsed events directly and through
`OrderedDetection`, interleaved in one process, best of N runs each.

    .venv/bin/python bench/ordering_overhead.py [--days 7] [--repeat 3]

Both runs produce the same alerts on this stream (it is in order within the reorder window), which the
script checks; the figure that matters is the ratio. Nothing here gates CI.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.replay_throughput import make_stream
from processors.engine import DetectionEngine
from processors.ordering import OrderedDetection
from schemas.config import load_config
from schemas.errors import InvalidEvent
from schemas.event import ContactEvent, parse_contact_event
from stream.cli import tune_gc_for_long_lived_state
from stream.replay import RELEASE_EVERY


def direct(events: list[ContactEvent]) -> tuple[float, int]:
    engine = DetectionEngine(load_config(), track_ticket_changes=False)
    started = time.perf_counter()
    alerts = 0
    for event in events:
        alerts += len(engine.observe(event).alerts)
    return time.perf_counter() - started, alerts


def merged(events: list[ContactEvent]) -> tuple[float, int]:
    ordered: OrderedDetection[None] = OrderedDetection(
        DetectionEngine(load_config(), track_ticket_changes=False)
    )
    started = time.perf_counter()
    alerts = pending = 0
    for event in events:  # as `replay` drives it
        for done in ordered.offer(0, event, None, release=False):
            alerts += len(done.outcome.alerts)
        pending += 1
        if pending == RELEASE_EVERY:
            for done in ordered.release():
                alerts += len(done.outcome.alerts)
            pending = 0
    for done in ordered.flush():
        alerts += len(done.outcome.alerts)
    return time.perf_counter() - started, alerts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    events = []
    for line in make_stream(args.days, 11):
        with contextlib.suppress(InvalidEvent):
            events.append(parse_contact_event(line))
    tune_gc_for_long_lived_state()
    best_direct = best_merged = float("inf")
    for _ in range(args.repeat):
        seconds, direct_alerts = direct(events)
        best_direct = min(best_direct, seconds)
        seconds, merged_alerts = merged(events)
        best_merged = min(best_merged, seconds)
    print(f"events: {len(events)}; alert state changes: direct {direct_alerts}, merged {merged_alerts}")
    print(f"engine fed directly:        {len(events) / best_direct:>9,.0f} events/s")
    print(f"engine behind the merge:    {len(events) / best_merged:>9,.0f} events/s")
    print(f"merged / direct: {best_direct / best_merged:.3f}")


if __name__ == "__main__":
    main()
