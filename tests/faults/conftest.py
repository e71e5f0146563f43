"""The fault suite: the real broker, the worker as a subprocess, exact counts against `replay`.

Each scenario records one row (sent, delivered, lost, doubled); the table is printed at the end of
the run, and the README quotes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.conftest import (
    isolated_settings,
    kafka_bootstrap,
    private_broker,
    start_notifier,
    start_worker,
)

__all__ = ["isolated_settings", "kafka_bootstrap", "private_broker", "start_notifier", "start_worker"]


@dataclass(frozen=True)
class FaultRow:
    scenario: str
    sent: int
    delivered: int
    lost: int
    doubled: int
    note: str = ""


RESULTS: list[FaultRow] = []


@pytest.fixture
def fault_report() -> Iterator[list[FaultRow]]:
    rows: list[FaultRow] = []
    yield rows
    RESULTS.extend(rows)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    header = f"{'scenario':<48} {'sent':>7} {'delivered':>9} {'lost':>5} {'doubled':>7}  note"
    terminalreporter.section("fault suite")
    terminalreporter.write_line(header)
    for row in RESULTS:
        terminalreporter.write_line(
            f"{row.scenario:<48} {row.sent:>7} {row.delivered:>9} {row.lost:>5} {row.doubled:>7}  {row.note}"
        )
