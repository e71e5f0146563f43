"""amoCRM webhooks: `application/x-www-form-urlencoded` bodies with PHP-style nested keys.

Shapes from amoCRM's "Webhooks" documentation: `leads[add][0][id]`, `leads[add][0][status_id]`,
`leads[add][0][date_create]`, `leads[status][0][id]` / `[status_id]` / `[old_status_id]`,
`unsorted[add][0][uid]` / `[category]` (forms, chats, sip, mail) / `[created_at]`,
`message[add][0][id]` / `[talk_id]` / `[chat_id]` / `[contact_id]` / `[text]` / `[type]` (incoming,
outgoing) / `[created_at]` / `[origin]`, and `account[subdomain]`, `account[id]`. Times are unix seconds.
The whole form is decoded into nested objects (numeric keys become lists) and each item travels in
`extra.amocrm`, so no field is lost. Lead status 142 is "won" (resolved) and 143 "lost" (closed).

Unsorted ("Неразобранное") items: a site form's fields (`source_data[data][<n>][name|value]`) become the
text, one "name: value" line each (the customer's words, scrubbed of PII); a chat's first message
(`source_data[data][<n>][text]` or `source_data[last_message_text]`) too; the lead the item proposes
(`data[leads][0][name]`, else the form's name) is the subject; a chat arriving from Telegram, WhatsApp,
Instagram, VK, ... (`source_data[source]`, `[source_name]` or `[origin][type]`) gets that channel, not
`chat`. Deleted leads (`leads[delete]`) are closed. A task on a lead completed (`task[update]` or
`task[add]` with `status` 1, `element_type` 2) of type call (1) or letter (3) is the agent reaching the
customer: `agent_replied` on the lead at its `last_modified`. Notes (`leads[note]`, `contacts[note]`:
internal, not replies), other tasks, and contact or company updates are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl

from processors.adapters.base import (
    AdapterContext,
    AdapterError,
    NotAContact,
    as_object,
    build_event,
    received_at,
    unix_instant,
)
from schemas.event import ContactEvent

WON, LOST = "142", "143"
_CATEGORY_CHANNELS: Final = {"forms": "web_form", "chats": "chat", "sip": "phone", "mail": "email"}
_ORIGIN_CHANNELS: Final = {
    "telegram": "telegram",
    "whatsapp": "whatsapp",
    "waba": "whatsapp",
    "instagram": "social",
    "facebook": "social",
    "vk": "social",
    "viber": "chat",
    "avito": "chat",
}


def _key_path(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    return [head] + ([part for part in rest.rstrip("]").split("][")] if rest else [])


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def decode_form(body: bytes) -> dict[str, Any]:
    """`a[b][0][c]=1` -> {"a": {"b": [{"c": "1"}]}}; repeated or conflicting keys keep the last value."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise AdapterError(f"not an amoCRM form body: {exc}") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        path = _key_path(key)
        node = root
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    converted = _listify(root)
    assert isinstance(converted, dict)
    return converted


def _items(node: Any) -> list[dict[str, Any]]:
    return [item for item in node if isinstance(item, dict)] if isinstance(node, list) else []


