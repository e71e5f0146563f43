from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from schemas import Alert, AlertStatus, Audience, Severity, alert_id_for


def test_alert_id_is_deterministic_and_independent_of_key_order() -> None:
    first = alert_id_for("volume_spike", {"dimension": "topic", "value": "billing"})
    second = alert_id_for("volume_spike", {"value": "billing", "dimension": "topic"})
    assert first == second
    assert len(first) == 32
    assert int(first, 16) >= 0


@pytest.mark.parametrize(
    ("rule", "subject", "episode"),
    [
        ("volume_spike", {"dimension": "topic", "value": "delivery"}, ""),
        ("escalation_rate_high", {"dimension": "topic", "value": "billing"}, ""),
        ("volume_spike", {"dimension": "topic", "value": "billing"}, "2"),
    ],
)
def test_alert_id_differs_by_rule_subject_and_episode(
    rule: str, subject: dict[str, str], episode: str
) -> None:
    base = alert_id_for("volume_spike", {"dimension": "topic", "value": "billing"})
    assert alert_id_for(rule, subject, episode) != base


def test_alert_serializes_with_alertmanager_like_fields() -> None:
    alert = Alert(
        alert_id=alert_id_for("sla_first_response_breached", {"ticket_id": "T-1"}),
        rule="sla_first_response_breached",
        status=AlertStatus.FIRING,
        severity=Severity.CRITICAL,
        audience=Audience.ONCALL,
        subject={"ticket_id": "T-1"},
        starts_at=datetime(2026, 11, 24, 7, 15, tzinfo=UTC),
        summary="Ticket T-1 breached its first-response target.",
        details={"target_seconds": 900},
    )
    decoded = orjson.loads(alert.to_json())
    assert decoded["labels"] == {}
    assert decoded["status"] == "firing"
    assert decoded["ends_at"] is None
    assert decoded["starts_at"] == "2026-11-24T07:15:00Z"
    assert Alert.model_validate(decoded) == alert


def _fields() -> dict[str, object]:
    return {
        "alert_id": alert_id_for("repeat_contact", {"customer_id": "c-1", "topic": "billing"}),
        "rule": "repeat_contact",
        "status": AlertStatus.FIRING,
        "severity": Severity.INFO,
        "audience": Audience.ONCALL,
        "subject": {"customer_id": "c-1", "topic": "billing"},
        "starts_at": datetime(2026, 11, 24, 7, 15, tzinfo=UTC),
        "ends_at": None,
        "summary": "Customer c-1 is back.",
        "details": {"ticket_ids": ["T-1", "T-2"]},
        "labels": {"topic": "billing", "customer_tier": "key"},
        "summaries": {"en": "Customer c-1 is back.", "ru": "Клиент c-1 снова обратился."},
    }


def test_trusted_alert_is_the_validated_alert() -> None:
    trusted = Alert.trusted(**_fields())  # type: ignore[arg-type]
    validated = Alert(**_fields())
    assert trusted == validated
    assert trusted.to_json() == validated.to_json()
    assert trusted.model_dump() == validated.model_dump()
    assert trusted.model_fields_set == validated.model_fields_set
    with pytest.raises(ValueError, match="frozen"):
        trusted.summary = "changed"  # type: ignore[misc]


def test_changed_copies_and_leaves_the_original() -> None:
    original = Alert.trusted(**_fields())  # type: ignore[arg-type]
    ended = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    resolved = original.changed(status=AlertStatus.RESOLVED, ends_at=ended)
    assert resolved == original.model_copy(update={"status": AlertStatus.RESOLVED, "ends_at": ended})
    assert original.status is AlertStatus.FIRING
    assert original.ends_at is None
    assert orjson.loads(resolved.to_json())["ends_at"] == "2026-11-24T08:00:00Z"


def test_json_line_is_the_json_and_a_newline() -> None:
    alert = Alert.trusted(**_fields())  # type: ignore[arg-type]
    assert alert.to_json_line() == alert.to_json() + b"\n"


def test_a_record_from_before_routing_labels_still_parses_with_none() -> None:
    old = orjson.loads(Alert.trusted(**_fields()).to_json())  # type: ignore[arg-type]
    del old["labels"]
    assert Alert.model_validate(old).labels == {}


def test_ticket_alerts_carry_the_tickets_routing_labels_fixed_when_they_fire() -> None:
    from processors.alerting import AlertBook

    book = AlertBook()
    at = datetime(2026, 11, 24, 7, 15, tzinfo=UTC)
    common = {"severity": Severity.CRITICAL, "audience": Audience.ONCALL, "starts_at": at, "details": {}}
    first = book.fire(
        "incident_cluster", {"error_code": "E-42"}, summary="a", labels={"team": "L2"}, **common
    )
    assert first is not None
    assert first.labels == {"error_code": "E-42", "team": "L2"}
    assert first.alert_id == alert_id_for("incident_cluster", {"error_code": "E-42"})  # ids unchanged
    update = book.fire(
        "incident_cluster", {"error_code": "E-42"}, summary="b", labels={"team": "L3"}, **common
    )
    assert update is not None
    assert update.labels == first.labels
