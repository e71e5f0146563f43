"""Our alerts as Alertmanager's: labels, annotations, endsAt rules, the firing set, the re-send schedule,
and the shipped configuration rendered and checked by the real `amtool`."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from processors.alerting import listed_total, listing
from processors.delivery import (
    FiringSet,
    Links,
    details_text,
    inhibitors_first,
    label_name,
    labels_of,
    parse_url_templates,
    resend_due,
    to_alertmanager,
)
from schemas.alert import Alert, AlertStatus, Audience, Severity, alert_id_for
from sinks.alertmanager_config import TEMPLATE, MissingSetting, product_subscriptions, render_config
from tests.unit.detection.helpers import Run, config, event, msk

AT = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
LINKS = Links("https://support.example.org/tickets/{ticket_id}", "https://grafana.example.org/d/cp")


def sla_alert(status: AlertStatus = AlertStatus.FIRING, episode: str = "") -> Alert:
    return Alert(
        alert_id=alert_id_for("sla_resolution_breached", {"ticket_id": "zendesk:42"}, episode),
        rule="sla_resolution_breached",
        status=status,
        severity=Severity.CRITICAL,
        audience=Audience.ONCALL,
        subject={"ticket_id": "zendesk:42"},
        starts_at=AT,
        ends_at=AT + timedelta(hours=3) if status is AlertStatus.RESOLVED else None,
        summary="Тикет zendesk:42 (p1, email) нарушил срок решения 8 ч: 2026-11-24 18:00 MSK.",
        details={"ticket_ids": [f"T-{n}" for n in range(12)], "target_seconds": 28800, "topic": None},
        labels={"team": "L2", "priority": "p1", "error_code": "E-42", "topic": ""},
    )


def test_labels_name_the_rule_and_carry_subject_routing_labels_and_the_alert_id() -> None:
    alert = sla_alert()
    assert labels_of(alert) == {
        "alertname": "sla_resolution_breached",
        "severity": "critical",
        "audience": "oncall",
        "alert_id": alert.alert_id,
        "ticket_id": "zendesk:42",
        "team": "L2",
        "priority": "p1",
        "error_code": "E-42",
    }  # an empty label is no label
    assert labels_of(sla_alert(episode="2"))["alert_id"] != alert.alert_id  # a second breach: another alert


def test_label_names_are_what_alertmanager_accepts() -> None:
    assert label_name("cluster-id") == "cluster_id"
    assert label_name("1st") == "_1st"


def test_annotations_are_readable_and_link_the_ticket() -> None:
    body = to_alertmanager(sla_alert(), NOW, 240, LINKS)
    assert body["annotations"] == {
        "summary": "Тикет zendesk:42 (p1, email) нарушил срок решения 8 ч: 2026-11-24 18:00 MSK.",
        "details": "ticket_ids: T-0, T-1, T-2, T-3, T-4, T-5, T-6, T-7, T-8, T-9, ... (+2 more)\n"
        "target_seconds: 28800",
        "fired_at": "2026-11-24T07:00:00+00:00",
        "ticket_url": "https://support.example.org/tickets/zendesk:42",
        "dashboard_url": "https://grafana.example.org/d/cp",
    }
    assert body["generatorURL"] == "https://grafana.example.org/d/cp"
    assert details_text({"nested": {"a": 1}, "none": None}) == "nested: a=1"


def test_a_list_the_alert_holds_part_of_says_how_many_more_there_are() -> None:
    """A cluster's alert lists its latest 50 tickets and counts them all (`ticket_ids_total`)."""
    details: dict[str, object] = {"count": 120}
    listing(details, "ticket_ids", [f"T-{n}" for n in range(120)], newest_last=True)
    assert details["ticket_ids"] == [f"T-{n}" for n in range(70, 120)]
    assert listed_total(details, "ticket_ids") == 120
    assert details_text(details) == (
        "count: 120\nticket_ids: T-70, T-71, T-72, T-73, T-74, T-75, T-76, T-77, T-78, T-79, ... (+110 more)"
    )
    # An alert from before the lists were bounded: every item listed, no total.
    assert listed_total({"ticket_ids": ["T-1", "T-2"]}, "ticket_ids") == 2
    assert listed_total({}, "customers") == 0


