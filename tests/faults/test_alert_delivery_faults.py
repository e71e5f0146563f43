"""Alert delivery through faults, on the real broker and the real Alertmanager 0.25:

- Alertmanager stopped for 2 minutes while alerts fire and change: when it is back, every alert firing
  at that moment is in it, the changes made meanwhile reach Telegram, and no message is sent twice.
- The notifier killed with `kill -9` and started again: the firing alerts are re-sent before their
  `endsAt`, so none expires in Alertmanager (no false "resolved"), and changes made while it was down
  are delivered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from schemas.alert import Alert, AlertStatus, Audience, Severity, alert_id_for
from schemas.settings import Settings
from stream.local_receivers import (
    FakeSmtp,
    FakeTelegram,
    RunningAlertmanager,
    receiver_environment,
    start_alertmanager,
)
from stream.topics import ensure_topics
from tests.faults.conftest import FaultRow
from tests.integration.conftest import free_port, produce, scrape

pytestmark = [pytest.mark.integration, pytest.mark.faults]

FAST = {
    "group_wait": "1s",
    "group_interval": "3s",
    "incident_group_wait": "1s",
    "product_group_wait": "1s",
    "sla_group_wait": "1s",
    "sla_urgent_interval": "3s",
    "sla_digest_interval": "3s",
}
STARTED = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def sla(ticket: int, team: str, resolved: bool = False) -> Alert:
    subject = {"ticket_id": f"T-{ticket}"}
    return Alert(
        alert_id=alert_id_for("sla_first_response_breached", subject),
        rule="sla_first_response_breached",
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        severity=Severity.CRITICAL,
        audience=Audience.ONCALL,
        subject=subject,
        starts_at=STARTED + timedelta(minutes=ticket),
        ends_at=datetime.now(UTC) if resolved else None,
        summary=f"Ticket T-{ticket} breached its 4 h first-response target.",
        details={},
        labels={"team": team, "priority": "p2"},
    )


async def publish(settings: Settings, alerts: list[Alert]) -> None:
    await produce(
        settings.kafka_bootstrap_servers,
        settings.topic_alerts_oncall,
        [(a.alert_id.encode(), a.to_json()) for a in alerts],
    )


async def active_in(manager: RunningAlertmanager) -> dict[str, dict[str, Any]]:
    """Alertmanager's alerts that are not resolved (active or suppressed), by our alert id."""
    async with aiohttp.ClientSession() as session, session.get(f"{manager.url}/api/v2/alerts") as response:
        alerts = await response.json()
    now = datetime.now(UTC)
    return {
        a["labels"]["alert_id"]: a
        for a in alerts
        if datetime.fromisoformat(a["endsAt"].replace("Z", "+00:00")) > now
    }


async def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
async def receivers() -> Any:
    telegram, smtp = FakeTelegram(), FakeSmtp()
    await telegram.start()
    smtp.start(free_port())
    yield telegram, smtp
    smtp.stop()
    await telegram.stop()


