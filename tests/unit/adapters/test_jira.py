"""Jira Service Management webhooks. Fixtures follow Atlassian's "Webhooks" reference (webhookEvent,
timestamp in epoch ms, issue.fields with statusCategory, reporter/author accountType, changelog.items,
comment.jsdPublic) and JSM's SLA field shape (ongoingCycle.breachTime.epochMillis)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from processors.adapters import ADAPTERS, AdapterContext, SignatureError
from processors.adapters.base import NotAContact
from processors.pii import Pseudonymizer

FIXTURES = Path(__file__).parent / "fixtures" / "jira"
PII = Pseudonymizer(b"test-key-0123456789abcdef")
CONTEXT = AdapterContext(PII, ZoneInfo("Europe/Moscow"))
JIRA = ADAPTERS["jira"]
CUSTOMER = PII.email("irina@client.example")


def parse(name: str, change: dict | None = None) -> list[dict]:
    body = (FIXTURES / name).read_bytes()
    if change:
        body = orjson.dumps(change(orjson.loads(body)))  # type: ignore[operator]
    return [e.model_dump(mode="json", exclude_defaults=True) for e in JIRA.parse(body, {}, CONTEXT)]


def test_a_new_request_opens_the_ticket_named_by_its_key() -> None:
    (event,) = parse("issue_created.json")
    assert event == {
        "event_id": "jira:SUP-42:created",
        "type": "contact_received",
        "occurred_at": "2026-11-24T11:00:00.123000+03:00",
        "ticket_id": "jira:SUP-42",
        "channel": "other",
        "source": "jira",
        "customer_id": CUSTOMER,
        "priority": "p3",
        "subject": "Не работает выгрузка накладных",
        "text": f"Выгрузка падает с ошибкой ERR-504. Телефон {PII.phone('+79161234567')}. "
        f"{PII.name('Ирина Смирнова')}",
        "extra": {
            "jira_sla": {
                "customfield_10030": {
                    "name": "Time to first response",
                    "breached": False,
                    "breach_at": "2026-11-24T12:00:00.123000+00:00",
                },
                "customfield_10031": {
                    "name": "Time to resolution",
                    "breached": False,
                    "breach_at": "2026-11-25T09:46:40+00:00",
                },
            }
        },
    }


def test_an_agents_public_comment_is_the_reply_and_an_internal_one_is_not() -> None:
    (reply,) = parse("comment_agent.json")
    assert (reply["type"], reply["ticket_id"], reply["occurred_at"], reply["agent"]) == (
        "agent_replied",
        "jira:SUP-42",
        "2026-11-24T11:20:00+03:00",
        PII.email("anna@acme.example"),
    )
    assert reply["event_id"] == "jira:SUP-42:comment:10501"

    def internal(payload: dict) -> dict:
        payload["comment"]["jsdPublic"] = False
        return payload

    with pytest.raises(NotAContact, match="internal comment"):
        parse("comment_agent.json", internal)


def test_the_customers_comment_is_a_contact() -> None:
    def by_customer(payload: dict) -> dict:
        payload["comment"]["author"] = {"accountId": "qm:4b2e1c-portal", "displayName": "Ирина"}
        payload["comment"]["body"] = {  # Atlassian Document Format
            "type": "doc",
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Всё ещё падает"}]}],
        }
        return payload

    (event,) = parse("comment_agent.json", by_customer)
    assert (event["type"], event["text"], event["customer_id"]) == (
        "contact_received",
        "Всё ещё падает",
        CUSTOMER,
    )


def test_an_update_gives_one_event_per_watched_field() -> None:
    events = parse("issue_updated.json")
    assert [(e["type"], e.get("status"), e.get("priority"), e.get("agent")) for e in events] == [
        ("status_changed", "waiting_customer", "p1", None),
        ("escalated", None, "p1", None),  # Medium -> Highest: raised
        ("assigned", None, "p1", PII.email("boris@acme.example")),
    ]
    assert [e["event_id"] for e in events] == [
        "jira:SUP-42:10230:status",
        "jira:SUP-42:10230:priority",
        "jira:SUP-42:10230:assignee",
    ]
    assert {e["occurred_at"] for e in events} == {"2026-11-24T09:20:00Z"}


def test_status_categories_decide_unknown_status_names_and_satisfaction_is_csat() -> None:
    def custom(payload: dict) -> dict:
        payload["issue"]["fields"]["status"] = {"name": "Fixed in prod", "statusCategory": {"key": "done"}}
        payload["issue"]["fields"]["customfield_10060"] = {"rating": 2, "comment": "долго"}
        payload["changelog"]["items"] = [
            {"field": "status", "toString": "Fixed in prod"},
            {"field": "Satisfaction", "toString": "2"},
        ]
        return payload

    events = parse("issue_updated.json", custom)
    assert [(e["type"], e.get("status"), e.get("score")) for e in events] == [
        ("status_changed", "resolved", None),
        ("csat_submitted", None, 2),
    ]


def test_updates_of_unwatched_fields_and_other_events_are_ignored_and_unknown_shapes_unmapped() -> None:
    def labels_only(payload: dict) -> dict:
        payload["changelog"]["items"] = [{"field": "labels", "toString": "export"}]
        return payload

    with pytest.raises(NotAContact, match="changes nothing"):
        parse("issue_updated.json", labels_only)
    with pytest.raises(NotAContact, match="worklog_created"):
        JIRA.parse(b'{"webhookEvent": "worklog_created", "worklog": {}}', {}, CONTEXT)
    assert JIRA.parse(b'{"issue": {"key": "SUP-1"}}', {}, CONTEXT) == []


def test_the_same_delivery_twice_has_the_same_ids() -> None:
    assert parse("issue_updated.json") == parse("issue_updated.json")


def test_signature_is_the_hmac_of_the_body() -> None:
    body = (FIXTURES / "comment_agent.json").read_bytes()
    good = {"X-Hub-Signature": "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()}
    now = datetime(2026, 11, 24, tzinfo=UTC)
    JIRA.verify(body, good, "s3cret", now)
    with pytest.raises(SignatureError):
        JIRA.verify(body + b" ", good, "s3cret", now)
    with pytest.raises(SignatureError):
        JIRA.verify(body, {}, "s3cret", now)
