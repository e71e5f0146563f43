"""Zendesk webhooks for ticket events (event-subscribed webhooks, `zendesk_event_version` 2022-11-06).

Shape from developer.zendesk.com, "Webhook event types" / "Ticket events": top level `type`
(`zen:event-type:ticket.created`, `...comment_added`, `...status_changed`, `...priority_changed`,
`...agent_assignment_changed`, `...group_assignment_changed`, ...), `id`, `time`, `subject`
(`zen:ticket:<id>`), `detail` (the ticket now: id, status, priority, requester_id, subject,
description, tags, via.channel, created_at) and `event` (what changed: `current`/`previous`, or
`comment` with body, is_public and author). Signature: `X-Zendesk-Webhook-Signature` is
base64(HMAC-SHA256(secret, X-Zendesk-Webhook-Signature-Timestamp + raw body)).

Ticket events mapped: created, comment_added (end-user comment = contact, public agent comment = reply,
internal note = nothing), status_changed, priority_changed (raised = escalated, lowered = the new
priority on the unchanged status), agent and group assignment; spam, deletion and merge close the
ticket. Ignored (accepted, counted): user, organization and other non-ticket event types, and the ticket
events in `_UNWATCHED`. Any other body is dead-lettered as unmapped (a trigger of another shape loses no
ticket without a word).

Trigger webhooks carry whatever body the admin writes; configure this one (one trigger each for
"Ticket is created" -> ticket_created, a status change -> ticket_updated, "Comment is added" ->
comment_added, "Satisfaction is ... changed" -> satisfaction_rated with
`"satisfaction": "{{satisfaction.current_rating}}"` and `"satisfaction_comment":
"{{satisfaction.current_comment}}"`); it is signed the same way:

    {"zendesk_trigger": {"event": "comment_added", "ticket_id": "{{ticket.id}}",
      "status": "{{ticket.status}}", "priority": "{{ticket.priority}}", "via": "{{ticket.via}}",
      "requester_id": "{{ticket.requester.id}}", "subject": "{{ticket.title}}",
      "description": "{{ticket.description}}", "tags": "{{ticket.tags}}",
      "comment_id": "{{ticket.latest_comment.id}}", "comment_public": "{{ticket.latest_comment.is_public}}",
      "comment_author_id": "{{ticket.latest_comment.author.id}}",
      "comment_author_role": "{{ticket.latest_comment.author.role}}",
      "comment_body": "{{ticket.latest_comment.value}}",
      "updated_at": "{{ticket.updated_at_with_timestamp}}"}}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
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
)
from processors.priority import priority_raised
from schemas.event import ContactEvent

SIGNATURE_HEADER: Final = "x-zendesk-webhook-signature"
TIMESTAMP_HEADER: Final = "x-zendesk-webhook-signature-timestamp"
MAX_SIGNATURE_AGE_SECONDS: Final = 300
"""A signature timestamp further than this from the receiver's clock is refused (replay protection)."""
_EVENT_TYPE: Final = "zen:event-type:"
_PREFIX: Final = "zen:event-type:ticket."
_CLOSING: Final = frozenset({"marked_as_spam", "soft_deleted", "permanently_deleted", "merged"})
"""Ticket events after which nobody will answer the ticket: it leaves the SLA clocks as closed."""
_UNWATCHED: Final = frozenset(
    {
        "tags_changed",
        "subject_changed",
        "description_changed",
        "custom_field_changed",
        "external_id_changed",
        "form_changed",
        "brand_id_changed",
        "organization_changed",
        "requester_changed",
        "submitter_changed",
        "ticket_type_changed",
        "email_ccs_changed",
        "followers_changed",
        "comment_made_private",
        "problem_link_changed",
        "attachment_linked_to_comment",
        "attachment_redacted_from_comment",
        "comment_redacted",
        "task_due_at_changed",
        "undeleted",
    }
)
"""Documented ticket events that change nothing a detector reads: accepted and ignored."""

