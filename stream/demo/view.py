"""What the demo prints: a line of counts from the worker's /metrics every two seconds, dead letters and
alerts as they arrive (or, with Alertmanager, the messages its receivers get), and at the end what
ClickHouse stored and the weekly report so far."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import IO, Final

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from schemas.settings import Settings
from simulation.traffic import MOSCOW
from stream.dead_letter import HEADER_DETAIL, HEADER_REASON, read_headers
from stream.demo.processes import DemoDelivery
from stream.local_receivers import FakeSmtp, FakeTelegram

_TAG: Final = re.compile(r"<[^>]+>")


def _show_telegram(text: str, out: IO[str]) -> None:
    plain = html.unescape(_TAG.sub("", text)).rstrip()
    lines = plain.splitlines()
    print("  → Telegram, on-call chat:", file=out, flush=True)
    for line in lines[:8]:
        print(f"      {line}", file=out, flush=True)
    if len(lines) > 8:
        print(f"      ... ({len(lines) - 8} more lines)", file=out, flush=True)


def to_oncall(message: EmailMessage) -> bool:
    return "oncall@" in str(message["To"])


def to_engineering(message: EmailMessage) -> bool:
    return "engineering@" in str(message["To"])


def _show_mail(message: EmailMessage, out: IO[str]) -> None:
    if to_oncall(message):
        return  # the on-call e-mail repeats the Telegram message just shown
    print(f"  → e-mail to {message['To']}: {message['Subject']}", file=out, flush=True)


_REDELIVERY_REASONS: Final = frozenset({"duplicate", "late"})
_ALERT_LINES_PER_REPORT: Final = 6


@dataclass
class DemoCounts:
    produced: int = 0
    produced_broken: int = 0
    posted: int = 0
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = field(default_factory=dict)
    pending_alerts: list[str] = field(default_factory=list)
    delivering: bool = False
    telegram_messages: int = 0
    product_mail: int = 0
    engineering_mail: int = 0

    def value(self, name: str, **labels: str) -> float:
        """A counter's value, summed over the series whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for key, v in self.samples.get(name, {}).items() if wanted <= set(key))

    def dead_letters(self) -> dict[str, int]:
        return {
            dict(key)["reason"]: int(v)
            for key, v in self.samples.get("contactpulse_dead_letters_total", {}).items()
            if v
        }

    @property
    def accepted(self) -> int:
        return int(self.value("contactpulse_events_accepted_total"))

    @property
    def rejected(self) -> int:
        return sum(n for reason, n in self.dead_letters().items() if reason not in _REDELIVERY_REASONS)

    def drained(self) -> bool:
        """Every produced record judged, every accepted one written to ClickHouse."""
        written = self.value("contactpulse_clickhouse_rows_written_total", table="contact_events")
        return self.accepted + self.rejected >= self.produced and written >= self.accepted


async def scrape(session: aiohttp.ClientSession, url: str, counts: DemoCounts) -> bool:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return False
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    counts.samples = samples
    return True


def report_line(sim_now: datetime, counts: DemoCounts) -> str:
    rejected = {r: n for r, n in counts.dead_letters().items() if r not in _REDELIVERY_REASONS}
    redelivered = sum(n for r, n in counts.dead_letters().items() if r in _REDELIVERY_REASONS)
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items()))
    firing = int(counts.value("contactpulse_alerts_sent_total", status="firing"))
    resolved = int(counts.value("contactpulse_alerts_sent_total", status="resolved"))
    rows = int(counts.value("contactpulse_clickhouse_rows_written_total", table="contact_events"))
    return (
        f"{datetime.now().strftime('%H:%M:%S')}  simulated {sim_now.astimezone(MOSCOW):%a %d %b %H:%M} MSK  "
        f"produced {counts.produced} ({counts.posted} via adapters)  accepted {counts.accepted}  "
        f"rejected {sum(rejected.values())}{f' ({reasons})' if reasons else ''}  "
        f"redelivered {redelivered}  alerts {firing} firing / {resolved} resolved  ClickHouse rows {rows}"
    )


