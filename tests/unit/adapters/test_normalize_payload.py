"""Every payload ends as events, a documented non-contact, or a refusal with a reason: never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.adapters import ADAPTERS, AdapterContext
from processors.classify import Classifier
from processors.normalize import Normalized, Refused, normalize_payload
from processors.pii import Pseudonymizer
from schemas.errors import DeadLetterReason
from schemas.sources import load_sources

FIXTURES = Path(__file__).parent / "fixtures"
# With the shipped field mappings: bodies no adapter reads reach them too.
CONTEXT = AdapterContext(Pseudonymizer(b"k" * 16), ZoneInfo("Europe/Moscow"), sources=load_sources())
CLASSIFIER = Classifier.from_file(None)
NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)

# Field names the adapters read, so generated bodies reach deep into their code, not only the first check.
VOCABULARY = [
    "update_id", "message", "edited_message", "callback_query", "chat", "id", "from", "text", "caption",
    "date", "edit_date", "message_id", "contact", "phone_number", "data", "object", "entry", "changes",
    "field", "value", "messages", "contacts", "statuses", "timestamp", "type", "ticket", "comment",
    "author", "is_staff", "is_public", "status", "priority", "detail", "event", "ticket_id", "call_id",
    "direction", "caller", "started_at", "session_id", "visitor", "leads", "add", "update", "note",
    "freshdesk_webhook", "ticket_status", "zendesk_trigger", "requester", "email", "subject", "body",
    "triggered_event", "webhookEvent", "issue", "key", "fields", "changelog", "items", "toString",
    "jsdPublic", "satisfaction", "updated_at", "title", "via", "latest_comment", "source_data",
]  # fmt: skip


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
        st.sampled_from(["", "0", "1700000000", "2026-11-24T10:00:00", "solved", "agent", "+79161234567"]),
    )
    keys = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=8))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6)),
        max_leaves=25,
    )


def fixture_bodies() -> list[tuple[str, Any]]:
    found = []
    for directory in sorted(FIXTURES.iterdir()):
        for path in sorted(directory.glob("*.json")):
            found.append((directory.name, orjson.loads(path.read_bytes())))
    return found


FIXTURE_BODIES = fixture_bodies()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = replaced(copy[head], rest, new)
    return copy


@st.composite
def mutated_fixture(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real vendor payload with one part replaced by something of another shape."""
    source, body = draw(st.sampled_from(FIXTURE_BODIES))
    path = draw(st.sampled_from(paths(body)))
    return source, orjson.dumps(replaced(body, path, draw(json_values())))


def check(source: str, body: bytes, headers: dict[str, str] | None = None) -> Normalized | Refused:
    outcome = normalize_payload(ADAPTERS[source], body, headers or {}, CONTEXT, CLASSIFIER, None, NOW)
    if isinstance(outcome, Normalized):
        assert outcome.events or outcome.ignored, "no events and no reason: a silent drop"
    else:
        assert outcome.detail, "a refusal without a sentence"
    return outcome


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixture())
def test_a_mutated_vendor_payload_is_never_an_exception_nor_silence(case: tuple[str, bytes]) -> None:
    check(*case)


@settings(max_examples=800, deadline=None)
@given(st.sampled_from(sorted(ADAPTERS)), json_values())
def test_any_json_body_to_any_adapter_is_never_an_exception_nor_silence(source: str, value: Any) -> None:
    check(source, orjson.dumps(value))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ADAPTERS)), st.binary(max_size=300))
def test_arbitrary_bytes_are_refused_with_a_reason(source: str, body: bytes) -> None:
    check(source, body)


@pytest.mark.parametrize(
    ("change", "exception"),
    [
        # Shapes that raised TypeError/AttributeError inside the adapter and got HTTP 500.
        ({"text": {"nested": "object"}}, "TypeError: "),
        ({"from": "x"}, "AttributeError: "),
    ],
)
def test_telegram_messages_of_the_wrong_shape_are_refused_with_a_reason(
    change: dict[str, Any], exception: str
) -> None:
    update = orjson.loads((FIXTURES / "telegram" / "message_text.json").read_bytes())
    update["message"].update(change)
    outcome = check("telegram", orjson.dumps(update))
    assert isinstance(outcome, Refused)
    assert outcome.reason is DeadLetterReason.ADAPTER_ERROR
    assert outcome.detail.startswith(exception)


def test_an_update_whose_message_is_a_string_is_dead_lettered_not_dropped() -> None:
    """It got 202 with no event and no dead letter."""
    outcome = check("telegram", orjson.dumps({"update_id": 5, "message": "hello"}))
    assert outcome == Refused(
        DeadLetterReason.UNMAPPED_PAYLOAD,
        "the telegram payload maps to no contact event, is not a documented non-contact event, and no "
        "mapping of deploy/config/sources.toml matches it",
    )


def test_documented_non_contacts_are_ignored_with_their_name() -> None:
    member = (FIXTURES / "telegram" / "my_chat_member.json").read_bytes()
    assert check("telegram", member) == Normalized([], ignored="Telegram my_chat_member update")
    statuses = (FIXTURES / "whatsapp" / "status_update.json").read_bytes()
    assert check("whatsapp", statuses) == Normalized([], ignored="WhatsApp statuses change")


def test_a_readable_payload_is_classified_once() -> None:
    outcome = check("telegram", (FIXTURES / "telegram" / "message_text.json").read_bytes())
    assert isinstance(outcome, Normalized)
    assert len(outcome.events) == 1
    assert outcome.events[0] == CLASSIFIER.enrich(outcome.events[0])
