"""Admin-written webhook bodies read by the field mappings of deploy/config/sources.toml, through the
one path every payload takes (`normalize_payload`): a differently shaped trigger works by editing config."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from pydantic import ValidationError

from processors.adapters import ADAPTERS, AdapterContext
from processors.classify import Classifier
from processors.normalize import Normalized, Refused, normalize_payload
from processors.pii import Pseudonymizer
from schemas.errors import DeadLetterReason
from schemas.sources import SourcesConfig, load_sources

PII = Pseudonymizer(b"test-key-0123456789abcdef")
SHIPPED = load_sources()
NOW = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
RECEIVED = {"X-ContactPulse-Received-At": "2026-11-24T07:30:00+00:00"}


def normalize(
    source: str, body: dict[str, Any], sources: SourcesConfig = SHIPPED, headers: dict[str, str] = RECEIVED
) -> Normalized | Refused:
    context = AdapterContext(PII, ZoneInfo("Europe/Moscow"), sources=sources)
    raw = orjson.dumps(body)
    return normalize_payload(ADAPTERS[source], raw, headers, context, Classifier.from_file(None), None, NOW)


def events(source: str, body: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    outcome = normalize(source, body, **kwargs)
    assert isinstance(outcome, Normalized), outcome
    return [e.model_dump(mode="json", exclude_defaults=True) for e in outcome.events]


ZENDESK_TRIGGER = {  # a trigger body an admin wrote with Zendesk's placeholders, rendered
    "event": "created",
    "ticket": {
        "id": "35501",
        "title": "Не работает API",
        "description": "<p>С утра API отдаёт 502, пишите <b>ops@client.example</b></p>",
        "status": "Open",
        "priority": "Urgent",
        "via": "Web Form",
        "requester": {"email": "Ops@Client.example"},
        "group": "{{ticket.group.name}}",  # left unrendered: no group on this ticket
        "created_at": "2026-11-24T10:00:00+03:00",
    },
}


def test_a_zendesk_trigger_with_ticket_placeholders_opens_the_same_ticket_the_adapter_names() -> None:
    (event,) = events("zendesk", ZENDESK_TRIGGER)
    assert event["event_id"].startswith("zendesk:mapped:")
    assert {
        k: v for k, v in event.items() if k not in ("event_id", "extra", "kind", "topic", "category")
    } == {
        "type": "contact_received",
        "occurred_at": "2026-11-24T10:00:00+03:00",
        "ticket_id": "zendesk:35501",  # as the Zendesk adapter names ticket 35501
        "channel": "web_form",
        "source": "zendesk",
        "customer_id": PII.email("ops@client.example"),
        "priority": "p1",
        "subject": "Не работает API",
        "text": f"С утра API отдаёт 502, пишите {PII.email('ops@client.example')}",
        "status": "in_progress",
    }
    assert event["extra"]["mapping"] == "zendesk-ticket-placeholders"
    # The same delivery twice: one id.
    assert events("zendesk", ZENDESK_TRIGGER)[0]["event_id"] == event["event_id"]


def test_an_agents_comment_and_a_bad_rating_through_the_same_mapping() -> None:
    reply = {
        **ZENDESK_TRIGGER,
        "event": "agent_comment",
        "ticket": {"id": "35501", "assignee": {"email": "a@acme.example"}},
    }
    (event,) = events("zendesk", reply)
    assert (event["type"], event["agent"], event["occurred_at"]) == (
        "agent_replied",
        PII.email("a@acme.example"),
        "2026-11-24T07:30:00Z",  # no time in the body: when it was received
    )
    rated = {"event": "satisfaction", "satisfaction": "Bad", "ticket": {"id": "35501"}}
    (csat,) = events("zendesk", rated)
    assert (csat["type"], csat["score"]) == ("csat_submitted", 1)


def test_a_body_without_an_event_name_is_refused_with_the_mapping_and_the_fix() -> None:
    body = {"ticket": {"id": "35501", "status": "open"}}
    outcome = normalize("zendesk", body)
    assert isinstance(outcome, Refused)
    assert outcome.reason is DeadLetterReason.UNPARSABLE_PAYLOAD
    assert (
        outcome.detail
        == "mapping 'zendesk-ticket-placeholders': no event type: event, ticket.event, type are empty"
    )
    # A trigger that fires only on status changes: its admin gives `type` a default in config.
    edited = SourcesConfig.model_validate(
        {
            "mapping": [
                {
                    "name": "status-trigger",
                    "source": "zendesk",
                    "match": ["ticket.id"],
                    "ticket_id": "ticket.id",
                    "type": {"paths": ["event"], "default": "status_changed"},
                    "status": {
                        "paths": ["ticket.status"],
                        "values": {"open": "in_progress", "solved": "resolved"},
                    },
                }
            ]
        }
    )
    (event,) = events("zendesk", body, sources=edited)
    assert (event["type"], event["status"], event["ticket_id"]) == (
        "status_changed",
        "in_progress",
        "zendesk:35501",
    )


def test_a_freshdesk_rule_without_triggered_event_names_its_event() -> None:
    body = {
        "freshdesk_webhook": {
            "contactpulse_event": "agent_reply",
            "ticket_id": "11",
            "ticket_agent_email": "anna@acme.example",
            "ticket_updated_at": "2026-11-24 10:20:00",
        }
    }
    (event,) = events("freshdesk", body)
    assert (event["type"], event["ticket_id"], event["occurred_at"]) == (
        "agent_replied",
        "freshdesk:11",
        "2026-11-24T10:20:00+03:00",
    )


def test_a_jira_automation_body_reads_the_issue() -> None:
    body = {
        "event": "transitioned",
        "timestamp": 1795510800000,
        "issue": {
            "key": "SUP-42",
            "fields": {"status": {"name": "Waiting for customer"}, "priority": {"name": "High"}},
        },
    }
    (event,) = events("jira", body)
    assert (event["type"], event["status"], event["priority"], event["ticket_id"], event["occurred_at"]) == (
        "status_changed",
        "waiting_customer",
        "p2",
        "jira:SUP-42",
        "2026-11-24T09:00:00Z",
    )


def test_a_body_no_mapping_reads_is_dead_lettered_as_unmapped() -> None:
    outcome = normalize("zendesk", {"account": {"id": 1}})
    assert isinstance(outcome, Refused)
    assert outcome.reason is DeadLetterReason.UNMAPPED_PAYLOAD
    assert "no mapping of deploy/config/sources.toml matches it" in outcome.detail


def test_a_typo_in_a_values_table_is_refused_when_the_file_is_loaded(tmp_path: Path) -> None:
    broken = tmp_path / "sources.toml"
    broken.write_text(
        '[[mapping]]\nname = "x"\nsource = "zendesk"\nmatch = ["id"]\nticket_id = "id"\n'
        'type = { paths = ["event"], values = { created = "contact_recieved" } }\n'
    )
    with pytest.raises(ValidationError, match=r"type values \['contact_recieved'\] are not ours"):
        load_sources(broken)
