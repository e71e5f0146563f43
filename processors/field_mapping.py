"""Admin-written webhook bodies -> normalized events, by the field mappings of `schemas/sources.py`.

Pure: the body, the receive time recorded with it and the adapter context in, events out. Used by
`processors.normalize.normalize_payload` for a body its source's adapter does not read itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from processors.adapters.base import (
    AdapterContext,
    AdapterError,
    build_event,
    csat_score,
    local_instant,
    received_at,
)
from processors.adapters.email import html_to_text
from schemas.event import ContactEvent
from schemas.sources import FieldRule, SourceMapping

_UNRENDERED: Final = re.compile(r"\{\{.*\}\}")
"""A placeholder the vendor left as it was (a field that does not exist on this ticket)."""
_PHONE: Final = re.compile(r"\+?[\d\s().-]{7,}")
_HTML: Final = re.compile(r"<(?:p|div|br|span|b|i|a|ul|li|table|html|body)\b", re.IGNORECASE)


def lookup(body: Any, path: str) -> Any:
    """`a.b.0.c` in nested objects and lists; None where the path leads nowhere."""
    node = body
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _raw(body: Any, path: str) -> str | None:
    value = lookup(body, path)
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return None if text == "" or _UNRENDERED.fullmatch(text) else text


def value_of(body: Any, rule: FieldRule | None) -> str | None:
    """The rule's value: the first path with a value (translated, when the rule translates) or its
    default. A value a translating rule does not know is skipped for the next path."""
    if rule is None:
        return None
    for path in rule.paths:
        raw = _raw(body, path)
        if raw is None:
            continue
        if not rule.values:
            return raw
        translated = rule.values.get(raw.lower())
        if translated is not None:
            return translated
    return rule.default


def mapping_for(mappings: tuple[SourceMapping, ...], body: Any) -> SourceMapping | None:
    """The first mapping all of whose `match` paths have a value in the body."""
    for mapping in mappings:
        if all(_raw(body, path) is not None for path in mapping.match):
            return mapping
    return None


def apply_mapping(
    mapping: SourceMapping, body: dict[str, Any], headers: Mapping[str, str], context: AdapterContext
) -> ContactEvent:
    """One event from a body the mapping matched; AdapterError names the mapping and what is missing."""
    ticket = value_of(body, mapping.ticket_id)
    if ticket is None:
        raise AdapterError(f"mapping {mapping.name!r}: no ticket id at {', '.join(mapping.ticket_id.paths)}")
    kind = value_of(body, mapping.type)
    if kind is None:
        seen = [raw for path in mapping.type.paths if (raw := _raw(body, path)) is not None]
        raise AdapterError(
            f"mapping {mapping.name!r}: no event type: {', '.join(mapping.type.paths)} "
            + (f"say {seen!r}, which its values do not list" if seen else "are empty")
        )
    stamp = value_of(body, mapping.occurred_at)
    occurred = _instant(stamp, context) if stamp else received_at(headers)
    if occurred is None:
        raise AdapterError(f"mapping {mapping.name!r}: no time in the body and no receive time recorded")
    customer = value_of(body, mapping.customer)
    agent = value_of(body, mapping.agent)
    score = value_of(body, mapping.score)
    # The same delivery twice is the same body: its hash is the event's id.
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
    return build_event(
        {
            "event_id": f"{mapping.source}:mapped:{digest}",
            "type": kind,
            "occurred_at": occurred,
            "ticket_id": f"{mapping.source}:{ticket}",
            "source": mapping.source,
            "channel": value_of(body, mapping.channel) or "other",
            "customer_id": _person(mapping.source, customer, context) if customer else None,
            "agent": _agent(mapping.source, agent, context) if agent else None,
            "status": value_of(body, mapping.status),
            "priority": value_of(body, mapping.priority),
            "team": value_of(body, mapping.team),
            "score": _score(score, mapping) if score else None,
            "subject": _words(value_of(body, mapping.subject), context, limit=1024),
            "text": _words(value_of(body, mapping.text), context),
            "mapping": mapping.name,
        }
    )


def _instant(raw: str, context: AdapterContext) -> str:
    if raw.isdigit():  # unix seconds, or milliseconds (Jira)
        seconds = int(raw) / 1000 if len(raw) >= 13 else int(raw)
        return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
    return local_instant(raw.replace(" UTC", "+00:00"), context, "occurred_at")


def _person(source: str, raw: str, context: AdapterContext) -> str:
    if "@" in raw:
        return context.pii.email(raw)
    if _PHONE.fullmatch(raw) and sum(c.isdigit() for c in raw) >= 7:
        return context.pii.phone(raw)
    return context.pii.account(source, raw)


def _agent(source: str, raw: str, context: AdapterContext) -> str:
    return context.pii.email(raw) if "@" in raw else f"{source}-agent:{raw}"[:256]


def _score(raw: str, mapping: SourceMapping) -> int:
    score = csat_score(raw)
    if score is None:
        raise AdapterError(f"mapping {mapping.name!r}: score {raw!r} is not 1-5 (translate it in `values`)")
    return score


def _words(raw: str | None, context: AdapterContext, limit: int | None = None) -> str | None:
    if raw is None:
        return None
    text = html_to_text(raw) if _HTML.search(raw) else raw
    scrubbed = context.pii.scrub(text)
    return scrubbed[:limit] if limit else scrubbed
