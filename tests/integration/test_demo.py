"""The README's quickstart, `contactpulse demo`, end to end against the real broker."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schemas.settings import Settings
from stream.demo.processes import broker_answers
from tests.integration.conftest import free_port_pair, settings_env

pytestmark = pytest.mark.integration


def test_demo_shows_traffic_flowing_into_clickhouse(isolated_settings: Settings, tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "stream.cli",
            "demo",
            "--duration",
            "25",
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
    reports = re.findall(
        r"produced (\d+) \((\d+) via adapters\)  accepted (\d+)  rejected (\d+).*redelivered (\d+)  "
        r"alerts (\d+) firing.*"
        r"ClickHouse rows (\d+)",
        out,
    )
    assert reports, out
    produced, via_adapters, accepted, rejected, redelivered, firing, rows = map(int, reports[-1])
    assert produced > 100
    assert via_adapters > 10  # first contacts posted to /ingest as Telegram, Zendesk, e-mail, PBX, chat
    assert accepted + rejected == produced  # every record was judged: accepted or dead-lettered
    assert rows == accepted
    assert redelivered > 0  # the simulator redelivers; the detector counts each event once
    assert firing > 0
    # Alertmanager (installed by the test set-up) delivers digests; the raw per-alert lines give way.
    assert "  ALERT [" not in out
    assert "  → Telegram, on-call chat" in out
    sent = re.search(r"(\d+) alerts? fired; Alertmanager sent (\d+) Telegram messages? to on-call", out)
    assert sent, out
    assert int(sent.group(1)) > 0
    assert int(sent.group(2)) > 0
    assert out.count("  → Telegram, on-call chat") == int(sent.group(2))  # the summary counts what was shown
    mailed = re.search(r"(\d+) e-mails? to product managers and (\d+) e-mails? to engineering", out)
    assert mailed, out
    # Each recipient counted apart, as shown: until 2026-12-03 the engineering e-mails (incidents) were
    # counted as product managers'.
    assert out.count("  → e-mail to engineering@") == int(mailed.group(2))
    shown = out.count("  → e-mail to ")
    assert shown - int(mailed.group(2)) == int(mailed.group(1))
    stored = re.search(r"ClickHouse contact_events, this run: (\d+) events, (\d+) tickets", out)
    assert stored, out
    assert 0 < int(stored.group(1)) <= accepted  # redeliveries fold into one row
    assert re.search(r"produced \d+ records \(\d+ deliberately broken\)", out)
    report = re.search(r"weekly report so far \((\d{4}-W\d\d): (\d+) tickets opened.*\): (\S+\.html)", out)
    assert report, out
    assert int(report.group(2)) > 0
    page = (tmp_path / report.group(3)).read_text(encoding="utf-8")
    assert report.group(1) in page
    assert page.count("<svg") == 2


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_starts_its_own_broker_and_ctrl_c_stops_everything(
    isolated_settings: Settings, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    # The broker listens on port and its controller on port + 1: neither may be the worker's web port.
    port = free_port_pair()
    while isolated_settings.web_port in (port, port + 1):
        port = free_port_pair()
    settings = isolated_settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{port}"})
    env = {**settings_env(settings), "KAFKA_DATA_DIR": str(tmp_path / "kafka")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "demo", "--history-hours", "6", "--speed", "3600"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    seen = []
    deadline = time.monotonic() + 120
    try:
        for line in demo.stdout:
            seen.append(line)
            if re.search(r"accepted [1-9]\d*", line) or time.monotonic() > deadline:
                break
        assert any("starting local Kafka" in line for line in seen), "".join(seen)
        assert broker_answers("127.0.0.1", port), "".join(seen)
        assert broker_answers("127.0.0.1", settings.web_port), "".join(seen)  # the worker's HTTP server
        demo.send_signal(stop_signal)  # Ctrl-C, or `kill` / a closed terminal: the same clean stop
        rest, _ = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            # A failed assertion: Ctrl-C first, so the demo stops the broker and worker it started.
            demo.send_signal(signal.SIGINT)
            try:
                demo.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.communicate()
    out = "".join(seen) + rest
    assert demo.returncode == 0, out
    assert "stopping local Kafka" in out
    assert not broker_answers("127.0.0.1", port), "the broker the demo started is still running"
    assert not broker_answers("127.0.0.1", settings.web_port), "the worker is still running"
    assert re.search(r"ClickHouse contact_events, this run: [1-9]\d* events", out), out
