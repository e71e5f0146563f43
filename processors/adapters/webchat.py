"""A web-chat widget's callbacks. The JSON we accept, one callback per request:

    {"event": "chat_started" | "visitor_message" | "agent_message" | "chat_finished" | "offline_message"
              | "chat_rated" | "chat_transferred" | "agent_note",
     "chat_id": "ch-77",                          required: the conversation, one ticket
     "message_id": "m-3",                         required for messages
     "timestamp": "2026-11-24T10:00:00+03:00",    required; without an offset: CONTACTPULSE_TIME_ZONE
     "visitor": {"id": "v-1", "email": "...", "phone": "...", "name": "..."},
     "agent": {"id": "op-5"},
     "text": "...", "page_url": "https://...",
     "rating": 1..5,                              chat_rated
     "group": "L2", "escalated": true}            chat_transferred (escalated: to a higher tier)

Started, visitor and offline messages are contacts (an offline message arrives while nobody is online
and waits for a reply like any other); agent messages are replies; a finished chat is resolved; a
rating is CSAT; a transfer is an assignment (an escalation when `escalated`); an agent's note is
accepted and ignored (the visitor does not see it). Any other event is dead-lettered as unmapped. The
visitor is identified by e-mail, else phone, else the widget's visitor id, always pseudonymized.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from processors.adapters.base import (
    AdapterContext,
    AdapterError,
    NotAContact,
    as_object,
    build_event,
    csat_score,
    load_json_object,
    local_instant,
)
from schemas.event import ContactEvent

_TYPES: Final = {
    "chat_started": "contact_received",
    "visitor_message": "contact_received",
    "offline_message": "contact_received",
    "agent_message": "agent_replied",
    "chat_finished": "status_changed",
    "chat_rated": "csat_submitted",
    "chat_transferred": "assigned",
}


class WebchatAdapter:
    name = "webchat"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        return None

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        callback = load_json_object(body)
        kind = str(callback.get("event", ""))
        if not callback.get("chat_id") or not callback.get("timestamp"):
            raise AdapterError("web-chat callback without chat_id or timestamp")
        if kind == "agent_note":
            raise NotAContact("web-chat agent note (the visitor does not see it)")
        if kind not in _TYPES:
            return []  # a callback of an event we do not know: dead-lettered as unmapped, never dropped
        event_type = _TYPES[kind]
        if kind == "chat_transferred" and callback.get("escalated") is True:
            event_type = "escalated"
        score = csat_score(callback.get("rating")) if kind == "chat_rated" else None
        if kind == "chat_rated" and score is None:
            raise AdapterError(f"chat_rated with rating {callback.get('rating')!r}: expected 1-5")
        message_id = callback.get("message_id")
        if kind.endswith("_message") and not message_id:
            raise AdapterError(f"{kind} without message_id")
        visitor, agent = as_object(callback.get("visitor")), as_object(callback.get("agent"))
        text = callback.get("text")
        return [
            build_event(
                {
                    "event_id": f"webchat:{callback['chat_id']}:{kind}:{message_id or callback['timestamp']}",
                    "type": event_type,
                    "occurred_at": local_instant(callback["timestamp"], context, "timestamp"),
                    "ticket_id": f"webchat:{callback['chat_id']}",
                    "channel": "chat",
                    "source": "webchat",
                    "customer_id": _visitor(visitor, context),
                    "agent": f"webchat-agent:{agent['id']}"
                    if kind in ("agent_message", "chat_transferred") and agent.get("id")
                    else None,
                    "team": str(callback["group"])
                    if kind == "chat_transferred" and callback.get("group")
                    else None,
                    "status": "resolved" if kind == "chat_finished" else None,
                    "score": score,
                    "text": context.pii.scrub(str(text))
                    if text and event_type in ("contact_received", "csat_submitted")
                    else None,
                    "webchat_event": kind,
                    "webchat_page_url": callback.get("page_url"),
                }
            )
        ]


def _visitor(visitor: dict[str, Any], context: AdapterContext) -> str | None:
    if visitor.get("email"):
        return context.pii.email(str(visitor["email"]))
    if visitor.get("phone"):
        return context.pii.phone(str(visitor["phone"]))
    if visitor.get("id"):
        return context.pii.account("webchat", str(visitor["id"]))
    return None
