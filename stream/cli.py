"""`contactpulse` — the one console script. Each subcommand reads settings when it runs, not before."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.settings import Settings, addresses, settings_from_env
from stream import quiet_logs

if TYPE_CHECKING:
    from schemas.config import DetectionConfig
    from stream.app import ContactPulseApp

DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "deploy" / "schemas"
DEFAULT_DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"


def tune_gc_for_long_lived_state() -> None:
    """Collect cycles less often: the detection state is a large, long-lived heap of small objects.

    CPython's default (a young collection every 700 allocations, full ones as the heap grows) spends
    about a tenth of a replay walking ticket state that is never garbage. What exists at start-up
    (modules, config) is frozen out of collections altogether. Cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust
    from prometheus_client import disable_created_metrics

    class QuietWorker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            # A broker outage repeats one error per attempt: one line per 10 s, with the count.
            quiet_logs.install(interval=10.0)
            quiet_logs.keep_payloads_out(level)

    from schemas.config import load_config
    from stream.app import create_app
    from stream.metrics import observe_gc_pauses
    from stream.sink import nice_a_sink_only_worker
    from stream.topics import ensure_topics

    disable_created_metrics()  # type: ignore[no-untyped-call]
    tune_gc_for_long_lived_state()
    nice_a_sink_only_worker(settings)  # first: threads started from here on inherit it
    asyncio.run(ensure_topics(settings))
    config = load_config(settings.config_file)
    built = create_app(settings)
    observe_gc_pauses(built.metrics)
    if settings.runs("detector") and settings.report_schedule:
        problem = report_settings_problem(settings, settings.report_recipients())
        if problem:
            print(f"contactpulse worker: CONTACTPULSE_REPORT_SCHEDULE is set, but {problem}", file=sys.stderr)
            return 2
    services = worker_services(settings, config, built)
    worker = QuietWorker(built.app, *services, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0


def worker_services(settings: Settings, config: DetectionConfig, built: ContactPulseApp) -> list[Any]:
    """The services a worker runs beside the Faust app (`/ingest`, `/metrics`), by role: the ClickHouse
    sink (which validates contacts.events and dead-letters what it refuses), and the detector with what
    hangs off it (reports, IMAP polling, the notifier). One process may run both, or two processes one
    each, so that each gets a core."""
    from stream.detector import DetectorService
    from stream.sink import (
        ClickHouseSink,
        alert_routes,
        contact_events_route,
        dead_letters_route,
        tickets_route,
    )

    services: list[Any] = []
    if settings.runs("sink"):
        routes = [
            contact_events_route(settings, config),
            *alert_routes(settings),
            tickets_route(settings),
            dead_letters_route(settings),
        ]
        services.append(ClickHouseSink(settings, built.metrics, routes))
    if settings.runs("detector"):
        detector = DetectorService(settings, config, built.metrics)
        services.append(detector)
        if settings.report_schedule:
            from stream.report import ReportScheduler

            services.append(ReportScheduler(settings, config, built.metrics, lambda: detector.owns_detection))
        if settings.imap_host:
            from stream.imap import ImapPoller

            services.append(ImapPoller(settings, built.metrics))
        if settings.alertmanager_urls():
            from stream.notify import Notifier, NotifierMetrics

            services.append(Notifier(settings, NotifierMetrics.create(built.registry)))
    return services


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from stream.demo import run_demo

    return run_demo(
        settings, duration=args.duration, speed=args.speed, history_hours=args.history_hours, seed=args.seed
    )


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import timedelta

    from stream.demo import simulate

    asyncio.run(
        simulate(
            settings, args.duration, args.speed, timedelta(hours=args.history_hours), args.seed, sys.stdout
        )
    )
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from schemas.config import load_config
    from stream.replay import replay

    until = None
    if args.until is not None:
        until = datetime.fromisoformat(args.until)
        if until.tzinfo is None:
            print("replay: --until needs an offset, e.g. 2026-11-24T18:00:00+03:00", file=sys.stderr)
            return 2
    config = load_config(args.config)
    tune_gc_for_long_lived_state()
    try:
        source = sys.stdin.buffer if str(args.events) == "-" else args.events.open("rb")
    except OSError as exc:
        print(f"replay: cannot read {args.events}: {exc}", file=sys.stderr)
        return 2
    dead = args.dead_letter.open("wb") if args.dead_letter else None
    try:
        with source, args.alerts.open("wb") as alerts_out:
            report = replay(source, config, alerts_out, until=until, dead_letters=dead)
    except OSError as exc:
        print(f"replay: cannot read {args.events}: {exc}", file=sys.stderr)
        return 2
    finally:
        if dead is not None:
            dead.close()
    print(report.summary(), file=sys.stderr)
    return 0


def _normalize(args: argparse.Namespace, settings: Settings) -> int:
    from stream.normalize import normalize_file

    return normalize_file(settings, args.source, args.file, args.header, sys.stdout, sys.stderr)


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.jsonschema import write_all

    for path in write_all(args.out):
        print(path)
    return 0


def _dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.dashboards import write

    for path in write(args.out):
        print(f"wrote {path}")
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.clickhouse import migrate

    applied = migrate(settings.dsn())
    print("applied: " + (", ".join(applied) if applied else "nothing, schema is current"))
    return 0


def mail_problem(settings: Settings, recipients: list[str]) -> str | None:
    """What stops a report from being e-mailed, if anything."""
    if not recipients:
        return "there is nobody to send it to (CONTACTPULSE_REPORT_TO or --to)"
    if not settings.smtp_host:
        return "CONTACTPULSE_SMTP_HOST is not set"
    return None


def report_settings_problem(settings: Settings, recipients: list[str]) -> str | None:
    """What stops the worker from keeping the report schedule, if anything."""
    problem = mail_problem(settings, recipients)
    if problem is None and settings.report_schedule:
        from zoneinfo import ZoneInfo

        from processors.report_schedule import parse_schedule

        try:
            parse_schedule(settings.report_schedule, ZoneInfo("UTC"))
        except ValueError as exc:
            return str(exc)
    return problem


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from processors.report_schedule import last_full_week, parse_iso_week
    from schemas.config import load_config
    from sinks import mail
    from sinks.report_html import plain_summary
    from stream.report import make_report

    config = load_config(settings.config_file)
    week = args.week or last_full_week(datetime.now(UTC), ZoneInfo(config.business_hours.time_zone))
    try:
        parse_iso_week(week)
    except ValueError as exc:
        print(f"contactpulse report: {exc}", file=sys.stderr)
        return 2
    recipients = [address for value in args.to for address in addresses(value)]
    if recipients:
        problem = mail_problem(settings, recipients)
        if problem:
            print(f"contactpulse report: cannot e-mail it: {problem}", file=sys.stderr)
            return 2
    lang = args.lang or settings.report_lang
    report, page = make_report(settings, config, week, lang)
    out = args.out or Path(f"report-{week}.html")
    out.write_text(page, encoding="utf-8")
    print(plain_summary(report), end="")
    print(f"\nwrote {out}")
    if recipients:
        mail.send(mail.report_message(report, page, settings.smtp_from, recipients), settings)
        print(f"sent to {', '.join(recipients)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contactpulse", description="Real-time alerting over the stream of customer contacts."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("worker", help="run the Faust worker (agents, ClickHouse sink, /metrics)")

    demo = commands.add_parser(
        "demo", help="start Kafka if needed, the worker and a traffic simulator; show what flows"
    )
    simulate = commands.add_parser("simulate", help="only produce simulated traffic to the events topic")
    for command in (demo, simulate):
        command.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
        command.add_argument(
            "--history-hours", type=float, default=12.0, help="start the simulated traffic this far back"
        )
        command.add_argument(
            "--speed", type=float, default=240.0, help="simulated seconds per wall second while catching up"
        )
        command.add_argument("--seed", type=int, default=7, help="seed of the traffic simulator")

    replay = commands.add_parser(
        "replay", help="run the detectors over a JSON-lines file of events; write alert state changes"
    )
    replay.add_argument("events", type=Path, help="normalized events, one JSON object per line (- = stdin)")
    replay.add_argument("--alerts", type=Path, required=True, help="where to write alert JSON lines")
    replay.add_argument("--config", type=Path, default=None, help="detection config (TOML)")
    replay.add_argument("--until", default=None, help="advance the clock to this instant at the end")
    replay.add_argument("--dead-letter", type=Path, default=None, help="write rejected lines here")

    normalize = commands.add_parser(
        "normalize", help="print the normalized events of one native payload (JSON lines)"
    )
    normalize.add_argument("--source", required=True, help="adapter name, e.g. telegram")
    normalize.add_argument("file", type=Path, help="the payload as the source sent it (- = stdin)")
    normalize.add_argument(
        "--header", action="append", default=[], metavar="K=V", help="a request header, repeatable"
    )

    schema = commands.add_parser("schema", help="write the JSON Schemas of the contracts")
    schema.add_argument("--out", type=Path, default=DEFAULT_SCHEMA_DIR)

    report = commands.add_parser(
        "report", help="the weekly report for the head of support: an HTML page, optionally e-mailed"
    )
    report.add_argument("--week", default=None, help="ISO week, e.g. 2026-W47 (default: the last full week)")
    report.add_argument(
        "--lang", choices=("en", "ru"), default=None, help="default: CONTACTPULSE_REPORT_LANG"
    )
    report.add_argument("--out", type=Path, default=None, help="where to write the page (report-WEEK.html)")
    report.add_argument(
        "--to", action="append", default=[], metavar="ADDRESS", help="e-mail it (CONTACTPULSE_SMTP_*)"
    )

    dashboards = commands.add_parser(
        "dashboards",
        help="write the Grafana dashboards (defined in sinks/dashboards.py) as provisioning JSON",
    )
    dashboards.add_argument("--out", type=Path, default=DEFAULT_DASHBOARD_DIR)

    commands.add_parser("migrate", help="apply pending ClickHouse migrations and exit")
    commands.add_parser(
        "notify", help="deliver the alert topics to Alertmanager (CONTACTPULSE_ALERTMANAGER_URL)"
    )
    am_config = commands.add_parser(
        "alertmanager-config",
        help="render deploy/alertmanager/alertmanager.yml with the receivers' secrets from the environment",
    )
    am_config.add_argument("--out", type=Path, required=True, help="where to write it (mode 0600)")
    return parser


def _notify(args: argparse.Namespace, settings: Settings) -> int:
    from stream.notify import run_notifier

    return run_notifier(settings)


def _alertmanager_config(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from sinks.alertmanager_config import MissingSetting, render_config

    try:
        text = render_config(os.environ)
    except MissingSetting as exc:
        print(f"contactpulse alertmanager-config: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    print(f"wrote {args.out}")
    return 0


_HANDLERS = {
    "worker": _worker,
    "demo": _demo,
    "simulate": _simulate,
    "replay": _replay,
    "normalize": _normalize,
    "schema": _schema,
    "migrate": _migrate,
    "dashboards": _dashboards,
    "report": _report,
    "notify": _notify,
    "alertmanager-config": _alertmanager_config,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_env()
    if args.command != "worker":
        logging.basicConfig(
            level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        quiet_logs.keep_payloads_out(logging.getLogger().level)
    return _HANDLERS[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