def print_pending_alerts(counts: DemoCounts, out: IO[str]) -> None:
    shown, counts.pending_alerts = counts.pending_alerts[:_ALERT_LINES_PER_REPORT], []
    for line in shown:
        print(line, file=out, flush=True)


async def watch_topics(settings: Settings, counts: DemoCounts, out: IO[str]) -> None:
    consumer = AIOKafkaConsumer(
        settings.topic_dead_letter,
        settings.topic_alerts_oncall,
        settings.topic_alerts_product,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        async for record in consumer:
            if record.topic == settings.topic_dead_letter:
                headers = read_headers(list(record.headers))
                if headers.get(HEADER_REASON) in _REDELIVERY_REASONS:
                    continue
                print(
                    f"  dead letter [{headers.get(HEADER_REASON)}] {headers.get(HEADER_DETAIL, '')[:150]}",
                    file=out,
                    flush=True,
                )
            else:
                alert = orjson.loads(record.value or b"{}")
                if alert.get("status") == "firing" and not counts.delivering:
                    counts.pending_alerts.append(
                        f"  ALERT [{alert.get('severity')}] {alert.get('rule')}: {alert.get('summary')}"
                    )
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def delivered(delivery: DemoDelivery | None, counts: DemoCounts, out: IO[str]) -> AsyncIterator[None]:
    """The local receivers of the demo's Alertmanager, printing what they get, while the run lasts."""
    telegram, smtp = FakeTelegram(on_message=lambda text: _show_telegram(text, out)), FakeSmtp()
    if delivery is not None:
        # Digests replace the raw per-alert lines: what people would read, not the flood.
        counts.delivering = True
        await telegram.start(delivery.telegram_port)
        smtp.recorder.on_mail = lambda message: _show_mail(message, out)
        smtp.start(delivery.smtp_port)
    try:
        yield
    finally:
        counts.telegram_messages = len(telegram.messages)
        mail = [m for m in smtp.recorder.mail if not to_oncall(m)]
        counts.engineering_mail = len([m for m in mail if to_engineering(m)])
        counts.product_mail = len(mail) - counts.engineering_mail
        smtp.stop()
        await telegram.stop()


def clickhouse_summary(settings: Settings, since: datetime) -> str:
    """What this run stored (the embedded database keeps earlier runs' rows too)."""
    from sinks.clickhouse import connected

    if not settings.dsn().startswith("chdb://"):
        return ""
    with connected(settings.dsn()) as client:
        rows = client.query(
            "SELECT count(), uniqExact(ticket_id), countIf(type = 'contact_received') "
            "FROM contact_events FINAL WHERE ingested_at >= {since:DateTime64(3, 'UTC')}",
            parameters={"since": since},
        ).result_rows[0]
    return f"ClickHouse contact_events, this run: {rows[0]} events, {rows[1]} tickets, {rows[2]} contacts"


def weekly_report(settings: Settings) -> str:
    """This week's report so far, written beside the worker's data: what the head of support gets on
    Monday (`contactpulse report` e-mails it). A report that cannot be built is said, never fatal."""
    from zoneinfo import ZoneInfo

    from processors.report_schedule import iso_week_of
    from schemas.config import load_config
    from stream.report import make_report

    config = load_config(settings.config_file)
    week = iso_week_of(datetime.now(ZoneInfo(config.business_hours.time_zone)))
    try:
        report, page = make_report(settings, config, week, settings.report_lang)
    except Exception as exc:  # the demo's traffic is in Kafka and ClickHouse either way
        return f"weekly report not built: {exc}"
    path = settings.data_dir / f"report-{week}.html"
    path.write_text(page, encoding="utf-8")
    now = report.this_week
    compliance = now.first_response_sla_compliance
    met = f"{compliance * 100:.1f}%" if compliance is not None else "nothing measured yet"
    return (
        f"the head of support's weekly report so far ({week}: {now.tickets_opened} tickets opened, "
        f"first-response SLA met {met}; earlier demo runs this week included): {path}"
    )
