"""The simulator's first contacts, rendered as the sources would send them, so the demo runs the
adapters and the ingestion endpoint too. Each rendering keeps the ticket id the adapter will derive,
so the ticket's later (normalized) events land on the same ticket."""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Final

import orjson

from processors.pii import Pseudonymizer

NATIVE_CHANNELS: Final = {
    "telegram": "telegram",
    "web_form": "zendesk",
    "email": "email",
    "phone": "pbx",
    "chat": "webchat",
}
_ZENDESK_PRIORITY: Final = {"p1": "URGENT", "p2": "HIGH", "p3": "NORMAL", "p4": "LOW"}


def _number(seed: str, digits: int) -> int:
    return int(hashlib.sha256(seed.encode()).hexdigest(), 16) % int(10**digits)


def native_ticket_id(channel: str, prefix: str, number: int, pii: Pseudonymizer) -> tuple[str, str] | None:
    """(the ticket id the channel's adapter derives for this simulated ticket, the source's own id it is
    derived from), or None: keep ours. Ids that name a person are keyed hashes, as the adapters make
    them; `pii` must hold the worker's key."""
    name = f"{prefix}-{number:06d}"
    if channel == "telegram":
        chat = str(7_000_000_000 + _number(name, 9))
        return f"telegram:{pii.identifier('chat', chat)}", chat
    if channel == "web_form":
        return f"zendesk:{name}", name
    if channel == "email":
        message_id = f"sim-{name}@client.example"
        return f"email:{pii.identifier('msgid', message_id)}", message_id
    if channel == "chat":
        return f"webchat:{name}", name
    return None


def render(event: dict[str, Any], at: datetime) -> tuple[str, bytes]:
    """(adapter name, payload bytes) of a simulated first contact on a channel with an adapter."""
    channel, ticket = str(event["channel"]), str(event["ticket_id"])
    source_id = str(event.get("_source_id") or ticket)
    text = str(event.get("text") or "")
    customer = str(event.get("customer_id") or "anonymous")
    unix = int(at.timestamp())
    if channel == "telegram":
        chat = int(source_id)
        return "telegram", orjson.dumps(
            {
                "update_id": unix,
                "message": {
                    "message_id": 1,
                    "date": unix,
                    "chat": {"id": chat, "type": "private"},
                    "from": {"id": chat, "is_bot": False, "first_name": customer},
                    "text": text,
                },
            }
        )
    if channel == "web_form":
        return "zendesk", orjson.dumps(
            {
                "type": "zen:event-type:ticket.created",
                "id": f"sim-{ticket}",
                "time": at.isoformat(),
                "subject": f"zen:ticket:{ticket}",
                "detail": {
                    "id": ticket.removeprefix("zendesk:"),
                    "status": "NEW",
                    "priority": _ZENDESK_PRIORITY.get(str(event.get("priority")), None),
                    "requester_id": customer,
                    "subject": event.get("subject"),
                    "description": text,
                    "via": {"channel": "web_form"},
                },
            }
        )
    if channel == "email":
        mail = EmailMessage()
        mail["From"] = f"{customer}@client.example"
        mail["To"] = "support@contactpulse.example"
        mail["Subject"] = str(event.get("subject") or "Обращение")
        mail["Date"] = format_datetime(at)
        mail["Message-ID"] = f"<{source_id}>"
        mail.set_content(text or "(без текста)")
        return "email", mail.as_bytes()
    if channel == "phone":
        return "pbx", orjson.dumps(
            {
                "call_id": f"sim-{ticket}",
                "direction": "inbound",
                "status": "missed",
                "started_at": at.isoformat(),
                "caller": f"+7916{_number(customer, 7):07d}",
                "callee": "+74950000000",
                "ticket_id": ticket,
                "transcript": text,
            }
        )
    if channel == "chat":
        return "webchat", orjson.dumps(
            {
                "event": "visitor_message",
                "chat_id": ticket.removeprefix("webchat:"),
                "message_id": "m-1",
                "timestamp": at.isoformat(),
                "visitor": {"id": customer},
                "text": text,
            }
        )
    raise ValueError(f"no native rendering for channel {channel!r}")
