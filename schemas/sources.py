"""Field mappings for webhook bodies an admin writes (Zendesk triggers, Freshdesk automations, Jira
automation): dotted paths of the body -> normalized event fields. Loaded from TOML users edit (default:
deploy/config/sources.toml, `CONTACTPULSE_SOURCES_FILE`); the engine is `processors/field_mapping.py`.

A mapping applies to a body of its source that the source's adapter does not read itself (a shape it
does not know): the first mapping whose `match` paths are all present wins. A field is a list of paths
(the first non-empty value wins), or a table `{paths = [...], values = {raw = normalized}, default = ...}`
where `values` translates what the body says (compared in lower case) into ours.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.event import Channel, EventType, Priority, TicketStatus

DEFAULT_SOURCES_PATH: Final = Path(__file__).resolve().parent.parent / "deploy" / "config" / "sources.toml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldRule(_Frozen):
    paths: tuple[str, ...] = Field(description="Dotted paths into the body, tried in order.")
    values: dict[str, str] = Field(
        default_factory=dict,
        description="Raw value (lower case) -> normalized value; empty: the raw value is used as it is.",
    )
    default: str | None = Field(None, description="Used when no path has a value (or none it translates).")

    @field_validator("values")
    @classmethod
    def _lower_keys(cls, values: dict[str, str]) -> dict[str, str]:
        return {key.strip().lower(): value for key, value in values.items()}


def _rule(raw: Any) -> Any:
    """`"a.b"` and `["a.b", "c"]` are shorthands of `{paths = [...]}`."""
    if isinstance(raw, str):
        return {"paths": [raw]}
    if isinstance(raw, list):
        return {"paths": raw}
    return raw


class SourceMapping(_Frozen):
    name: str = Field(description="Shown in dead letters and logs: which mapping read (or missed) a body.")
    source: str = Field(description="The endpoint's source (`/ingest/{source}`) whose bodies it reads.")
    match: tuple[str, ...] = Field(description="Paths that must all have a value for this mapping to apply.")
    ticket_id: FieldRule
    type: FieldRule
    occurred_at: FieldRule | None = Field(None, description="Absent or empty: the receive time.")
    text: FieldRule | None = None
    subject: FieldRule | None = None
    status: FieldRule | None = None
    channel: FieldRule | None = None
    customer: FieldRule | None = None
    priority: FieldRule | None = None
    agent: FieldRule | None = None
    score: FieldRule | None = None
    team: FieldRule | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        rules = set(cls.model_fields) - {"name", "source", "match"}
        return {key: _rule(value) if key in rules else value for key, value in data.items()}

    @model_validator(mode="after")
    def _translations_are_ours(self) -> SourceMapping:
        # A typo in a values table would otherwise surface only when a body hits it.
        known: dict[str, set[str]] = {
            "type": {t.value for t in EventType},
            "status": {s.value for s in TicketStatus},
            "channel": {c.value for c in Channel},
            "priority": {p.value for p in Priority},
        }
        for field, allowed in known.items():
            rule: FieldRule | None = getattr(self, field)
            if rule is None:
                continue
            wrong = sorted({*rule.values.values(), *([rule.default] if rule.default else [])} - allowed)
            if wrong:
                raise ValueError(
                    f"mapping {self.name!r}: {field} values {wrong} are not ours: {sorted(allowed)}"
                )
        return self


class SourcesConfig(_Frozen):
    mapping: tuple[SourceMapping, ...] = ()

    def for_source(self, source: str) -> tuple[SourceMapping, ...]:
        return tuple(m for m in self.mapping if m.source == source)


def load_sources(path: Path | None = None) -> SourcesConfig:
    """Read a sources TOML file; `None` reads the shipped default."""
    with (path or DEFAULT_SOURCES_PATH).open("rb") as handle:
        return SourcesConfig.model_validate(tomllib.load(handle))