def test_every_alert_speaks_both_languages_whatever_the_configured_one() -> None:
    run = Run(config(locale="ru"))
    run.feed(event("contact_received", msk(24, 10), priority="p2", channel="email"))
    run.advance(msk(24, 11))
    breach = run.of("sla_first_response_breached")[0]
    assert breach.summary == "Тикет T-1 (p2, email) нарушил срок первого ответа 60 мин: 2026-11-24 11:00 MSK."
    assert breach.summaries == {
        "en": "Ticket T-1 (p2, email) breached its 60 min first-response target at 2026-11-24 11:00 MSK.",
        "ru": breach.summary,
    }
    annotations = to_alertmanager(breach, NOW, 240, Links())["annotations"]
    assert annotations["summary"] == breach.summary
    assert (annotations["summary_en"], annotations["summary_ru"]) == (
        breach.summaries["en"],
        breach.summaries["ru"],
    )
    # A record written before `summaries` existed still parses, and sends its one sentence.
    record = orjson.loads(breach.to_json())
    del record["summaries"]
    old = Alert.model_validate(record)
    assert old.summaries == {}
    assert "summary_en" not in to_alertmanager(old, NOW, 240, Links())["annotations"]


def test_a_firing_alert_ends_ahead_of_the_next_resend_and_a_resolved_one_on_receipt() -> None:
    firing = to_alertmanager(sla_alert(), NOW, 240, Links())
    assert firing["startsAt"] == "2026-11-24T09:30:00+00:00"  # not yet announced: starts now
    assert firing["endsAt"] == "2026-11-24T09:34:00+00:00"
    assert "generatorURL" not in firing
    later = NOW + timedelta(minutes=5)
    resent = to_alertmanager(sla_alert(), later, 240, Links(), announced_at=NOW)
    assert (resent["startsAt"], resent["endsAt"]) == (
        "2026-11-24T09:30:00+00:00",
        "2026-11-24T09:39:00+00:00",
    )
    resolved = to_alertmanager(sla_alert(AlertStatus.RESOLVED), later, 240, Links(), announced_at=NOW)
    assert resolved["endsAt"] == "2026-11-24T09:35:00+00:00"
    assert resolved["annotations"]["ended_at"] == "2026-11-24T10:00:00+00:00"  # the event time stays


def test_an_alert_from_the_past_starts_when_alertmanager_takes_it_so_group_wait_holds() -> None:
    # Alertmanager flushes a group at once when its first alert started more than group_wait ago: an
    # alert fired at 07:00 event time and posted at 09:30 must not say 07:00, or it skips group_wait
    # and goes out before the breach posted beside it inhibits it.
    firing = FiringSet()
    alert = sla_alert()
    firing.observe(alert)
    assert firing.announced_at(alert.alert_id) is None
    firing.taken([alert], NOW)
    firing.taken([alert], NOW + timedelta(minutes=1))  # a re-send keeps the first start
    assert firing.announced_at(alert.alert_id) == NOW
    body = to_alertmanager(
        alert, NOW + timedelta(minutes=1), 240, Links(), firing.announced_at(alert.alert_id)
    )
    assert body["startsAt"] == "2026-11-24T09:30:00+00:00"
    assert body["annotations"]["fired_at"] == "2026-11-24T07:00:00+00:00"
    firing.observe(sla_alert(AlertStatus.RESOLVED))
    assert firing.announced_at(alert.alert_id) is None  # forgotten with the alert
    firing.taken([sla_alert(AlertStatus.RESOLVED)], NOW)
    assert firing.announced == {}


def test_inhibiting_alerts_are_posted_first() -> None:
    incident = sla_alert().model_copy(update={"rule": "incident_cluster", "alert_id": "i"})
    at_risk = sla_alert().model_copy(update={"rule": "sla_resolution_at_risk", "alert_id": "r"})
    ordered = inhibitors_first([at_risk, sla_alert(), incident])
    assert [a.rule for a in ordered] == [
        "incident_cluster",
        "sla_resolution_breached",
        "sla_resolution_at_risk",
    ]


def test_the_firing_set_follows_state_changes_and_the_resend_schedule() -> None:
    firing = FiringSet()
    firing.observe(sla_alert())
    firing.observe(sla_alert(episode="2"))
    assert len(firing) == 2
    firing.observe(sla_alert(AlertStatus.RESOLVED))
    assert [a.alert_id for a in firing.firing()] == [sla_alert(episode="2").alert_id]
    assert resend_due(None, 100.0, 60.0)
    assert not resend_due(100.0, 159.9, 60.0)
    assert resend_due(100.0, 160.0, 60.0)


