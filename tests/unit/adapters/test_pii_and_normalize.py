from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from processors.pii import Pseudonymizer, normalize_phone
from stream.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
KEY = "normalize-test-key-0123456789"


@pytest.mark.parametrize("raw", ["+7 (916) 123-45-67", "89161234567", "8 916 123 45 67", "9161234567"])
def test_one_russian_number_in_every_spelling(raw: str) -> None:
    assert normalize_phone(raw) == "79161234567"


def test_keyed_hash_is_stable_per_key_and_differs_across_keys() -> None:
    a, b = Pseudonymizer(b"k" * 16), Pseudonymizer(b"j" * 16)
    assert a.email("Irina@Example.RU ") == a.email("irina@example.ru")
    assert a.email("irina@example.ru") != b.email("irina@example.ru")
    assert a.phone("+79161234567").startswith("phone_")
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonymizer(b"short")


def test_scrub_leaves_short_numbers_alone() -> None:
    pii = Pseudonymizer(b"k" * 16)
    text = pii.scrub("Заказ 123456 от 24.11, тел. 8-916-123-45-67")
    assert "123456" in text
    assert "916" not in text


def test_normalize_prints_events_as_json_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTACTPULSE_PII_KEY", KEY)
    monkeypatch.setenv("CONTACTPULSE_TELEGRAM_SECRET_TOKEN", "tok")
    code = main(
        [
            "normalize",
            "--source",
            "telegram",
            str(FIXTURES / "message_text.json"),
            "--header",
            "X-Telegram-Bot-Api-Secret-Token=tok",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    chat = Pseudonymizer(KEY.encode()).identifier("chat", "52712345")
    assert [orjson.loads(line)["event_id"] for line in out] == [f"telegram:{chat}:4051"]
    assert "52712345" not in "".join(out)
    assert orjson.loads(out[0])["customer_id"] == Pseudonymizer(KEY.encode()).account("telegram", "52712345")


def test_normalize_refuses_a_bad_signature_with_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTACTPULSE_PII_KEY", KEY)
    monkeypatch.setenv("CONTACTPULSE_TELEGRAM_SECRET_TOKEN", "tok")
    code = main(["normalize", "--source", "telegram", str(FIXTURES / "message_text.json")])
    assert code == 2
    assert "signature rejected" in capsys.readouterr().err


def test_normalize_without_a_secret_warns_and_parses(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["normalize", "--source", "telegram", str(FIXTURES / "message_document.json")])
    captured = capsys.readouterr()
    assert code == 0
    assert "not verified" in captured.err
    assert "random key" in captured.err
    assert orjson.loads(captured.out)["text"] == "[document]"


def test_normalize_reports_unparsable_payloads_and_unknown_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"{oops")
    assert main(["normalize", "--source", "telegram", str(broken)]) == 2
    assert "cannot parse the telegram payload: not valid JSON" in capsys.readouterr().err
    assert main(["normalize", "--source", "fax", str(broken)]) == 2
    assert "unknown source 'fax'" in capsys.readouterr().err
