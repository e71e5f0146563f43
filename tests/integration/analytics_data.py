"""Simulated traffic for the analytics tests (weekly report, Grafana panels): what the worker would have
written to ClickHouse, and the report's definitions computed independently in Python from it."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from processors.engine import DetectionEngine, Verdict
from schemas.alert import Alert
from schemas.config import load_config
from schemas.errors import InvalidEvent
from schemas.event import ContactEvent, parse_contact_event
from schemas.ticket import TicketSnapshot
from simulation.traffic import TrafficSimulator
from sinks.clickhouse import ClickHouseWriter, apply_migrations, connected
from sinks.rows import (
    ALERT_COLUMNS,
    CONTACT_EVENT_COLUMNS,
    DEAD_LETTER_COLUMNS,
    TICKET_COLUMNS,
    alert_row,
    contact_event_row,
    dead_letter_row,
    ticket_row,
)
from stream.dead_letter import DeadLetter, read_headers

MSK = ZoneInfo("Europe/Moscow")
WEEK = "2026-W47"  # 16-22 Nov 2026
FROM = datetime(2026, 10, 26, tzinfo=MSK)
TO = datetime(2026, 11, 25, tzinfo=MSK)
REPEAT_WINDOW = timedelta(days=7)
DOCS = Path(__file__).resolve().parents[2] / "docs"


@dataclass
class Traffic:
    """What the worker would have written: every delivered event (duplicates too), every alert change,
    and each ticket's latest snapshot (as JSON, as published)."""

    events: list[ContactEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead_letters: list[tuple[Any, ...]] = field(default_factory=list)
    """`dead_letters` rows of the records the validator refuses."""


def simulate() -> Traffic:
    traffic = Traffic()
    engine = DetectionEngine(load_config())
    simulator = TrafficSimulator(
        seed=11,
        start=FROM,
        new_tickets_per_peak_hour=12,
        customers=500,
        large_accounts=25,
        incident_chance_per_business_hour=0.1,
    )

    def take_tickets() -> None:
        for ticket in engine.tickets.take_touched():
            traffic.tickets[ticket.ticket_id] = orjson.loads(engine.tickets.snapshot(ticket).to_json())

    for record in simulator.advance(TO):
        try:
            event = parse_contact_event(record.value)
        except InvalidEvent as exc:
            # What the sink refuses and dead-letters, as it then writes it from the dead-letter topic.
            letter = DeadLetter(exc.reason, exc.detail, "contacts.events", 0, len(traffic.dead_letters))
            headers = read_headers(letter.headers())
            at = int((traffic.events[-1].occurred_at if traffic.events else FROM).timestamp() * 1000)
            traffic.dead_letters.append(
                dead_letter_row(headers, len(record.value), at, 0, len(traffic.dead_letters))
            )
            continue
        traffic.events.append(event)  # duplicates included: the table folds them
        outcome = engine.observe(event)
        if outcome.verdict is Verdict.ACCEPTED:
            traffic.alerts += outcome.alerts
        take_tickets()
    traffic.alerts += engine.advance_to(TO)
    take_tickets()
    return traffic


def loaded_dsn(directory: Path, traffic: Traffic) -> str:
    """A chDB database in `directory`, migrated and holding the traffic once; its DSN."""
    dsn = f"chdb://{directory / 'ch'}"
    with connected(dsn) as client:
        apply_migrations(client)
        load(client, traffic, "first")
    return dsn


def load(client: Any, traffic: Traffic, token: str) -> None:
    writer = ClickHouseWriter(client)
    writer.insert(
        "contact_events",
        CONTACT_EVENT_COLUMNS,
        [contact_event_row(e, 0, n) for n, e in enumerate(traffic.events)],
        f"{token}-events",
    )
    writer.insert(
        "alerts", ALERT_COLUMNS, [alert_row(a, 0, n) for n, a in enumerate(traffic.alerts)], f"{token}-alerts"
    )
    writer.insert(
        "tickets",
        TICKET_COLUMNS,
        [ticket_row(TicketSnapshot.model_validate(s), n) for n, s in enumerate(traffic.tickets.values())],
        f"{token}-tickets",
    )
    writer.insert("dead_letters", DEAD_LETTER_COLUMNS, traffic.dead_letters, f"{token}-dead-letters")


# -- the numbers, computed independently --------------------------------------------------------------
def in_week(instant: str | datetime | None, starts: datetime, ends: datetime) -> bool:
    if instant is None:
        return False
    moment = datetime.fromisoformat(instant) if isinstance(instant, str) else instant
    return starts <= moment < ends


def expected_metrics(traffic: Traffic, starts: datetime, ends: datetime) -> dict[str, Any]:
    tickets = [t for t in traffic.tickets.values() if not t["first_seen_mid_life"]]
    opened = [t for t in tickets if in_week(t["opened_at"], starts, ends)]
    resolved = [t for t in tickets if in_week(t["resolved_at"], starts, ends)]
    fr_times = [
        t["first_response_sla_seconds"] for t in opened if t["first_response_sla_seconds"] is not None
    ]
    fr_measured = [
        t
        for t in opened
        if t["sla_policy"] and (t["first_response_sla_seconds"] is not None or t["first_response_breached"])
    ]
    res_measured = [t for t in resolved if t["sla_policy"]]
    unique = {e.event_id: e for e in traffic.events}.values()
    week_events = [e for e in unique if in_week(e.occurred_at, starts, ends)]
    # CSAT: each ticket's latest rating, in the week it came.
    ratings = [
        t["csat_score"]
        for t in tickets
        if t["csat_score"] is not None and in_week(t["csat_at"], starts, ends)
    ]
    # A repeat: the customer's previous ticket on the same topic was opened within the window.
    by_customer_topic: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in traffic.tickets.values():
        if t["customer_id"] and t["topic"]:
            by_customer_topic[(t["customer_id"], t["topic"])].append(t)
    repeats = 0
    for group in by_customer_topic.values():
        group.sort(key=lambda t: (datetime.fromisoformat(t["opened_at"]), t["ticket_id"]))
        for previous, t in itertools.pairwise(group):
            gap = datetime.fromisoformat(t["opened_at"]) - datetime.fromisoformat(previous["opened_at"])
            if (
                gap <= REPEAT_WINDOW
                and not t["first_seen_mid_life"]
                and in_week(t["opened_at"], starts, ends)
            ):
                repeats += 1
    return {
        "contacts": sum(1 for e in week_events if e.type == "contact_received"),
        "tickets_opened": len(opened),
        "tickets_resolved": len(resolved),
        "first_response_median_seconds": statistics.median_low(fr_times),
        "resolution_median_seconds": statistics.median_low([t["resolution_sla_seconds"] for t in resolved]),
        "first_contact_resolution_rate": sum(t["first_contact_resolution"] for t in resolved) / len(resolved),
        "csat_average": sum(ratings) / len(ratings),
        "csat_ratings": len(ratings),
        "csat_positive_rate": sum(1 for s in ratings if s >= 4) / len(ratings),
        "repeat_contact_rate": repeats / len(opened),
        "first_response_sla_compliance": 1
        - sum(t["first_response_breached"] for t in fr_measured) / len(fr_measured),
        "resolution_sla_compliance": 1
        - sum(t["resolution_breached"] for t in res_measured) / len(res_measured),
        "escalation_rate": sum(1 for t in opened if t["escalations"] > 0) / len(opened),
    }
