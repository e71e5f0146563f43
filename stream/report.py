"""The weekly report: built from ClickHouse (`sinks.report_data`), rendered (`sinks.report_html`), and
e-mailed (`sinks.mail`) by `contactpulse report` or on the worker's schedule (`ReportScheduler`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mode import Service

from processors.report_schedule import ReportSchedule, due_week, parse_schedule
from schemas.config import DetectionConfig
from schemas.report import WeeklyReport
from schemas.settings import Settings
from sinks import mail
from sinks.clickhouse import apply_migrations, connected, migrate
from sinks.report_data import build_report
from sinks.report_html import render_html
from stream.metrics import WorkerMetrics

log = logging.getLogger(__name__)

CHECK_SECONDS = 60.0
"""How often the worker checks whether a report is due."""


def make_report(
    settings: Settings, config: DetectionConfig, iso_week: str, lang: str
) -> tuple[WeeklyReport, str]:
    """The week's report and its HTML page, from what ClickHouse holds now (blocking)."""
    with connected(settings.dsn()) as client:
        apply_migrations(client)
        report = build_report(
            client,
            iso_week,
            ZoneInfo(config.business_hours.time_zone),
            lang,
            config.repeat_contact.window_days * 86400.0,
        )
    return report, render_html(report)


def weeks_sent(settings: Settings) -> set[str]:
    with connected(settings.dsn()) as client:
        return {row[0] for row in client.query("SELECT iso_week FROM reports_sent FINAL").result_rows}


def record_sent(settings: Settings, iso_week: str, recipients: list[str]) -> None:
    with connected(settings.dsn()) as client:
        client.insert(
            "reports_sent", [[iso_week, ", ".join(recipients)]], column_names=["iso_week", "recipients"]
        )


def send_report(settings: Settings, config: DetectionConfig, iso_week: str, recipients: list[str]) -> None:
    """Build, send and record one week's report (blocking); raises when any step fails."""
    report, page = make_report(settings, config, iso_week, settings.report_lang)
    mail.send(mail.report_message(report, page, settings.smtp_from, recipients), settings)
    record_sent(settings, iso_week, recipients)
    log.info("weekly report %s sent to %d recipient(s)", iso_week, len(recipients))


class ReportScheduler(Service):
    """E-mails the last full week's report at `CONTACTPULSE_REPORT_SCHEDULE`, from the worker that owns
    detection only (so two workers send one report), at most once per week: `reports_sent` in ClickHouse
    remembers what went out across restarts."""

    def __init__(
        self,
        settings: Settings,
        config: DetectionConfig,
        metrics: WorkerMetrics,
        owns_detection: Callable[[], bool],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._config = config
        self._metrics = metrics
        self._owns_detection = owns_detection
        self._migrated = False
        self._schedule: ReportSchedule = parse_schedule(
            settings.report_schedule, ZoneInfo(config.business_hours.time_zone)
        )

    async def check_once(self, now: datetime) -> str | None:
        """Send the report due at `now`, if any and if this worker leads; the week sent, else None."""
        if not self._owns_detection():
            return None
        settings = self._settings
        if not self._migrated:  # `reports_sent` may not exist yet: once per worker, not every minute
            await asyncio.to_thread(migrate, settings.dsn())
            self._migrated = True
        sent = await asyncio.to_thread(weeks_sent, settings)
        week = due_week(now, self._schedule, sent)
        if week is None:
            return None
        await asyncio.to_thread(send_report, settings, self._config, week, settings.report_recipients())
        self._metrics.reports_sent.inc()
        return week

    @Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            try:
                await self.check_once(datetime.now(UTC))
            except Exception as exc:
                # ClickHouse or SMTP down, a bad address: say so and try again at the next check.
                self._metrics.report_failures.inc()
                log.warning("weekly report not sent (%s); retry in %.0f s", exc, CHECK_SECONDS)
            await self.sleep(CHECK_SECONDS)
