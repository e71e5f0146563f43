"""WhatsApp Cloud API webhooks. Shapes follow Meta's "WhatsApp Cloud API - Webhooks" reference
(object, entry[].changes[].value with metadata, contacts[], messages[] by type, statuses[]), the
X-Hub-Signature-256 header and the hub.mode/hub.verify_token/hub.challenge handshake."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from processors.adapters import ADAPTERS, AdapterContext, AdapterError, SignatureError
from processors.adapters.base import NotAContact
from processors.adapters.whatsapp import verification_challenge
from processors.pii import Pseudonymizer

FIXTURES = Path(__file__).parent / "fixtures" / "whatsapp"
PII = Pseudonymizer(b"test-key-0123456789abcdef")
CONTEXT = AdapterContext(PII, ZoneInfo("Europe/Moscow"))
WAMID = "wamid.HBgLNzkyNjExMTIyMzMVAgASGBQzQTdBQkQ0RUQ1RkUxQ0E2RjM5MAA="
WHATSAPP = ADAPTERS["whatsapp"]
CUSTOMER = PII.phone("79261112233")

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)


def parse(name: str) -> list[dict]:
    events = WHATSAPP.parse((FIXTURES / name).read_bytes(), {}, CONTEXT)
    return [event.model_dump(mode="json", exclude_defaults=True) for event in events]


def test_text_message_is_a_contact_on_the_customers_conversation() -> None:
    (event,) = parse("text_message.json")
    assert event == {
        # The message id encodes the phone number (base64): hashed like it.
        "event_id": f"whatsapp:{PII.identifier('wamid', WAMID)}",
        "type": "contact_received",
        "occurred_at": "2026-11-24T09:00:00Z",
        "ticket_id": f"whatsapp:{CUSTOMER}",
        "channel": "whatsapp",
        "source": "whatsapp",
        "customer_id": CUSTOMER,
        "text": "Курьер не приехал, заказ 5512",
        "extra": {"whatsapp_type": "text", "customer_name": PII.name("Олег Иванов")},
    }
    assert "79261112233" not in str(event)  # the number never leaves in clear


def test_media_buttons_and_voice() -> None:
    texts = [(e["extra"]["whatsapp_type"], e["text"]) for e in parse("media_and_buttons.json")]
    assert texts == [
        ("image", "Фото повреждённой коробки"),
        ("interactive", "Да, вызвать курьера"),
        ("audio", "[audio]"),
    ]


def test_delivery_statuses_are_not_contacts() -> None:
    with pytest.raises(NotAContact, match="statuses"):
        parse("status_update.json")


def test_other_objects_are_refused() -> None:
    with pytest.raises(AdapterError, match="not a WhatsApp Business Account webhook"):
        WHATSAPP.parse(b'{"object": "page", "entry": []}', {}, CONTEXT)


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = (FIXTURES / "text_message.json").read_bytes()
    good = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    WHATSAPP.verify(body, {"X-Hub-Signature-256": good}, "app-secret", NOW)
    for headers in (
        {},
        {"X-Hub-Signature-256": good.replace("sha256=", "sha1=")},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
    ):
        with pytest.raises(SignatureError):
            WHATSAPP.verify(body, headers, "app-secret", NOW)


def test_subscription_handshake_echoes_the_challenge_only_for_our_token() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "our-token", "hub.challenge": "1158201444"}
    assert verification_challenge(query, "our-token") == "1158201444"
    assert verification_challenge({**query, "hub.verify_token": "theirs"}, "our-token") is None
    assert verification_challenge({**query, "hub.mode": "unsubscribe"}, "our-token") is None


REPLIES = AdapterContext(PII, ZoneInfo("Europe/Moscow"), whatsapp_sent_is_reply=True)


def test_where_configured_a_receipt_of_a_service_message_is_the_agents_reply() -> None:
    body = (FIXTURES / "receipts.json").read_bytes()
    events = [e.model_dump(mode="json", exclude_defaults=True) for e in WHATSAPP.parse(body, {}, REPLIES)]
    reply = {
        "event_id": f"whatsapp:{PII.identifier('wamid', 'wamid.OUT1')}",
        "type": "agent_replied",
        "ticket_id": f"whatsapp:{CUSTOMER}",  # the conversation the customer's messages opened
        "channel": "whatsapp",
        "source": "whatsapp",
        "customer_id": CUSTOMER,
    }
    # sent and read of one message: one event id (counted once); the marketing template and the
    # failed send are no reply.
    assert events == [
        {**reply, "occurred_at": "2026-11-24T09:02:20Z"},
        {**reply, "occurred_at": "2026-11-24T09:06:40Z"},
    ]


def test_unconfigured_receipts_are_not_contacts() -> None:
    with pytest.raises(NotAContact, match="statuses"):
        WHATSAPP.parse((FIXTURES / "receipts.json").read_bytes(), {}, CONTEXT)


def test_receipts_that_show_no_reply_are_not_contacts_even_where_configured() -> None:
    body = (
        (FIXTURES / "receipts.json")
        .read_bytes()
        .replace(b'"sent"', b'"failed"')
        .replace(b'"read"', b'"failed"')
    )
    with pytest.raises(NotAContact, match="statuses"):
        WHATSAPP.parse(body, {}, REPLIES)
