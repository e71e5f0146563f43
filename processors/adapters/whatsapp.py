"""WhatsApp Cloud API webhooks (Meta Graph API, `object: whatsapp_business_account`).

Shape from developers.facebook.com, "WhatsApp Cloud API - Webhooks": `entry[].changes[]` with
`field: messages` and `value` holding `metadata`, `contacts[]` (`profile.name`, `wa_id`), `messages[]`
(`from`, `id` = wamid, `timestamp` in unix seconds as a string, `type` and a body per type: `text.body`,
`image|video|document.caption`, `interactive.button_reply|list_reply.title`, `button.text`, `location`,
...) and `statuses[]` (receipts of the business's own messages: `id` = wamid, `status` sent | delivered |
read | failed, `timestamp`, `recipient_id`, `conversation.origin.type` and `pricing.category`: service,
marketing, utility, authentication, ...). With `CONTACTPULSE_WHATSAPP_SENT_IS_REPLY` a sent, delivered
or read receipt of a message in a customer-service conversation (category `service`, `user_initiated`,
`referral_conversion`, or none given) is the agent's reply, keyed by the wamid as the outbound endpoint
keys it (so the three receipts and a report to `/ingest/outbound/whatsapp` are one reply); otherwise
receipts are not contacts, nor are failed sends and template messages of other categories. Requests are
signed:
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`. Subscribing starts with a GET
handshake (`hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`): `verification_challenge`.
A customer's phone number is the conversation: ticket and customer ids are its keyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from processors.adapters.base import (
    AdapterContext,
    AdapterError,
    NotAContact,
    SignatureError,
    as_object,
    build_event,
    load_json_object,
    lower_headers,
    same_secret,
    unix_instant,
)
from schemas.event import ContactEvent

SIGNATURE_HEADER: Final = "x-hub-signature-256"
_CAPTIONED: Final = ("image", "video", "document")
_DELIVERED: Final = frozenset({"sent", "delivered", "read"})
_SERVICE_CATEGORIES: Final = frozenset({"service", "user_initiated", "referral_conversion"})
"""Conversation categories in which the business answers a customer (not a template it started)."""


def verification_challenge(query: Mapping[str, str], verify_token: str) -> str | None:
    """The `hub.challenge` to echo when Meta's subscription handshake carries our verify token."""
    if query.get("hub.mode") == "subscribe" and same_secret(query.get("hub.verify_token"), verify_token):
        return query.get("hub.challenge")
    return None


class WhatsAppAdapter:
    name = "whatsapp"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        given = lower_headers(headers).get(SIGNATURE_HEADER, "")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.strip().lower(), expected):
            raise SignatureError("X-Hub-Signature-256 is missing or does not match the body")

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        payload = load_json_object(body)
        if payload.get("object") != "whatsapp_business_account" or not isinstance(payload.get("entry"), list):
            raise AdapterError("not a WhatsApp Business Account webhook (object/entry)")
        events = []
        other_changes: set[str] = set()
        for entry in payload["entry"]:
            for change in as_object(entry).get("changes") or []:
                if as_object(change).get("field") != "messages":
                    other_changes.add(str(as_object(change).get("field")))
                    continue
                value = as_object(change.get("value"))
                names = {
                    c.get("wa_id"): as_object(c.get("profile")).get("name")
                    for c in value.get("contacts") or []
                    if isinstance(c, dict)
                }
                messages = value.get("messages") or []
                for message in messages:
                    events.append(self._message(message, names, context))
                for status in value.get("statuses") or []:
                    reply = self._reply(status, context) if context.whatsapp_sent_is_reply else None
                    if reply is None:
                        other_changes.add("statuses")  # receipts that are no reply of an agent's
                    else:
                        events.append(reply)
        if not events and other_changes:
            raise NotAContact(f"WhatsApp {', '.join(sorted(other_changes))} change")
        return events

    def _message(self, message: Any, names: dict[Any, Any], context: AdapterContext) -> ContactEvent:
        if not isinstance(message, dict):
            raise AdapterError("WhatsApp message is not an object")
        try:
            sender, wamid, stamp = str(message["from"]), str(message["id"]), message["timestamp"]
        except KeyError as exc:
            raise AdapterError(f"WhatsApp message without {exc}") from None
        occurred = unix_instant(stamp, "WhatsApp timestamp")
        kind = str(message.get("type", "unknown"))
        text = _text_of(kind, message)
        conversation = context.pii.phone(sender)
        return build_event(
            {
                "event_id": f"whatsapp:{context.pii.identifier('wamid', wamid)}",
                "type": "contact_received",
                "occurred_at": occurred,
                "ticket_id": f"whatsapp:{conversation}",
                "channel": "whatsapp",
                "source": "whatsapp",
                "customer_id": conversation,
                "text": context.pii.scrub(text, [str(names[sender])] if names.get(sender) else []),
                "whatsapp_type": kind,
                "customer_name": context.pii.name(names[sender]) if names.get(sender) else None,
            }
        )

    @staticmethod
    def _reply(status: Any, context: AdapterContext) -> ContactEvent | None:
        """The agent's reply a receipt shows, or None when it shows none (failed, a template send)."""
        status = as_object(status)
        if status.get("status") not in _DELIVERED:
            return None
        category = as_object(status.get("pricing")).get("category") or as_object(
            as_object(status.get("conversation")).get("origin")
        ).get("type")
        if category is not None and category not in _SERVICE_CATEGORIES:
            return None
        try:
            wamid, customer, stamp = str(status["id"]), str(status["recipient_id"]), status["timestamp"]
        except KeyError as exc:
            raise AdapterError(f"WhatsApp status without {exc}") from None
        conversation = context.pii.phone(customer)
        return build_event(
            {
                "event_id": f"whatsapp:{context.pii.identifier('wamid', wamid)}",
                "type": "agent_replied",
                "occurred_at": unix_instant(stamp, "WhatsApp timestamp"),
                "ticket_id": f"whatsapp:{conversation}",
                "channel": "whatsapp",
                "source": "whatsapp",
                "customer_id": conversation,
            }
        )


def _text_of(kind: str, message: dict[str, Any]) -> str:
    body = as_object(message.get(kind))
    if kind == "text":
        return str(body.get("body") or "")
    if kind in _CAPTIONED:
        return str(body.get("caption") or f"[{kind}]")
    if kind == "interactive":
        reply = as_object(body.get("button_reply") or body.get("list_reply"))
        return str(reply.get("title") or "[interactive]")
    if kind == "button":
        return str(body.get("text") or "[button]")
    return f"[{kind}]"
