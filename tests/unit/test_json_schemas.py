from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.jsonschema import CONTRACTS, render

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "schemas"


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_committed_schema_matches_the_models(name: str) -> None:
    committed = (SCHEMA_DIR / name).read_bytes()
    assert committed == render(CONTRACTS[name]), (
        f"deploy/schemas/{name} is stale: run `contactpulse schema` and commit the result"
    )


def test_event_schema_lists_the_required_fields_and_enums() -> None:
    schema = orjson.loads((SCHEMA_DIR / "contact_event.schema.json").read_bytes())
    assert sorted(schema["required"]) == ["event_id", "occurred_at", "ticket_id", "type"]
    assert schema["$defs"]["Channel"]["enum"] == [
        "phone",
        "email",
        "chat",
        "telegram",
        "whatsapp",
        "social",
        "web_form",
        "other",
    ]


def test_event_schema_allows_unknown_fields_as_the_model_does() -> None:
    schema = orjson.loads((SCHEMA_DIR / "contact_event.schema.json").read_bytes())
    assert schema["additionalProperties"] is True
