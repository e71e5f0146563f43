"""Freshdesk automation webhooks with the body documented in processors/adapters/freshdesk.py
(Freshdesk's placeholders render status, priority and source as names or as numeric codes)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from processors.adapters import ADAPTERS, AdapterContext, AdapterError
from processors.pii import Pseudonymizer

PII = Pseudonymizer(b"test-key-0123456789abcdef")
CONTEXT = AdapterContext(PII, ZoneInfo("Europe/Moscow"))
CREATED = {
    "event": "ticket_created",
    "ticket_id": "5012",
    "ticket_subject": "Счёт не пришёл",
    "ticket_description": "Пришлите счёт на почту buh@client.example",
    "ticket_status": "Open",
    "ticket_priority": "Urgent",
    "ticket_source": "Email",
    "ticket_requester_email": "Buh@Client.example",
    "ticket_group_name": "Billing",
    "ticket_tags": "invoice,vip",
    "ticket_updated_at": "2026-11-24T10:05:00",
}


def parse(fields: dict[str, Any]) -> list[dict[str, Any]]:
    events = ADAPTERS["freshdesk"].parse(orjson.dumps({"freshdesk_webhook": fields}), {}, CONTEXT)
    return [e.model_dump(mode="json", exclude_defaults=True) for e in events]


def test_created_ticket_is_a_contact_with_mapped_codes() -> None:
    (event,) = parse(CREATED)
    assert event == {
        "event_id": "freshdesk:5012:created",
        "type": "contact_received",
        "occurred_at": "2026-11-24T10:05:00+03:00",
        "ticket_id": "freshdesk:5012",
        "channel": "email",
        "source": "freshdesk",
        "customer_id": PII.email("buh@client.example"),
        "priority": "p1",
        "subject": "Счёт не пришёл",
        "text": f"Пришлите счёт на почту {PII.email('buh@client.example')}",
        "team": "Billing",
        "extra": {"freshdesk_tags": "invoice,vip"},
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [("2", "in_progress"), ("Pending", "waiting_customer"), ("4", "resolved"), ("5", "closed")],
)
def test_status_codes_and_names(status: str, expected: str) -> None:
    (event,) = parse(
        {
            **CREATED,
            "event": "ticket_updated",
            "ticket_status": status,
            "ticket_priority": "3",
            "ticket_source": "7",
        }
    )
    assert (event["type"], event["status"], event["priority"], event["channel"]) == (
        "status_changed",
        expected,
        "p2",
        "chat",
    )


def test_the_same_update_twice_is_the_same_event() -> None:
    update = {**CREATED, "event": "ticket_updated", "ticket_status": "Resolved"}
    assert (
        parse(update)[0]["event_id"]
        == parse(update)[0]["event_id"]
        == ("freshdesk:5012:updated:resolved:2026-11-24T10:05:00")
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event": "ticket_deleted"}, "freshdesk_webhook.event"),
        ({"ticket_updated_at": ""}, "without ticket_updated_at"),
        ({"event": "ticket_updated", "ticket_status": "Limbo"}, "unknown Freshdesk status"),
    ],
)
def test_broken_webhooks_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        parse({**CREATED, **change})
