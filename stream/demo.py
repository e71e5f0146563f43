"""`contactpulse demo`: a real broker, the real worker, simulated traffic, and a live view of what flows.

It starts the local Kafka broker (deploy/kafka/kafkactl) when none answers, declares the topics, starts
`contactpulse worker` as a child process, replays the last hours of simulated traffic faster than real
time and then keeps pace with the wall clock. Every two seconds it prints a line of counts read from
the worker's /metrics; dead letters and alerts are printed as they arrive. Ctrl-C (or --duration) stops
everything it started, in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Final

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from processors.adapters import ADAPTERS
from processors.adapters.outbound import signed_headers
from schemas.settings import ENV_PREFIX, Settings, settings_to_env
from simulation.native_payloads import SUPPORT_DOMAIN
from simulation.traffic import MOSCOW, SimulatedRecord, TrafficSimulator
from sinks.alertmanager_config import render_config
from stream.dead_letter import HEADER_DETAIL, HEADER_REASON, read_headers
from stream.ingest import TOKEN_HEADER, source_secret, source_token
from stream.local_receivers import (
    ALERTMANAGER,
    FakeSmtp,
    FakeTelegram,
    free_port,
    receiver_environment,
    spawn_alertmanager,
)
from stream.topics import delete_topics_where, ensure_topics

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
KAFKACTL: Final = REPO_ROOT / "deploy" / "kafka" / "kafkactl"
_TICK_SECONDS: Final = 0.25
_REPORT_SECONDS: Final = 2.0
_DRAIN_SECONDS: Final = 30.0


def _first_server(settings: Settings) -> tuple[str, int]:
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].strip().rpartition(":")
    return host or "127.0.0.1", int(port or 9092)


def broker_answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


@contextlib.contextmanager
def local_kafka(settings: Settings, out: IO[str]) -> Iterator[bool]:
    """Yield True when this demo started the broker (and will stop it)."""
    host, port = _first_server(settings)
    if broker_answers(host, port):
        yield False
        return
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"no Kafka broker answers at {host}:{port} and it is not local: start it first")
    print(f"starting local Kafka on {host}:{port} (first run fetches the jars with Maven)...", file=out)
    env = {**os.environ, "KAFKA_PORT": str(port)}
    subprocess.run([str(KAFKACTL), "start"], check=True, env=env)
    try:
        yield True
    finally:
        print("stopping local Kafka...", file=out)
        subprocess.run([str(KAFKACTL), "stop"], check=False, env=env)


@dataclass(frozen=True)
class DemoDelivery:
    """Where the demo's Alertmanager sends: local stand-ins for Telegram and SMTP that print."""

    telegram_port: int
    smtp_port: int


_DEMO_TIMINGS: Final = {
    "group_wait": "10s",
    "group_interval": "1m",
    "incident_group_wait": "5s",
    "product_group_wait": "10s",
    "digest_group_wait": "30s",
}


@contextlib.contextmanager
def local_alertmanager(settings: Settings, out: IO[str]) -> Iterator[tuple[Settings, DemoDelivery | None]]:
    """Alertmanager from the Debian package with the shipped configuration, when it is installed."""
    if shutil.which(ALERTMANAGER) is None:
        print(
            "Alertmanager is not installed (Debian: apt install prometheus-alertmanager): alerts are "
            "listed below but not delivered",
            file=out,
            flush=True,
        )
        yield settings, None
        return
    delivery = DemoDelivery(free_port(), free_port())
    port = free_port()
    workdir = settings.data_dir / "demo-alertmanager"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    environment = receiver_environment(delivery.telegram_port, delivery.smtp_port, **_DEMO_TIMINGS)
    config.write_text(render_config(environment), encoding="utf-8")
    config.chmod(0o600)
    process, log_path = spawn_alertmanager(config, workdir / "data", port, workdir)
    print(
        f"starting Alertmanager on 127.0.0.1:{port} (log: {log_path}); its Telegram and e-mail "
        "notifications go to local stand-ins and are printed below (on-call e-mails repeat the Telegram "
        "messages and are not shown)",
        file=out,
        flush=True,
    )
    update = {"alertmanager_url": f"http://127.0.0.1:{port}", "notifier_resend_seconds": 30.0}
    try:
        yield settings.model_copy(update=update), delivery
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_TAG: Final = re.compile(r"<[^>]+>")


