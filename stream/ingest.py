"""Ingestion: `POST /ingest/{source}` on the worker's web server, and the agent that normalizes
`contacts.raw` into `contacts.events`.

Who may post: a source with a vendor signature secret (Telegram, WhatsApp, Zendesk) or a shared token
(`CONTACTPULSE_<SOURCE>_TOKEN`, sent as `X-ContactPulse-Token` or `?token=`) configured must present it
(401 otherwise); a source with neither answers 403 unless `CONTACTPULSE_ALLOW_UNSIGNED_SOURCES` lists
it, so no endpoint is open to anyone by omission.

The endpoint answers 202 only once Kafka has the raw payload (acks=all): a sender that got 202 may
forget it. It runs `processors.normalize.normalize_payload` before accepting: a bad signature is 401;
a payload an adapter cannot read or fails on is 400 with the reason (`unparsable_payload`,
`adapter_error` with the exception class); a readable payload that maps to no event is 202 with a dead
letter (`unmapped_payload`); a documented non-contact event (a member update, a delivery receipt) is
202 and counted. Every refused payload is kept on the dead-letter topic with its reason, never dropped:
with its bytes when its sender was authenticated and its source is within its dead-letter budget
(`processors/dead_letter_budget.py`), otherwise as hash, size and reason only (`stream/dead_letter.py`).
The raw agent runs the same function again on what was accepted (the payload's bytes are the record;
the events are derived from them where they are published). 413 over the size limit, 429 with
Retry-After when too many requests are in flight, 503 with Retry-After when Kafka has not acknowledged
the payload in time (the sender retries; a late acknowledgement then only means a duplicate, which the
event id absorbs). Raw payloads (with their PII) stay on `contacts.raw`; what leaves it is
pseudonymized by the adapters. Credentials sent as headers are never stored.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import faust
from faust.types import StreamT
from faust.web import Request, Response, View

from processors.adapters import ADAPTERS, AdapterContext
from processors.adapters.base import RECEIVED_AT_HEADER, same_secret
from processors.adapters.outbound import CHANNEL_HEADER
from processors.classify import Classifier
from processors.dead_letter_budget import BudgetLimits, DeadLetterBudget
from processors.normalize import Normalized, Refused, normalize_payload
from processors.pii import Pseudonymizer
from schemas.errors import DeadLetterReason
from schemas.settings import Settings
from schemas.sources import load_sources
from stream.dead_letter import WITHHELD_OVER_BUDGET, WITHHELD_UNVERIFIED, DeadLetter
from stream.metrics import WorkerMetrics

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES: Final = 1024 * 1024
HEADER_SOURCE: Final = "contactpulse.source"
HEADER_VERIFIED: Final = "contactpulse.verified"
"""b"1" on a raw record whose sender proved who it is (signature, token, our own mailbox)."""
TOKEN_HEADER: Final = "X-ContactPulse-Token"
_HTTP_PREFIX: Final = "http."
_PRIVATE_HEADERS: Final = frozenset(
    {
        "authorization",
        "cookie",
        "proxy-authorization",
        TOKEN_HEADER.lower(),
        "x-telegram-bot-api-secret-token",  # Telegram sends the secret itself, not a signature
    }
)

DeadLetterSender = Callable[[bytes | None, bytes, DeadLetter], Awaitable[None]]

_REFUSAL_STATUS: Final = {
    DeadLetterReason.BAD_SIGNATURE: 401,
    DeadLetterReason.UNPARSABLE_PAYLOAD: 400,
    DeadLetterReason.ADAPTER_ERROR: 400,
    # Readable and signed, but nothing we know how to map: 202 so the vendor does not retry forever;
    # the dead letter and its metric make it loud.
    DeadLetterReason.UNMAPPED_PAYLOAD: 202,
}


def source_secret(settings: Settings, source: str) -> str | None:
    """The configured secret of a source (`CONTACTPULSE_<SOURCE>_SECRET_TOKEN|WEBHOOK_SECRET|APP_SECRET`)."""
    for suffix in ("secret_token", "webhook_secret", "app_secret"):
        secret = getattr(settings, f"{source}_{suffix}", None)
        if secret is not None:
            return str(secret.get_secret_value())
    return None


def source_token(settings: Settings, source: str) -> str | None:
    """The shared token a source must send (`CONTACTPULSE_<SOURCE>_TOKEN`), if one is configured."""
    token = getattr(settings, f"{source}_token", None)
    value = str(token.get_secret_value()) if token is not None else ""
    return value or None  # an empty variable configures nothing (never a token "" anyone can send)


def token_presented(headers: Mapping[str, str], query: Mapping[str, str], token: str) -> bool:
    given = next((v for k, v in headers.items() if k.lower() == TOKEN_HEADER.lower()), None)
    return same_secret(given if given is not None else query.get("token"), token)


def pseudonymizer_from(settings: Settings, warn: Callable[[str], None] = log.warning) -> Pseudonymizer:
    if settings.pii_key is None:
        warn("CONTACTPULSE_PII_KEY is not set: customer tokens use a random key for this run")
        return Pseudonymizer(secrets.token_bytes(32))
    return Pseudonymizer(settings.pii_key.get_secret_value().encode())


def adapter_context(settings: Settings, warn: Callable[[str], None] = log.warning) -> AdapterContext:
    """What the adapters need of the configuration; one construction for the endpoint, the raw agent
    and `contactpulse normalize`, so a payload reads the same everywhere."""
    return AdapterContext(
        pseudonymizer_from(settings, warn),
        ZoneInfo(settings.time_zone),
        support_domains=settings.support_domains(),
        sources=load_sources(settings.sources_file),
        whatsapp_sent_is_reply=settings.whatsapp_sent_is_reply,
    )


def stored_headers(headers: Any, source: str, verified: bool) -> list[tuple[str, bytes]]:
    kept = [(HEADER_SOURCE, source.encode()), (HEADER_VERIFIED, b"1" if verified else b"0")]
    for key, value in headers.items():
        if key.lower() not in _PRIVATE_HEADERS:
            kept.append((http_header(key), str(value).encode()))
    return kept


def http_header(name: str) -> str:
    """The raw-record header that carries HTTP header `name` to the adapter (see `http_headers`)."""
    return _HTTP_PREFIX + name.lower()


def http_headers(kafka_headers: Any) -> dict[str, str]:
    return {
        key.removeprefix(_HTTP_PREFIX): value.decode("utf-8", errors="replace")
        for key, value in kafka_headers or []
        if key.startswith(_HTTP_PREFIX)
    }


def _content_length(headers: Any) -> int | None:
    try:
        return int(headers.get("Content-Length", ""))
    except ValueError:
        return None


def register_ingest(
    app: faust.App,
    raw_topic: faust.TopicT,
    events_topic: faust.TopicT,
    settings: Settings,
    metrics: WorkerMetrics,
    send_dead_letter: DeadLetterSender,
) -> None:
    context = adapter_context(settings)
    classifier = Classifier.from_file(settings.classification_file)
    in_flight = asyncio.Semaphore(settings.ingest_max_in_flight)
    limits = BudgetLimits(
        max_ratio=settings.dead_letter_budget_ratio, max_per_second=settings.dead_letter_budget_per_second
    )
    budgets = {name: DeadLetterBudget(limits) for name in ADAPTERS}
    keyless = {
        n for n in ADAPTERS if source_secret(settings, n) is None and source_token(settings, n) is None
    }
    open_sources = {name for name in keyless if settings.unsigned_allowed(name)}
    if open_sources:
        log.warning(
            "%s accept unsigned payloads from anyone (allowed unsigned)", ", ".join(sorted(open_sources))
        )
    if keyless - open_sources:
        log.info(
            "%s refuse every payload (403) until a secret or CONTACTPULSE_<SOURCE>_TOKEN is configured",
            ", ".join(sorted(keyless - open_sources)),
        )

    def answer(view: View, source: str, status: int, body: dict[str, Any], **headers: str) -> Response:
        metrics.ingest_requests.labels(source=source, status=str(status)).inc()
        response = view.json(body, status=status)
        for name, value in headers.items():
            response.headers[name.replace("_", "-")] = value
        return response

    def count(source: str, refused: bool) -> None:
        now = time.monotonic()
        budgets[source].record(now, refused)
        metrics.dead_letter_budget_exceeded.labels(source=source).set(int(budgets[source].exceeded(now)))

    async def dead_letter(
        body: bytes, source: str, reason: DeadLetterReason, detail: str, verified: bool
    ) -> None:
        letter = DeadLetter(reason, detail, f"http:/ingest/{source}", 0, 0)
        count(source, refused=True)
        over_budget = budgets[source].exceeded(time.monotonic())
        if not verified or over_budget:
            why = WITHHELD_UNVERIFIED if not verified else WITHHELD_OVER_BUDGET
            letter, body = letter.withhold(why, body)
            metrics.dead_letters_withheld.labels(source=source, why=why).inc()
        await send_dead_letter(source.encode(), body, letter)

    async def produce(body: bytes, headers: list[tuple[str, bytes]], source: str) -> None:
        sent = await raw_topic.send(key=source.encode(), value=body, headers=headers)
        await sent

    async def ingest(
        view: View, request: Request, source: str, given: dict[str, str] | None = None
    ) -> Response:
        """One payload of `source`; `given` are headers the route itself adds (they win over the sender's)."""
        # The receive time goes with the payload: an event whose payload has no time of its own is
        # stamped with it, the same instant whenever the raw record is read again.
        received = datetime.now(UTC)
        given = {**(given or {}), RECEIVED_AT_HEADER: received.isoformat()}
        wins = {name.lower() for name in given}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in wins} | given
        adapter = ADAPTERS.get(source)
        if adapter is None:
            return answer(view, "unknown", 404, {"error": f"unknown source {source!r}"})
        length = _content_length(request.headers)
        if length is not None and length > MAX_PAYLOAD_BYTES:
            return answer(
                view,
                source,
                413,
                {"error": f"payload of {length} bytes; the limit is {MAX_PAYLOAD_BYTES}"},
            )
        secret, token = source_secret(settings, source), source_token(settings, source)
        if secret is None and token is None and not settings.unsigned_allowed(source):
            return answer(
                view,
                source,
                403,
                {
                    "error": f"{source} accepts no unsigned payloads: configure its signature secret "
                    f"or CONTACTPULSE_{source.upper()}_TOKEN, or list it in "
                    "CONTACTPULSE_ALLOW_UNSIGNED_SOURCES"
                },
            )
        if in_flight.locked():
            return answer(view, source, 429, {"error": "too many requests in flight"}, Retry_After="1")
        async with in_flight:
            body = await request.read()
            if token is not None and not token_presented(request.headers, request.query, token):
                outcome: Normalized | Refused = Refused(
                    DeadLetterReason.BAD_SIGNATURE, f"missing or wrong {TOKEN_HEADER}"
                )
            else:
                outcome = normalize_payload(adapter, body, headers, context, classifier, secret, received)
            verified = (secret is not None or token is not None) and not (
                isinstance(outcome, Refused) and outcome.reason == DeadLetterReason.BAD_SIGNATURE
            )
            if isinstance(outcome, Refused):
                await dead_letter(body, source, outcome.reason, outcome.detail, verified)
                status = _REFUSAL_STATUS[outcome.reason]
                if status == 202:  # readable, but nothing we know: kept loudly, and the vendor
                    return answer(view, source, 202, {"accepted": 0, "dead_letter": outcome.reason})
                return answer(view, source, status, {"error": outcome.detail})
            count(source, refused=False)
            if outcome.ignored is not None:
                metrics.ingest_ignored.labels(source=source).inc()
                return answer(view, source, 202, {"accepted": 0, "ignored": outcome.ignored})
            try:
                await asyncio.wait_for(
                    produce(body, stored_headers(headers, source, verified), source),
                    settings.ingest_ack_timeout_seconds,
                )
            except Exception as exc:
                log.warning("raw payload from %s not accepted by Kafka: %s", source, exc)
                return answer(view, source, 503, {"error": "Kafka unavailable"}, Retry_After="5")
            return answer(view, source, 202, {"accepted": len(outcome.events)})

    class IngestView(View):
        async def post(self, request: Request, source: str) -> Response:
            return await ingest(self, request, source)

        async def get(self, request: Request, source: str) -> Response:
            # Meta's subscription handshake (WhatsApp): echo hub.challenge for our verify token.
            from processors.adapters.whatsapp import verification_challenge

            token = settings.whatsapp_verify_token
            challenge = verification_challenge(request.query, token.get_secret_value()) if token else None
            if source != "whatsapp" or challenge is None:
                return answer(self, source, 403, {"error": "verification failed"})
            metrics.ingest_requests.labels(source=source, status="200").inc()
            return self.text(challenge)

    class OutboundView(View):
        async def post(self, request: Request, channel: str) -> Response:
            # An agent's message sent from a bot or console (processors/adapters/outbound.py).
            return await ingest(self, request, "outbound", {CHANNEL_HEADER: channel})

    app.page("/ingest/{source}")(IngestView)
    app.page("/ingest/outbound/{channel}")(OutboundView)

    @app.agent(raw_topic, name="normalize-raw-payloads")
    async def normalize_raw(stream: StreamT[bytes]) -> None:
        async for record in stream.events():
            message = record.message
            value: bytes = record.value if isinstance(record.value, bytes) else b""
            headers = dict((k, v) for k, v in (message.headers or []))
            source = headers.get(HEADER_SOURCE, b"").decode()
            adapter = ADAPTERS.get(source)
            if adapter is None:
                outcome: Normalized | Refused = Refused(
                    DeadLetterReason.UNPARSABLE_PAYLOAD, f"no adapter for source {source!r}"
                )
            else:
                # Verified at the endpoint already; the raw topic holds what passed.
                outcome = normalize_payload(
                    adapter,
                    value,
                    http_headers(message.headers),
                    context,
                    classifier,
                    None,
                    datetime.now(UTC),
                )
            if isinstance(outcome, Refused):  # kept, never dropped
                letter = DeadLetter.for_record(outcome.reason, outcome.detail, message)
                if headers.get(HEADER_VERIFIED) != b"1":
                    letter, value = letter.withhold(WITHHELD_UNVERIFIED, value)
                    metrics.dead_letters_withheld.labels(source=source, why=WITHHELD_UNVERIFIED).inc()
                await send_dead_letter(record.key, value, letter)
                continue
            for event in outcome.events:
                await events_topic.send(key=event.ticket_id.encode(), value=event.to_json())
            metrics.raw_payloads_normalized.labels(source=source).inc()
