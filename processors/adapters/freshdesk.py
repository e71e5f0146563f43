"""Freshdesk automation webhooks ("Trigger webhook" action of a ticket automation rule).

Freshdesk sends whatever JSON the rule's author writes with placeholders; this is the body to configure
(one rule on ticket creation with "event": "ticket_created", one on updates with "ticket_updated"):

    {"freshdesk_webhook": {
       "event": "ticket_created",
       "ticket_id": "{{ticket.id}}",
       "ticket_subject": "{{ticket.subject}}",
       "ticket_description": "{{ticket.description_text}}",
       "ticket_status": "{{ticket.status}}",         names or codes: 2 Open, 3 Pending, 4 Resolved,
       "ticket_priority": "{{ticket.priority}}",     5 Closed, 6/7 Waiting on customer/third party;
       "ticket_source": "{{ticket.source}}",         1 Low, 2 Medium, 3 High, 4 Urgent; 1 Email, 2 Portal,
       "ticket_requester_email": "{{ticket.requester.email}}",        3 Phone, 7 Chat, 9 Feedback widget
       "ticket_requester_phone": "{{ticket.requester.phone}}",
       "ticket_agent_email": "{{ticket.agent.email}}",
       "ticket_group_name": "{{ticket.group.name}}",
       "ticket_tags": "{{ticket.tags}}",
       "ticket_updated_at": "{{ticket.updated_at}}"}}   ISO 8601; without offset: CONTACTPULSE_TIME_ZONE
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from processors.adapters.base import (
    AdapterContext,
    AdapterError,
    as_object,
    build_event,
    load_json_object,
    local_instant,
)
from schemas.event import ContactEvent

STATUSES: Final = {
    "2": "in_progress",
    "open": "in_progress",
    "3": "waiting_customer",
    "pending": "waiting_customer",
    "4": "resolved",
    "resolved": "resolved",
    "5": "closed",
    "closed": "closed",
    "6": "waiting_customer",
    "waiting on customer": "waiting_customer",
    "7": "in_progress",
    "waiting on third party": "in_progress",
}
PRIORITIES: Final = {
    "1": "p4",
    "low": "p4",
    "2": "p3",
    "medium": "p3",
    "3": "p2",
    "high": "p2",
    "4": "p1",
    "urgent": "p1",
}
SOURCES: Final = {
    "1": "email",
    "email": "email",
    "2": "web_form",
    "portal": "web_form",
    "3": "phone",
    "phone": "phone",
    "7": "chat",
    "chat": "chat",
    "9": "web_form",
    "feedback widget": "web_form",
    "10": "email",
    "outbound email": "email",
}


def _code(table: Mapping[str, str], raw: Any) -> str | None:
    return table.get(str(raw).strip().lower()) if raw not in (None, "") else None


class FreshdeskAdapter:
    name = "freshdesk"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        return None  # Freshdesk webhooks are not signed; use basic auth or a secret path behind a proxy

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        ticket = as_object(load_json_object(body).get("freshdesk_webhook"))
        event, ticket_id = ticket.get("event"), ticket.get("ticket_id")
        if event not in ("ticket_created", "ticket_updated") or not ticket_id:
            raise AdapterError("not a ContactPulse Freshdesk webhook: freshdesk_webhook.event/ticket_id")
        when = ticket.get("ticket_updated_at") or ticket.get("ticket_created_at")
        if not when:
            raise AdapterError("Freshdesk webhook without ticket_updated_at")
        occurred = local_instant(when, context, "ticket_updated_at")
        email, phone = ticket.get("ticket_requester_email"), ticket.get("ticket_requester_phone")
        customer = (
            context.pii.email(str(email)) if email else context.pii.phone(str(phone)) if phone else None
        )
        status = _code(STATUSES, ticket.get("ticket_status"))
        base = {
            "ticket_id": f"freshdesk:{ticket_id}",
            "source": "freshdesk",
            "channel": _code(SOURCES, ticket.get("ticket_source")) or "other",
            "customer_id": customer,
            "priority": _code(PRIORITIES, ticket.get("ticket_priority")),
            "team": ticket.get("ticket_group_name") or None,
            "freshdesk_tags": ticket.get("ticket_tags") or None,
        }
        if event == "ticket_created":
            description = ticket.get("ticket_description")
            return [
                build_event(
                    {
                        **base,
                        "event_id": f"freshdesk:{ticket_id}:created",
                        "type": "contact_received",
                        "occurred_at": occurred,
                        "subject": _scrub(context, ticket.get("ticket_subject")),
                        "text": _scrub(context, description),
                    }
                )
            ]
        if status is None:
            raise AdapterError(f"unknown Freshdesk status {ticket.get('ticket_status')!r}")
        return [
            build_event(
                {
                    **base,
                    "event_id": f"freshdesk:{ticket_id}:updated:{status}:{when}",
                    "type": "status_changed",
                    "occurred_at": occurred,
                    "status": status,
                }
            )
        ]


def _scrub(context: AdapterContext, raw: Any) -> str | None:
    return context.pii.scrub(str(raw)) if raw not in (None, "") else None
