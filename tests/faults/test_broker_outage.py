"""The broker goes away under webhook load: stopped for 30 s, then frozen (SIGSTOP) for 60 s.

Senders behave like the vendors do: a 202 is final, anything else is retried after Retry-After. Every
payload that got 202 must reach ClickHouse exactly once; during the outage the endpoint says 503 with
Retry-After (never 500); the worker recovers without a restart; its log stays small (it used to write
170,000 ERROR lines in a 24 s outage).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable

import aiohttp
import pytest

from schemas.settings import Settings
from stream.topics import ensure_topics
from tests.faults.conftest import FaultRow
from tests.faults.test_restarts_and_failover import stored_events
from tests.integration.conftest import (
    PrivateBroker,
    WorkerProcess,
    group_caught_up,
    wait_for_metrics,
)
from tests.integration.test_ingest import PII_KEY, TELEGRAM_TOKEN, telegram

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SENDERS = 4
PAUSE_BETWEEN_UPDATES = 0.2  # about 20 new updates a second in all
LOG_LIMIT_BYTES = 1_000_000
ROWS_WRITTEN = "contactpulse_clickhouse_rows_written_total"


class Vendor:
    """Webhook senders with the retry discipline of Telegram or Zendesk."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.numbers = itertools.count()
        self.accepted: Counter[int] = Counter()
        self.statuses: Counter[int] = Counter()
        self.retry_after_missing = 0
        self.stopping = False

    async def send_until_accepted(self, session: aiohttp.ClientSession, n: int) -> None:
        body, headers, _ = telegram(n)
        while True:
            try:
                async with session.post(
                    self.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
                ) as response:
                    await response.read()
                    status, retry = response.status, response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError):
                status, retry = 0, "1"  # the worker itself unreachable: a vendor retries too
            self.statuses[status] += 1
            if status == 202:
                self.accepted[n] += 1
                return
            if status in (429, 503) and retry is None:
                self.retry_after_missing += 1
            await asyncio.sleep(min(float(retry or 1), 2.0))

    async def run(self, session: aiohttp.ClientSession) -> None:
        while not self.stopping:
            await self.send_until_accepted(session, next(self.numbers))
            await asyncio.sleep(PAUSE_BETWEEN_UPDATES * SENDERS)


async def test_broker_stopped_then_frozen_under_webhook_load(
    private_broker: PrivateBroker,  # first: set up before the worker, torn down after it
    isolated_settings: Settings,
    start_worker: Callable[[Settings], WorkerProcess],
    fault_report: list[FaultRow],
) -> None:
    settings = isolated_settings.model_copy(
        update={
            "kafka_bootstrap_servers": private_broker.bootstrap,
            "telegram_secret_token": TELEGRAM_TOKEN,
            "pii_key": PII_KEY,
            "ingest_ack_timeout_seconds": 3.0,
        }
    )
    await ensure_topics(settings)
    worker = start_worker(settings)
    await wait_for_metrics(worker, lambda m: m.get("contactpulse_detector_owner", 0) == 1)
    vendor = Vendor(f"http://127.0.0.1:{settings.web_port}/ingest/telegram")
    async with aiohttp.ClientSession() as session:
        senders = [asyncio.create_task(vendor.run(session)) for _ in range(SENDERS)]
        await asyncio.sleep(10)
        before_outage = sum(vendor.accepted.values())
        await asyncio.to_thread(private_broker.stop)
        await asyncio.sleep(30)
        started = await asyncio.to_thread(private_broker.start)
        assert started.returncode == 0, started.stderr
        await asyncio.sleep(15)
        await asyncio.to_thread(private_broker.freeze)
        await asyncio.sleep(60)
        await asyncio.to_thread(private_broker.thaw)
        await asyncio.sleep(20)
        vendor.stopping = True
        await asyncio.wait_for(asyncio.gather(*senders), timeout=180)

    accepted = set(vendor.accepted)
    assert before_outage > 20  # the load flowed before the outage
    assert vendor.statuses[503] > 0  # the outage was seen, and said as 503
    assert set(vendor.statuses) <= {202, 503, 429, 0}, vendor.statuses
    assert vendor.retry_after_missing == 0
    assert set(vendor.accepted.values()) == {1}
    # Every event of an accepted payload reaches ClickHouse once; the worker was never restarted.
    bootstrap = settings.kafka_bootstrap_servers
    await group_caught_up(bootstrap, settings.app_id, settings.topic_raw, 4, timeout=180)
    await group_caught_up(
        bootstrap, f"{settings.app_id}-clickhouse-sink", settings.topic_events, 4, timeout=180
    )
    assert worker.process.poll() is None
    await wait_for_metrics(
        worker,
        lambda m: m.get(f"{ROWS_WRITTEN}{{table=contact_events}}", 0) >= len(accepted),
        timeout=120,
    )
    worker.stop()
    rows, distinct = stored_events(settings)
    log_bytes = worker.log_path.stat().st_size
    row = FaultRow(
        "broker stopped 30 s, frozen 60 s, under webhooks",
        len(accepted),
        distinct,
        len(accepted) - distinct,
        rows - distinct,
        f"{vendor.statuses[503]} x 503, log {log_bytes // 1024} KiB",
    )
    fault_report.append(row)
    assert rows == distinct == len(accepted)
    assert log_bytes < LOG_LIMIT_BYTES, worker.log()[-4000:]
