"""JSON Schemas of the public contracts, generated from the models and committed under deploy/schemas/."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import orjson
from pydantic import BaseModel

from schemas.alert import Alert
from schemas.event import ContactEvent
from schemas.ticket import TicketSnapshot

CONTRACTS: Final[dict[str, type[BaseModel]]] = {
    "contact_event.schema.json": ContactEvent,
    "alert.schema.json": Alert,
    "ticket_snapshot.schema.json": TicketSnapshot,
}


def render(model: type[BaseModel]) -> bytes:
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in CONTRACTS.items():
        path = directory / name
        path.write_bytes(render(model))
        written.append(path)
    return written
