"""Dashboards and the weekly report on a year of a large organisation's data, in embedded chDB.

    .venv/bin/python bench/analytics_scale.py [--weeks 52] [--tickets-per-peak-hour 420] [--dir PATH]

One week of simulated traffic goes through the detection engine (tickets, events and alerts as the
worker writes them); ClickHouse then copies that week into every other week of the year (times shifted
by whole weeks, ids suffixed), through the same materialized views, so the year keeps the week's shapes:
channels, topics, customers, the daily and weekly curve. At the default rate that is about 20 million
events. Then every Grafana panel's query (over the last 7 and the last 90 days, all filters "All") and
the weekly report are timed, the slowest first. As a peer in the same run, the contacts panel is also
timed against the raw `contact_events` table, and the ticket panels' source against `tickets FINAL`.

Goals (issue 13): each panel under 1 s, the report under 10 s. Nothing here gates CI.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from processors.engine import DetectionEngine, Verdict  # noqa: E402
from schemas.config import load_config  # noqa: E402
from schemas.errors import InvalidEvent  # noqa: E402
from schemas.event import parse_contact_event  # noqa: E402
from simulation.traffic import TrafficSimulator  # noqa: E402
from sinks.clickhouse import ClickHouseWriter, apply_migrations, connect  # noqa: E402
from sinks.dashboards import DASHBOARDS, expand  # noqa: E402
from sinks.report_data import build_report  # noqa: E402
from sinks.rows import (  # noqa: E402
    ALERT_COLUMNS,
    CONTACT_EVENT_COLUMNS,
    TICKET_COLUMNS,
    alert_row,
    contact_event_row,
    ticket_row,
)

MSK = ZoneInfo("Europe/Moscow")
YEAR_END = datetime(2026, 11, 23, tzinfo=MSK)  # a Monday: the report's week is the one before


def load_week(client: Any, start: datetime, rate: float) -> int:
    engine = DetectionEngine(load_config())
    simulator = TrafficSimulator(seed=17, start=start, new_tickets_per_peak_hour=rate, customers=60000)
    events: list[tuple[Any, ...]] = []
    alerts: list[tuple[Any, ...]] = []
    tickets: dict[str, tuple[Any, ...]] = {}
    for offset, record in enumerate(simulator.advance(start + timedelta(days=7))):
        try:
            event = parse_contact_event(record.value)
        except InvalidEvent:
            continue
        events.append(contact_event_row(event, 0, offset))
        outcome = engine.observe(event)
        if outcome.verdict is Verdict.ACCEPTED:
            alerts += [alert_row(a, 0, len(alerts)) for a in outcome.alerts]
        for ticket in engine.tickets.take_touched():
            tickets[ticket.ticket_id] = ticket_row(engine.tickets.snapshot(ticket), 0)
    alerts += [alert_row(a, 0, len(alerts)) for a in engine.advance_to(start + timedelta(days=7))]
    writer = ClickHouseWriter(client)
    for n in range(0, len(events), 200_000):
        writer.insert("contact_events", CONTACT_EVENT_COLUMNS, events[n : n + 200_000], f"events-{n}")
    writer.insert("alerts", ALERT_COLUMNS, alerts, "alerts")
    writer.insert("tickets", TICKET_COLUMNS, list(tickets.values()), "tickets")
    return len(events)


def _shifted(columns: tuple[str, ...], weeks: int, instants: set[str], ids: set[str]) -> str:
    parts = []
    for column in columns:
        if column in instants:
            parts.append(f"{column} - INTERVAL {weeks} WEEK")
        elif column in ids:
            parts.append(f"if({column} = '', '', concat({column}, '~w{weeks}'))")
        else:
            parts.append(column)
    return ", ".join(parts)


def copy_week(client: Any, weeks_back: int) -> None:
    """The loaded week again, `weeks_back` weeks earlier, as new rows (new ids)."""
    event_columns = tuple(c for c in CONTACT_EVENT_COLUMNS)
    client.command(
        f"INSERT INTO contact_events ({', '.join(event_columns)}) "
        f"SELECT {_shifted(event_columns, weeks_back, {'occurred_at'}, {'event_id', 'ticket_id'})} "
        "FROM contact_events WHERE NOT position(event_id, '~w') > 0",
        settings={"insert_deduplication_token": f"copy-events-{weeks_back}"},
    )
    ticket_instants = {"opened_at", "last_event_at", "first_response_at", "resolved_at", "csat_at"}
    ticket_instants |= {"first_response_due_at", "resolution_due_at"}
    client.command(
        f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) "
        f"SELECT {_shifted(TICKET_COLUMNS, weeks_back, ticket_instants, {'ticket_id'})} "
        "FROM tickets WHERE NOT position(ticket_id, '~w') > 0",
        settings={"insert_deduplication_token": f"copy-tickets-{weeks_back}"},
    )
    client.command(
        f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) "
        f"SELECT {_shifted(ALERT_COLUMNS, weeks_back, {'starts_at', 'ends_at'}, {'alert_id'})} "
        "FROM alerts WHERE NOT position(alert_id, '~w') > 0",
        settings={"insert_deduplication_token": f"copy-alerts-{weeks_back}"},
    )


def timed(client: Any, sql: str, runs: int = 3) -> float:
    """The best of `runs` (the first also warms the caches)."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        client.query(sql)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--tickets-per-peak-hour", type=float, default=420.0)
    parser.add_argument("--dir", type=Path, default=None, help="keep the chDB data here (default: temporary)")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="contactpulse-scale-"))
    shutil.rmtree(directory / "ch", ignore_errors=True)
    client = connect(f"chdb://{directory / 'ch'}")
    apply_migrations(client)

    started = time.perf_counter()
    week_start = YEAR_END - timedelta(days=7)
    per_week = load_week(client, week_start, args.tickets_per_peak_hour)
    print(f"one week simulated and loaded: {per_week:,} events in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    for weeks_back in range(1, args.weeks):
        copy_week(client, weeks_back)
    events = client.query("SELECT count() FROM contact_events").result_rows[0][0]
    tickets = client.query("SELECT count() FROM tickets").result_rows[0][0]
    print(f"year built: {events:,} events, {tickets:,} ticket rows in {time.perf_counter() - started:.0f} s")
    client.command("OPTIMIZE TABLE contacts_hourly FINAL")  # as background merges would have by then

    now = YEAR_END
    results = []
    for days in (7, 90):
        for dashboard in DASHBOARDS:
            for panel in dashboard.panels:
                sql = expand(panel.sql, now - timedelta(days=days), now)
                results.append((timed(client, sql), f"{dashboard.uid}: {panel.title} ({days} d)"))
    started = time.perf_counter()
    build_report(client, "2026-W47", MSK, "en", 7 * 86400.0)
    report_seconds = time.perf_counter() - started

    raw = timed(
        client,
        "SELECT toStartOfHour(occurred_at) AS t, channel, count() FROM contact_events FINAL "
        f"WHERE occurred_at >= toDateTime({int((now - timedelta(days=90)).timestamp())}) "
        "AND type = 'contact_received' GROUP BY t, channel",
    )
    (aggregate,) = [s for s, name in results if name.endswith("New contacts by channel (90 d)")]
    print(f"\n{'seconds':>8}  panel")
    for seconds, name in sorted(results, reverse=True):
        print(f"{seconds:8.3f}  {name}")
    print(f"\nweekly report: {report_seconds:.2f} s (goal < 10 s)")
    slowest = max(results)
    print(f"slowest panel: {slowest[0]:.3f} s, {slowest[1]} (goal < 1 s)")
    print(
        f"contacts by channel, 90 days: the hourly aggregate takes {aggregate / raw:.2f}"
        " of the raw table's time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