def _show_telegram(text: str, out: IO[str]) -> None:
    plain = html.unescape(_TAG.sub("", text)).rstrip()
    lines = plain.splitlines()
    print("  → Telegram, on-call chat:", file=out, flush=True)
    for line in lines[:8]:
        print(f"      {line}", file=out, flush=True)
    if len(lines) > 8:
        print(f"      ... ({len(lines) - 8} more lines)", file=out, flush=True)


def _to_oncall(message: EmailMessage) -> bool:
    return "oncall@" in str(message["To"])


def _show_mail(message: EmailMessage, out: IO[str]) -> None:
    if _to_oncall(message):
        return  # the on-call e-mail repeats the Telegram message just shown
    print(f"  → e-mail to {message['To']}: {message['Subject']}", file=out, flush=True)


@contextlib.contextmanager
def worker_process(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        process = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**env, **settings_to_env(settings)},
            cwd=Path.cwd(),
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


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


async def _scrape(session: aiohttp.ClientSession, url: str, counts: DemoCounts) -> bool:
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


def _report_line(sim_now: datetime, counts: DemoCounts) -> str:
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


def _print_pending_alerts(counts: DemoCounts, out: IO[str]) -> None:
    shown, counts.pending_alerts = counts.pending_alerts[:_ALERT_LINES_PER_REPORT], []
    for line in shown:
        print(line, file=out, flush=True)


async def _watch_topics(settings: Settings, counts: DemoCounts, out: IO[str]) -> None:
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


