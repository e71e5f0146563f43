"""The compiled detection core (deploy/native/build, mypyc) decides exactly as its sources do.

Replay of the realistic month writes the same alert bytes either way. Comparing them is what found the
two places where compiled code behaved differently: `day in holidays_table` looked the table up as a
plain dict, skipping the holidays package's fill-in of a year on first use (4 November then counted as a
working day and an SLA due date moved a day early), and a `sum()` of floats was checked as an int.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import processors
from simulation.traffic import realistic_month, realistic_month_end

_ROOT = Path(__file__).resolve().parents[2]
_REPLAY = """
import sys
import processors
from stream.cli import main
print(processors.BUILD, file=sys.stderr)
sys.argv = ["contactpulse", "replay", sys.argv[1], "--alerts", sys.argv[2]]
sys.exit(main())
"""


def test_the_suite_runs_the_compiled_detection_core() -> None:
    # What `make test` builds and a worker runs by default; the sources are compared with it below.
    assert processors.BUILD == "compiled", processors.BUILD_NOTE


def replay_with(build: str, events: Path, alerts: Path) -> str:
    env = {**os.environ, "CONTACTPULSE_BUILD": build}
    done = subprocess.run(
        [sys.executable, "-c", _REPLAY, str(events), str(alerts)],
        env=env,
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()[0]


def test_compiled_and_interpreted_replay_of_a_month_write_the_same_alerts(tmp_path: Path) -> None:
    events = tmp_path / "month.jsonl"
    records = realistic_month().advance(realistic_month_end())
    events.write_bytes(b"".join(record.value + b"\n" for record in records))
    compiled, interpreted = tmp_path / "compiled.jsonl", tmp_path / "sources.jsonl"
    assert replay_with("compiled", events, compiled) == "compiled"  # any value but `sources`: the default
    assert replay_with("sources", events, interpreted) == "sources"
    lines = compiled.read_bytes().splitlines()
    assert len(lines) > 20_000  # a month of alert state changes, holidays and SLA clocks included
    assert compiled.read_bytes() == interpreted.read_bytes()
