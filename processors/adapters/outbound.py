"""Agents' messages on direct channels, reported by whatever sent them: `POST /ingest/outbound/{channel}`.

Telegram, WhatsApp and e-mail do not tell anyone that a business answered: the team's bot, operator
console or mail tool does the sending, and it posts one JSON object per message it sent (the channel is
the path's last segment: `telegram`, `whatsapp` or `email`):

    {"message_id": "4052",                          the id the channel gave the sent message: the
                                                    Telegram message_id, the WhatsApp wamid, the e-mail
                                                    Message-ID. Posted twice, it counts once; and once
                                                    with the same message seen another way (a WhatsApp
                                                    status receipt, the sent folder).
     "sent_at": "2026-11-24T10:32:00+03:00",        RFC 3339 or unix seconds; no offset: the configured
                                                    time zone
     "telegram_chat_id": 123456789,                 telegram: the chat the bot answered in
     "whatsapp_to": "79161234567",                  whatsapp: the customer's number (wa_id)
     "email_references": "<CAF1x2y3@mail.example>", email: the sent message's References (or
                                                    In-Reply-To): the thread it answers
     "agent": "anna@support.example",               optional: who answered (an address is kept as a
                                                    keyed hash; an operator id as `<channel>-agent:<id>`)
     "internal": false}                             optional: true for a note the customer does not see
                                                    (accepted and ignored: not a reply)

The ticket is the one the customer's messages opened (the same keyed hashes the channel's adapter uses),
so the reply stops that ticket's first-response clock. Requests are signed with
`CONTACTPULSE_OUTBOUND_WEBHOOK_SECRET`: `X-ContactPulse-Timestamp: <unix seconds>` and
`X-ContactPulse-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`, refused when the
timestamp is more than 5 minutes from the receiver's clock (a captured request cannot be replayed later).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from processors.adapters.base import (
    AdapterContext,
    AdapterError,
    NotAContact,
    SignatureError,
    build_event,
    load_json_object,
    local_instant,
    lower_headers,
    unix_instant,
)
from schemas.event import ContactEvent

CHANNEL_HEADER: Final = "x-contactpulse-channel"
"""Set by the endpoint from the path (`/ingest/outbound/{channel}`), never taken from the sender."""
SIGNATURE_HEADER: Final = "X-ContactPulse-Signature"
TIMESTAMP_HEADER: Final = "X-ContactPulse-Timestamp"
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
CHANNELS: Final = ("telegram", "whatsapp", "email")
_MESSAGE_ID: Final = re.compile(r"<([^<>\s]+)>")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-ContactPulse-Signature value of a body sent at `timestamp` (for senders and tests)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The two headers a sender adds to a body it posts at `timestamp` (unix seconds)."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


class OutboundAdapter:
    name = "outbound"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        given = lower_headers(headers)
        try:
            stamp = int(given.get(TIMESTAMP_HEADER.lower(), ""))
        except ValueError:
            raise SignatureError("X-ContactPulse-Timestamp is missing or not unix seconds") from None
        if abs(now.timestamp() - stamp) > MAX_CLOCK_SKEW.total_seconds():
            raise SignatureError("X-ContactPulse-Timestamp is more than 5 minutes from now")
        presented = given.get(SIGNATURE_HEADER.lower(), "").strip().lower()
        if not hmac.compare_digest(presented, sign(secret, stamp, body)):
            raise SignatureError("X-ContactPulse-Signature is missing or does not match the body")

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        channel = lower_headers(headers).get(CHANNEL_HEADER, "")
        if channel not in CHANNELS:
            raise AdapterError(f"post agents' messages to /ingest/outbound/{{{'|'.join(CHANNELS)}}}")
        sent = load_json_object(body)
        if sent.get("internal") is True:
            raise NotAContact(f"an internal note on {channel} (the customer does not see it)")
        message_id = _text(sent, "message_id")
        ticket_id, event_id, customer = _thread(channel, message_id, sent, context)
        agent = sent.get("agent")
        return [
            build_event(
                {
                    "event_id": event_id,
                    "type": "agent_replied",
                    "occurred_at": _instant(sent.get("sent_at"), context),
                    "ticket_id": ticket_id,
                    "channel": channel,
                    "source": channel,
                    "customer_id": customer,
                    "agent": _agent(channel, agent, context),
                }
            )
        ]


def _thread(
    channel: str, message_id: str, sent: dict[str, Any], context: AdapterContext
) -> tuple[str, str, str | None]:
    """Ticket id, event id and customer, named as the channel's own adapter names them."""
    pii = context.pii
    if channel == "telegram":
        chat = pii.identifier("chat", _text(sent, "telegram_chat_id"))
        # Message ids are unique within a chat whichever side wrote: the same key as customers' messages.
        return f"telegram:{chat}", f"telegram:{chat}:{message_id}", None
    if channel == "whatsapp":
        customer = pii.phone(_text(sent, "whatsapp_to"))
        return f"whatsapp:{customer}", f"whatsapp:{pii.identifier('wamid', message_id)}", customer
    thread = _MESSAGE_ID.findall(_text(sent, "email_references"))
    if not thread:
        raise AdapterError("email_references holds no <message-id>")
    own = _MESSAGE_ID.findall(message_id)
    return (
        f"email:{pii.identifier('msgid', thread[0])}",
        f"email:{pii.identifier('msgid', own[0] if own else message_id)}",
        None,
    )


def _scalar(value: Any) -> str | None:
    """A field's text when it is a non-empty string or number (not an object, list or boolean)."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    return str(value).strip() or None


def _text(sent: dict[str, Any], field: str) -> str:
    value = _scalar(sent.get(field))
    if value is None:
        raise AdapterError(f"outbound message without {field}")
    return value


def _instant(raw: Any, context: AdapterContext) -> str:
    if raw is None:
        raise AdapterError("outbound message without sent_at")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return unix_instant(raw, "sent_at")
    return local_instant(raw, context, "sent_at")


def _agent(channel: str, raw: Any, context: AdapterContext) -> str | None:
    agent = _scalar(raw)
    if agent is None:
        return None
    return context.pii.email(agent) if "@" in agent else f"{channel}-agent:{agent}"[:256]