class TrafficPump:
    """Produce simulated traffic: the past `history` at `speed`, then in real time.

    With `ingest_url`, every event of a ticket that its source can say is posted to the worker's
    ingestion endpoint as that source would send it (agents' replies on Telegram and WhatsApp to the
    outbound endpoint), so adapters and endpoints run too; the rest (a Telegram chat's status, broken
    and redelivered records) goes to the events topic as normalized events.
    """

    def __init__(
        self,
        settings: Settings,
        seed: int,
        history: timedelta,
        speed: float,
        run_tag: str = "",
        ingest_url: str | None = None,
    ) -> None:
        self._settings = settings
        self._speed = speed
        self._wall_start = time.monotonic()
        self.sim_start = datetime.now(UTC) - history
        self.sim_now = self.sim_start
        self._ingest_url = ingest_url
        native = ingest_url is not None
        pii_key = settings.pii_key.get_secret_value().encode() if native and settings.pii_key else None
        self._simulator = TrafficSimulator(
            seed=seed, start=self.sim_start, run_tag=run_tag, native=native, pii_key=pii_key
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=20
        )
        self._session: aiohttp.ClientSession | None = None
        self._outbox: list[SimulatedRecord] = []
        self._blocked = False
        self._paused = 0.0
        self._last_tick = time.monotonic()
        self.produced = 0
        self.produced_broken = 0
        self.posted = 0
        self._stopped = False

    async def start(self) -> None:
        await self._producer.start()
        if self._ingest_url is not None:
            self._session = aiohttp.ClientSession()
        self._wall_start = self._last_tick = time.monotonic()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        await self._producer.flush()
        await self._producer.stop()
        if self._session is not None:
            await self._session.close()

    async def pump(self, raw_path_ready: bool = True) -> None:
        """Advance the simulation to now and send what is due.

        Until `raw_path_ready` (the worker has normalized a posted payload: its raw agent is consuming)
        only native payloads go out, and while the worker takes nothing (not up yet, 429, 503) the
        simulated clock stands still: normalized events sent ahead would move the detector's clock past
        the payloads still on their way through the raw topic, and those would arrive late.
        """
        now = time.monotonic()
        if self._blocked or (not raw_path_ready and self.posted > 0):
            self._paused += now - self._last_tick
        self._last_tick = now
        elapsed = now - self._wall_start - self._paused
        self.sim_now = min(datetime.now(UTC), self.sim_start + timedelta(seconds=elapsed * self._speed))
        self._outbox.extend(self._simulator.advance(self.sim_now))
        sent, self._blocked = 0, False
        for record in self._outbox:  # in simulated-time order
            if record.source is not None:
                if not await self._post(record):
                    self._blocked = True
                    break
            elif not raw_path_ready and self._ingest_url is not None:
                break
            else:
                await self._producer.send(self._settings.topic_events, key=record.key, value=record.value)
                self.produced_broken += not record.valid
            self.produced += 1
            sent += 1
        del self._outbox[:sent]

    async def _post(self, record: SimulatedRecord) -> bool:
        """Post one native payload; False when the worker did not take it (to be posted again)."""
        if self._session is None:
            return False
        try:
            async with self._session.post(
                f"{self._ingest_url}/{record.endpoint or record.source}",
                data=record.value,
                headers=self._credentials(record),
                timeout=aiohttp.ClientTimeout(total=5),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            return False
        if status in (429, 503):
            return False
        self.posted += 1
        return True

    def _credentials(self, record: SimulatedRecord) -> dict[str, str]:
        """What the source sends to prove itself: the shared token, or the outbound signature."""
        outbound = self._settings.outbound_webhook_secret
        if record.source == "outbound" and outbound is not None:
            return signed_headers(outbound.get_secret_value(), int(time.time()), record.value)
        token = source_token(self._settings, record.source or "")
        return {TOKEN_HEADER: token} if token else {}


async def simulate(
    settings: Settings, duration: float | None, speed: float, history: timedelta, seed: int, out: IO[str]
) -> int:
    """`contactpulse simulate`: only the traffic, for a worker that runs elsewhere (docker-compose)."""
    await ensure_topics(settings)
    pump = TrafficPump(settings, seed, history, speed, run_tag=run_tag())
    await pump.start()
    started = time.monotonic()
    last_report = 0.0
    try:
        while duration is None or time.monotonic() - started < duration:
            await pump.pump()
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                print(
                    f"simulated {pump.sim_now.astimezone(MOSCOW):%a %d %b %H:%M} MSK: produced "
                    f"{pump.produced} records to {settings.topic_events}",
                    file=out,
                    flush=True,
                )
            await asyncio.sleep(_TICK_SECONDS)
    finally:
        await pump.stop()
    return pump.produced


@contextlib.asynccontextmanager
async def _delivered(delivery: DemoDelivery | None, counts: DemoCounts, out: IO[str]) -> AsyncIterator[None]:
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
        counts.product_mail = len([m for m in smtp.recorder.mail if not _to_oncall(m)])
        smtp.stop()
        await telegram.stop()


async def _run(
    settings: Settings,
    tag: str,
    counts: DemoCounts,
    duration: float | None,
    speed: float,
    history: timedelta,
    seed: int,
    out: IO[str],
    delivery: DemoDelivery | None = None,
) -> None:
    async with _delivered(delivery, counts, out):
        await ensure_topics(settings)
        ingest_url = f"http://{settings.web_host}:{settings.web_port}/ingest"
        pump = TrafficPump(settings, seed, history, speed, run_tag=tag, ingest_url=ingest_url)
        await pump.start()
        watcher = asyncio.create_task(_watch_topics(settings, counts, out))
        metrics_url = f"http://{settings.web_host}:{settings.web_port}/metrics"
        started = time.monotonic()
        last_report = 0.0
        try:
            async with aiohttp.ClientSession() as session:
                raw_path_ready = False
                while duration is None or time.monotonic() - started < duration:
                    await pump.pump(raw_path_ready)
                    if not raw_path_ready and await _scrape(session, metrics_url, counts):
                        raw_path_ready = counts.value("contactpulse_raw_payloads_normalized_total") > 0
                    counts.produced, counts.produced_broken = pump.produced, pump.produced_broken
                    counts.posted = pump.posted
                    if time.monotonic() - last_report >= _REPORT_SECONDS:
                        last_report = time.monotonic()
                        if await _scrape(session, metrics_url, counts):
                            print(_report_line(pump.sim_now, counts), file=out, flush=True)
                            _print_pending_alerts(counts, out)
                        else:
                            print(
                                f"produced {counts.produced}; waiting for the worker at {metrics_url}...",
                                file=out,
                                flush=True,
                            )
                    await asyncio.sleep(_TICK_SECONDS)
                await pump.stop()
                # Let the worker judge and store what was just produced, then take a last reading.
                deadline = time.monotonic() + _DRAIN_SECONDS
                while time.monotonic() < deadline:
                    if await _scrape(session, metrics_url, counts) and counts.drained():
                        break
                    await asyncio.sleep(0.5)
                print(_report_line(pump.sim_now, counts), file=out, flush=True)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await pump.stop()


def _clickhouse_summary(settings: Settings, since: datetime) -> str:
    """What this run stored (the embedded database keeps earlier runs' rows too)."""
    from sinks.clickhouse import connect

    if not settings.dsn().startswith("chdb://"):
        return ""
    client = connect(settings.dsn())
    try:
        rows = client.query(
            "SELECT count(), uniqExact(ticket_id), countIf(type = 'contact_received') "
            "FROM contact_events FINAL WHERE ingested_at >= {since:DateTime64(3, 'UTC')}",
            parameters={"since": since},
        ).result_rows[0]
    finally:
        client.close()
    return f"ClickHouse contact_events, this run: {rows[0]} events, {rows[1]} tickets, {rows[2]} contacts"


def _weekly_report(settings: Settings) -> str:
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


def run_tag() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


_RUN_TAG: Final = re.compile(r"\d{14}")


def earlier_run_topic(name: str, settings: Settings, tag: str) -> bool:
    """A topic of an earlier demo run of these settings, as `demo_settings` names them: one of the
    worker's topics under `demo-<tag>.`, or an internal topic of the run's app id (tables, lease)."""
    for prefix in ("demo-", f"{settings.app_id}-demo-"):
        if not name.startswith(prefix):
            continue
        earlier, rest = name[len(prefix) : len(prefix) + 14], name[len(prefix) + 14 :]
        if not _RUN_TAG.fullmatch(earlier) or earlier >= tag:
            continue
        if prefix == "demo-" and rest[:1] == "." and rest[1:] in _run_topics(settings):
            return True
        if prefix != "demo-" and rest[:1] == "-":
            return True
    return False


def _topic_fields() -> list[str]:
    return [
        name for name in Settings.model_fields if name.startswith("topic_") and name != "topic_partitions"
    ]


def _run_topics(settings: Settings) -> set[str]:
    return {getattr(settings, name) for name in _topic_fields()}


def forget_earlier_runs(settings: Settings, tag: str, out: IO[str]) -> None:
    """Each run replays into topics of its own; the broker would otherwise keep every earlier run's."""

    def doomed(name: str) -> bool:
        return earlier_run_topic(name, settings, tag)

    try:
        gone = asyncio.run(delete_topics_where(settings.kafka_bootstrap_servers, doomed))
    except Exception as error:  # tidying up is no reason to refuse to run
        print(f"could not delete earlier demo runs' topics ({error!r}); going on", file=out, flush=True)
        return
    if gone:
        print(f"deleted {len(gone)} topics of earlier demo runs", file=out, flush=True)


def demo_settings(settings: Settings, tag: str) -> Settings:
    """Topics, consumer groups and checkpoints of this run alone.

    The demo replays the last hours each time it starts; a detector that remembered an earlier run's
    clock and event ids would call all of it late or duplicate.
    """
    topics = {name: f"demo-{tag}.{getattr(settings, name)}" for name in _topic_fields()}
    # The simulator derives the ids the adapters hash (Telegram chats, Message-IDs) with the worker's key:
    # without a configured key, the run gets one of its own rather than each process a random one.
    pii_key = settings.pii_key or SecretStr(secrets.token_hex(16))
    # The endpoint takes no unsigned payloads: the simulated sources authenticate with a token of this
    # run's (a vendor secret the simulator cannot sign with is left to its source).
    tokens: dict[str, object] = {
        f"{source}_token": SecretStr(secrets.token_hex(16))
        for source in ADAPTERS
        if f"{source}_token" in Settings.model_fields
        and source_token(settings, source) is None
        and source_secret(settings, source) is None
    }
    # The simulated bots report their replies to the outbound endpoint, signed with this run's secret;
    # the simulated team answers e-mail from its own domain.
    if settings.outbound_webhook_secret is None:
        tokens["outbound_webhook_secret"] = SecretStr(secrets.token_hex(16))
    if not settings.email_support_domains:
        tokens["email_support_domains"] = SUPPORT_DOMAIN
    return settings.model_copy(
        update={"app_id": f"{settings.app_id}-demo-{tag}", "pii_key": pii_key, **topics, **tokens}
    )


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    # Deliver it as SIGINT: inside asyncio.run that cancels the main task cleanly (the local receivers
    # and Alertmanager then stop in order); a KeyboardInterrupt raised here could land anywhere in the loop.
    signal.raise_signal(signal.SIGINT)


def run_demo(
    settings: Settings,
    duration: float | None,
    speed: float,
    history_hours: float,
    seed: int,
    out: IO[str] = sys.stdout,
) -> int:
    # The client libraries' INFO lines would drown the demo's own view.
    for noisy in ("aiokafka", "kafka", "mail.log", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The demo's own topic watcher starts while the new topics elect leaders; its fetcher logs each
    # retry of that as an ERROR. The worker's log keeps the worker's own.
    logging.getLogger("aiokafka.consumer.fetcher").setLevel(logging.CRITICAL)
    # `kill` and a closed terminal stop it the way Ctrl-C does: the worker and broker it started go too
    # (otherwise the worker outlives the demo and keeps a core busy).
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _stop_like_ctrl_c)
    run_started = datetime.now(UTC)
    with local_kafka(settings, out):
        tag = run_tag()
        forget_earlier_runs(settings, tag, out)
        settings = demo_settings(settings, tag)
        log_path = settings.data_dir / "demo-worker.log"
        print(f"starting the worker (log: {log_path}); Ctrl-C stops everything", file=out, flush=True)
        counts = DemoCounts()
        try:
            with (
                local_alertmanager(settings, out) as (settings, delivery),
                worker_process(settings, log_path),
            ):
                history = timedelta(hours=history_hours)
                asyncio.run(_run(settings, tag, counts, duration, speed, history, seed, out, delivery))
        except KeyboardInterrupt:
            print("\nstopping...", file=out, flush=True)
        summary = _clickhouse_summary(settings, run_started)
        if summary:
            print(summary, file=out, flush=True)
            print(_weekly_report(settings), file=out, flush=True)
        print(
            f"produced {counts.produced} records ({counts.produced_broken} deliberately broken)",
            file=out,
            flush=True,
        )
        if counts.delivering:
            firing = int(counts.value("contactpulse_alerts_sent_total", status="firing"))
            print(
                f"{firing} alerts fired; Alertmanager sent {counts.telegram_messages} Telegram messages to "
                "on-call (digests by rule, team and priority, each also e-mailed; alerts an incident or a "
                f"breach covers held back) and {counts.product_mail} e-mails to product managers",
                file=out,
                flush=True,
            )
    return 0
