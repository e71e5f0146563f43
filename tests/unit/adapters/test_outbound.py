"""`POST /ingest/outbound/{channel}`: an agent's message sent from a bot, console or mail tool answers the
ticket the customer's messages opened, under the ids the channel's own adapter gives."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from processors.adapters import ADAPTERS, AdapterContext, AdapterError, SignatureError
from processors.adapters.base import NotAContact
from processors.adapters.outbound import sign, signed_headers
from processors.pii import Pseudonymizer

PII = Pseudonymizer(b"test-key-0123456789abcdef")
CONTEXT = AdapterContext(PII, ZoneInfo("Europe/Moscow"))
OUTBOUND = ADAPTERS["outbound"]
FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 24, 7, 33, tzinfo=UTC)


def outbound(channel: str, **sent: object) -> list[dict]:
    events = OUTBOUND.parse(orjson.dumps(sent), {"X-ContactPulse-Channel": channel}, CONTEXT)
    return [event.model_dump(mode="json", exclude_defaults=True) for event in events]


def inbound(source: str, fixture: str):  # type: ignore[no-untyped-def]
    (event,) = ADAPTERS[source].parse((FIXTURES / source / fixture).read_bytes(), {}, CONTEXT)
    return event


def test_a_bot_reply_in_a_telegram_chat_answers_the_chats_ticket() -> None:
    customer = inbound("telegram", "message_text.json")
    (reply,) = outbound(
        "telegram", message_id=4052, telegram_chat_id=52712345, sent_at=1795507500, agent="op-5"
    )
    assert reply == {
        "event_id": f"telegram:{PII.identifier('chat', '52712345')}:4052",
        "type": "agent_replied",
        "occurred_at": "2026-11-24T08:05:00Z",
        "ticket_id": customer.ticket_id,
        "channel": "telegram",
        "source": "telegram",
        "agent": "telegram-agent:op-5",
    }


def test_a_whatsapp_reply_is_keyed_by_its_wamid_like_its_receipts() -> None:
    customer = inbound("whatsapp", "text_message.json")
    (reply,) = outbound(
        "whatsapp",
        message_id="wamid.OUT1",
        whatsapp_to="+7 926 111-22-33",
        sent_at="2026-11-24T10:02:00+03:00",
        agent="Anna@Support.example",
    )
    assert reply["ticket_id"] == customer.ticket_id
    assert reply["customer_id"] == customer.customer_id
    assert reply["event_id"] == f"whatsapp:{PII.identifier('wamid', 'wamid.OUT1')}"
    assert reply["agent"] == PII.email("anna@support.example")
    assert "926" not in str(reply)
    assert "Anna" not in str(reply)


def test_an_email_reply_answers_the_thread_its_references_name() -> None:
    customer = inbound("email", "koi8r_plain.eml")
    (reply,) = outbound(
        "email",
        message_id="<agent-1@contactpulse.example>",
        email_references="<CAF1x2y3@mail.example.ru>",
        sent_at="2026-11-24T10:32:00",  # no offset: the configured zone (Moscow)
    )
    assert reply["ticket_id"] == customer.ticket_id
    assert reply["occurred_at"] == "2026-11-24T10:32:00+03:00"
    # The same message read from the sent folder has this id: reported both ways, it counts once.
    sent_folder = (FIXTURES / "email" / "agent_reply.eml").read_bytes()
    (read,) = ADAPTERS["email"].parse(sent_folder, {"X-ContactPulse-Mailbox": "sent"}, CONTEXT)
    assert reply["event_id"] == read.event_id


def test_the_same_message_posted_twice_has_one_id() -> None:
    first = outbound("telegram", message_id=7, telegram_chat_id=1, sent_at=1795507500)
    again = outbound("telegram", message_id=7, telegram_chat_id=1, sent_at=1795507501)
    assert first[0]["event_id"] == again[0]["event_id"]


def test_an_internal_note_is_accepted_as_no_reply() -> None:
    with pytest.raises(NotAContact, match="internal note"):
        outbound("telegram", message_id=7, telegram_chat_id=1, sent_at=1795507500, internal=True)


@pytest.mark.parametrize(
    ("channel", "sent", "complaint"),
    [
        ("sms", {"message_id": 1}, "/ingest/outbound/"),
        ("telegram", {"telegram_chat_id": 1, "sent_at": 1795507500}, "without message_id"),
        ("telegram", {"message_id": 1, "sent_at": 1795507500}, "without telegram_chat_id"),
        ("whatsapp", {"message_id": "w", "sent_at": 1795507500}, "without whatsapp_to"),
        ("email", {"message_id": "<a@b>", "email_references": "none", "sent_at": 1}, "no <message-id>"),
        ("telegram", {"message_id": 1, "telegram_chat_id": 1}, "without sent_at"),
        ("telegram", {"message_id": 1, "telegram_chat_id": 1, "sent_at": "yesterday"}, "not an ISO 8601"),
    ],
)
def test_what_cannot_be_placed_on_a_ticket_is_refused_with_the_reason(
    channel: str, sent: dict[str, object], complaint: str
) -> None:
    with pytest.raises(AdapterError, match=complaint):
        outbound(channel, **sent)


def signed(secret: str, at: datetime, body: bytes) -> dict[str, str]:
    headers = signed_headers(secret, int(at.timestamp()), body)
    assert headers["X-ContactPulse-Signature"] == sign(secret, int(at.timestamp()), body)
    return headers


def test_signature_covers_body_and_time() -> None:
    body = b'{"message_id": 1}'
    OUTBOUND.verify(body, signed("s3cret", NOW, body), "s3cret", NOW)
    with pytest.raises(SignatureError, match="does not match"):
        OUTBOUND.verify(body + b" ", signed("s3cret", NOW, body), "s3cret", NOW)
    with pytest.raises(SignatureError, match="does not match"):
        OUTBOUND.verify(body, signed("other", NOW, body), "s3cret", NOW)
    with pytest.raises(SignatureError, match="5 minutes"):
        OUTBOUND.verify(
            body, signed("s3cret", datetime(2026, 11, 24, 7, 27, tzinfo=UTC), body), "s3cret", NOW
        )
    with pytest.raises(SignatureError, match="Timestamp is missing"):
        OUTBOUND.verify(body, {}, "s3cret", NOW)
