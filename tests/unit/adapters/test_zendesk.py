"""Zendesk ticket-event webhooks. Shapes follow developer.zendesk.com ("Webhook event types", "Ticket
events": type, id, time, subject, detail, event.current/previous, event.comment.author.is_staff) and the
signing scheme of "Verifying webhook authenticity" (base64 HMAC-SHA256 of timestamp + body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from processors.adapters import ADAPTERS, AdapterContext, AdapterError, SignatureError
from processors.adapters.base import NotAContact
from processors.pii import Pseudonymizer

FIXTURES = Path(__file__).parent / "fixtures" / "zendesk"
PII = Pseudonymizer(b"test-key-0123456789abcdef")
CONTEXT = AdapterContext(PII, ZoneInfo("Europe/Moscow"))
ZENDESK = ADAPTERS["zendesk"]
REQUESTER = PII.account("zendesk", "20978392")


def parse(name: str) -> list[dict]:
    events = ZENDESK.parse((FIXTURES / name).read_bytes(), {}, CONTEXT)
    return [event.model_dump(mode="json", exclude_defaults=True) for event in events]


def test_ticket_created_is_a_new_contact_with_mapped_fields() -> None:
    (event,) = parse("ticket_created.json")
    assert event == {
        "event_id": "zendesk:01JDZK3F5M7Q3X1A9B2C3D4E5F",
        "type": "contact_received",
        "occurred_at": "2026-11-24T07:15:02Z",
        "ticket_id": "zendesk:35436",
        "channel": "web_form",
        "source": "zendesk",
        "customer_id": REQUESTER,
        "priority": "p2",
        "subject": "Пустой отчёт по отгрузкам",
        "text": f"Добрый день! Отчёт по отгрузкам пустой, мой телефон {PII.phone('+79161234567')}",
        "extra": {"zendesk_tags": ["reports", "vip"], "zendesk_status": "NEW"},
    }


def test_public_agent_comment_is_a_reply_and_a_private_note_is_nothing() -> None:
    (reply,) = parse("comment_agent_public.json")
    assert (reply["type"], reply["agent"]) == ("agent_replied", "zendesk-agent:366154839811")
    assert "text" not in reply  # agents' words are not customer contacts
    with pytest.raises(NotAContact, match="internal note"):
        parse("comment_agent_private.json")


def test_end_user_comment_is_a_contact_with_pii_scrubbed() -> None:
    (event,) = parse("comment_end_user.json")
    assert event["type"] == "contact_received"
    assert event["text"] == f"Всё ещё пусто, пишите на {PII.email('irina@example.ru')}"
    assert event["customer_id"] == REQUESTER


def test_status_and_priority_changes_map_to_ours() -> None:
    (solved,) = parse("status_solved.json")
    assert (solved["type"], solved["status"]) == ("status_changed", "resolved")
    (urgent,) = parse("priority_changed.json")  # HIGH -> URGENT: raised, an escalation
    assert (urgent["type"], urgent["priority"]) == ("escalated", "p1")
    body = (FIXTURES / "priority_changed.json").read_bytes()
    lowered = body.replace(
        b'"current": "URGENT", "previous": "HIGH"', b'"current": "LOW", "previous": "HIGH"'
    )
    (event,) = ZENDESK.parse(lowered, {}, CONTEXT)
    assert (event.type, event.status, event.priority) == ("status_changed", "in_progress", "p4")


def test_spam_closes_the_ticket_and_unwatched_ticket_events_are_ignored() -> None:
    body = (FIXTURES / "priority_changed.json").read_bytes()
    (spam,) = ZENDESK.parse(body.replace(b"ticket.priority_changed", b"ticket.marked_as_spam"), {}, CONTEXT)
    assert (spam.type, spam.status) == ("status_changed", "closed")
    with pytest.raises(NotAContact, match="tags_changed"):
        ZENDESK.parse(body.replace(b"ticket.priority_changed", b"ticket.tags_changed"), {}, CONTEXT)


def test_a_body_of_no_known_shape_maps_to_nothing_so_it_is_dead_lettered() -> None:
    # A trigger an admin wrote differently: not ignored as a "non-ticket event", but unmapped.
    assert ZENDESK.parse(b'{"ticket": {"id": "35436", "status": "open"}}', {}, CONTEXT) == []
    body = (FIXTURES / "priority_changed.json").read_bytes()
    assert ZENDESK.parse(body.replace(b"ticket.priority_changed", b"ticket.sla_gone_wild"), {}, CONTEXT) == []


def test_non_ticket_events_yield_nothing() -> None:
    with pytest.raises(NotAContact, match="user"):
        parse("user_event.json")


def test_unknown_status_is_refused() -> None:
    body = (
        (FIXTURES / "status_solved.json").read_bytes().replace(b'"current": "SOLVED"', b'"current": "LIMBO"')
    )
    with pytest.raises(AdapterError, match="unknown Zendesk status 'LIMBO'"):
        ZENDESK.parse(body, {}, CONTEXT)


def test_ticket_event_without_its_ticket_is_refused() -> None:
    with pytest.raises(AdapterError, match=r"detail\.id"):
        ZENDESK.parse(
            b'{"type": "zen:event-type:ticket.created", "id": "x", "time": "2026-11-24T07:15:02Z"}',
            {},
            CONTEXT,
        )


def sign(body: bytes, timestamp: str, secret: str) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    ).decode()


STAMP = "2026-11-24T07:15:03Z"
SIGNED_AT = datetime(2026, 11, 24, 7, 15, 3, tzinfo=UTC)


def signed(body: bytes) -> dict[str, str]:
    """The headers Zendesk sends with `body`, signed at STAMP."""
    return {
        "X-Zendesk-Webhook-Signature": sign(body, STAMP, "dGhlIHNlY3JldA"),
        "X-Zendesk-Webhook-Signature-Timestamp": STAMP,
    }


def test_signature_over_timestamp_and_body() -> None:
    body = (FIXTURES / "ticket_created.json").read_bytes()
    stamp, good, signed_at = STAMP, signed(body), SIGNED_AT
    ZENDESK.verify(body, good, "dGhlIHNlY3JldA", signed_at + timedelta(minutes=4))
    for bad in (
        {},
        {**good, "X-Zendesk-Webhook-Signature": sign(body, stamp, "other")},
        {**good, "X-Zendesk-Webhook-Signature-Timestamp": "2026-11-24T07:15:04Z"},
    ):
        with pytest.raises(SignatureError):
            ZENDESK.verify(body, bad, "dGhlIHNlY3JldA", signed_at)
    with pytest.raises(SignatureError):
        ZENDESK.verify(body + b" ", good, "dGhlIHNlY3JldA", signed_at)


def test_a_captured_zendesk_webhook_cannot_be_replayed_later() -> None:
    """The signature covers the timestamp; a timestamp more than 5 minutes from the clock is refused."""
    body = (FIXTURES / "ticket_created.json").read_bytes()
    headers, signed_at = signed(body), SIGNED_AT
    ZENDESK.verify(body, headers, "dGhlIHNlY3JldA", signed_at + timedelta(seconds=300))
    with pytest.raises(SignatureError, match="is 301 s from now"):
        ZENDESK.verify(body, headers, "dGhlIHNlY3JldA", signed_at + timedelta(seconds=301))
    with pytest.raises(SignatureError, match="replayed or delayed"):
        ZENDESK.verify(body, headers, "dGhlIHNlY3JldA", signed_at - timedelta(minutes=10))


TRIGGER = {
    "event": "ticket_created",
    "ticket_id": "35501",
    "status": "New",
    "priority": "Urgent",
    "via": "Web Form",
    "requester_id": "20978392",
    "subject": "Склад стоит",
    "description": "Не работает API, звоните 89161234567",
    "tags": "api vip",
    "comment_id": "",
    "comment_public": "true",
    "comment_author_id": "20978392",
    "comment_author_role": "End-user",
    "comment_body": "",
    "updated_at": "2026-11-24T10:15:02+03:00",
}


def parse_trigger(fields: dict) -> list[dict]:
    events = ZENDESK.parse(orjson.dumps({"zendesk_trigger": fields}), {}, CONTEXT)
    return [event.model_dump(mode="json", exclude_defaults=True) for event in events]


def test_trigger_body_ticket_created() -> None:
    (event,) = parse_trigger(TRIGGER)
    assert (event["type"], event["ticket_id"], event["priority"], event["channel"]) == (
        "contact_received",
        "zendesk:35501",
        "p1",
        "web_form",
    )
    assert event["text"] == f"Не работает API, звоните {PII.phone('+79161234567')}"
    assert event["extra"]["zendesk_tags"] == ["api", "vip"]
    assert event["customer_id"] == REQUESTER


def test_trigger_body_comments_and_status() -> None:
    agent = {
        **TRIGGER,
        "event": "comment_added",
        "comment_id": "901",
        "comment_author_role": "Agent",
        "comment_body": "Смотрим",
        "updated_at": "2026-11-24T10:20:00+03:00",
    }
    (reply,) = parse_trigger(agent)
    assert reply["type"] == "agent_replied"
    with pytest.raises(NotAContact, match="internal note"):
        parse_trigger({**agent, "comment_public": "false"})
    (customer,) = parse_trigger({**agent, "comment_author_role": "End-user", "comment_id": "902"})
    assert customer["type"] == "contact_received"
    (solved,) = parse_trigger({**TRIGGER, "event": "ticket_updated", "status": "Solved"})
    assert (solved["type"], solved["status"]) == ("status_changed", "resolved")
    (hold,) = parse_trigger({**TRIGGER, "event": "ticket_updated", "status": "On-hold"})
    assert hold["status"] == "in_progress"


def test_trigger_body_without_its_fields_is_refused() -> None:
    with pytest.raises(AdapterError, match="zendesk_trigger needs"):
        parse_trigger({**TRIGGER, "updated_at": ""})


@pytest.mark.parametrize(("rating", "score"), [("Good", 5), ("bad", 1), ("4", 4)])
def test_trigger_body_satisfaction_is_a_csat_rating(rating: str, score: int) -> None:
    (event,) = parse_trigger(
        {**TRIGGER, "event": "satisfaction_rated", "satisfaction": rating, "satisfaction_comment": "Долго"}
    )
    assert (event["type"], event["score"], event["text"], event["ticket_id"]) == (
        "csat_submitted",
        score,
        "Долго",
        "zendesk:35501",
    )
    with pytest.raises(NotAContact, match="offered, not rated"):
        parse_trigger({**TRIGGER, "event": "satisfaction_rated", "satisfaction": "offered"})
    with pytest.raises(AdapterError, match="not good, bad or 1-5"):
        parse_trigger({**TRIGGER, "event": "satisfaction_rated", "satisfaction": "meh"})
