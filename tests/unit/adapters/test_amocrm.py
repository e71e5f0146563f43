"""amoCRM webhooks as amoCRM sends them: form-urlencoded with nested keys (leads[add], leads[status],
unsorted[add], message[add], account[...]), values percent-encoded UTF-8."""

from __future__ import annotations

from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from processors.adapters import ADAPTERS, AdapterContext, AdapterError
from processors.adapters.amocrm import decode_form
from processors.adapters.base import NotAContact
from processors.pii import Pseudonymizer

PII = Pseudonymizer(b"test-key-0123456789abcdef")
CONTEXT = AdapterContext(PII, ZoneInfo("Europe/Moscow"))
AMO = ADAPTERS["amocrm"]
ACCOUNT = [
    ("account[subdomain]", "acme"),
    ("account[id]", "29007001"),
    ("account[_links][self]", "https://acme.amocrm.ru"),
]


def parse(pairs: list[tuple[str, str]]) -> list[dict]:
    events = AMO.parse(
        urlencode(pairs).encode(), {"Content-Type": "application/x-www-form-urlencoded"}, CONTEXT
    )
    return [e.model_dump(mode="json", exclude_defaults=True) for e in events]


def test_nested_keys_decode_into_objects_and_lists() -> None:
    body = urlencode(
        [
            ("leads[add][0][id]", "1"),
            ("leads[add][1][id]", "2"),
            ("leads[add][0][custom_fields][0][values][0][value]", "опт"),
            *ACCOUNT,
        ]
    ).encode()
    form = decode_form(body)
    assert form["leads"]["add"][1] == {"id": "2"}
    assert form["leads"]["add"][0]["custom_fields"][0]["values"][0]["value"] == "опт"
    assert form["account"]["_links"]["self"] == "https://acme.amocrm.ru"


def test_new_lead_and_its_status_changes() -> None:
    (added,) = parse(
        [
            ("leads[add][0][id]", "19619"),
            ("leads[add][0][name]", "Заявка с сайта"),
            ("leads[add][0][status_id]", "142654"),
            ("leads[add][0][price]", "15000"),
            ("leads[add][0][responsible_user_id]", "123123"),
            ("leads[add][0][date_create]", "1795500000"),
            ("leads[add][0][pipeline_id]", "1001"),
            ("leads[add][0][custom_fields][0][id]", "427496"),
            ("leads[add][0][custom_fields][0][name]", "Город"),
            ("leads[add][0][custom_fields][0][values][0][value]", "Москва"),
            *ACCOUNT,
        ]
    )
    assert added["event_id"] == "amocrm:acme:lead:19619:add"
    assert (added["type"], added["ticket_id"]) == ("contact_received", "amocrm:acme:lead:19619")
    assert added["occurred_at"] == "2026-11-24T06:00:00Z"
    assert added["subject"] == "Заявка с сайта"
    assert added["extra"]["amocrm"]["custom_fields"][0]["values"][0]["value"] == "Москва"  # nothing lost

    won, lost, moved = parse(
        [
            ("leads[status][0][id]", "19619"),
            ("leads[status][0][status_id]", "142"),
            ("leads[status][0][old_status_id]", "142654"),
            ("leads[status][0][last_modified]", "1795503600"),
            ("leads[status][1][id]", "19620"),
            ("leads[status][1][status_id]", "143"),
            ("leads[status][1][last_modified]", "1795503601"),
            ("leads[status][2][id]", "19621"),
            ("leads[status][2][status_id]", "142655"),
            ("leads[status][2][last_modified]", "1795503602"),
            *ACCOUNT,
        ]
    )
    assert [e["status"] for e in (won, lost, moved)] == ["resolved", "closed", "in_progress"]


def test_unsorted_and_chat_messages() -> None:
    unsorted, incoming, outgoing = parse(
        [
            ("unsorted[add][0][uid]", "a1b2c3"),
            ("unsorted[add][0][category]", "forms"),
            ("unsorted[add][0][created_at]", "1795500100"),
            ("unsorted[add][0][source_data][form_name]", "Обратный звонок"),
            ("message[add][0][id]", "m-1"),
            ("message[add][0][type]", "incoming"),
            ("message[add][0][talk_id]", "77"),
            ("message[add][0][chat_id]", "c-9"),
            ("message[add][0][contact_id]", "5551"),
            ("message[add][0][text]", "Когда доставка? Мой email oleg@client.example"),
            ("message[add][0][created_at]", "1795500200"),
            ("message[add][0][origin]", "telegram"),
            ("message[add][1][id]", "m-2"),
            ("message[add][1][type]", "outgoing"),
            ("message[add][1][talk_id]", "77"),
            ("message[add][1][author][id]", "123123"),
            ("message[add][1][text]", "Завтра"),
            ("message[add][1][created_at]", "1795500260"),
            *ACCOUNT,
        ]
    )
    assert (unsorted["channel"], unsorted["ticket_id"]) == ("web_form", "amocrm:acme:unsorted:a1b2c3")
    assert unsorted["extra"]["amocrm"]["source_data"]["form_name"] == "Обратный звонок"
    assert incoming["type"] == "contact_received"
    assert incoming["channel"] == "telegram"
    assert incoming["customer_id"] == PII.account("amocrm", "5551")
    assert incoming["text"] == f"Когда доставка? Мой email {PII.email('oleg@client.example')}"
    assert (outgoing["type"], outgoing["agent"]) == ("agent_replied", "amocrm-user:123123")
    assert incoming["ticket_id"] == outgoing["ticket_id"] == "amocrm:acme:talk:77"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"leads[add][0][id]=1", "without account"),
        (b"\xff\xfe=1", "not an amoCRM form body"),
        (
            urlencode(
                [("leads[add][0][id]", "1"), ("leads[add][0][date_create]", "soon"), *ACCOUNT]
            ).encode(),
            "not unix seconds",
        ),
    ],
)
def test_broken_forms_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        AMO.parse(body, {}, CONTEXT)


