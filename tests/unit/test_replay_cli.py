from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.alert import Alert
from stream.cli import main

EVENTS = [
    b'{"event_id":"a","type":"contact_received","occurred_at":"2026-11-24T10:00:00+03:00","ticket_id":"T-1",'
    b'"priority":"p1","channel":"email"}',
    b"this is not json",
    b'{"event_id":"a","type":"contact_received","occurred_at":"2026-11-24T10:00:00+03:00","ticket_id":"T-1"}',
    b"",
    b'{"event_id":"b","type":"contact_received","occurred_at":"2026-11-24T10:01:00+03:00"}',
    b'{"event_id":"c","type":"assigned","occurred_at":"2026-11-24T09:30:00+03:00","ticket_id":"T-1"}',
    b'{"event_id":"d","type":"agent_replied","occurred_at":"2026-11-24T10:12:00+03:00","ticket_id":"T-1"}',
]


def run(tmp_path: Path, *extra: str, lines: list[bytes] = EVENTS) -> tuple[int, list[Alert], list[dict]]:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    alerts, dead = tmp_path / "alerts.jsonl", tmp_path / "dead.jsonl"
    code = main(["replay", str(events), "--alerts", str(alerts), "--dead-letter", str(dead), *extra])
    parsed = [Alert.model_validate_json(line) for line in alerts.read_bytes().splitlines()]
    letters = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    return code, parsed, letters


def test_replay_writes_alerts_and_dead_letters_every_rejected_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, alerts, letters = run(tmp_path)
    assert code == 0
    assert [(a.rule, a.status.value) for a in alerts] == [
        ("sla_first_response_at_risk", "firing"),
        ("sla_first_response_at_risk", "resolved"),
    ]
    # Written as decided: a malformed or late line at once, a duplicate when its turn in time order comes.
    letters.sort(key=lambda d: d["line"])
    assert [(d["line"], d["reason"]) for d in letters] == [
        (2, "invalid_json"),
        (3, "duplicate"),
        (5, "schema_violation"),
        (6, "late"),
    ]
    assert letters[0]["record"] == "this is not json"
    assert letters[2]["detail"] == "ticket_id: required field is missing"
    assert letters[3]["detail"] == (
        "occurred_at 2026-11-24T09:30:00+03:00 is 1800 s behind the latest event of its input "
        "(allowed: 300 s)"
    )
    err = capsys.readouterr().err
    assert "line 2: invalid_json" in err
    assert (
        "replay: 7 lines, 2 events accepted, rejected: 1 duplicate, 1 invalid_json, 1 late, "
        "1 schema_violation; 2 alert state changes" in err
    )


def test_until_advances_the_clock_past_the_last_event(tmp_path: Path) -> None:
    _, alerts, _ = run(tmp_path, "--until", "2026-11-24T10:20:00+03:00", lines=EVENTS[:1])
    assert [(a.rule, a.starts_at.isoformat()) for a in alerts] == [
        ("sla_first_response_at_risk", "2026-11-24T10:11:15+03:00"),
        ("sla_first_response_breached", "2026-11-24T10:15:00+03:00"),
    ]
    _, without, _ = run(tmp_path, lines=EVENTS[:1])
    assert without == []  # the clock stops at the last event


def test_until_needs_an_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(EVENTS[0])
    code = main(["replay", str(events), "--alerts", str(tmp_path / "a.jsonl"), "--until", "2026-11-24T10:20"])
    assert code == 2
    assert "--until needs an offset" in capsys.readouterr().err


def test_unreadable_input_exits_non_zero(tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "missing.jsonl"), "--alerts", str(tmp_path / "a.jsonl")]) == 2


def test_config_file_changes_the_rules(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[sla]\nat_risk_fraction = 0.5\n")
    _, alerts, _ = run(tmp_path, "--config", str(config), lines=EVENTS[:1] + EVENTS[6:])
    assert alerts[0].starts_at.isoformat() == "2026-11-24T10:07:30+03:00"
