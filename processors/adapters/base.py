"""What every adapter is: signature check, then payload -> events; failures are typed."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from processors.pii import Pseudonymizer
from schemas.errors import describe_validation_error
from schemas.event import ContactEvent
from schemas.sources import SourcesConfig

RECEIVED_AT_HEADER: Final = "x-contactpulse-received-at"
"""When the endpoint received the payload (RFC 3339), recorded once with the raw record: the time of an
event whose payload carries none of its own, the same instant each time the raw record is read again."""


class AdapterError(ValueError):
    """The payload cannot be turned into events (HTTP 400, dead letter `unparsable_payload`)."""


class NotAContact(Exception):
    """A documented event of the source that is not a customer contact (member updates, user events,
    bounces): accepted and counted, not dead-lettered. Its message says which."""


class SignatureError(ValueError):
    """The payload is not signed, or not by whom it claims (HTTP 401)."""


@dataclass(frozen=True)
class AdapterContext:
    pii: Pseudonymizer
    time_zone: ZoneInfo
    support_domains: frozenset[str] = frozenset()
    """E-mail domains of the support team (lower case): a message from one is an agent's reply."""
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    """Field mappings for admin-written bodies (`deploy/config/sources.toml`)."""
    whatsapp_sent_is_reply: bool = False
    """A WhatsApp status receipt of a message the business sent in a customer-service conversation
    counts as the agent's reply (for teams that answer from the WhatsApp Business app or a console
    that does not call the outbound endpoint)."""


class Adapter(Protocol):
    name: str

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        """Raise SignatureError unless the payload is signed with `secret` (and, where the source
        signs a time, signed close to `now`: a captured webhook cannot be replayed later)."""
        ...

    def parse(
        self, body: bytes, headers: Mapping[str, str], context: AdapterContext
    ) -> list[ContactEvent]: ...


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def same_secret(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def as_object(raw: Any) -> dict[str, Any]:
    """`raw` when it is a JSON object, else an empty one: optional nested objects read the same way."""
    return raw if isinstance(raw, dict) else {}


def load_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AdapterError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AdapterError(f"expected a JSON object, got {type(data).__name__}")
    return data


def build_event(fields: dict[str, Any]) -> ContactEvent:
    try:
        return ContactEvent.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise AdapterError(describe_validation_error(exc)) from None


def unix_instant(raw: Any, what: str) -> str:
    """Unix seconds (a number or its string) as an RFC 3339 instant in UTC."""
    try:
        return datetime.fromtimestamp(int(raw), tz=UTC).isoformat()
    except (TypeError, ValueError, OverflowError):
        raise AdapterError(f"{what} {raw!r} is not unix seconds") from None


def local_instant(raw: Any, context: AdapterContext, field: str) -> str:
    """An ISO 8601 instant; one without offset is read in the configured time zone."""
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        raise AdapterError(f"{field} {raw!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=context.time_zone)
    return parsed.isoformat()


def csat_score(raw: Any) -> int | None:
    """A rating on the 1-5 scale, given as a number or its text; None for anything else."""
    text = str(raw).strip() if raw is not None and not isinstance(raw, bool) else ""
    return int(text) if text in ("1", "2", "3", "4", "5") else None


def received_at(headers: Mapping[str, str]) -> str | None:
    """The endpoint's receive time of this payload (`RECEIVED_AT_HEADER`), if it recorded one."""
    return lower_headers(headers).get(RECEIVED_AT_HEADER) or None
