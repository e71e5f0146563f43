"""Every Grafana panel's SQL, expanded as Grafana and the ClickHouse plugin expand it (time macros and the
filter variables), runs against the migrated schema with a month of simulated traffic; the overview's
numbers equal the weekly report's definitions computed in Python; filters filter; a redelivery of every
row changes no panel; the committed dashboards are the ones `sinks/dashboards.py` defines."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from processors.report_schedule import week_bounds
from sinks import dashboards
from sinks.clickhouse import connect
from sinks.dashboards import CUSTOMERS, DASHBOARDS, OVERVIEW, Panel, rendered
from tests.integration.analytics_data import (
    MSK,
    WEEK,
    Traffic,
    expected_metrics,
    in_week,
    load,
    loaded_dsn,
)

pytestmark = pytest.mark.integration

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
STARTS, ENDS = week_bounds(WEEK, MSK)


def expand(sql: str, starts: datetime, ends: datetime, selected: dict[str, list[str]] | None = None) -> str:
    expanded = dashboards.expand(sql, starts, ends, selected)
    assert "$" not in expanded, f"unexpanded macro or variable in {expanded}"
    return expanded


def all_panels() -> list[tuple[str, Panel]]:
    return [(f"{d.uid}: {p.title}", p) for d in DASHBOARDS for p in d.panels]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, traffic: Traffic) -> Any:
    client = connect(loaded_dsn(tmp_path_factory.mktemp("grafana"), traffic))
    yield client
    client.close()


def run(client: Any, panel: Panel, selected: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    result = client.query(expand(panel.sql, STARTS, ENDS, selected))
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def test_the_committed_dashboards_are_the_defined_ones() -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in DASHBOARD_DIR.glob("*.json")}
    assert committed == rendered(), "run: contactpulse dashboards"


@pytest.mark.parametrize(("name", "panel"), all_panels(), ids=[name for name, _ in all_panels()])
def test_every_panel_returns_rows_for_all_and_for_a_selection(name: str, panel: Panel, client: Any) -> None:
    everything = run(client, panel)
    assert everything, f"{name} returned no rows over a week of traffic"
    if panel.kind == "stat":
        assert all(value is not None for value in everything[0].values()), everything
    some = run(client, panel, {"channel": ["email", "chat", "web_form"], "priority": ["p1", "p2", "p3"]})
    assert some or "Key accounts" in name or "Agents" in name, (
        f"{name}: nothing for email, chat, forms, p1-p3"
    )


def stat(client: Any, title: str, selected: dict[str, list[str]] | None = None) -> dict[str, Any]:
    (panel,) = [p for p in OVERVIEW.panels if p.title == title]
    (row,) = run(client, panel, selected)
    return row


def test_the_overview_numbers_equal_the_report_definitions(client: Any, traffic: Traffic) -> None:
    now = expected_metrics(traffic, STARTS, ENDS)
    before = expected_metrics(traffic, STARTS - timedelta(days=7), STARTS)
    checks = {
        "First response, median (min)": ("first_response_median_seconds", 1 / 60, 1),
        "Resolution, median (h)": ("resolution_median_seconds", 1 / 3600, 1),
        "First-contact resolution (%)": ("first_contact_resolution_rate", 100, 1),
        "CSAT, average (1-5)": ("csat_average", 1, 2),
        "Repeat contacts (%)": ("repeat_contact_rate", 100, 1),
        "First-response SLA met (%)": ("first_response_sla_compliance", 100, 1),
        "Resolution SLA met (%)": ("resolution_sla_compliance", 100, 1),
        "Escalation rate (%)": ("escalation_rate", 100, 1),
    }
    for title, (metric, scale, digits) in checks.items():
        row = stat(client, title)
        # ClickHouse rounds half away from zero, Python's round() to even: compare within the rounding.
        half = 10**-digits / 2 + 1e-9
        assert row["this period"] == pytest.approx(now[metric] * scale, abs=half), title
        assert row["week before"] == pytest.approx(before[metric] * scale, abs=half), title
        assert row["change"] == pytest.approx(round(row["this period"] - row["week before"], digits)), title


def test_filters_narrow_the_numbers_to_the_selection(client: Any, traffic: Traffic) -> None:
    email = Traffic(
        events=traffic.events,
        alerts=traffic.alerts,
        tickets={k: t for k, t in traffic.tickets.items() if t["channel"] == "email"},
    )
    expected = expected_metrics(email, STARTS, ENDS)["first_response_sla_compliance"]
    row = stat(client, "First-response SLA met (%)", {"channel": ["email"]})
    assert row["this period"] == pytest.approx(expected * 100, abs=0.05 + 1e-9)
    assert row["this period"] != stat(client, "First-response SLA met (%)")["this period"]


def test_csat_share_by_channel_equals_an_independent_computation(client: Any, traffic: Traffic) -> None:
    (panel,) = [p for p in CUSTOMERS.panels if p.title == "CSAT by channel"]
    rated: dict[str, list[int]] = {}
    for t in traffic.tickets.values():
        if (
            t["csat_score"] is not None
            and in_week(t["csat_at"], STARTS, ENDS)
            and not t["first_seen_mid_life"]
        ):
            rated.setdefault(t["channel"], []).append(t["csat_score"])
    rows = {r["channel"]: r for r in run(client, panel)}
    assert rows.keys() == rated.keys()
    for channel, scores in rated.items():
        row = rows[channel]
        assert row["ratings"] == len(scores)
        assert row["negative (1-2)"] == sum(1 for score in scores if score <= 2)
        assert row["4-5 %"] == pytest.approx(
            100 * sum(1 for score in scores if score >= 4) / len(scores), abs=0.05
        )
        assert row["average"] == pytest.approx(sum(scores) / len(scores), abs=0.005)


def test_error_codes_filtered_by_priority_are_those_of_the_tickets_of_that_priority(
    client: Any, traffic: Traffic
) -> None:
    (panel,) = [p for p in CUSTOMERS.panels if p.title == "Error codes"]
    p1 = {ticket_id for ticket_id, t in traffic.tickets.items() if t["priority"] == "p1"}
    reported: dict[str, set[str]] = {}
    for e in traffic.events:
        if e.error_code and e.ticket_id in p1 and STARTS <= e.occurred_at < ENDS:
            code = re.sub(r"[\s_]+", "-", e.error_code).upper()
            reported.setdefault(code, set()).add(e.ticket_id)
    rows = {r["error_code"]: r["tickets"] for r in run(client, panel, {"priority": ["p1"]})}
    assert reported  # incidents open p1 tickets, whose reports rarely state a priority themselves
    assert rows == {code: len(tickets) for code, tickets in reported.items()}
    assert run(client, panel, {"priority": ["p4"]}) == []  # no incident ticket is p4


def test_a_redelivery_of_every_row_changes_no_panel(client: Any, traffic: Traffic) -> None:
    # Ingest delay is left out: a redelivered row really did arrive later.
    panels = [(name, p) for name, p in all_panels() if p.title != "Ingest delay (s)"]
    before = {name: run(client, panel) for name, panel in panels}
    load(client, traffic, "second-delivery")
    after = {name: run(client, panel) for name, panel in panels}
    assert after == before
