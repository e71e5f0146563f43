"""Telegram Bot API `Update` payloads. Shapes follow the Bot API reference (core.telegram.org/bots/api):
Update, Message (message_id, from, chat, date, text/caption, photo[], document, contact), edited_message
with edit_date, CallbackQuery (id, from, message, data), and a my_chat_member update."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from processors.adapters import ADAPTERS, AdapterContext, AdapterError, SignatureError
from processors.adapters.base import NotAContact
from processors.pii import Pseudonymizer

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
PII = Pseudonymizer(b"test-key-0123456789abcdef")
CONTEXT = AdapterContext(PII, ZoneInfo("Europe/Moscow"))
CHAT = PII.identifier("chat", "52712345")  # a private chat's id is the user's id: never in clear
TELEGRAM = ADAPTERS["telegram"]

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)


def parse(name: str) -> list[dict]:
    events = TELEGRAM.parse((FIXTURES / name).read_bytes(), {}, CONTEXT)
    return [event.model_dump(mode="json", exclude_defaults=True) for event in events]


def test_text_message_becomes_a_contact_with_pii_scrubbed() -> None:
    (event,) = parse("message_text.json")
    assert event == {
        "event_id": f"telegram:{CHAT}:4051",
        "type": "contact_received",
        "occurred_at": "2026-11-24T08:00:00Z",
        "ticket_id": f"telegram:{CHAT}",
        "channel": "telegram",
        "source": "telegram",
        "customer_id": PII.account("telegram", "52712345"),
        "text": "Здравствуйте! Не работает выгрузка накладных, звоните "
        f"{PII.phone('+79161234567')} или пишите {PII.email('irina@example.ru')}",
        "extra": {"telegram_message_id": 4051},
    }
    assert "916" not in event["text"]
    assert "irina@" not in event["text"]


def test_caption_of_a_photo_is_the_text() -> None:
    (event,) = parse("message_photo_caption.json")
    assert event["text"] == "Скриншот ошибки ERR-504"


def test_document_without_text_is_still_a_contact() -> None:
    (event,) = parse("message_document.json")
    assert event["text"] == "[document]"


def test_shared_contact_phone_is_hashed_like_any_phone() -> None:
    (event,) = parse("message_contact.json")
    assert event["extra"]["contact_phone"] == PII.phone("+7 916 123-45-67")
    assert event["customer_id"] == PII.account("telegram", "52712345")  # the same person as before


def test_an_edit_is_the_same_contact_at_the_time_the_customer_wrote() -> None:
    (original,) = parse("message_text.json")
    (edit,) = parse("edited_message.json")
    assert edit["event_id"] == original["event_id"] == f"telegram:{CHAT}:4051"
    assert edit["occurred_at"] == original["occurred_at"] == "2026-11-24T08:00:00Z"  # date, not edit_date
    assert edit["ticket_id"] == f"telegram:{CHAT}"
    assert edit["extra"]["telegram_edited"] is True


RECEIVED = {"X-ContactPulse-Received-At": "2026-11-24T08:07:31.250000+00:00"}


def test_a_rating_button_is_a_csat_rating_stamped_when_received() -> None:
    body = (FIXTURES / "callback_query.json").read_bytes()
    (event,) = TELEGRAM.parse(body, RECEIVED, CONTEXT)
    assert event.model_dump(mode="json", exclude_defaults=True) == {
        "event_id": "telegram:callback:4382bfdwdsb323b2d9",
        "type": "csat_submitted",
        "occurred_at": "2026-11-24T08:07:31.250000Z",
        "ticket_id": f"telegram:{CHAT}",
        "channel": "telegram",
        "source": "telegram",
        "customer_id": PII.account("telegram", "52712345"),
        "score": 5,
    }
    with pytest.raises(AdapterError, match="no receive time"):
        TELEGRAM.parse(body, {}, CONTEXT)


def test_any_other_button_press_is_no_new_contact() -> None:
    body = (FIXTURES / "callback_query.json").read_bytes().replace(b'"csat:5"', b'"menu:billing"')
    with pytest.raises(NotAContact, match="button press"):
        TELEGRAM.parse(body, RECEIVED, CONTEXT)


def test_updates_that_are_not_contacts_yield_nothing() -> None:
    with pytest.raises(NotAContact, match="my_chat_member"):
        parse("my_chat_member.json")


def test_the_same_payload_twice_yields_the_same_event_ids() -> None:
    assert parse("message_text.json") == parse("message_text.json")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"message": {}}', "no update_id"),
        (b'{"update_id": 1, "message": {"message_id": 1, "date": 1}}', "without 'chat'"),
        (b'{"update_id": 1, "message": {"message_id": 1, "date": "soon", "chat": {"id": 1}}}', "not unix"),
    ],
)
def test_broken_payloads_are_refused_with_the_reason(body: bytes, message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        TELEGRAM.parse(body, {}, CONTEXT)


def test_secret_token_header_is_verified() -> None:
    body = (FIXTURES / "message_text.json").read_bytes()
    TELEGRAM.verify(body, {"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}, "s3cret-token", NOW)
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
        with pytest.raises(SignatureError):
            TELEGRAM.verify(body, headers, "s3cret-token", NOW)
