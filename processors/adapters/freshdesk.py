"""Freshdesk automation webhooks (the "Trigger webhook" action of rules on ticket creation and updates).

Freshdesk posts `{"freshdesk_webhook": {...}}`: with "Simple" content, the `ticket_*` placeholders the
rule's author ticked; with "Advanced" content, whatever JSON they wrote. Either way the object is read by
field name, and what happened comes from Freshdesk's `triggered_event` placeholder, which renders as
`{ticket_action:created}`, `{status:{from:2,to:3}}`, `{priority:{from:1,to:4}}`, `{note_type:private}`,
and so on. The Advanced body to configure (one rule on ticket creation, one Observer rule on updates):

    {"freshdesk_webhook": {
       "triggered_event": "{{triggered_event}}",
       "ticket_id": "{{ticket.id}}",
       "ticket_subject": "{{ticket.subject}}",
       "ticket_description": "{{ticket.description}}",     HTML is turned into text
       "ticket_status": "{{ticket.status}}",               names or codes: 2 Open, 3 Pending, 4 Resolved,
       "ticket_priority": "{{ticket.priority}}",           5 Closed, 6/7 Waiting on customer/third party;
       "ticket_source": "{{ticket.source}}",               1 Low .. 4 Urgent; 1 Email, 2 Portal, 3 Phone,
       "ticket_requester_email": "{{ticket.requester.email}}",           7 Chat, 9 Feedback widget
       "ticket_requester_name": "{{ticket.requester.name}}",
       "ticket_agent_email": "{{ticket.agent.email}}",
       "ticket_group_name": "{{ticket.group.name}}",
       "ticket_satisfaction_rating": "{{ticket.satisfaction_survey_result}}",
       "ticket_tags": "{{ticket.tags}}",
       "ticket_updated_at": "{{ticket.updated_at}}"}}      ISO 8601; no offset: CONTACTPULSE_TIME_ZONE

Events, by `triggered_event`:
- `ticket_action:created` -> contact_received (subject, description as text);
- `reply:sent` (Observer "Reply is sent" performed by an agent) -> agent_replied; with
  `"actor": "requester"` in the body (a rule on the requester's replies) -> contact_received;
- `status` -> status_changed to the new status; `ticket_action:deleted|spam` -> status_changed closed;
- `priority` raised (Low < Medium < High < Urgent) -> escalated with the new priority;
- `responder_id|agent|agent_id` or `group_id|group` changed -> assigned (agent, group name as team);
- `customer_feedback` (Observer "Customer feedback is received") -> csat_submitted, the score from
  `ticket_satisfaction_rating`: Freshdesk's ratings 103/102/101/100/-101/-102/-103 (or their labels,
  or 1-5) on the 1-5 scale.
Documented events that change nothing a detector reads are accepted and ignored: notes
(`note_type`, public or private: a note is not a reply), a priority lowered, ticket type, time entries.
Any other `triggered_event` maps to nothing and is dead-lettered (`unmapped_payload`), never dropped.
Without a `triggered_event`, the older body's `"event": "ticket_created" | "ticket_updated"` is read.
A payload without a time of its own (`ticket_updated_at`) is stamped with its receive time.
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
    as_object,
    build_event,
    csat_score,
    load_json_object,
    local_instant,
    received_at,
)
from processors.adapters.email import html_to_text
from processors.priority import priority_raised
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
RATINGS: Final = {
    "103": 5,
    "extremely happy": 5,
    "awesome": 5,
    "102": 5,
    "very happy": 5,
    "101": 4,
    "happy": 4,
    "100": 3,
    "neutral": 3,
    "-101": 2,
    "unhappy": 2,
    "-102": 1,
    "very unhappy": 1,
    "-103": 1,
    "extremely unhappy": 1,
    "not good": 1,
}
_CHANGE: Final = re.compile(r"^\{\s*(\w+)\s*:\s*\{\s*from\s*:(.*?),\s*to\s*:(.*)\}\s*\}$", re.DOTALL)
_ACTION: Final = re.compile(r"^\{\s*(\w+)\s*:(.*)\}$", re.DOTALL)
_IGNORED: Final = frozenset({"note_type", "ticket_type", "time_entry", "time_sheet", "source", "tags"})
_ASSIGNMENT: Final = frozenset({"responder_id", "agent", "agent_id", "group_id", "group"})


def _code(table: Mapping[str, Any], raw: Any) -> Any:
    return table.get(str(raw).strip().lower()) if raw not in (None, "") else None


def _field(ticket: dict[str, Any], *names: str) -> Any:
    """The first non-empty of a field's names (Simple content prefixes `ticket_`, bodies vary)."""
    for name in names:
        value = ticket.get(name)
        if value not in (None, ""):
            return value
    return None


def parse_triggered_event(raw: str) -> tuple[str, str | None, str]:
    """`{status:{from:2,to:3}}` -> ("status", "2", "3"); `{ticket_action:created}` -> (.., None, ..)."""
    text = raw.strip()
    change = _CHANGE.match(text)
    if change:
        return change.group(1).lower(), change.group(2).strip(), change.group(3).strip()
    action = _ACTION.match(text)
    if action:
        return action.group(1).lower(), None, action.group(2).strip()
    raise AdapterError(f"triggered_event {raw[:80]!r} is not Freshdesk's {{property:value}} form")


