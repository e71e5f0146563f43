from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.settings import ENV_PREFIX, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTACTPULSE_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("CONTACTPULSE_TOPIC_PARTITIONS", "8")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "ignored:1")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.topic_partitions == 8


def test_invalid_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTACTPULSE_LOCALE", "de")
    with pytest.raises(ValueError, match="locale"):
        Settings()


def test_clickhouse_credentials_never_appear_in_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTACTPULSE_CLICKHOUSE_DSN", "http://app:hunter2@ch:8123/db")
    settings = Settings()
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    assert "hunter2" not in settings.model_dump_json()
    assert settings.dsn() == "http://app:hunter2@ch:8123/db"


def test_readme_documents_every_setting_with_its_default() -> None:
    text = README.read_text()
    for name, field in Settings.model_fields.items():
        variable = f"{ENV_PREFIX}{name.upper()}"
        row = re.search(rf"^\| `{variable}` \| (.*?) \| (.*?) \|$", text, re.MULTILINE)
        assert row, f"README has no settings row for {variable}"
        default = (
            field.default.get_secret_value() if hasattr(field.default, "get_secret_value") else field.default
        )
        assert row.group(1) == f"`{default}`", variable


def test_raw_topic_keeps_payloads_only_as_long_as_configured() -> None:
    from stream.topics import topic_config

    settings = Settings(raw_retention_hours=48, dead_letter_retention_hours=12)
    assert topic_config(settings, settings.topic_raw)["retention.ms"] == str(48 * 3600 * 1000)
    assert topic_config(settings, settings.topic_dead_letter)["retention.ms"] == str(12 * 3600 * 1000)
    assert "retention.ms" not in topic_config(settings, settings.topic_events)


def test_consumer_fetches_are_held_only_as_long_as_configured() -> None:
    from stream.topics import FETCH_MIN_BYTES, fetch_batching

    # The broker answers at once unless asked to wait; asked, it waits for more than a steady stream
    # brings in the time (so the time decides), in whole milliseconds.
    assert fetch_batching(0) == {}
    assert fetch_batching(0.025) == {"fetch_min_bytes": FETCH_MIN_BYTES, "fetch_max_wait_ms": 25}
    assert fetch_batching(0.0002) == {"fetch_min_bytes": FETCH_MIN_BYTES, "fetch_max_wait_ms": 1}
    assert Settings().detector_fetch_wait_seconds == 0.025
    with pytest.raises(ValidationError):
        Settings(detector_fetch_wait_seconds=2.0)  # an alert two seconds late by design: refused
