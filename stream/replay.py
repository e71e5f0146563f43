"""`contactpulse replay`: the detection engine over a JSON-lines file, deterministically.

Events reach the engine through the same event-time merge as in the worker (one source: the file), so
disorder within `reorder_seconds` is sorted out exactly as the worker sorts it out across partitions.
Every alert state change is written as one JSON line. Malformed lines, duplicates and late events are
counted on stderr and, with --dead-letter, written there with their reason; none stops the replay.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Final

import orjson

from processors.engine import REFUSAL_REASON, DetectionEngine, Verdict
from processors.ordering import Applied, OrderedDetection
from schemas.alert import Alert
from schemas.config import DetectionConfig
from schemas.errors import InvalidEvent
from schemas.event import ContactEvent, parse_contact_event

RELEASE_EVERY: Final = 256
"""Lines between two releases of the merge, as the worker releases once per poll: releasing after every
line costs a tenth of replay's time in calls; for input in order within the reorder window the order is
the same (the sorted one) either way."""


@dataclass
class ReplayReport:
    lines: int = 0
    accepted: int = 0
    alerts: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(self.rejected.items())) or "none"
        return (
            f"replay: {self.lines} lines, {self.accepted} events accepted, rejected: {rejected}; "
            f"{self.alerts} alert state changes"
        )


def replay(
    lines: Iterable[bytes],
    config: DetectionConfig,
    alerts_out: IO[bytes],
    until: datetime | None = None,
    dead_letters: IO[bytes] | None = None,
    errors: IO[str] | None = None,
) -> ReplayReport:
    errors = errors if errors is not None else sys.stderr  # looked up now: tests and callers swap it
    engine = DetectionEngine(config, track_ticket_changes=False)
    report = ReplayReport()

    def emit(alerts: list[Alert]) -> None:
        for alert in alerts:
            alerts_out.write(alert.to_json_line())
        report.alerts += len(alerts)

    def reject(number: int, raw: bytes, reason: str, detail: str) -> None:
        report.rejected[reason] += 1
        print(f"line {number}: {reason}: {detail}", file=errors)
        if dead_letters is not None:
            record = {
                "line": number,
                "reason": reason,
                "detail": detail,
                "record": raw.decode("utf-8", errors="replace"),
            }
            dead_letters.write(orjson.dumps(record) + b"\n")

    number = taken = pending = 0
    accepted = Verdict.ACCEPTED
    ordered: OrderedDetection[tuple[int, bytes]] = OrderedDetection(engine)

    def settle(applied: list[Applied[tuple[int, bytes]]]) -> None:
        nonlocal taken
        for done in applied:
            outcome = done.outcome
            if outcome.verdict is accepted:
                taken += 1
                if outcome.alerts:
                    emit(outcome.alerts)  # most events change no alert: no call for them
            else:
                reject(*done.item, REFUSAL_REASON[outcome.verdict].value, outcome.detail)

    arrivals: list[tuple[ContactEvent, tuple[int, bytes]]] = []
    for number, line in enumerate(lines, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw or raw.isspace():
            continue
        try:
            event = parse_contact_event(raw)
        except InvalidEvent as exc:
            settle(ordered.offer_many(0, arrivals))  # decided in the order of the lines
            arrivals = []
            reject(number, raw, exc.reason.value, exc.detail)
            continue
        arrivals.append((event, (number, raw)))
        pending += 1
        if pending == RELEASE_EVERY:
            settle(ordered.offer_many(0, arrivals))
            arrivals = []
            settle(ordered.release())
            pending = 0
    settle(ordered.offer_many(0, arrivals))
    settle(ordered.flush())
    report.lines, report.accepted = number, taken
    if until is not None:
        emit(engine.advance_to(until))
    elif engine.clock is not None:
        emit(engine.advance_to(engine.clock))
    return report