class AmoCrmAdapter:
    name = "amocrm"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        return None  # amoCRM does not sign webhooks; use a secret URL path behind a proxy

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        form = decode_form(body)
        account = as_object(form.get("account"))
        subdomain = str(account.get("subdomain") or account.get("id") or "")
        if not subdomain:
            raise AdapterError("amoCRM webhook without account[subdomain]")
        prefix = f"amocrm:{subdomain}"
        events: list[ContactEvent] = []
        leads = as_object(form.get("leads"))
        for lead in _items(leads.get("add")):
            events.append(
                build_event(
                    {
                        "event_id": f"{prefix}:lead:{lead.get('id')}:add",
                        "type": "contact_received",
                        "occurred_at": unix_instant(
                            lead.get("date_create") or lead.get("created_at"), "amoCRM date_create"
                        ),
                        "ticket_id": f"{prefix}:lead:{lead.get('id')}",
                        "source": "amocrm",
                        "channel": "other",
                        "subject": context.pii.scrub(str(lead["name"])) if lead.get("name") else None,
                        "amocrm": lead,
                    }
                )
            )
        for lead in _items(leads.get("status")):
            status = str(lead.get("status_id"))
            when = lead.get("last_modified") or lead.get("updated_at")
            events.append(
                build_event(
                    {
                        "event_id": f"{prefix}:lead:{lead.get('id')}:status:{status}:{when}",
                        "type": "status_changed",
                        "occurred_at": unix_instant(when, "amoCRM last_modified"),
                        "ticket_id": f"{prefix}:lead:{lead.get('id')}",
                        "source": "amocrm",
                        "status": "resolved"
                        if status == WON
                        else "closed"
                        if status == LOST
                        else "in_progress",
                        "amocrm": lead,
                    }
                )
            )
        for lead in _items(leads.get("delete")):
            when = lead.get("last_modified") or lead.get("updated_at")
            events.append(
                build_event(
                    {
                        "event_id": f"{prefix}:lead:{lead.get('id')}:delete",
                        "type": "status_changed",
                        "occurred_at": unix_instant(when, "amoCRM last_modified")
                        if when
                        else received_at(headers),
                        "ticket_id": f"{prefix}:lead:{lead.get('id')}",
                        "source": "amocrm",
                        "status": "closed",
                        "amocrm": lead,
                    }
                )
            )
        tasks = as_object(form.get("task"))
        for task in _items(tasks.get("update")) + _items(tasks.get("add")):
            if not _contacted_customer(task):
                continue
            events.append(
                build_event(
                    {
                        "event_id": f"{prefix}:task:{task.get('id')}:done",
                        "type": "agent_replied",
                        "occurred_at": unix_instant(task.get("last_modified"), "amoCRM task last_modified"),
                        "ticket_id": f"{prefix}:lead:{task.get('element_id')}",
                        "source": "amocrm",
                        "agent": f"amocrm-user:{task['responsible_user_id']}"
                        if task.get("responsible_user_id")
                        else None,
                        "amocrm": {k: v for k, v in task.items() if k not in ("text", "result")},
                    }
                )
            )
        for item in _items(as_object(form.get("unsorted")).get("add")):
            events.append(self._unsorted(prefix, item, context))
        for message in _items(as_object(form.get("message")).get("add")):
            incoming = message.get("type") == "incoming"
            contact = message.get("contact_id")
            text = message.get("text")
            events.append(
                build_event(
                    {
                        "event_id": f"{prefix}:message:{message.get('id')}",
                        "type": "contact_received" if incoming else "agent_replied",
                        "occurred_at": unix_instant(message.get("created_at"), "amoCRM created_at"),
                        "ticket_id": f"{prefix}:talk:{message.get('talk_id') or message.get('chat_id')}",
                        "source": "amocrm",
                        "channel": _ORIGIN_CHANNELS.get(str(message.get("origin")), "chat"),
                        "customer_id": context.pii.account("amocrm", str(contact)) if contact else None,
                        "text": context.pii.scrub(str(text)) if incoming and text else None,
                        "agent": f"amocrm-user:{as_object(message.get('author')).get('id')}"
                        if not incoming
                        else None,
                        "amocrm": {k: v for k, v in message.items() if k != "text"},
                    }
                )
            )
        if not events and _only_ignored(form):
            raise NotAContact("amoCRM notes, tasks or contact updates (not a customer's contact)")
        return events

    @staticmethod
    def _unsorted(prefix: str, item: dict[str, Any], context: AdapterContext) -> ContactEvent:
        source_data = as_object(item.get("source_data"))
        fields = source_data.get("data")
        entries = fields if isinstance(fields, list) else list(as_object(fields).values())
        lines = []
        for entry in (as_object(e) for e in entries):
            if entry.get("value") not in (None, ""):
                label = entry.get("name") or entry.get("id")
                lines.append(f"{label}: {entry['value']}" if label else str(entry["value"]))
            elif entry.get("text") not in (None, ""):
                lines.append(str(entry["text"]))
        if not lines and source_data.get("last_message_text"):
            lines.append(str(source_data["last_message_text"]))
        leads_proposed = _items(as_object(item.get("data")).get("leads"))
        subject = (leads_proposed[0].get("name") if leads_proposed else None) or source_data.get("form_name")
        client = as_object(source_data.get("client"))
        known = [str(client["name"])] if client.get("name") else []
        return build_event(
            {
                "event_id": f"{prefix}:unsorted:{item.get('uid')}",
                "type": "contact_received",
                "occurred_at": unix_instant(item.get("created_at"), "amoCRM created_at"),
                "ticket_id": f"{prefix}:unsorted:{item.get('uid')}",
                "source": "amocrm",
                "channel": _chat_channel(source_data)
                or _CATEGORY_CHANNELS.get(str(item.get("category")), "other"),
                "subject": context.pii.scrub(str(subject), known)[:1024] if subject else None,
                "text": context.pii.scrub("\n".join(lines), known) if lines else None,
                "amocrm": item,
            }
        )


_IGNORED_ENTITIES: Final = frozenset({"task", "contacts", "companies", "customers", "catalogs", "talk"})
_CONTACT_TASKS: Final = frozenset({"1", "3"})
"""amoCRM's task types that reach the customer: 1 call (Звонок), 3 letter (Письмо)."""


def _contacted_customer(task: dict[str, Any]) -> bool:
    """A completed call or letter task on a lead: the agent answered the customer."""
    return (
        str(task.get("status")) == "1"
        and str(task.get("element_type")) == "2"
        and str(task.get("task_type")) in _CONTACT_TASKS
        and bool(task.get("element_id"))
    )


def _only_ignored(form: dict[str, Any]) -> bool:
    """Nothing but notes, tasks and contact/company updates (and the account block)."""
    keys = set(form) - {"account"}
    leads = as_object(form.get("leads"))
    return bool(keys) and all(
        key in _IGNORED_ENTITIES or (key == "leads" and set(leads) <= {"note", "update"}) for key in keys
    )


def _chat_channel(source_data: dict[str, Any]) -> str | None:
    """The messenger a chat came from, as amoCRM names its source."""
    for raw in (
        source_data.get("source"),
        source_data.get("source_name"),
        as_object(source_data.get("origin")).get("type"),
    ):
        if raw:
            name = str(raw).strip().lower()
            for origin, channel in _ORIGIN_CHANNELS.items():
                if origin in name:
                    return channel
    return None
