"""Replay throughput against the bare floor, measured in the same process on the same lines.

The stream is simulated, serialized as a JSON-lines file's bytes and split into lines again, so both runs
read lines laid out as a file read into memory gives them (not scattered among the simulator's objects).
Both run in memory: no file I/O is timed, in either.

    .venv/bin/python bench/replay_throughput.py [--days N] [--repeat 5]

The stream is the realistic simulated month (`simulation.traffic.realistic_month`: the calibrated
organisation with its incidents, spike, outage and feature-request families), the figure issue 12 sets
a goal for; `--days N` replays N days of the denser stress stream instead (300 new tickets at the
peak hour, the figure earlier READMEs quoted).

The floor is what any consumer of this stream must do per event: orjson decode, pydantic validation
of the contract, one dict counter update. `replay` adds the detectors, the clock and deadlines, and
alert serialization. The figure that matters is ours / floor; absolute numbers move with the machine.
Nothing here gates CI.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import processors
from schemas.config import load_config
from schemas.event import ContactEvent
from simulation.traffic import MOSCOW, TrafficSimulator, realistic_month, realistic_month_end
from stream.cli import tune_gc_for_long_lived_state
from stream.replay import replay


def make_stream(days: int, seed: int, tickets_per_peak_hour: float = 300.0) -> list[bytes]:
    start = datetime(2026, 10, 5, tzinfo=MOSCOW)
    simulator = TrafficSimulator(seed=seed, start=start, new_tickets_per_peak_hour=tickets_per_peak_hour)
    records = simulator.advance(start + timedelta(days=days))
    return b"\n".join(record.value for record in records).split(b"\n")


def month_stream() -> list[bytes]:
    records = realistic_month().advance(realistic_month_end())
    return b"\n".join(record.value for record in records).split(b"\n")


def floor(lines: list[bytes]) -> float:
    counter: Counter[str] = Counter()
    started = time.perf_counter()
    for line in lines:
        try:
            event = ContactEvent.model_validate(orjson.loads(line))
        except ValueError:
            continue
        counter[event.ticket_id] += 1
    return time.perf_counter() - started


def ours(lines: list[bytes]) -> tuple[float, int]:
    config = load_config()
    out, errors = io.BytesIO(), io.StringIO()
    started = time.perf_counter()
    report = replay(lines, config, out, errors=errors)
    return time.perf_counter() - started, report.alerts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=None, help="the stress stream, this many days")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11, help="the stress stream's seed")
    args = parser.parse_args()
    lines = month_stream() if args.days is None else make_stream(args.days, args.seed)
    tune_gc_for_long_lived_state()  # as `contactpulse replay` runs; the floor runs under it too
    tickets = len(
        {
            orjson.loads(line).get("ticket_id")
            for line in lines
            if line.startswith(b"{") and line.endswith(b"}")
        }
    )
    floor_best = min(floor(lines) for _ in range(args.repeat))
    runs = [ours(lines) for _ in range(args.repeat)]
    ours_best = min(seconds for seconds, _ in runs)
    alerts = runs[0][1]
    name = "realistic month" if args.days is None else f"stress stream, {args.days} days"
    print(
        f"stream ({name}): {len(lines)} events, {tickets} tickets "
        f"({len(lines) / max(tickets, 1):.1f} events/ticket), {alerts} alert state changes"
    )
    print(f"detection core: {processors.BUILD} ({processors.BUILD_NOTE})")
    print(f"floor  (decode + validate + count): {len(lines) / floor_best:10,.0f} events/s")
    print(f"replay (all detectors, alerts out): {len(lines) / ours_best:10,.0f} events/s")
    print(f"replay / floor: {floor_best / ours_best:.2f}")


if __name__ == "__main__":
    main()
