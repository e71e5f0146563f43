"""Personal names in free text are scrubbed: recall on the labelled samples, and the cases that decide
between a name and a common word."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from processors.names import name_spans
from processors.pii import Pseudonymizer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.name_scrub_recall import HELD_OUT, SAMPLE, score

PII = Pseudonymizer(b"unit-test-key-0123456789")


def found(text: str) -> list[str]:
    return [text[start:end] for start, end in name_spans(text)]


@pytest.mark.parametrize(("sample", "floor"), [(SAMPLE, 0.97), (HELD_OUT, 0.9)])
def test_recall_on_labelled_samples(sample: Path, floor: float) -> None:
    result = score(sample)
    assert result.names >= 36
    assert result.recall >= floor, result.missed
    assert len(result.false_scrubs) <= 3, result.false_scrubs


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Передайте Вере Петровне, что счёт оплачен", ["Вере Петровне"]),
        ("Вера в продукт пропала", []),
        ("Роман Иванов из ООО Ромашка", ["Роман Иванов"]),
        ("Роман с поддержкой затянулся", []),
        ("Оплатили через Тинькофф, позвоните Алексею Смирнову", ["Алексею Смирнову"]),
        ("Bill is wrong for May", []),
        ("Hi, my name is Mary Smith and the export fails", ["Mary Smith"]),
        ("Export fails since Monday. Regards, Sergey Ivanov", ["Sergey Ivanov"]),
        ("Can you add SSO with Okta?", []),
        ("Москва, офис на Тверской", []),
    ],
)
def test_names_and_common_words(text: str, names: list[str]) -> None:
    assert found(text) == names


def test_scrub_replaces_a_name_with_the_same_keyed_token_in_any_message() -> None:
    first = PII.scrub("Сергей Иванов: не работает выгрузка")
    second = PII.scrub("Звонил Сергей Иванов, просил перезвонить")
    token = PII.name("Сергей Иванов")
    assert first == f"{token}: не работает выгрузка"
    assert second == f"Звонил {token}, просил перезвонить"
    assert "Иванов" not in first + second


def test_scrub_handles_phones_emails_and_names_together() -> None:
    text = "Анна Петрова, +7 916 123-45-67, anna.petrova@example.com"
    scrubbed = PII.scrub(text)
    assert (
        scrubbed
        == f"{PII.name('Анна Петрова')}, {PII.phone('+79161234567')}, {PII.email('anna.petrova@example.com')}"
    )


def test_names_the_source_gave_are_scrubbed_in_any_case_form() -> None:
    # Neither word is in a dictionary, but the sender's profile named them.
    text = "Счёт для Пантелеймоновой Евлампии и для Quigley"
    scrubbed = PII.scrub(text, ["Евлампия Пантелеймонова", "Bartholomew Quigley"])
    assert "Пантелеймонов" not in scrubbed
    assert "Евлампи" not in scrubbed
    assert "Quigley" not in scrubbed
    assert scrubbed.startswith("Счёт для name_")
    assert PII.scrub(text) != scrubbed  # without the profile the surname is not known


def test_a_cue_must_be_a_word_of_its_own() -> None:
    assert found("Two items Excel cannot open") == []  # "ms" inside "items" is no "Ms"
    assert found("Hi, this is Bartholomew Quigley") == ["Bartholomew Quigley"]
