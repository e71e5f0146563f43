"""PBX call logs and web-chat callbacks: the JSON shapes documented in their adapter modules."""

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
CALLER = PII.phone("+79161234567")


def parse(source: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    events = ADAPTERS[source].parse(orjson.dumps(payload), {}, CONTEXT)
    return [e.model_dump(mode="json", exclude_defaults=True) for e in events]


CALL = {
    "call_id": "c-8812",
    "direction": "inbound",
    "status": "answered",
    "started_at": "2026-11-24T10:00:05",
    "answered_at": "2026-11-24T10:00:41+03:00",
    "ended_at": "2026-11-24T10:03:45+03:00",
    "duration_seconds": 184,
    "caller": "8 (916) 123-45-67",
    "callee": "+7 495 123-45-67",
    "agent": "ext-101",
    "queue": "support",
    "transcript": "Клиент сообщает: не работает личный кабинет, перезвоните на 89161234567",
}


def test_answered_inbound_call_is_a_contact_and_its_response() -> None:
    received, answered = parse("pbx", CALL)
    assert received["type"] == "contact_received"
    assert received["occurred_at"] == "2026-11-24T10:00:05+03:00"  # no offset: the configured zone
    assert received["ticket_id"] == f"pbx:{CALLER}"
    assert received["customer_id"] == CALLER
    assert received["text"] == f"Клиент сообщает: не работает личный кабинет, перезвоните на {CALLER}"
    assert received["extra"]["pbx_duration_seconds"] == 184
    assert (answered["type"], answered["occurred_at"]) == ("agent_replied", "2026-11-24T10:00:41+03:00")
    assert answered["agent"] == "ext-101"


@pytest.mark.parametrize("status", ["missed", "abandoned_ivr"])
def test_missed_call_waits_for_its_call_back_on_the_same_ticket(status: str) -> None:
    (missed,) = parse("pbx", {**CALL, "status": status, "answered_at": None, "transcript": None})
    assert missed["type"] == "contact_received"
    assert missed["text"] == f"[{status.replace('_', ' ')} call]"
    (callback,) = parse(
        "pbx",
        {
            **CALL,
            "call_id": "c-8813",
            "direction": "outbound",
            "caller": "+74951234567",
            "callee": "+7 916 123 45 67",
            "started_at": "2026-11-24T10:20:00+03:00",
            "answered_at": "2026-11-24T10:20:09+03:00",
        },
    )
    assert callback["type"] == "agent_replied"
    assert callback["ticket_id"] == missed["ticket_id"]


def test_unanswered_call_back_is_no_response() -> None:
    with pytest.raises(NotAContact, match="outbound call missed"):
        parse("pbx", {**CALL, "direction": "outbound", "status": "missed"})


def test_ticket_id_from_the_pbx_wins() -> None:
    (received, _) = parse("pbx", {**CALL, "ticket_id": "crm-4411"})
    assert received["ticket_id"] == "crm-4411"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"caller": None}, "without caller"),
        ({"status": "ringing"}, "unknown call status"),
        ({"direction": "sideways"}, "unknown call direction"),
        ({"started_at": "now"}, "not an ISO 8601"),
    ],
)
def test_broken_call_logs_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        parse("pbx", {**CALL, **change})


CHAT = {
    "chat_id": "ch-77",
    "timestamp": "2026-11-24T10:00:00+03:00",
    "visitor": {"id": "v-1", "email": "Oleg@Client.example", "name": "Олег"},
}


def test_chat_lifecycle() -> None:
    started = parse("webchat", {**CHAT, "event": "chat_started"})[0]
    message = parse(
        "webchat",
        {
            **CHAT,
            "event": "visitor_message",
            "message_id": "m-1",
            "timestamp": "2026-11-24T10:00:20+03:00",
            "text": "Где мой заказ?",
        },
    )[0]
    reply = parse(
        "webchat",
        {
            **CHAT,
            "event": "agent_message",
            "message_id": "m-2",
            "agent": {"id": "op-5"},
            "timestamp": "2026-11-24T10:02:00+03:00",
            "text": "Проверяю",
        },
    )[0]
    finished = parse("webchat", {**CHAT, "event": "chat_finished", "timestamp": "2026-11-24T10:10:00+03:00"})[
        0
    ]
    assert [e["type"] for e in (started, message, reply, finished)] == [
        "contact_received",
        "contact_received",
        "agent_replied",
        "status_changed",
    ]
    assert {e["ticket_id"] for e in (started, message, reply, finished)} == {"webchat:ch-77"}
    assert message["customer_id"] == PII.email("oleg@client.example")
    assert reply["agent"] == "webchat-agent:op-5"
    assert "text" not in reply
    assert finished["status"] == "resolved"
    assert len({e["event_id"] for e in (started, message, reply, finished)}) == 4


def test_offline_message_and_anonymous_visitor() -> None:
    (event,) = parse(
        "webchat",
        {
            "event": "offline_message",
            "chat_id": "ch-9",
            "message_id": "m-1",
            "timestamp": "2026-11-24T23:00:00",
            "visitor": {"id": "v-9"},
            "text": "Позвоните",
        },
    )
    assert event["customer_id"] == PII.account("webchat", "v-9")
    assert event["occurred_at"] == "2026-11-24T23:00:00+03:00"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({**CHAT, "event": "chat_rated", "rating": 7}, "expected 1-5"),
        ({**CHAT, "event": "visitor_message"}, "without message_id"),
        ({"event": "chat_started", "chat_id": "x"}, "without chat_id or timestamp"),
    ],
)
def test_broken_chat_callbacks_are_refused(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        parse("webchat", payload)


def test_an_unknown_chat_event_maps_to_nothing_so_it_is_dead_lettered() -> None:
    assert parse("webchat", {**CHAT, "event": "typing"}) == []


def test_rating_transfer_and_note() -> None:
    (rated,) = parse("webchat", {**CHAT, "event": "chat_rated", "rating": 2, "text": "Долго ждал"})
    assert (rated["type"], rated["score"], rated["text"]) == ("csat_submitted", 2, "Долго ждал")
    (moved,) = parse("webchat", {**CHAT, "event": "chat_transferred", "group": "L1", "agent": {"id": "op-7"}})
    assert (moved["type"], moved["team"], moved["agent"]) == ("assigned", "L1", "webchat-agent:op-7")
    (up,) = parse("webchat", {**CHAT, "event": "chat_transferred", "group": "L2", "escalated": True})
    assert (up["type"], up["team"]) == ("escalated", "L2")
    with pytest.raises(NotAContact, match="agent note"):
        parse("webchat", {**CHAT, "event": "agent_note", "text": "VIP"})


def test_a_post_call_survey_is_a_csat_rating_when_the_call_ended() -> None:
    events = parse(
        "pbx",
        {
            **CALL,
            "status": "answered",
            "answered_at": "2026-11-24T10:00:20+03:00",
            "ended_at": "2026-11-24T10:06:00+03:00",
            "survey_score": "2",
        },
    )
    assert [(e["type"], e["occurred_at"], e.get("score")) for e in events] == [
        ("contact_received", "2026-11-24T10:00:05+03:00", None),
        ("agent_replied", "2026-11-24T10:00:20+03:00", None),
        ("csat_submitted", "2026-11-24T10:06:00+03:00", 2),
    ]
    with pytest.raises(AdapterError, match="survey_score"):
        parse("pbx", {**CALL, "status": "answered", "survey_score": "ten"})
