"""The weekly report: its numbers equal the same definitions computed here in Python from the same
events, alerts and ticket snapshots; a redelivery changes nothing; the page renders in a real headless
Chromium; the e-mail reaches an SMTP server; the schedule sends each week once, across restarts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from matplotlib.image import imread

from processors.report_schedule import week_bounds
from schemas.alert import Alert, AlertStatus
from schemas.config import load_config
from schemas.report import WeeklyReport
from schemas.settings import Settings
from sinks import mail
from sinks.clickhouse import connect
from sinks.report_html import render_html
from stream.cli import main
from stream.local_receivers import FakeSmtp
from stream.metrics import WorkerMetrics
from stream.report import ReportScheduler, make_report
from tests.integration.analytics_data import (
    DOCS,
    MSK,
    WEEK,
    Traffic,
    expected_metrics,
    in_week,
    load,
    loaded_dsn,
)
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, traffic: Traffic) -> Settings:
    directory = tmp_path_factory.mktemp("report")
    dsn = loaded_dsn(directory, traffic)
    return Settings(clickhouse_dsn=dsn, data_dir=directory / "data")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def report(settings: Settings) -> WeeklyReport:
    report, _ = make_report(settings, load_config(), WEEK, "en")
    return report


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
    # Feature clusters active in the week: fired in it, or before it and not resolved before it began.
    active = {
        alert_id
        for alert_id, states in changes.items()
        if states[0].rule == "feature_request_cluster"
        and min(s.starts_at for s in states) < ends
        and all(s.ends_at is None or s.ends_at >= starts for s in states if s.status is AlertStatus.RESOLVED)
    }
    assert len(report.feature_clusters) == len(active) > 0
    assert all(f.examples and f.requests >= 5 for f in report.feature_clusters)
    incidents = [k for k, v in fired_in_week.items() if v[0].rule == "incident_cluster"]
    assert len(report.incidents) == len(incidents) > 0
    # An incident's tickets: every ticket its alert listed in any state (each update lists the newest;
    # an alert lists at most 50, and the report counts from `ticket_ids_total`).
    tickets = [len({t for s in fired_in_week[k] for t in s.details["ticket_ids"]}) for k in incidents]
    assert sorted(i.tickets for i in report.incidents) == sorted(tickets)
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
