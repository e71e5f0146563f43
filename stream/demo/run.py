"""`contactpulse demo`: a real broker, the real worker, simulated traffic, and a live view of what flows.

It starts the local Kafka broker when none answers, declares the topics, starts `contactpulse worker` as
a child process, replays the last hours of simulated traffic faster than real time and then keeps pace
with the wall clock. Ctrl-C (or --duration) stops everything it started, in reverse order.

Process control is `processes`, the traffic `traffic`, the terminal report `view`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import IO, Final

import aiohttp

from schemas.settings import Settings
from stream.demo.processes import (
    DemoDelivery,
    demo_settings,
    forget_earlier_runs,
    local_alertmanager,
    local_kafka,
    run_tag,
    worker_process,
)
from stream.demo.traffic import TICK_SECONDS, TrafficPump
from stream.demo.view import (
    DemoCounts,
    clickhouse_summary,
    delivered,
    print_pending_alerts,
    report_line,
    scrape,
    watch_topics,
    weekly_report,
)
from stream.topics import ensure_topics

_REPORT_SECONDS: Final = 2.0
_DRAIN_SECONDS: Final = 30.0


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
    async with delivered(delivery, counts, out):
        await ensure_topics(settings)
        ingest_url = f"http://{settings.web_host}:{settings.web_port}/ingest"
        pump = TrafficPump(settings, seed, history, speed, run_tag=tag, ingest_url=ingest_url)
        await pump.start()
        watcher = asyncio.create_task(watch_topics(settings, counts, out))
        metrics_url = f"http://{settings.web_host}:{settings.web_port}/metrics"
        started = time.monotonic()
        last_report = 0.0
        try:
            async with aiohttp.ClientSession() as session:
                raw_path_ready = False
                while duration is None or time.monotonic() - started < duration:
                    await pump.pump(raw_path_ready)
                    if not raw_path_ready and await scrape(session, metrics_url, counts):
                        raw_path_ready = counts.value("contactpulse_raw_payloads_normalized_total") > 0
                    counts.produced, counts.produced_broken = pump.produced, pump.produced_broken
                    counts.posted = pump.posted
                    if time.monotonic() - last_report >= _REPORT_SECONDS:
                        last_report = time.monotonic()
                        if await scrape(session, metrics_url, counts):
                            print(report_line(pump.sim_now, counts), file=out, flush=True)
                            print_pending_alerts(counts, out)
                        else:
                            print(
                                f"produced {counts.produced}; waiting for the worker at {metrics_url}...",
                                file=out,
                                flush=True,
                            )
                    await asyncio.sleep(TICK_SECONDS)
                await pump.stop()
                # Let the worker judge and store what was just produced, then take a last reading.
                deadline = time.monotonic() + _DRAIN_SECONDS
                while time.monotonic() < deadline:
                    if await scrape(session, metrics_url, counts) and counts.drained():
                        break
                    await asyncio.sleep(0.5)
                print(report_line(pump.sim_now, counts), file=out, flush=True)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await pump.stop()


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
        summary = clickhouse_summary(settings, run_started)
        if summary:
            print(summary, file=out, flush=True)
            print(weekly_report(settings), file=out, flush=True)
        print(
            f"produced {counts.produced} records ({counts.produced_broken} deliberately broken)",
            file=out,
            flush=True,
        )
        if counts.delivering:
            firing = int(counts.value("contactpulse_alerts_sent_total", status="firing"))
            print(
                f"{_many(firing, 'alert')} fired; Alertmanager sent "
                f"{_many(counts.telegram_messages, 'Telegram message')} to on-call (an urgent SLA digest "
                "for p1/p2, an SLA digest for the rest, follow-ups, incidents; each also e-mailed; alerts "
                "an incident or a breach covers held back) and "
                f"{_many(counts.product_mail, 'e-mail')} to product managers and "
                f"{_many(counts.engineering_mail, 'e-mail')} to engineering (incidents, error-code spikes)",
                file=out,
                flush=True,
            )
    return 0


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
