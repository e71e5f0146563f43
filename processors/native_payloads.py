"""The simulator's tickets, rendered as their sources would send them, so the demo runs the adapters,
the ingestion endpoint and the outbound endpoint too. Each rendering keeps the ticket id the adapter will
derive, so every event of a ticket lands on one ticket whichever way it travelled.

What a source cannot say stays a normalized event (`render` returns None): a status change of a
Telegram chat or an e-mail thread, a Telegram rating (its time would be the receive time, not the
simulated one), a PBX call's CSAT outside a survey."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
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


SUPPORT_DOMAIN: Final = "support.contactpulse.example"
"""The simulated team's e-mail domain: the demo configures it as CONTACTPULSE_EMAIL_SUPPORT_DOMAINS."""
_ZENDESK_STATUS: Final = {
    "new": "NEW",
    "in_progress": "OPEN",
    "waiting_customer": "PENDING",
    "resolved": "SOLVED",
    "closed": "CLOSED",
}


@dataclass(frozen=True, slots=True)
class NativePayload:
    source: str
    """The adapter that reads it."""
    endpoint: str
    """Where it is posted, under /ingest/ (`telegram`, or `outbound/telegram` for an agent's message)."""
    body: bytes


def render(event: dict[str, Any], at: datetime) -> NativePayload | None:
    """A simulated event of a ticket on a channel with an adapter, as its source sends it; None when the
    source has no way to say it."""
    channel, kind = str(event["channel"]), str(event["type"])
    if kind == "contact_received" and event.get("_first"):
        source, body = _first_contact(event, at)
        return NativePayload(source, source, body)
    renderer = _LATER.get(channel)
    return renderer(event, kind, at) if renderer is not None else None


def _stamp(at: datetime) -> int:
    return int(at.timestamp())


