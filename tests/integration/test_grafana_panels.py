"""Every Grafana panel's SQL runs against the real schema (migrations) with simulated data in it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from processors.engine import DetectionEngine
from schemas.config import load_config
from schemas.errors import InvalidEvent
from schemas.event import parse_contact_event
from simulation.traffic import TrafficSimulator
from sinks.clickhouse import ClickHouseWriter, apply_migrations, connect
from sinks.rows import (
    ALERT_COLUMNS,
    CONTACT_EVENT_COLUMNS,
    TICKET_COLUMNS,
    alert_row,
    contact_event_row,
    ticket_row,
)

pytestmark = pytest.mark.integration

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
FROM = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
TO = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


def expand_macros(sql: str) -> str:
    """The grafana-clickhouse-datasource macros this project uses, as the plugin expands them."""
    start, end = int(FROM.timestamp()), int(TO.timestamp())
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m.group(1)} >= toDateTime({start}) AND {m.group(1)} <= toDateTime({end})",
        sql,
    )
    sql = re.sub(
        r"\$__timeInterval\((\w+)\)",
        lambda m: f"toStartOfInterval(toDateTime({m.group(1)}), INTERVAL 300 second)",
        sql,
    )
    sql = sql.replace("$__fromTime", f"toDateTime({start})").replace("$__toTime", f"toDateTime({end})")
    assert "$__" not in sql, f"unexpanded macro in {sql}"
    return sql


def panels() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            found.append((f"{path.stem}: {panel['title']}", panel))
    return found


@pytest.fixture(scope="module")
def loaded_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    client = connect(f"chdb://{tmp_path_factory.mktemp('grafana') / 'ch'}")
    apply_migrations(client)
    rows, alert_rows = [], []
    engine = DetectionEngine(load_config())
    simulator = TrafficSimulator(seed=3, start=FROM, incident_chance_per_business_hour=1.0)
    for offset, record in enumerate(simulator.advance(TO)):
        try:
            event = parse_contact_event(record.value)
        except InvalidEvent:
            continue
        rows.append(contact_event_row(event, 0, offset))
        alert_rows += [alert_row(a, 0, len(alert_rows)) for a in engine.observe(event).alerts]
    alert_rows += [alert_row(a, 0, len(alert_rows)) for a in engine.advance_to(TO)]
    # Ticket snapshots go through their JSON form, as the detector publishes them.
    ticket_rows = [
        ticket_row(orjson.loads(orjson.dumps(t.snapshot())), n)
        for n, t in enumerate(engine.tickets.tickets.values())
    ]
    writer = ClickHouseWriter(client)
    writer.insert("contact_events", CONTACT_EVENT_COLUMNS, rows, "grafana-fixture")
    writer.insert("alerts", ALERT_COLUMNS, alert_rows, "grafana-fixture-alerts")
    writer.insert("tickets", TICKET_COLUMNS, ticket_rows, "grafana-fixture-tickets")
    yield client
    client.close()


@pytest.mark.parametrize(("name", "panel"), panels(), ids=[name for name, _ in panels()])
def test_panel_query_runs_and_returns_rows(name: str, panel: dict[str, Any], loaded_client: Any) -> None:
    for target in panel["targets"]:
        result = loaded_client.query(expand_macros(target["rawSql"]))
        assert result.result_rows, f"{name} returned no rows over a day of traffic"
        assert all(len(row) == len(result.column_names) for row in result.result_rows)
