"""Alerts reach people: alert topics -> the notifier -> the real Alertmanager (0.25) with the shipped
configuration and templates -> a Telegram stand-in and an SMTP server. Grouping, inhibition, routing to a
product manager's area, resolved messages, and the exact text of each message."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.alert import Alert, AlertStatus, Audience, Severity, alert_id_for
from schemas.settings import Settings
from stream.local_receivers import (
    BOT_TOKEN,
    CHAT_ID,
    FakeSmtp,
    FakeTelegram,
    RunningAlertmanager,
    receiver_environment,
    start_alertmanager,
)
from stream.topics import ensure_topics
from tests.integration.conftest import free_port, produce

pytestmark = pytest.mark.integration

STARTED = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
# group_wait leaves Alertmanager's inhibitor time to see the incident and the breaches posted with the
# alerts they inhibit. It holds only if startsAt is when Alertmanager took the alert: with the event time
# (07:00 here) Alertmanager skipped group_wait and the at-risk alert raced its breach (it won on CI).
FAST = {
    "group_wait": "6s",
    "group_interval": "3s",
    "incident_group_wait": "1s",
    "product_group_wait": "1s",
    "sla_group_wait": "6s",
    "sla_urgent_interval": "3s",
    "sla_digest_interval": "3s",
}


def alert(
    rule: str,
    subject: dict[str, str],
    summary: str,
    labels: dict[str, str],
    audience: Audience = Audience.ONCALL,
    severity: Severity = Severity.CRITICAL,
    resolved: bool = False,
) -> Alert:
    return Alert(
        alert_id=alert_id_for(rule, subject),
        rule=rule,
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        severity=severity,
        audience=audience,
        subject=subject,
        starts_at=STARTED,
        ends_at=STARTED + timedelta(hours=1) if resolved else None,
        summary=summary,
        details={"priority": labels.get("priority")},
        labels=labels,
    )


def breached(ticket: str, **extra: str) -> Alert:
    return alert(
        "sla_first_response_breached",
        {"ticket_id": ticket},
        f"Ticket {ticket} (p2, email) breached its 4 h first-response target at 2026-11-24 14:00 MSK.",
        {"team": "L1", "priority": "p2", "channel": "email", **extra},
    )


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


async def test_grouped_inhibited_routed_and_resolved_messages_with_exact_text(
    isolated_settings: Settings,
    tmp_path: Path,
    start_notifier: Callable[[Settings], subprocess.Popen[bytes]],
) -> None:
    telegram, smtp = FakeTelegram(), FakeSmtp()
    await telegram.start()
    smtp.start(free_port())
    manager: RunningAlertmanager | None = None
    try:
        manager = await start_alertmanager(
            tmp_path, free_port(), receiver_environment(telegram.port, smtp.port, **FAST)
        )
        settings = isolated_settings.model_copy(
            update={
                "alertmanager_url": manager.url,
                "notifier_resend_seconds": 5.0,
                "notifier_web_port": free_port(),
                "ticket_url_template": "https://support.example.org/tickets/{ticket_id}",
            }
        )
        await ensure_topics(settings)
        at_risk = alert(
            "sla_first_response_at_risk",
            {"ticket_id": "T-1"},
            "Ticket T-1 (p2, email) is at risk: 75% of its 4 h first-response target is used.",
            {"team": "L1", "priority": "p2", "channel": "email"},
            severity=Severity.WARNING,
        )
        incident = alert(
            "incident_cluster",
            {"error_code": "E-42"},
            "6 customers reported error E-42 within 30 min (7 tickets).",
            {"error_code": "E-42"},
        )
        billing = alert(
            "feature_request_cluster",
            {"cluster_id": "c-billing"},
            '5 customers asked for the same feature: "Счёт в формате <PDF> & XML" (5 requests).',
            {"topic": "billing", "category": "development"},
            audience=Audience.PRODUCT,
            severity=Severity.INFO,
        )
        delivery = alert(
            "feature_request_cluster",
            {"cluster_id": "c-delivery"},
            '5 customers asked for the same feature: "Track parcels" (5 requests).',
            {"topic": "delivery"},
            audience=Audience.PRODUCT,
            severity=Severity.INFO,
        )
        error_rise = alert(
            "volume_spike",
            {"dimension": "error_code", "value": "E-42"},
            "New contacts with error_code 'E-42' rose 300% week over week (40 vs 10).",
            {"error_code": "E-42"},
            audience=Audience.ENGINEERING,
            severity=Severity.WARNING,
        )
        firing = [
            breached("T-1"),
            breached("T-2"),
            breached("T-3", error_code="E-42"),  # the incident is its page
            incident,
            at_risk,  # T-1 breached: its at-risk alert waits
            billing,
            delivery,
            error_rise,  # engineering's alone: on the on-call topic, not in the on-call chat
        ]
        records = [(a.alert_id.encode(), a.to_json()) for a in firing]
        oncall = [r for r, a in zip(records, firing, strict=True) if a.audience is not Audience.PRODUCT]
        product = [r for r, a in zip(records, firing, strict=True) if a.audience is Audience.PRODUCT]
        await produce(settings.kafka_bootstrap_servers, settings.topic_alerts_oncall, oncall)
        await produce(settings.kafka_bootstrap_servers, settings.topic_alerts_product, product)
        notifier_started = time.monotonic()
        start_notifier(settings)

        await wait_until(lambda: len(telegram.messages) >= 2, 60, "two Telegram messages")
        await wait_until(lambda: len(smtp.recorder.mail) >= 6, 60, "six e-mails")
        await asyncio.sleep(4)  # nothing more may come (inhibited alerts, other routes)

        def ticket(n: int) -> str:
            url = f"https://support.example.org/tickets/T-{n}"
            return f'• <a href="{url}">T-{n}</a> · p2 · L1 · email'

        sla_text = (
            "🔴 <b>SLA: 2 breached, 0 at risk / нарушено 2, под угрозой 0</b>\n"
            "<b>2 × first-response SLA breached / нарушен срок первого ответа</b>\n"
            f"{ticket(1)}\n{ticket(2)}\n"
        )
        incident_text = (
            "🔴 <b>1 × incident / инцидент</b> · E-42\n"
            "• 6 customers reported error E-42 within 30 min (7 tickets).\n"
        )
        assert sorted(telegram.texts()) == sorted([sla_text, incident_text])
        (sla_message,) = [m for m in telegram.messages if m["text"] == sla_text]
        assert sla_message["_at"] - notifier_started >= 6.0  # group_wait held for alerts of 07:00
        assert {m["_token"] for m in telegram.messages} == {BOT_TOKEN}
        assert {str(m["chat_id"]) for m in telegram.messages} == {CHAT_ID}
        assert {m.get("parse_mode") for m in telegram.messages} == {"HTML"}

        assert sorted(m["Subject"] for m in smtp.to("oncall@example.org")) == [
            "[ContactPulse] 1 × incident / инцидент · E-42: 6 customers reported error E-42 within 30 min "
            "(7 tickets).",
            "[ContactPulse] SLA: 2 breached, 0 at risk / нарушено 2, под угрозой 0",
        ]
        # Engineering hears of the incident (also paged above) and of the error code's weekly rise.
        assert sorted(m["Subject"] for m in smtp.to("engineering@example.org")) == [
            "[ContactPulse] 1 × incident / инцидент · E-42: 6 customers reported error E-42 within 30 min "
            "(7 tickets).",
            "[ContactPulse] 1 × volume spike / рост обращений · E-42: New contacts with error_code 'E-42' "
            "rose 300% week over week (40 vs 10).",
        ]
        assert len(smtp.recorder.mail) == 6
        (pm_billing,) = smtp.to("pm-billing@example.org")
        (pm_all,) = smtp.to("product@example.org")
        assert pm_billing["Subject"] == (
            "[ContactPulse] 1 × feature request cluster / запрос функции: "
            '5 customers asked for the same feature: "Счёт в формате <PDF> & XML" (5 requests).'
        )
        billing_html = pm_billing.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "Счёт в формате &lt;PDF&gt; &amp; XML" in billing_html
        assert "Track parcels" not in billing_html
        delivery_html = pm_all.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "Track parcels" in delivery_html
        assert "Счёт" not in delivery_html

        # An agent answers T-1: both its alerts resolve (as the engine resolves them). The SLA digest says
        # so at its next interval, with T-2 still breached; the at-risk alert was never sent (inhibited
        # by the breach, and a p2 first response at risk is the board's), so nothing says it resolved.
        now = datetime.now(UTC)
        answered = [
            a.model_copy(update={"status": AlertStatus.RESOLVED, "ends_at": now})
            for a in (breached("T-1"), at_risk)
        ]
        await produce(
            settings.kafka_bootstrap_servers,
            settings.topic_alerts_oncall,
            [(a.alert_id.encode(), a.to_json()) for a in answered],
        )
        await wait_until(lambda: len(telegram.messages) >= 3, 60, "the resolved message")
        await asyncio.sleep(4)
        assert len(telegram.messages) == 3
        assert telegram.texts()[2] == (
            "🔴 <b>SLA: 1 breached, 0 at risk / нарушено 1, под угрозой 0</b>\n"
            "<b>1 × first-response SLA breached / нарушен срок первого ответа</b>\n"
            f"{ticket(2)}\n"
            "✅ <b>1 breached answered or solved since the last digest / отвечены или решены после "
            "нарушения</b>\n"
            f"{ticket(1)} (first-response SLA breached / нарушен срок первого ответа)\n"
        )
    finally:
        if manager is not None:
            manager.stop()
        smtp.stop()
        await telegram.stop()
