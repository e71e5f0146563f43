"""One pure entry for a native payload: bytes + headers + source -> events, an ignored non-contact, or a
refusal with its reason. The endpoint, the raw agent (which also reads what the IMAP poller forwards) and
`contactpulse normalize` call it; none of them catches adapter errors on its own.

Every outcome is explicit, so nothing is lost without a word:
- `Normalized(events)`: one or more contact events, classified;
- `Normalized([], ignored=...)`: an event the source documents that is not a customer contact (a
  Telegram member update, a Zendesk user event, a bounce), counted and not dead-lettered;
- `Refused(reason, detail)`: a bad signature, a payload the adapter cannot read (`unparsable_payload`),
  an adapter that failed on it (`adapter_error`, with the exception class: a bug of ours or a shape we
  did not foresee), or a readable payload that maps to no event (`unmapped_payload`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson

from processors.adapters import Adapter, AdapterContext, AdapterError, SignatureError
from processors.adapters.base import NotAContact
from processors.classify import Classifier
from processors.field_mapping import apply_mapping, mapping_for
from schemas.errors import DeadLetterReason
from schemas.event import ContactEvent


@dataclass(frozen=True, slots=True)
class Normalized:
    events: list[ContactEvent]
    ignored: str | None = None
    """Why a payload with no events is fine (a documented non-contact event); None when it has events."""


@dataclass(frozen=True, slots=True)
class Refused:
    reason: DeadLetterReason
    detail: str


def normalize_payload(
    adapter: Adapter,
    body: bytes,
    headers: Mapping[str, str],
    context: AdapterContext,
    classifier: Classifier,
    secret: str | None,
    now: datetime,
) -> Normalized | Refused:
    """Verify (when a secret is configured; `now` is the receiver's clock), parse and classify one
    payload; never raises."""
    unreadable: AdapterError | None = None
    try:
        if secret is not None:
            adapter.verify(body, headers, secret, now)
        events = adapter.parse(body, headers, context)
    except SignatureError as exc:
        return Refused(DeadLetterReason.BAD_SIGNATURE, str(exc))
    except NotAContact as exc:
        return Normalized([], ignored=str(exc))
    except AdapterError as exc:
        unreadable, events = exc, []
    except Exception as exc:  # any other failure inside an adapter: kept, with its class, never a 500
        return _adapter_error(exc)
    if not events:
        # A shape the adapter does not know: an admin-written body a field mapping may read.
        mapped = _mapped(adapter.name, body, headers, context)
        if isinstance(mapped, Refused):
            return mapped
        if mapped is not None:
            events = [mapped]
        elif unreadable is not None:
            return Refused(DeadLetterReason.UNPARSABLE_PAYLOAD, str(unreadable))
        else:
            return Refused(
                DeadLetterReason.UNMAPPED_PAYLOAD,
                f"the {adapter.name} payload maps to no contact event, is not a documented non-contact "
                "event, and no mapping of deploy/config/sources.toml matches it",
            )
    try:
        return Normalized([classifier.enrich(event) for event in events])
    except Exception as exc:
        return _adapter_error(exc)


def _mapped(
    source: str, body: bytes, headers: Mapping[str, str], context: AdapterContext
) -> ContactEvent | Refused | None:
    """The event a field mapping of the source reads from the body; None when no mapping matches."""
    mappings = context.sources.for_source(source)
    if not mappings:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    mapping = mapping_for(mappings, data) if isinstance(data, dict) else None
    if mapping is None:
        return None
    try:
        return apply_mapping(mapping, data, headers, context)
    except AdapterError as exc:
        return Refused(DeadLetterReason.UNPARSABLE_PAYLOAD, str(exc))
    except Exception as exc:
        return _adapter_error(exc)


def _adapter_error(exc: Exception) -> Refused:
    """The failure named by its exception class (the message cut: it may quote a whole payload)."""
    return Refused(DeadLetterReason.ADAPTER_ERROR, f"{type(exc).__name__}: {exc}"[:1000])