async def test_alertmanager_down_for_two_minutes_then_back(
    isolated_settings: Settings,
    tmp_path: Path,
    start_notifier: Callable[[Settings], subprocess.Popen[bytes]],
    receivers: tuple[FakeTelegram, FakeSmtp],
    fault_report: list[FaultRow],
) -> None:
    telegram, smtp = receivers
    port, storage = free_port(), tmp_path / "am-storage"
    environment = receiver_environment(telegram.port, smtp.port, **FAST)
    manager = await start_alertmanager(tmp_path, port, environment, storage)
    settings = isolated_settings.model_copy(
        update={
            "alertmanager_url": manager.url,
            "notifier_resend_seconds": 10.0,
            "notifier_web_port": free_port(),
        }
    )
    try:
        await ensure_topics(settings)
        before = [sla(n, team="L1") for n in range(10)]
        await publish(settings, before)
        start_notifier(settings)
        await eventually(lambda: _count(active_in(manager), 10), 60, "the first alerts in Alertmanager")
        await eventually(lambda: _messages(telegram, 1), 60, "the first digest")
        manager.stop()
        # While it is down: five of the first resolve, ten new ones fire in another team.
        during = [sla(n, team="L1", resolved=True) for n in range(5)] + [
            sla(n, team="L2") for n in range(10, 20)
        ]
        await publish(settings, during)
        await asyncio.sleep(30)
        metrics = await scrape(f"http://127.0.0.1:{settings.notifier_web_port}/metrics")
        assert metrics["contactpulse_notifier_oldest_unsent_seconds"] > 20
        assert metrics["contactpulse_notifier_post_failures_total"] > 0
        await asyncio.sleep(90)
        manager = await start_alertmanager(tmp_path, port, environment, storage)
        expected = {a.alert_id for a in before[5:] + during[5:]}
        active = await eventually(
            lambda: _exactly(active_in(manager), expected), 60, "the firing set back in Alertmanager"
        )
        # One SLA digest holds both teams: 5 of the first still breached, the 10 new ones.
        await eventually(lambda: _mentions(telegram, "15 × first-response"), 60, "the digest after")
        await asyncio.sleep(5)
        texts = Counter(telegram.texts())
        doubled = sum(count - 1 for count in texts.values())
        fault_report.append(
            FaultRow(
                "Alertmanager down 2 min while alerts fire",
                len(expected),
                len(set(active) & expected),
                len(expected - set(active)),
                doubled,
                f"{len(telegram.messages)} Telegram messages",
            )
        )
        assert doubled == 0
        # The on-call e-mail of that digest lists every ticket (Telegram shows the first 8 of a rule).
        digests = [m for m in smtp.to("oncall@example.org") if "15 breached" in m["Subject"]]
        assert digests
        html = digests[-1].get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert all(f"T-{n} " in html for n in range(5, 20))
    finally:
        manager.stop()


async def test_notifier_killed_and_restarted_keeps_every_alert_firing(
    isolated_settings: Settings,
    tmp_path: Path,
    start_notifier: Callable[[Settings], subprocess.Popen[bytes]],
    receivers: tuple[FakeTelegram, FakeSmtp],
    fault_report: list[FaultRow],
) -> None:
    telegram, smtp = receivers
    manager = await start_alertmanager(
        tmp_path, free_port(), receiver_environment(telegram.port, smtp.port, **FAST)
    )
    settings = isolated_settings.model_copy(
        update={
            "alertmanager_url": manager.url,
            "notifier_resend_seconds": 3.0,  # endsAt 12 s ahead
            "notifier_web_port": free_port(),
        }
    )
    try:
        await ensure_topics(settings)
        firing = [sla(n, team="L1") for n in range(8)]
        await publish(settings, firing)
        first = start_notifier(settings)
        await eventually(lambda: _count(active_in(manager), 8), 60, "the alerts in Alertmanager")
        await eventually(lambda: _messages(telegram, 1), 60, "the digest")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        changed = [sla(0, team="L1", resolved=True), sla(8, team="L1")]
        await publish(settings, changed)  # while no notifier runs
        start_notifier(settings)
        await asyncio.sleep(25)  # twice the endsAt horizon: only re-sends keep them firing
        expected = {a.alert_id for a in firing[1:] + changed[1:]}
        active = await active_in(manager)
        resolved_messages = [t for t in telegram.texts() if "✅" in t]
        fault_report.append(
            FaultRow(
                "notifier kill -9 and restart",
                len(expected),
                len(set(active) & expected),
                len(expected - set(active)),
                len(set(active) - expected),
                f"{len(resolved_messages)} resolved message(s) (T-0 only)",
            )
        )
        assert set(active) == expected
        assert len(resolved_messages) == 1
        assert "T-0" in resolved_messages[0]
        assert "T-1 " not in resolved_messages[0].split("✅")[1]
    finally:
        manager.stop()


async def _count(found: Any, n: int) -> bool:
    return len(await found) >= n


async def _exactly(found: Any, expected: set[str]) -> dict[str, Any] | None:
    active = await found
    return active if set(active) == expected else None


async def _messages(telegram: FakeTelegram, n: int) -> bool:
    return len(telegram.messages) >= n


async def _mentions(telegram: FakeTelegram, text: str) -> bool:
    return any(text in t for t in telegram.texts())