STATUSES: Final = {
    "new": "new",
    "open": "in_progress",
    "pending": "waiting_customer",
    "hold": "in_progress",
    "onhold": "in_progress",
    "solved": "resolved",
    "closed": "closed",
}
PRIORITIES: Final = {"urgent": "p1", "high": "p2", "normal": "p3", "low": "p4"}
SATISFACTION: Final = {"good": 5, "bad": 1, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
"""Zendesk's satisfaction is good or bad (5 and 1 on our scale); the newer CSAT surveys rate 1-5."""
_TRIGGER_EVENTS: Final = ("ticket_created", "ticket_updated", "comment_added", "satisfaction_rated")
CHANNELS: Final = {
    "email": "email",
    "web": "web_form",
    "web_form": "web_form",
    "chat": "chat",
    "native_messaging": "chat",
    "mobile_sdk": "chat",
    "messaging": "chat",
    "whatsapp": "whatsapp",
    "telegram": "telegram",
    "voice": "phone",
    "phone": "phone",
    "facebook": "social",
    "twitter": "social",
    "instagram_dm": "social",
    "any_channel": "other",
    "api": "other",
}


class ZendeskAdapter:
    name = "zendesk"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        lowered = lower_headers(headers)
        signature, timestamp = lowered.get(SIGNATURE_HEADER), lowered.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise SignatureError("X-Zendesk-Webhook-Signature or its timestamp header is missing")
        expected = base64.b64encode(
            hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(signature.strip(), expected):
            raise SignatureError("X-Zendesk-Webhook-Signature does not match the body")
        try:
            signed_at = datetime.fromisoformat(timestamp.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SignatureError(
                f"X-Zendesk-Webhook-Signature-Timestamp {timestamp!r} is not a time"
            ) from None
        if signed_at.tzinfo is None:
            signed_at = signed_at.replace(tzinfo=UTC)
        skew = abs((now - signed_at).total_seconds())
        if skew > MAX_SIGNATURE_AGE_SECONDS:
            raise SignatureError(
                f"X-Zendesk-Webhook-Signature-Timestamp {timestamp} is {skew:.0f} s from now "
                f"(allowed: {MAX_SIGNATURE_AGE_SECONDS} s): a replayed or delayed webhook"
            )

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        payload = load_json_object(body)
        if isinstance(payload.get("zendesk_trigger"), dict):
            return self._trigger(payload["zendesk_trigger"], context)
        kind = str(payload.get("type", ""))
        if not kind.startswith(_PREFIX):
            if kind.startswith(_EVENT_TYPE):
                raise NotAContact(f"Zendesk {kind} event")  # user, organization, article...
            return []  # no shape we know (a trigger body of another form): dead-lettered as unmapped
        detail = payload.get("detail")
        if not isinstance(detail, dict) or "id" not in detail or "id" not in payload or "time" not in payload:
            raise AdapterError("Zendesk ticket event without detail.id, id or time")
        change = as_object(payload.get("event"))
        base = self._base(payload, detail, context)
        action = kind.removeprefix(_PREFIX)
        if action == "created":
            return [
                build_event(
                    {
                        **base,
                        "type": "contact_received",
                        "subject": _scrub(context, detail.get("subject")),
                        "text": _scrub(context, detail.get("description")),
                    }
                )
            ]
        if action == "comment_added":
            return self._comment(base, as_object(change.get("comment")), context)
        if action == "status_changed":
            return [build_event({**base, "type": "status_changed", "status": _status(change.get("current"))})]
        if action == "priority_changed":
            current = PRIORITIES.get(str(change.get("current", "")).lower())
            previous = PRIORITIES.get(str(change.get("previous", "")).lower())
            if priority_raised(previous, current):
                return [build_event({**base, "type": "escalated", "priority": current})]
            # Lowered: ours has no priority event; the ticket's unchanged status carries the new one.
            return [
                build_event(
                    {
                        **base,
                        "type": "status_changed",
                        "status": _status(detail.get("status")),
                        "priority": current,
                    }
                )
            ]
        if action in _CLOSING:
            return [build_event({**base, "type": "status_changed", "status": "closed"})]
        if action in _UNWATCHED:
            raise NotAContact(f"Zendesk ticket.{action} event (changes nothing ContactPulse watches)")
        if action == "agent_assignment_changed":
            agent = change.get("current")
            return [
                build_event(
                    {**base, "type": "assigned", "agent": f"zendesk-agent:{agent}" if agent else None}
                )
            ]
        if action == "group_assignment_changed":
            group = change.get("current")
            return [
                build_event({**base, "type": "assigned", "team": f"zendesk-group:{group}" if group else None})
            ]
        return []

    def _trigger(self, fields: dict[str, Any], context: AdapterContext) -> list[ContactEvent]:
        """A trigger webhook with the body of TRIGGER_TEMPLATE (placeholders rendered by Zendesk)."""
        event, ticket_id, when = fields.get("event"), fields.get("ticket_id"), fields.get("updated_at")
        if event not in _TRIGGER_EVENTS or not ticket_id or not when:
            raise AdapterError(
                f"zendesk_trigger needs event ({', '.join(_TRIGGER_EVENTS)}), ticket_id, updated_at"
            )
        requester = fields.get("requester_id")
        tags = str(fields.get("tags") or "").split()
        base: dict[str, Any] = {
            "occurred_at": when,
            "ticket_id": f"zendesk:{ticket_id}",
            "source": "zendesk",
            "channel": CHANNELS.get(str(fields.get("via", "")).strip().lower().replace(" ", "_"), "other"),
            "customer_id": context.pii.account("zendesk", str(requester)) if requester else None,
            "priority": PRIORITIES.get(str(fields.get("priority") or "").lower()),
            "zendesk_tags": tags or None,
        }
        stamp = f"{ticket_id}:{event}:{fields.get('comment_id') or fields.get('status')}:{when}"
        if event == "ticket_created":
            return [
                build_event(
                    {
                        **base,
                        "event_id": f"zendesk:trigger:{stamp}",
                        "type": "contact_received",
                        "subject": _scrub(context, fields.get("subject")),
                        "text": _scrub(context, fields.get("description")),
                    }
                )
            ]
        if event == "satisfaction_rated":
            rating = str(fields.get("satisfaction") or "").strip().lower()
            score = SATISFACTION.get(rating)
            if rating in ("offered", "unoffered"):
                raise NotAContact(f"Zendesk satisfaction survey {rating}, not rated")
            if score is None:
                raise AdapterError(f"Zendesk satisfaction rating {rating!r} is not good, bad or 1-5")
            return [
                build_event(
                    {
                        **base,
                        "event_id": f"zendesk:trigger:{ticket_id}:satisfaction:{rating}:{when}",
                        "type": "csat_submitted",
                        "score": score,
                        "text": _scrub(context, fields.get("satisfaction_comment")),
                    }
                )
            ]
        if event == "ticket_updated":
            status = str(fields.get("status") or "").lower().replace("-", "")
            return [
                build_event(
                    {
                        **base,
                        "event_id": f"zendesk:trigger:{stamp}",
                        "type": "status_changed",
                        "status": _status(status),
                    }
                )
            ]
        comment = {
            "id": fields.get("comment_id"),
            "body": fields.get("comment_body"),
            "is_public": str(fields.get("comment_public", "true")).lower() == "true",
            "author": {
                "id": fields.get("comment_author_id"),
                "is_staff": str(fields.get("comment_author_role", "")).lower() in ("agent", "admin"),
            },
        }
        return self._comment({**base, "event_id": f"zendesk:trigger:{stamp}"}, comment, context)

    @staticmethod
    def _base(payload: dict[str, Any], detail: dict[str, Any], context: AdapterContext) -> dict[str, Any]:
        via = as_object(detail.get("via"))
        requester = detail.get("requester_id")
        tags = detail.get("tags")
        return {
            "event_id": f"zendesk:{payload['id']}",
            "occurred_at": payload["time"],
            "ticket_id": f"zendesk:{detail['id']}",
            "source": "zendesk",
            "channel": CHANNELS.get(str(via.get("channel", "")).lower(), "other"),
            "customer_id": context.pii.account("zendesk", str(requester)) if requester else None,
            "priority": PRIORITIES.get(str(detail.get("priority") or "").lower()),
            "zendesk_tags": tags if isinstance(tags, list) and tags else None,
            "zendesk_status": detail.get("status"),
            "zendesk_custom_fields": detail.get("custom_fields") or None,
        }

    @staticmethod
    def _comment(
        base: dict[str, Any], comment: dict[str, Any], context: AdapterContext
    ) -> list[ContactEvent]:
        author = as_object(comment.get("author"))
        public = comment.get("is_public", True)
        if author.get("is_staff"):
            if not public:
                raise NotAContact("Zendesk internal note")  # not a reply to the customer
            return [
                build_event(
                    {
                        **base,
                        "type": "agent_replied",
                        "agent": f"zendesk-agent:{author.get('id')}",
                        "zendesk_comment_id": comment.get("id"),
                    }
                )
            ]
        return [
            build_event(
                {
                    **base,
                    "type": "contact_received",
                    "text": _scrub(context, comment.get("body")),
                    "zendesk_comment_id": comment.get("id"),
                }
            )
        ]


def _status(raw: Any) -> str:
    status = STATUSES.get(str(raw or "").lower())
    if status is None:
        raise AdapterError(f"unknown Zendesk status {raw!r}")
    return status


def _text(raw: Any) -> str | None:
    return str(raw) if raw not in (None, "") else None


def _scrub(context: AdapterContext, raw: Any) -> str | None:
    text = _text(raw)
    return context.pii.scrub(text) if text else None
