"""Telegram Bot API webhooks: one `Update` object per request.

Shapes from the Bot API reference (core.telegram.org/bots/api#update): `message`, `edited_message`
(a `Message`: `message_id`, `from` (User), `chat` (Chat), `date` (unix seconds), `text` | `caption`,
`contact`, `photo`, `document`, `voice`, ...), `callback_query` (`id`, `from`, `message`, `data`).
The webhook's secret arrives in the `X-Telegram-Bot-Api-Secret-Token` header (setWebhook
`secret_token`). A chat is a ticket; a user is a customer (keyed hash of the user id; a shared contact's
phone number is hashed the same way as phone numbers from every other source).

- An edited message is the contact it was, not another: same event id as the original message, stamped
  with its `date` (when the customer wrote), not `edit_date`; the detectors see it once.
- A button press (`callback_query`) whose data is `csat:<1-5>` (a bot's rating buttons) is a CSAT
  rating, stamped when it was received (a callback carries no time of its own); any other press is an
  answer inside a conversation the chat already has, not a new contact.
- Not contacts: the update kinds in `_NOT_CONTACTS` (channel posts, member and join updates, polls,
  inline queries, payments, reactions, boosts, business connections).
- A bot's own replies never arrive as updates: the bot reports them to `/ingest/outbound/telegram`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from processors.adapters.base import (
    AdapterContext,
    AdapterError,
    NotAContact,
    SignatureError,
    build_event,
    load_json_object,
    lower_headers,
    received_at,
    same_secret,
    unix_instant,
)
from schemas.event import ContactEvent

SECRET_HEADER = "x-telegram-bot-api-secret-token"
_CSAT_BUTTON: Final = re.compile(r"csat:([1-5])")
_ATTACHMENTS = ("photo", "document", "video", "voice", "audio", "sticker", "location")
_NOT_CONTACTS = frozenset(
    {
        "channel_post",
        "edited_channel_post",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "poll",
        "poll_answer",
        "inline_query",
        "chosen_inline_result",
        "shipping_query",
        "pre_checkout_query",
        "message_reaction",
        "message_reaction_count",
        "chat_boost",
        "removed_chat_boost",
        "business_connection",
        "deleted_business_messages",
    }
)
"""Update kinds that are not a customer writing to support (the Bot API's Update fields)."""


class TelegramAdapter:
    name = "telegram"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        if not same_secret(lower_headers(headers).get(SECRET_HEADER), secret):
            raise SignatureError("X-Telegram-Bot-Api-Secret-Token is missing or wrong")

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        update = load_json_object(body)
        if "update_id" not in update:
            raise AdapterError("not a Telegram Update: no update_id")
        if isinstance(update.get("message"), dict):
            return [self._message(update["message"], context, edited=False)]
        if isinstance(update.get("edited_message"), dict):
            return [self._message(update["edited_message"], context, edited=True)]
        if isinstance(update.get("callback_query"), dict):
            return [self._callback(update["update_id"], update["callback_query"], headers, context)]
        others = sorted(key for key in update if key != "update_id")
        if others and all(key in _NOT_CONTACTS for key in others):
            raise NotAContact(f"Telegram {others[0]} update")
        return []  # an update of a shape we do not know: the caller dead-letters it as unmapped

    def _message(self, message: dict[str, Any], context: AdapterContext, edited: bool) -> ContactEvent:
        try:
            chat_id = message["chat"]["id"]
            message_id = message["message_id"]
            sent = message["date"]  # an edit keeps the time the customer wrote
        except (KeyError, TypeError) as exc:
            raise AdapterError(f"Telegram message without {exc}") from None
        sender = message.get("from") or {}
        text = message.get("text") or message.get("caption")
        contact = message.get("contact")
        if text is None and isinstance(contact, dict):
            text = "[shared contact]"
        if text is None:
            kinds = [kind for kind in _ATTACHMENTS if kind in message]
            text = f"[{kinds[0]}]" if kinds else None
        customer = self._customer(sender, context)
        shared_phone = (
            context.pii.phone(str(contact["phone_number"]))
            if isinstance(contact, dict) and contact.get("phone_number")
            else None
        )
        chat = context.pii.identifier("chat", str(chat_id))
        event_id = f"telegram:{chat}:{message_id}"  # an edit is the same contact
        known = _names_of(sender, message.get("chat"), contact)
        return build_event(
            {
                "event_id": event_id,
                "type": "contact_received",
                "occurred_at": unix_instant(sent, "Telegram date"),
                "ticket_id": f"telegram:{chat}",
                "channel": "telegram",
                "source": "telegram",
                "customer_id": customer,
                "text": context.pii.scrub(text, known) if text else None,
                "telegram_message_id": message_id,
                "telegram_edited": edited or None,
                "contact_phone": shared_phone,
            }
        )

    def _callback(
        self, update_id: int, query: dict[str, Any], headers: Mapping[str, str], context: AdapterContext
    ) -> ContactEvent:
        rating = _CSAT_BUTTON.fullmatch(str(query.get("data") or "").strip())
        if rating is None:
            raise NotAContact("Telegram button press (an answer inside the chat's conversation)")
        message = query.get("message") or {}
        chat = (message.get("chat") or {}).get("id") or (query.get("from") or {}).get("id")
        if chat is None:
            raise AdapterError("Telegram callback_query without a chat or a user")
        when = received_at(headers)
        if when is None:
            raise AdapterError("Telegram callback_query carries no time and no receive time was recorded")
        return build_event(
            {
                "event_id": f"telegram:callback:{query.get('id', update_id)}",
                "type": "csat_submitted",
                "occurred_at": when,
                "ticket_id": f"telegram:{context.pii.identifier('chat', str(chat))}",
                "channel": "telegram",
                "source": "telegram",
                "customer_id": self._customer(query.get("from") or {}, context),
                "score": int(rating.group(1)),
            }
        )

    @staticmethod
    def _customer(sender: dict[str, Any], context: AdapterContext) -> str | None:
        """The Telegram user, as a keyed hash of their id (stable across chats and edits)."""
        if sender.get("id") is not None:
            return context.pii.account("telegram", str(sender["id"]))
        return None


def _names_of(*people: Any) -> list[str]:
    """The names Telegram gives for the people of a message (sender, private chat, shared contact):
    scrubbed from its text in whatever case form they appear."""
    return [
        str(person[field])
        for person in people
        if isinstance(person, dict)
        for field in ("first_name", "last_name", "username")
        if isinstance(person.get(field), str)
    ]
