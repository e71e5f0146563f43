"""The README's quickstart, `contactpulse demo`, end to end against the real broker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.integration.conftest import settings_env

pytestmark = pytest.mark.integration


def test_demo_shows_traffic_flowing_into_clickhouse(isolated_settings: Settings, tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "stream.cli",
            "demo",
            "--duration",
            "14",
            "--history-hours",
            "10",
            "--speed",
            "3600",
            "--seed",
            "5",
        ],
        env=settings_env(isolated_settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = completed.stdout
    assert completed.returncode == 0, out + completed.stderr
    reports = re.findall(r"produced (\d+)  accepted (\d+)  dead letters (\d+).*ClickHouse rows (\d+)", out)
    assert reports, out
    produced, accepted, dead, rows = map(int, reports[-1])
    assert produced > 100
    assert accepted + dead == produced  # every record was judged: accepted or dead-lettered
    assert rows == accepted
    stored = re.search(r"ClickHouse contact_events: (\d+) events, (\d+) tickets", out)
    assert stored, out
    assert 0 < int(stored.group(1)) <= accepted  # redeliveries fold into one row
    assert re.search(r"produced \d+ records \(\d+ deliberately broken\)", out)