def _telegram(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    chat = int(str(event["_source_id"]))
    # Message ids of a chat count up on both sides; the simulated time in seconds does too.
    message_id = _stamp(at) - 1_700_000_000
    if kind == "contact_received":
        body = {
            "update_id": _stamp(at),
            "message": {
                "message_id": message_id,
                "date": _stamp(at),
                "chat": {"id": chat, "type": "private"},
                "from": {"id": chat, "is_bot": False, "first_name": str(event.get("_customer") or "")},
                "text": str(event.get("text") or ""),
            },
        }
        return NativePayload("telegram", "telegram", orjson.dumps(body))
    if kind == "agent_replied":
        sent = {"message_id": message_id, "telegram_chat_id": chat, "sent_at": at.isoformat()}
        return NativePayload(
            "outbound", "outbound/telegram", orjson.dumps({**sent, "agent": event.get("agent")})
        )
    return None


def _email(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    root = str(event["_source_id"])
    customer = f"{event.get('_customer') or 'anonymous'}@client.example"
    mail = EmailMessage()
    if kind == "contact_received":
        mail["From"], mail["To"] = customer, f"support@{SUPPORT_DOMAIN}"
        mail["Message-ID"] = f"<sim-{_stamp(at)}-{_number(root, 6)}@client.example>"
    elif kind == "agent_replied":
        mail["From"], mail["To"] = f"{event.get('agent') or 'agent'}@{SUPPORT_DOMAIN}", customer
        mail["Message-ID"] = f"<reply-{_stamp(at)}-{_number(root, 6)}@{SUPPORT_DOMAIN}>"
    else:
        return None
    mail["Subject"] = "Re: Обращение"
    mail["Date"] = format_datetime(at)
    mail["In-Reply-To"] = mail["References"] = f"<{root}>"
    mail.set_content(str(event.get("text") or "Ответ службы поддержки."))
    return NativePayload("email", "email", mail.as_bytes())


def _zendesk(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    ticket = str(event["_source_id"])
    customer = str(event.get("_customer") or "anonymous")
    priority = _ZENDESK_PRIORITY.get(str(event.get("_priority")), "NORMAL")
    detail = {
        "id": ticket,
        "status": "OPEN",
        "priority": priority,
        "requester_id": customer,
        "via": {"channel": "web_form"},
    }
    envelope = {
        "id": f"sim-{ticket}-{kind}-{_stamp(at)}",
        "time": at.isoformat(),
        "subject": f"zen:ticket:{ticket}",
    }
    if kind in ("contact_received", "agent_replied"):
        staff = kind == "agent_replied"
        comment = {
            "id": _stamp(at),
            "body": str(event.get("text") or "Ответ службы поддержки."),
            "is_public": True,
            "author": {"id": str(event.get("agent") if staff else customer), "is_staff": staff},
        }
        change: dict[str, Any] = {"comment": comment}
        action = "comment_added"
    elif kind == "status_changed":
        status = _ZENDESK_STATUS[str(event["status"])]
        detail["status"], change, action = status, {"current": status, "previous": "OPEN"}, "status_changed"
    elif kind == "assigned":
        change, action = {"current": str(event.get("agent")), "previous": None}, "agent_assignment_changed"
    elif kind == "escalated":
        raised = "URGENT" if priority in ("HIGH", "URGENT") else "HIGH"
        detail["priority"], change, action = (
            raised,
            {"current": raised, "previous": priority},
            "priority_changed",
        )
    elif kind == "csat_submitted":
        trigger = {
            "event": "satisfaction_rated",
            "ticket_id": ticket,
            "requester_id": customer,
            "via": "web_form",
            "satisfaction": str(event["score"]),
            "updated_at": at.isoformat(),
        }
        return NativePayload("zendesk", "zendesk", orjson.dumps({"zendesk_trigger": trigger}))
    else:
        return None
    body = {**envelope, "type": f"zen:event-type:ticket.{action}", "detail": detail, "event": change}
    return NativePayload("zendesk", "zendesk", orjson.dumps(body))


def _pbx(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    ticket = str(event["ticket_id"])
    number = f"+7916{_number(str(event.get('_customer') or 'anonymous'), 7):07d}"
    call = {"call_id": f"sim-{ticket}-{_stamp(at)}", "started_at": at.isoformat(), "ticket_id": ticket}
    if kind == "agent_replied":  # the call back
        call |= {"direction": "outbound", "status": "answered", "caller": "+74950000000", "callee": number}
        call |= {"answered_at": at.isoformat(), "agent": str(event.get("agent") or "")}
    elif kind == "contact_received":  # the customer calls again and nobody picks up
        call |= {"direction": "inbound", "status": "missed", "caller": number, "callee": "+74950000000"}
        call["transcript"] = str(event.get("text") or "")
    else:
        return None
    return NativePayload("pbx", "pbx", orjson.dumps(call))


def _webchat(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    chat = str(event["_source_id"])
    callback: dict[str, Any] = {
        "chat_id": chat,
        "timestamp": at.isoformat(),
        "visitor": {"id": event.get("_customer")},
    }
    agent = {"id": str(event.get("agent") or "")}
    if kind == "contact_received":
        callback |= {"event": "visitor_message", "message_id": f"v-{_stamp(at)}", "text": event.get("text")}
    elif kind == "agent_replied":
        callback |= {"event": "agent_message", "message_id": f"a-{_stamp(at)}", "agent": agent}
    elif kind == "status_changed" and event.get("status") == "resolved":
        callback |= {"event": "chat_finished"}
    elif kind == "csat_submitted":
        callback |= {"event": "chat_rated", "rating": event["score"]}
    elif kind in ("assigned", "escalated"):
        callback |= {"event": "chat_transferred", "group": event.get("team"), "agent": agent}
        callback["escalated"] = kind == "escalated"
    else:
        return None
    return NativePayload("webchat", "webchat", orjson.dumps(callback))


_LATER: Final = {
    "telegram": _telegram,
    "email": _email,
    "web_form": _zendesk,
    "phone": _pbx,
    "chat": _webchat,
}


def _first_contact(event: dict[str, Any], at: datetime) -> tuple[str, bytes]:
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
        mail["To"] = f"support@{SUPPORT_DOMAIN}"
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
