"""Freshdesk automation webhooks: the "Simple" content (the `ticket_*` placeholders with Freshdesk's
`triggered_event`, which renders as `{ticket_action:created}`, `{status:{from:4,to:6}}`,
`{note_type:private}`), the Advanced body documented in processors/adapters/freshdesk.py, and the older
body with `"event"` (status, priority and source as names or as numeric codes)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from processors.adapters import ADAPTERS, AdapterContext, AdapterError
from processors.adapters.base import NotAContact
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
        == ("freshdesk:5012:status:resolved:2026-11-24T10:05:00")
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event": "ticket_deleted"}, "without triggered_event"),
        ({"triggered_event": "status changed"}, "not Freshdesk's"),
        ({"triggered_event": "{priority:{from:1,to:9}}"}, "unknown Freshdesk priority"),
        ({"triggered_event": "{customer_feedback:received}", "ticket_satisfaction_rating": "meh"}, "rating"),
        ({"ticket_updated_at": ""}, "without ticket_updated_at"),
        ({"event": "ticket_updated", "ticket_status": "Limbo"}, "unknown Freshdesk status"),
    ],
)
def test_broken_webhooks_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        parse({**CREATED, **change})


SIMPLE = {  # Simple content: the placeholders ticked, Freshdesk's own names, HTML description, no time
    "triggered_event": "{ticket_action:created}",
    "ticket_id": "11",
    "ticket_url": "https://acme.freshdesk.com/helpdesk/tickets/11",
    "ticket_subject": "Не работает экспорт",
    "ticket_description": "<div>Экспорт в 1С падает с ошибкой ERR-504.</div><div>Ирина Смирнова</div>",
    "ticket_status": "Open",
    "ticket_priority": "Low",
    "ticket_source": "Portal",
    "ticket_requester_name": "Ирина Смирнова",
    "ticket_requester_email": "irina@client.example",
}
RECEIVED = {"X-ContactPulse-Received-At": "2026-11-24T07:15:00+00:00"}


def simple(headers: dict[str, str] | None = None, **change: str) -> list[dict[str, Any]]:
    body = orjson.dumps({"freshdesk_webhook": {**SIMPLE, **change}})
    events = ADAPTERS["freshdesk"].parse(body, RECEIVED if headers is None else headers, CONTEXT)
    return [e.model_dump(mode="json", exclude_defaults=True) for e in events]


def test_simple_content_opens_the_ticket_at_its_receive_time_with_the_words_as_text() -> None:
    (event,) = simple()
    assert event == {
        "event_id": "freshdesk:11:created",
        "type": "contact_received",
        "occurred_at": "2026-11-24T07:15:00Z",  # no time of its own: when the endpoint received it
        "ticket_id": "freshdesk:11",
        "channel": "web_form",
        "source": "freshdesk",
        "customer_id": PII.email("irina@client.example"),
        "priority": "p4",
        "subject": "Не работает экспорт",
        "text": f"Экспорт в 1С падает с ошибкой ERR-504.\n{PII.name('Ирина Смирнова')}",
    }


def test_an_agents_reply_answers_the_ticket_and_a_note_does_not() -> None:
    (reply,) = simple(triggered_event="{reply:sent}", ticket_agent_email="Anna@Acme.example")
    assert (reply["type"], reply["ticket_id"], reply["agent"]) == (
        "agent_replied",
        "freshdesk:11",
        PII.email("anna@acme.example"),
    )
    for note in ("{note_type:private}", "{note_type:public}"):
        with pytest.raises(NotAContact, match="note_type"):
            simple(triggered_event=note)


def test_a_requesters_reply_is_a_contact() -> None:
    (event,) = simple(
        triggered_event="{reply:sent}",
        actor="requester",
        ticket_latest_public_comment="<p>Всё ещё падает</p>",
    )
    assert (event["type"], event["text"]) == ("contact_received", "Всё ещё падает")


@pytest.mark.parametrize(
    ("triggered", "expected"),
    [
        ("{status:{from:2,to:3}}", ("status_changed", "waiting_customer")),
        ("{status:{from:4,to:6}}", ("status_changed", "waiting_customer")),
        ("{status:{from:Open,to:Resolved}}", ("status_changed", "resolved")),
        ("{ticket_action:spam}", ("status_changed", "closed")),
    ],
)
def test_status_changes(triggered: str, expected: tuple[str, str]) -> None:
    (event,) = simple(triggered_event=triggered)
    assert (event["type"], event["status"]) == expected


def test_a_priority_raised_is_an_escalation_and_lowered_is_nothing() -> None:
    (event,) = simple(triggered_event="{priority:{from:1,to:4}}", ticket_priority="Urgent")
    assert (event["type"], event["priority"]) == ("escalated", "p1")
    with pytest.raises(NotAContact, match="lowered"):
        simple(triggered_event="{priority:{from:High,to:Low}}")


def test_assignment_and_group_change() -> None:
    (event,) = simple(
        triggered_event="{group_id:{from:1,to:7}}",
        ticket_group_name="L2 Billing",
        ticket_agent_email="a@acme.example",
    )
    assert (event["type"], event["team"], event["agent"]) == (
        "assigned",
        "L2 Billing",
        PII.email("a@acme.example"),
    )


@pytest.mark.parametrize(
    ("rating", "score"), [("103", 5), ("-103", 1), ("Neutral", 3), ("-101", 2), ("4", 4)]
)
def test_customer_feedback_is_a_csat_rating_on_the_five_point_scale(rating: str, score: int) -> None:
    (event,) = simple(triggered_event="{customer_feedback:received}", ticket_satisfaction_rating=rating)
    assert (event["type"], event["score"]) == ("csat_submitted", score)


def test_an_event_nobody_mapped_maps_to_nothing_so_it_is_dead_lettered() -> None:
    assert simple(triggered_event="{ticket_linked:true}") == []


def test_redelivered_update_keeps_its_id_when_it_carries_a_time() -> None:
    first = simple(RECEIVED, triggered_event="{reply:sent}", ticket_updated_at="2026-11-24T10:20:00")
    again = simple(
        {"X-ContactPulse-Received-At": "2026-11-24T07:40:00+00:00"},
        triggered_event="{reply:sent}",
        ticket_updated_at="2026-11-24T10:20:00",
    )
    assert first == again
