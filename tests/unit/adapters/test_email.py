"""RFC 5322 messages (fixtures built with the standard encodings: koi8-r 8bit, windows-1251 base64
HTML, RFC 2047 B and Q encoded words, quoted-printable UTF-8, an RFC 3834 auto-reply and an RFC 3464
delivery report)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from processors.adapters import ADAPTERS, AdapterContext, AdapterError
from processors.adapters.base import NotAContact
from processors.adapters.email import html_to_text, strip_quoted, strip_signature
from processors.pii import Pseudonymizer

FIXTURES = Path(__file__).parent / "fixtures" / "email"
PII = Pseudonymizer(b"test-key-0123456789abcdef")
CONTEXT = AdapterContext(PII, ZoneInfo("Europe/Moscow"))
EMAIL = ADAPTERS["email"]


def parse(name: str) -> list[dict]:
    events = EMAIL.parse((FIXTURES / name).read_bytes(), {}, CONTEXT)
    return [event.model_dump(mode="json", exclude_defaults=True) for event in events]


def test_koi8r_message_with_encoded_subject_opens_a_thread() -> None:
    (event,) = parse("koi8r_plain.eml")
    assert event == {
        "event_id": f"email:{PII.identifier('msgid', 'CAF1x2y3@mail.example.ru')}",
        "type": "contact_received",
        "occurred_at": "2026-11-24T10:15:00+03:00",
        "ticket_id": f"email:{PII.identifier('msgid', 'CAF1x2y3@mail.example.ru')}",
        "channel": "email",
        "source": "email",
        "customer_id": PII.email("irina@example.ru"),
        "subject": "Не работает выгрузка",
        "text": "Здравствуйте!\nВыгрузка накладных падает с ошибкой ERR-504.\n"
        f"Мой телефон {PII.phone('+79161234567')}",
    }


def test_html_only_cp1251_reply_joins_the_thread_of_its_root() -> None:
    (event,) = parse("cp1251_html_reply.eml")
    assert (
        event["ticket_id"] == f"email:{PII.identifier('msgid', 'CAF1x2y3@mail.example.ru')}"
    )  # References[0]
    assert event["subject"] == "Re: Не работает"
    assert event["text"] == "Добрый день,\nошибка всё ещё есть — срочно!"  # style dropped, quote cut
    assert event["customer_id"] == PII.email("irina@example.ru")  # same person, any spelling
    assert event["extra"] == {"email_in_reply_to": [PII.identifier("msgid", "agent-1@contactpulse.example")]}


def test_quoted_history_is_cut_and_in_reply_to_threads_without_references() -> None:
    (event,) = parse("utf8_reply_no_references.eml")
    assert event["text"] == "Thanks, it works now."
    assert event["ticket_id"] == f"email:{PII.identifier('msgid', 'agent-2@contactpulse.example')}"


@pytest.mark.parametrize("name", ["auto_reply.eml", "bounce.eml"])
def test_machines_talking_are_not_contacts(name: str) -> None:
    with pytest.raises(NotAContact, match="automatic e-mail"):
        parse(name)


def test_same_message_twice_is_the_same_event() -> None:
    assert parse("koi8r_plain.eml") == parse("koi8r_plain.eml")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty message"),
        (b"just some text without headers", "no header fields"),
        (b"Subject: hi\r\nDate: Tue, 24 Nov 2026 10:15:00 +0300\r\n\r\nbody", "without a From"),
        (b"From: a@b.c\r\nSubject: hi\r\n\r\nbody", "without a Date"),
        (b"From: a@b.c\r\nDate: yesterday\r\n\r\nbody", "not an RFC 5322 date"),
    ],
)
def test_broken_messages_are_refused_with_the_reason(body: bytes, message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        EMAIL.parse(body, {}, CONTEXT)


def test_a_date_without_zone_is_read_in_the_configured_zone() -> None:
    body = b"From: a@b.c\r\nDate: Tue, 24 Nov 2026 10:15:00 -0000\r\nMessage-ID: <x@y>\r\n\r\nhello"
    (event,) = EMAIL.parse(body, {}, CONTEXT)
    assert event.occurred_at.isoformat() == "2026-11-24T10:15:00+03:00"


def test_russian_attribution_and_outlook_separator() -> None:
    assert (
        strip_quoted("Спасибо!\n\nВт, 24 нояб. 2026 г. в 13:00, Поддержка <s@x.ru> написал(а):\n> старое")
        == "Спасибо!"
    )
    assert strip_quoted("Ok\n-----Original Message-----\nFrom: x") == "Ok"


def test_html_to_text_keeps_blocks_and_entities() -> None:
    assert (
        html_to_text("<p>a&nbsp;b</p><ul><li>one</li><li>two</li></ul><script>x()</script>")
        == "a b\none\ntwo"
    )


SUPPORT = AdapterContext(PII, ZoneInfo("Europe/Moscow"), support_domains=frozenset({"contactpulse.example"}))
AGENT_REPLY = (FIXTURES / "agent_reply.eml").read_bytes()


def test_a_reply_from_the_support_domain_is_the_agents_first_response_on_the_thread() -> None:
    (event,) = EMAIL.parse(AGENT_REPLY, {}, SUPPORT)
    assert event.model_dump(mode="json", exclude_defaults=True) == {
        "event_id": f"email:{PII.identifier('msgid', 'agent-1@contactpulse.example')}",
        "type": "agent_replied",
        "occurred_at": "2026-11-24T10:32:00+03:00",
        # The ticket the customer's first message opened (koi8r_plain.eml), not a new one.
        "ticket_id": f"email:{PII.identifier('msgid', 'CAF1x2y3@mail.example.ru')}",
        "channel": "email",
        "source": "email",
        "customer_id": PII.email("irina@example.ru"),  # the recipient outside the support domain
        "agent": PII.email("anna.petrova@contactpulse.example"),
    }
    (opened,) = EMAIL.parse((FIXTURES / "koi8r_plain.eml").read_bytes(), {}, SUPPORT)
    assert opened.type == "contact_received"
    assert opened.ticket_id == event.ticket_id


def test_without_a_support_domain_the_same_message_is_read_as_a_customers() -> None:
    (event,) = EMAIL.parse(AGENT_REPLY, {}, CONTEXT)
    assert event.type == "contact_received"


def test_a_message_from_the_sent_folder_is_an_agent_reply_whatever_its_sender() -> None:
    (event,) = EMAIL.parse(AGENT_REPLY, {"X-ContactPulse-Mailbox": "Sent"}, CONTEXT)
    assert event.type == "agent_replied"
    assert event.customer_id == PII.email("irina@example.ru")


def test_a_team_message_that_answers_no_thread_starts_no_ticket() -> None:
    body = (FIXTURES / "agent_notice.eml").read_bytes()
    with pytest.raises(NotAContact, match="answers no thread"):
        EMAIL.parse(body, {}, SUPPORT)


LONG_AFTER_REGARDS = "Three things are wrong.\nRegards,\n" + "\n".join(f"{n}. item" for n in range(1, 8))


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (
            "Здравствуйте!\nНе работает выгрузка.\n\nС уважением,\nИрина Смирнова\nООО Ромашка\n"
            "+7 916 123-45-67",
            "Здравствуйте!\nНе работает выгрузка.",
        ),
        ("Export fails with 502.\n\nBest regards,\nJohn\nAcme Corp", "Export fails with 502."),
        ("Export fails.\n-- \nJohn Smith | Acme | +1 555 0100", "Export fails."),
        ("Не работает оплата\n\nОтправлено с iPhone", "Не работает оплата"),
        # A closing phrase with a long text after it is part of the message, not a signature.
        (LONG_AFTER_REGARDS, LONG_AFTER_REGARDS),
        ("С уважением, Ирина", "С уважением, Ирина"),  # the only line: nothing before it to keep
    ],
)
def test_the_signature_is_cut_from_the_customers_words(body: str, kept: str) -> None:
    assert strip_signature(body) == kept
