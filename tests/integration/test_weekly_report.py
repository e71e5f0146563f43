"""The weekly report: its numbers equal the same definitions computed here in Python from the same
events, alerts and ticket snapshots; a redelivery changes nothing; the page renders in a real headless
Chromium; the e-mail reaches an SMTP server; the schedule sends each week once, across restarts."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import statistics
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from matplotlib.image import imread

from processors.engine import DetectionEngine, Verdict
from schemas.alert import Alert, AlertStatus
from schemas.config import load_config
from schemas.errors import InvalidEvent
from schemas.event import ContactEvent, parse_contact_event
from schemas.report import WeeklyReport
from schemas.settings import Settings
from simulation.traffic import TrafficSimulator
from sinks import mail
from sinks.clickhouse import ClickHouseWriter, apply_migrations, connect
from sinks.report_data import week_bounds
from sinks.report_html import render_html
from sinks.rows import (
    ALERT_COLUMNS,
    CONTACT_EVENT_COLUMNS,
    TICKET_COLUMNS,
    alert_row,
    contact_event_row,
    ticket_row,
)
from stream.cli import main
from stream.local_receivers import FakeSmtp
from stream.metrics import WorkerMetrics
from stream.report import ReportScheduler, make_report
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

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
            traffic.tickets[ticket.ticket_id] = orjson.loads(orjson.dumps(ticket.snapshot()))

    for record in simulator.advance(TO):
        try:
            event = parse_contact_event(record.value)
        except InvalidEvent:
            continue
        traffic.events.append(event)  # duplicates included: the table folds them
        outcome = engine.observe(event)
        if outcome.verdict is Verdict.ACCEPTED:
            traffic.alerts += outcome.alerts
        take_tickets()
    traffic.alerts += engine.advance_to(TO)
    take_tickets()
    return traffic


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
        [ticket_row(s, n) for n, s in enumerate(traffic.tickets.values())],
        f"{token}-tickets",
    )


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return simulate()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, traffic: Traffic) -> Iterator[Settings]:
    path = tmp_path_factory.mktemp("report") / "ch"
    client = connect(f"chdb://{path}")
    apply_migrations(client)
    load(client, traffic, "first")
    client.close()
    return Settings(clickhouse_dsn=f"chdb://{path}", data_dir=path.parent / "data")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def report(settings: Settings) -> WeeklyReport:
    report, _ = make_report(settings, load_config(), WEEK, "en")
    return report


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
    ratings = [e.score for e in week_events if e.type == "csat_submitted" and e.score is not None]
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


def test_the_five_metrics_and_sla_compliance_equal_an_independent_computation(
    traffic: Traffic, report: WeeklyReport
) -> None:
    starts, _ends = week_bounds(WEEK, MSK)
    assert (report.starts, report.ends) == (
        datetime(2026, 11, 16, tzinfo=MSK),
        datetime(2026, 11, 23, tzinfo=MSK),
    )
    assert [m.week for m in report.trend][-2:] == [date(2026, 11, 9), date(2026, 11, 16)]
    assert len(report.trend) == 12
    for metrics, week_start in (
        (report.this_week, starts),
        (report.previous_week, starts - timedelta(days=7)),
    ):
        expected = expected_metrics(traffic, week_start, week_start + timedelta(days=7))
        actual = metrics.model_dump(exclude={"week"})
        assert actual.keys() == expected.keys()
        for name, value in expected.items():
            assert actual[name] == pytest.approx(value, rel=1e-9), name
    # A calm simulated organisation: the numbers are plausible, not only equal.
    now = report.this_week
    assert now.tickets_opened > 500
    assert 0.85 < (now.first_response_sla_compliance or 0) < 1.0
    assert 0.05 < (now.repeat_contact_rate or 0) < 0.4
    assert report.trend[0].tickets_opened == 0  # twelve weeks back is before the data begins


def test_causes_channels_ratings_and_incidents_equal_an_independent_computation(
    traffic: Traffic, report: WeeklyReport
) -> None:
    starts, ends = week_bounds(WEEK, MSK)
    resolved = [
        t
        for t in traffic.tickets.values()
        if not t["first_seen_mid_life"] and in_week(t["resolved_at"], starts, ends)
    ]
    hours: dict[tuple[str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for t in resolved:
        hours[(t["category"], t["topic"])] += t["resolution_sla_seconds"] / 3600
        counts[(t["category"], t["topic"])] += 1
    top = sorted(hours, key=lambda k: (-hours[k], -counts[k], k))[:10]
    assert [(c.category, c.topic) for c in report.causes] == top
    assert [c.working_hours for c in report.causes] == pytest.approx([hours[k] for k in top])
    assert [c.tickets for c in report.causes] == [counts[k] for k in top]
    assert report.causes[-1].cumulative_share == pytest.approx(
        sum(hours[k] for k in top) / sum(hours.values())
    )

    unique = {e.event_id: e for e in traffic.events}.values()
    contacts: dict[str, int] = defaultdict(int)
    for e in unique:
        if e.type == "contact_received" and e.channel and in_week(e.occurred_at, starts, ends):
            contacts[str(e.channel)] += 1
    assert {c.channel: c.contacts for c in report.channels} == contacts

    changes: dict[str, list[Alert]] = defaultdict(list)
    for a in traffic.alerts:
        changes[a.alert_id].append(a)
    fired_in_week = {
        alert_id: states
        for alert_id, states in changes.items()
        if in_week(min(s.starts_at for s in states), starts, ends)
    }
    negative = {k: v for k, v in fired_in_week.items() if v[0].rule == "negative_csat"}
    assert len(report.negative_ratings) == len(negative) > 0
    in_time = sum(
        1
        for states in negative.values()
        for s in states
        if s.status is AlertStatus.RESOLVED
        and s.ends_at is not None
        and s.ends_at <= datetime.fromisoformat(states[0].details["respond_by"])
    )
    assert sum(r.answered_in_time for r in report.negative_ratings) == in_time
    incidents = [k for k, v in fired_in_week.items() if v[0].rule == "incident_cluster"]
    assert len(report.incidents) == len(incidents) > 0
    breached_open = [w for w in report.worst_sla_tickets if w.spent_seconds is None]
    measured = [w for w in report.worst_sla_tickets if w.spent_seconds is not None]
    assert all(w.spent_seconds > w.target_seconds for w in measured)  # type: ignore[operator]
    assert report.worst_sla_tickets == breached_open + measured  # still open and past due come first


def test_a_redelivery_of_everything_changes_no_number(
    settings: Settings, traffic: Traffic, report: WeeklyReport
) -> None:
    client = connect(settings.dsn())
    load(client, traffic, "second-delivery")  # other tokens: the insert is not dropped, FINAL folds it
    rows = client.query("SELECT count() FROM contact_events").result_rows[0][0]
    client.close()
    assert rows > len({e.event_id for e in traffic.events})  # the copies are there, unmerged
    again, _ = make_report(settings, load_config(), WEEK, "en")
    assert again == report


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("no Chromium: deploy/ci/install-test-deps installs Debian's chromium")


def test_the_page_renders_in_headless_chromium_with_its_charts(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTACTPULSE_CLICKHOUSE_DSN", settings.dsn())
    out = tmp_path / "report.html"
    assert main(["report", "--week", WEEK, "--lang", "ru", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    # Self-contained: nothing to fetch (references inside the page, url(#clip), are fine), nothing to run.
    assert re.findall(r'(?:src|href)="(?!#)|url\((?!#)|<link |<script', page) == []
    browser = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*browser, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "Еженедельный отчёт поддержки · 2026-W47" in dom
    assert dom.count("<svg") == 2  # the 12-week trend and the Pareto of causes
    shot = tmp_path / "report.png"
    subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1000,1400", out.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = imread(shot)
    assert pixels.shape[:2] == (1400, 1000)
    ink = (pixels[:, :, :3].mean(axis=2) < 0.9).mean()
    assert 0.03 < ink < 0.6, f"{ink:.3f} of the page is not white"  # text and charts, not blank
    blue = ((pixels[:, :, 2] > 0.7) & (pixels[:, :, 0] < 0.2)).mean()
    assert blue > 0.005  # the charts' lines and bars were drawn
    if os.environ.get("CONTACTPULSE_UPDATE_DOCS"):
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS / "weekly-report.png")


def test_the_report_arrives_by_smtp_with_html_and_a_utf8_subject(report: WeeklyReport) -> None:
    smtp = FakeSmtp()
    smtp.start(free_port())
    try:
        russian = report.model_copy(update={"lang": "ru"})
        page = render_html(russian)
        settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none")  # type: ignore[call-arg]
        mail.send(
            mail.report_message(russian, page, "contactpulse@example.org", ["head@example.org"]), settings
        )
        (message,) = smtp.to("head@example.org")
    finally:
        smtp.stop()
    assert message["Subject"] == "ContactPulse · Еженедельный отчёт поддержки · 2026-W47"
    html_part = message.get_body(("html",))
    assert html_part is not None
    assert html_part.get_content().replace("\r\n", "\n").strip() == page.strip()  # SMTP lines end in CRLF
    text_part = message.get_body(("plain",))
    assert text_part is not None
    assert "SLA первого ответа соблюдён" in text_part.get_content()


async def test_the_schedule_sends_each_week_once_across_restarts(settings: Settings) -> None:
    smtp = FakeSmtp()
    smtp.start(free_port())
    leading = True
    scheduled = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": "none",
            "report_to": "head@example.org",
            "report_schedule": "MON 09:00",
        }
    )

    def scheduler() -> ReportScheduler:
        from prometheus_client import CollectorRegistry

        return ReportScheduler(
            scheduled, load_config(), WorkerMetrics.create(CollectorRegistry()), lambda: leading
        )

    monday = datetime(2026, 11, 23, 9, 5, tzinfo=MSK)
    try:
        first = scheduler()
        leading = False
        assert await first.check_once(monday) is None  # only the worker that runs detection sends
        leading = True
        assert await first.check_once(monday) == WEEK
        assert await first.check_once(monday + timedelta(minutes=1)) is None
        assert await scheduler().check_once(monday + timedelta(hours=2)) is None  # a restarted worker
        messages: list[EmailMessage] = smtp.to("head@example.org")
    finally:
        smtp.stop()
    assert [m["Subject"] for m in messages] == ["ContactPulse · Support weekly report · 2026-W47"]