ENVIRONMENT = {
    "CONTACTPULSE_AM_TELEGRAM_BOT_TOKEN": "123:abc",
    "CONTACTPULSE_AM_TELEGRAM_CHAT_ID": "-100200",
    "CONTACTPULSE_AM_SMTP_SMARTHOST": "smtp.example.org:587",
    "CONTACTPULSE_AM_SMTP_FROM": "contactpulse@example.org",
    "CONTACTPULSE_AM_ONCALL_EMAIL": "oncall@example.org",
    "CONTACTPULSE_AM_PRODUCT_EMAIL": "product@example.org",
    "CONTACTPULSE_AM_ENGINEERING_EMAIL": "engineering@example.org",
    "CONTACTPULSE_AM_PRODUCT_ROUTES": (
        "topic=billing:pm-billing@example.org, category=revenue_loss:cfo@example.org"
    ),
}


def test_rendering_needs_every_secret_and_address() -> None:
    with pytest.raises(MissingSetting, match="CONTACTPULSE_AM_TELEGRAM_BOT_TOKEN"):
        render_config({k: v for k, v in ENVIRONMENT.items() if k != "CONTACTPULSE_AM_TELEGRAM_BOT_TOKEN"})
    with pytest.raises(MissingSetting, match="label=value:address"):
        product_subscriptions("billing:pm@example.org")


def test_the_rendered_configuration_passes_amtool_and_routes_as_documented(tmp_path: Path) -> None:
    # amtool comes with Debian's prometheus-alertmanager, which deploy/ci/install-test-deps installs.
    config = tmp_path / "alertmanager.yml"
    config.write_text(render_config(ENVIRONMENT), encoding="utf-8")
    checked = subprocess.run(["amtool", "check-config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "4 inhibit rules" in checked.stdout
    assert "8 receivers" in checked.stdout

    def route(*labels: str) -> str:
        found = subprocess.run(
            ["amtool", "config", "routes", "test", f"--config.file={config}", *labels],
            capture_output=True,
            text=True,
            check=True,
        )
        return found.stdout.strip()

    # SLA: two digests in one receiver (urgent p1/p2 hourly, the rest every 2 h); p1/p2 first
    # responses at risk only on the board (minutes of warning: answered or breached before a digest).
    assert route("audience=oncall", "alertname=sla_first_response_breached", "priority=p2") == "oncall-sla"
    assert route("audience=oncall", "alertname=sla_resolution_at_risk", "priority=p3") == "oncall-sla"
    assert route("audience=oncall", "alertname=sla_resolution_at_risk", "priority=p1") == "oncall-sla"
    assert route("audience=oncall", "alertname=sla_resolution_breached", "priority=p4") == "oncall-sla"
    assert route("audience=oncall", "alertname=sla_first_response_at_risk", "priority=p1") == "sla-board"
    assert route("audience=oncall", "alertname=sla_first_response_at_risk", "priority=p3") == "oncall-sla"
    # An incident pages on-call and tells engineering; a rise of one error code is engineering's alone.
    assert route("audience=oncall", "alertname=incident_cluster", "error_code=E-42") == "engineering,oncall"
    assert route("audience=engineering", "alertname=volume_spike", "error_code=E-42") == "engineering"
    assert route("audience=oncall", "alertname=csat_response_overdue", "channel=email") == "oncall-quiet"
    assert route("audience=oncall", "alertname=misrouting_high", "team=tier1") == "oncall"
    assert route("audience=oncall", "alertname=negative_csat", "channel=email") == "oncall-quiet"
    assert route("audience=product", "alertname=feature_request_cluster", "topic=billing") == (
        "product-1-topic-billing"
    )
    assert route("audience=product", "alertname=feature_request_cluster", "category=revenue_loss") == (
        "product-2-category-revenue-loss"
    )
    assert route("audience=product", "alertname=feature_request_cluster", "topic=delivery") == "product"
    assert "123:abc" not in TEMPLATE.read_text()  # secrets only in the rendered file


def test_a_ticket_links_to_its_own_helpdesk_by_the_vendors_number() -> None:
    links = Links(
        "https://support.example.org/tickets/{ticket_id}",
        None,
        parse_url_templates(
            "zendesk=https://acme.zendesk.com/agent/tickets/{number}, jira=https://acme.atlassian.net/browse/{number}"
        ),
    )
    assert links.ticket_url("zendesk:35501") == "https://acme.zendesk.com/agent/tickets/35501"
    assert links.ticket_url("jira:SUP-42") == "https://acme.atlassian.net/browse/SUP-42"
    # Other sources keep the general template; without one, a ticket has no link.
    assert links.ticket_url("T-1") == "https://support.example.org/tickets/T-1"
    assert Links(None, None, links.ticket_url_templates_by_source).ticket_url("whatsapp:phone_1a2b") is None
    with pytest.raises(ValueError, match="not SOURCE=URL_TEMPLATE"):
        parse_url_templates("zendesk https://acme.zendesk.com")