class FreshdeskAdapter:
    name = "freshdesk"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        return None  # Freshdesk webhooks are not signed: CONTACTPULSE_FRESHDESK_TOKEN in the URL

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        ticket = as_object(load_json_object(body).get("freshdesk_webhook"))
        ticket_id = _field(ticket, "ticket_id", "id")
        if not ticket:
            raise AdapterError("not a Freshdesk webhook: no freshdesk_webhook object")
        if ticket_id is None:
            raise AdapterError("Freshdesk webhook without ticket_id")
        what = self._what(ticket)
        when = _field(ticket, "ticket_updated_at", "updated_at", "ticket_created_at", "created_at")
        occurred = local_instant(when, context, "ticket_updated_at") if when else received_at(headers)
        if occurred is None:
            raise AdapterError("Freshdesk webhook without ticket_updated_at, and no receive time recorded")
        email = _field(ticket, "ticket_requester_email", "requester_email")
        phone = _field(ticket, "ticket_requester_phone", "requester_phone")
        base = {
            "ticket_id": f"freshdesk:{ticket_id}",
            "source": "freshdesk",
            "channel": _code(SOURCES, _field(ticket, "ticket_source", "source")) or "other",
            "customer_id": context.pii.email(str(email))
            if email
            else context.pii.phone(str(phone))
            if phone
            else None,
            "priority": _code(PRIORITIES, _field(ticket, "ticket_priority", "priority")),
            "team": _field(ticket, "ticket_group_name", "group_name") or None,
            "freshdesk_tags": _field(ticket, "ticket_tags", "tags"),
            "occurred_at": occurred,
        }
        # The same delivery read twice gives the same id; Freshdesk gives events no id of its own.
        stamp = str(when or occurred)
        event = self._event(what, ticket, ticket_id, stamp, context)
        return [build_event({**base, **event})] if event else []

    @staticmethod
    def _what(ticket: dict[str, Any]) -> tuple[str, str | None, str]:
        triggered = _field(ticket, "triggered_event")
        if triggered is not None:
            return parse_triggered_event(str(triggered))
        legacy = ticket.get("event")
        if legacy == "ticket_created":
            return "ticket_action", None, "created"
        if legacy == "ticket_updated":
            return "status", None, str(_field(ticket, "ticket_status", "status") or "")
        raise AdapterError("Freshdesk webhook without triggered_event (add {{triggered_event}} to the body)")

    @staticmethod
    def _event(
        what: tuple[str, str | None, str],
        ticket: dict[str, Any],
        ticket_id: Any,
        stamp: str,
        context: AdapterContext,
    ) -> dict[str, Any] | None:
        prop, before, after = what
        key = f"freshdesk:{ticket_id}"
        known = [str(n) for n in (_field(ticket, "ticket_requester_name", "requester_name"),) if n]
        if prop == "ticket_action" and after == "created":
            description = _field(ticket, "ticket_description_text", "ticket_description", "description")
            subject = _field(ticket, "ticket_subject", "subject")
            return {
                "event_id": f"{key}:created",
                "type": "contact_received",
                "subject": context.pii.scrub(str(subject), known)[:1024] if subject else None,
                "text": context.pii.scrub(html_to_text(str(description)), known) if description else None,
            }
        if prop == "ticket_action" and after in ("deleted", "spam"):
            return {"event_id": f"{key}:{after}", "type": "status_changed", "status": "closed"}
        if prop.startswith("reply"):
            if str(ticket.get("actor", "agent")).lower() == "requester":
                comment = _field(ticket, "ticket_latest_public_comment", "latest_public_comment")
                return {
                    "event_id": f"{key}:customer-reply:{stamp}",
                    "type": "contact_received",
                    "text": context.pii.scrub(html_to_text(str(comment)), known) if comment else None,
                }
            agent = _field(ticket, "ticket_agent_email", "agent_email")
            return {
                "event_id": f"{key}:reply:{stamp}",
                "type": "agent_replied",
                "agent": context.pii.email(str(agent)) if agent else None,
            }
        if prop == "status":
            status = _code(STATUSES, after) or _code(STATUSES, _field(ticket, "ticket_status", "status"))
            if status is None:
                raise AdapterError(f"unknown Freshdesk status {after!r}")
            return {"event_id": f"{key}:status:{status}:{stamp}", "type": "status_changed", "status": status}
        if prop == "priority":
            old, new = _code(PRIORITIES, before), _code(PRIORITIES, after)
            if new is None:
                raise AdapterError(f"unknown Freshdesk priority {after!r}")
            if not priority_raised(old, new):
                raise NotAContact("Freshdesk priority kept or lowered")
            return {"event_id": f"{key}:priority:{new}:{stamp}", "type": "escalated", "priority": new}
        if prop in _ASSIGNMENT:
            agent = _field(ticket, "ticket_agent_email", "agent_email")
            return {
                "event_id": f"{key}:assigned:{prop}:{after}:{stamp}",
                "type": "assigned",
                "agent": context.pii.email(str(agent)) if agent else None,
            }
        if prop in ("customer_feedback", "satisfaction", "survey_result"):
            raw = str(_field(ticket, "ticket_satisfaction_rating", "satisfaction_rating") or after)
            rating = raw.strip().lower()
            score = RATINGS.get(rating) or csat_score(rating)
            if score is None:
                raise AdapterError(f"Freshdesk satisfaction rating {raw!r} is not one Freshdesk gives")
            return {"event_id": f"{key}:csat:{stamp}", "type": "csat_submitted", "score": score}
        if prop in _IGNORED:
            raise NotAContact(f"Freshdesk {prop} event (changes nothing ContactPulse watches)")
        return None  # an event we do not know: dead-lettered as unmapped, never dropped