def test_a_site_form_keeps_the_customers_words_and_the_proposed_leads_name() -> None:
    (event,) = parse(
        [
            ("unsorted[add][0][uid]", "f7a1"),
            ("unsorted[add][0][category]", "forms"),
            ("unsorted[add][0][created_at]", "1795500000"),
            ("unsorted[add][0][source_data][form_name]", "Форма обратной связи"),
            ("unsorted[add][0][source_data][data][0][name]", "Имя"),
            ("unsorted[add][0][source_data][data][0][value]", "Олег Иванов"),
            ("unsorted[add][0][source_data][data][1][name]", "Телефон"),
            ("unsorted[add][0][source_data][data][1][value]", "+7 916 555-44-33"),
            ("unsorted[add][0][source_data][data][2][name]", "Сообщение"),
            ("unsorted[add][0][source_data][data][2][value]", "Не приходят счета по API с ошибкой 502"),
            ("unsorted[add][0][data][leads][0][name]", "Заявка: счета по API"),
            *ACCOUNT,
        ]
    )
    assert (event["channel"], event["subject"]) == ("web_form", "Заявка: счета по API")
    assert event["text"] == (
        f"Имя: {PII.name('Олег Иванов')}\n"
        f"Телефон: {PII.phone('+79165554433')}\n"
        "Сообщение: Не приходят счета по API с ошибкой 502"
    )


def test_a_telegram_chat_in_unsorted_is_labelled_telegram_with_its_first_message() -> None:
    (event,) = parse(
        [
            ("unsorted[add][0][uid]", "c9d2"),
            ("unsorted[add][0][category]", "chats"),
            ("unsorted[add][0][created_at]", "1795500000"),
            ("unsorted[add][0][source_data][source]", "telegram"),
            ("unsorted[add][0][source_data][client][name]", "Олег"),
            ("unsorted[add][0][source_data][data][0][text]", "Здравствуйте, не работает оплата"),
            *ACCOUNT,
        ]
    )
    assert (event["channel"], event["text"]) == ("telegram", "Здравствуйте, не работает оплата")


def test_a_deleted_lead_is_closed_and_notes_are_ignored() -> None:
    body = urlencode([("leads[delete][0][id]", "19619"), *ACCOUNT]).encode()
    (event,) = AMO.parse(body, {"X-ContactPulse-Received-At": "2026-11-24T07:00:00+00:00"}, CONTEXT)
    assert (event.type, event.status, event.ticket_id) == (
        "status_changed",
        "closed",
        "amocrm:acme:lead:19619",
    )
    notes = urlencode([("leads[note][0][note][text]", "позвонить завтра"), *ACCOUNT]).encode()
    with pytest.raises(NotAContact, match="notes"):
        AMO.parse(notes, {}, CONTEXT)
    assert AMO.parse(urlencode([("mystery[add][0][id]", "1"), *ACCOUNT]).encode(), {}, CONTEXT) == []


def test_a_completed_call_task_on_a_lead_is_the_agents_reply_and_other_tasks_are_ignored() -> None:
    task = [
        ("task[update][0][id]", "7001"),
        ("task[update][0][element_id]", "19619"),
        ("task[update][0][element_type]", "2"),
        ("task[update][0][task_type]", "1"),
        ("task[update][0][status]", "1"),
        ("task[update][0][responsible_user_id]", "123123"),
        ("task[update][0][last_modified]", "1795503600"),
        ("task[update][0][text]", "Перезвонить Олегу +7 916 555-44-33"),
        *ACCOUNT,
    ]
    (event,) = parse(task)
    assert {k: event[k] for k in ("event_id", "type", "occurred_at", "ticket_id", "agent")} == {
        "event_id": "amocrm:acme:task:7001:done",
        "type": "agent_replied",
        "occurred_at": "2026-11-24T07:00:00Z",
        "ticket_id": "amocrm:acme:lead:19619",  # the lead the customer's request opened
        "agent": "amocrm-user:123123",
    }
    assert "555" not in str(event)  # the task's text (a phone number here) is not kept
    meeting = [(k, "2" if k.endswith("[task_type]") else v) for k, v in task]
    with pytest.raises(NotAContact, match="tasks"):
        parse(meeting)
    open_task = [(k, "0" if k.endswith("[status]") else v) for k, v in task]
    with pytest.raises(NotAContact, match="tasks"):
        parse(open_task)
