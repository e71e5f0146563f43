"""The digest templates (deploy/alertmanager/templates/contactpulse.tmpl) rendered by the real `amtool`
over alerts as the notifier posts them: one message for many tickets of several rules, escaped for
Telegram's HTML, and short enough for Telegram however many tickets a digest holds."""

from __future__ import annotations

import html
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from processors.delivery import Links, to_alertmanager
from schemas.alert import Alert, AlertStatus, Audience, Severity, alert_id_for
from sinks.alertmanager_config import TEMPLATE

TEMPLATES = TEMPLATE.parent / "templates" / "*.tmpl"
AT = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
LINKS = Links("https://support.example.org/tickets/{ticket_id}", "https://grafana.example.org/d/cp")
TELEGRAM_LIMIT = 4096
"""Characters of a message, after Telegram parsed its HTML."""


def sla(rule: str, ticket: str, priority: str = "p3", team: str = "L1", resolved: bool = False) -> Alert:
    return Alert(
        alert_id=alert_id_for(rule, {"ticket_id": ticket}),
        rule=rule,
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        severity=Severity.WARNING,
        audience=Audience.ONCALL,
        subject={"ticket_id": ticket},
        starts_at=AT,
        ends_at=AT if resolved else None,
        summary=f"Ticket {ticket} ({priority}, email): {rule}, a summary of about this length in words.",
        details={},
        labels={"team": team, "priority": priority, "channel": "email"},
    )


def render(definition: str, alerts: list[Alert], tmp_path: Path) -> str:
    posted = [to_alertmanager(alert, AT, 120.0, LINKS) for alert in alerts]
    data: dict[str, Any] = {
        "receiver": "oncall-sla",
        "status": "firing",
        "alerts": [
            {
                "status": "resolved" if alert.status is AlertStatus.RESOLVED else "firing",
                "labels": body["labels"],
                "annotations": body["annotations"],
                "startsAt": body["startsAt"],
                "endsAt": body["endsAt"],
                "generatorURL": "",
                "fingerprint": alert.alert_id[:16],
            }
            for alert, body in zip(alerts, posted, strict=True)
        ],
        "groupLabels": {"audience": "oncall"},
        "commonLabels": {"audience": "oncall"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.org",
        "version": "4",
        "groupKey": '{}:{audience="oncall"}',
    }
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    found = subprocess.run(
        [
            "amtool",
            "template",
            "render",
            f"--template.glob={TEMPLATES}",
            f'--template.text={{{{ template "{definition}" . }}}}',
            f"--template.data={path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout


def line(ticket: str, priority: str = "p3", team: str = "L1") -> str:
    url = f"https://support.example.org/tickets/{ticket}"
    return f'• <a href="{url}">{ticket}</a> · {priority} · {team} · email'


def test_one_sla_digest_lists_rules_in_sections_and_the_breaches_answered_since(tmp_path: Path) -> None:
    alerts = [sla("sla_first_response_breached", f"T-{n}") for n in range(10)]
    alerts += [
        sla("sla_resolution_at_risk", "T-20", "p2", "L2"),
        sla("sla_resolution_breached", "T-30", resolved=True),
        sla("sla_first_response_at_risk", "T-40", resolved=True),  # answered in time: not listed
    ]
    text = render("contactpulse.sla.telegram", alerts, tmp_path)
    assert text == "\n".join(
        [
            "🔴 <b>SLA: 10 breached, 1 at risk / нарушено 10, под угрозой 1</b>",
            "<b>10 × first-response SLA breached / нарушен срок первого ответа</b>",
            *[line(f"T-{n}") for n in range(8)],
            '… 8 of 10 shown / показано 8 из 10: <a href="https://grafana.example.org/d/cp">dashboard</a>',
            "<b>1 × at risk of a resolution breach / под угрозой срока решения</b>",
            line("T-20", "p2", "L2"),
            "✅ <b>1 breached answered or solved since the last digest / отвечены или решены после "
            "нарушения</b>",
            line("T-30") + " (resolution SLA breached / нарушен срок решения)",
            "",
        ]
    )


def test_a_digest_of_only_risks_is_orange_and_values_are_escaped(tmp_path: Path) -> None:
    alerts = [sla("sla_resolution_at_risk", "T-<1>&", team="L1 & <L2>")]
    text = render("contactpulse.sla.telegram", alerts, tmp_path)
    assert text.splitlines()[0] == "🟠 <b>SLA: 0 breached, 1 at risk / нарушено 0, под угрозой 1</b>"
    assert "T-&lt;1&gt;&amp;</a> · p3 · L1 &amp; &lt;L2&gt;" in text
    subject = render("contactpulse.sla.email.subject", alerts, tmp_path)
    assert subject == "[ContactPulse] SLA: 0 breached, 1 at risk / нарушено 0, под угрозой 1"


def test_a_digest_of_hundreds_of_tickets_stays_within_telegrams_limit(tmp_path: Path) -> None:
    rules = ["sla_first_response_breached", "sla_resolution_breached", "sla_resolution_at_risk"]
    alerts = [sla(rule, f"T-{rule[4:9]}-{n:04d}-long-ticket-id") for rule in rules for n in range(200)]
    alerts += [sla("sla_first_response_at_risk", f"T-risk-{n}") for n in range(200)]
    text = render("contactpulse.sla.telegram", alerts, tmp_path)
    assert text.count("• ") == 4 * 8
    # Telegram counts the text after parsing its HTML (a link's address is not counted).
    visible = html.unescape(re.sub(r"<[^>]+>", "", text))
    assert len(visible) < TELEGRAM_LIMIT / 2
    # The e-mail lists every ticket.
    email = render("contactpulse.sla.email.html", alerts, tmp_path)
    assert email.count("<li>") == 800


def test_follow_ups_are_one_digest_in_sections(tmp_path: Path) -> None:
    def follow_up(rule: str, n: int) -> Alert:
        return sla(rule, f"T-{n}").model_copy(update={"summary": f"{rule} of T-{n} <b>"})

    alerts = [follow_up("negative_csat", n) for n in range(2)] + [follow_up("repeat_contact", 9)]
    text = render("contactpulse.followups.telegram", alerts, tmp_path)
    assert text == "\n".join(
        [
            "🟡 <b>3 follow-ups / к работе</b>",
            "<b>2 × negative CSAT / негативная оценка</b>",
            "• negative_csat of T-0 &lt;b&gt;",
            "• negative_csat of T-1 &lt;b&gt;",
            "<b>1 × repeat contact / повторное обращение</b>",
            "• repeat_contact of T-9 &lt;b&gt;",
            "",
        ]
    )
