from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from processors.classify import Classifier
from schemas.event import BusinessImpact, ContactEvent, ContactKind, Priority

CLASSIFIER = Classifier.from_file()


def contact(text: str, **fields: Any) -> ContactEvent:
    return ContactEvent.model_validate(
        {
            "event_id": "e",
            "type": "contact_received",
            "occurred_at": datetime(2026, 11, 24, tzinfo=UTC),
            "ticket_id": "t",
            "text": text,
            **fields,
        }
    )


def test_word_forms_match_after_stemming() -> None:
    event = CLASSIFIER.enrich(contact("СРОЧНО: у нас НЕ РАБОТАЮТ выгрузки, склад стоит. Ошибка ERR 504"))
    assert event.kind is ContactKind.INCIDENT
    assert event.topic == "reports"
    assert event.category is BusinessImpact.BLOCKS_PROCESS
    assert event.error_code == "ERR 504"
    assert event.priority is Priority.P1  # blocks_process is p1 already; urgency cannot go higher
    assert event.extra["urgent"] is True


def test_urgency_raises_the_derived_priority_one_step() -> None:
    event = CLASSIFIER.enrich(contact("Срочно пришлите счёт за ноябрь", customer_tier="standard"))
    assert event.topic == "billing"
    assert event.priority is Priority.P2  # derived p3, one step up


def test_english_rules_and_sentiment() -> None:
    event = CLASSIFIER.enrich(contact("This is unacceptable, the courier never came. Terrible service"))
    assert event.kind is ContactKind.COMPLAINT
    assert event.topic == "delivery"
    assert event.extra["sentiment"] == "negative"
    assert event.priority is None  # nothing urgent: the SLA engine derives it


def test_feature_request_in_russian() -> None:
    event = CLASSIFIER.enrich(contact("Добавьте, пожалуйста, экспорт отчётов в Excel"))
    assert event.kind is ContactKind.FEATURE_REQUEST
    assert event.category is BusinessImpact.DEVELOPMENT


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Хотим подключить ещё 20 лицензий, пришлите счёт.", ContactKind.ORDER),
        ("We want 20 more licences, please send an invoice.", ContactKind.ORDER),
        ("Хотим экспортировать отчёты в Эксель.", ContactKind.FEATURE_REQUEST),
        ("Please add a dark theme to the dashboard.", ContactKind.FEATURE_REQUEST),
    ],
)
def test_buying_more_is_an_order_even_when_it_says_we_want(text: str, kind: ContactKind) -> None:
    assert CLASSIFIER.enrich(contact(text)).kind is kind


def test_what_the_source_said_is_never_overwritten() -> None:
    event = CLASSIFIER.enrich(contact("не работает api", kind="question", topic="billing", priority="p4"))
    assert (event.kind, event.topic, event.priority) == (ContactKind.QUESTION, "billing", Priority.P4)


def test_only_customer_contacts_are_classified() -> None:
    reply = ContactEvent.model_validate(
        {
            "event_id": "e",
            "type": "agent_replied",
            "text": "не работает",
            "occurred_at": datetime(2026, 11, 24, tzinfo=UTC),
            "ticket_id": "t",
        }
    )
    assert CLASSIFIER.enrich(reply) is reply


def test_a_rule_with_a_value_outside_the_contract_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match="'gossip' is not a valid ContactKind"):
        Classifier({"kind": [{"value": "gossip", "keywords": ["слух"]}]})
