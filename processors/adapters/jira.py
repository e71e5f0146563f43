"""Jira Service Management webhooks (Jira Cloud "System > WebHooks", events: issue created/updated/deleted,
comment created).

Shape from developer.atlassian.com, "Webhooks": `webhookEvent` (`jira:issue_created`,
`jira:issue_updated`, `jira:issue_deleted`, `comment_created`, ...), `timestamp` (epoch milliseconds),
`issue` (`id`, `key`, `fields`: `summary`, `description` (text, or Atlassian Document Format in
newer sites), `status` (`name`, `statusCategory.key` new | indeterminate | done), `priority.name`,
`reporter` and `assignee` (`accountId`, `emailAddress`, `accountType`: `customer` for portal
customers), `created`), `changelog` (`id`, `items[]` of `field`, `fromString`, `toString`) and
`comment` (`id`, `author`, `body`, `created`, `jsdPublic`: false for an internal comment).
Signed, when the webhook has a secret, like GitHub's: `X-Hub-Signature: sha256=<hex HMAC-SHA256>`
of the body (`CONTACTPULSE_JIRA_WEBHOOK_SECRET`); else `CONTACTPULSE_JIRA_TOKEN` in the URL.

Events:
- issue created -> contact_received (summary as subject, description as text; the issue key names
  the ticket, `jira:SUP-42`, so links and the helpdesk agree);
- a public comment by an agent -> agent_replied; by the customer (the reporter, or an account of type
  `customer`) -> contact_received; an internal comment (`jsdPublic: false`) -> nothing (not a reply);
- changelog `status` -> status_changed (JSM's statuses by name: "Waiting for customer" pauses the
  clock; others by status category: done = resolved); `priority` raised -> escalated; `assignee` ->
  assigned; a `Satisfaction` change -> csat_submitted (JSM rates 1-5);
- issue deleted -> status_changed closed.
SLA fields (any field holding JSM's `ongoingCycle`/`completedCycles`) are kept in `extra.jira_sla`
by field id: whether breached and the breach time JSM computed. Ignored (accepted, counted): the other
webhook events Jira documents (users, projects, worklogs, sprints, boards, versions, links, attachments,
comment edits and deletions) and changelogs that touch no field above.
"""

from __future__ import annotations

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
    csat_score,
    load_json_object,
    lower_headers,
)
from processors.priority import priority_raised
from schemas.event import ContactEvent

SIGNATURE_HEADER: Final = "x-hub-signature"
PRIORITIES: Final = {
    "highest": "p1",
    "blocker": "p1",
    "high": "p2",
    "medium": "p3",
    "low": "p4",
    "lowest": "p4",
}
STATUS_NAMES: Final = {
    "waiting for customer": "waiting_customer",
    "pending": "in_progress",
    "waiting for support": "in_progress",
    "in progress": "in_progress",
    "escalated": "in_progress",
    "open": "new",
    "resolved": "resolved",
    "done": "resolved",
    "closed": "closed",
    "canceled": "closed",
    "cancelled": "closed",
    "declined": "closed",
}
STATUS_CATEGORIES: Final = {"new": "new", "indeterminate": "in_progress", "done": "resolved"}
_IGNORED_PREFIXES: Final = (
    "user_",
    "project_",
    "worklog_",
    "sprint_",
    "board_",
    "jira:version_",
    "issuelink_",
    "attachment_",
    "option_",
    "comment_updated",
    "comment_deleted",
)


class JiraAdapter:
    name = "jira"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        given = lower_headers(headers).get(SIGNATURE_HEADER, "").strip().lower()
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, expected):
            raise SignatureError("X-Hub-Signature is missing or does not match the body")

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        payload = load_json_object(body)
        kind = str(payload.get("webhookEvent") or "")
        if not kind:
            return []  # no Jira webhook shape we know: dead-lettered as unmapped
        if kind.startswith(_IGNORED_PREFIXES):
            raise NotAContact(f"Jira {kind} event")
        issue = as_object(payload.get("issue"))
        fields = as_object(issue.get("fields"))
        key = issue.get("key")
        if not key:
            raise AdapterError(f"Jira {kind} without issue.key")
        reporter = as_object(fields.get("reporter"))
        base: dict[str, Any] = {
            "ticket_id": f"jira:{key}",
            "source": "jira",
            "channel": "other",
            "customer_id": _person(reporter, context),
            "priority": _priority(as_object(fields.get("priority")).get("name")),
            "jira_sla": _sla_fields(fields) or None,
        }
        at = _millis(payload.get("timestamp"))
        if kind == "jira:issue_created":
            return [
                build_event(
                    {
                        **base,
                        "event_id": f"jira:{key}:created",
                        "type": "contact_received",
                        "occurred_at": _instant(fields.get("created")) or at,
                        "subject": _scrub(context, fields.get("summary"), reporter),
                        "text": _scrub(context, _plain(fields.get("description")), reporter),
                    }
                )
            ]
        if kind == "comment_created":
            return self._comment(base, as_object(payload.get("comment")), reporter, at, context)
        if kind == "jira:issue_deleted":
            return [
                build_event(
                    {**base, "event_id": f"jira:{key}:deleted", "type": "status_changed", "status": "closed"}
                )
            ]
        if kind == "jira:issue_updated":
            return self._changes(base, payload, fields, str(key), at, context)
        return []

    @staticmethod
    def _comment(
        base: dict[str, Any],
        comment: dict[str, Any],
        reporter: dict[str, Any],
        at: str | None,
        context: AdapterContext,
    ) -> list[ContactEvent]:
        if "id" not in comment:
            raise AdapterError("Jira comment_created without comment.id")
        if comment.get("jsdPublic") is False:
            raise NotAContact("Jira internal comment (not a reply to the customer)")
        author = as_object(comment.get("author"))
        by_customer = author.get("accountType") == "customer" or (
            author.get("accountId") is not None and author.get("accountId") == reporter.get("accountId")
        )
        event_id = f"{base['ticket_id']}:comment:{comment['id']}"
        when = _instant(comment.get("created")) or at
        if by_customer:
            return [
                build_event(
                    {
                        **base,
                        "event_id": event_id,
                        "type": "contact_received",
                        "occurred_at": when,
                        "text": _scrub(context, _plain(comment.get("body")), author),
                    }
                )
            ]
        return [
            build_event(
                {
                    **base,
                    "event_id": event_id,
                    "type": "agent_replied",
                    "occurred_at": when,
                    "agent": _person(author, context),
                }
            )
        ]

    @staticmethod
    def _changes(
        base: dict[str, Any],
        payload: dict[str, Any],
        fields: dict[str, Any],
        key: str,
        at: str | None,
        context: AdapterContext,
    ) -> list[ContactEvent]:
        changelog = as_object(payload.get("changelog"))
        stamp = changelog.get("id") or payload.get("timestamp")
        when = at or _instant(fields.get("updated"))
        events: list[ContactEvent] = []
        for item in changelog.get("items") or []:
            item = as_object(item)
            name = str(item.get("field") or "").lower()
            event: dict[str, Any] | None = None
            if name == "status":
                category = as_object(as_object(fields.get("status")).get("statusCategory")).get("key")
                status = STATUS_NAMES.get(str(item.get("toString") or "").strip().lower()) or (
                    STATUS_CATEGORIES.get(str(category)) if category else None
                )
                if status is None:
                    raise AdapterError(f"Jira status {item.get('toString')!r} has no known category")
                event = {"type": "status_changed", "status": status}
            elif name == "priority":
                new, old = _priority(item.get("toString")), _priority(item.get("fromString"))
                if priority_raised(old, new):
                    event = {"type": "escalated", "priority": new}
            elif name == "assignee":
                assignee = as_object(fields.get("assignee"))
                event = {"type": "assigned", "agent": _person(assignee, context) if assignee else None}
            elif name == "satisfaction":
                score = _rating(fields, item)
                if score is not None:
                    event = {"type": "csat_submitted", "score": score}
            if event is not None:
                events.append(
                    build_event(
                        {**base, **event, "event_id": f"jira:{key}:{stamp}:{name}", "occurred_at": when}
                    )
                )
        if not events:
            raise NotAContact("Jira issue update that changes nothing ContactPulse watches")
        return events


def _person(person: dict[str, Any], context: AdapterContext) -> str | None:
    if person.get("emailAddress"):
        return context.pii.email(str(person["emailAddress"]))
    if person.get("accountId"):
        return context.pii.account("jira", str(person["accountId"]))
    return None


def _priority(raw: Any) -> str | None:
    return PRIORITIES.get(str(raw).strip().lower()) if raw else None


def _rating(fields: dict[str, Any], item: dict[str, Any]) -> int | None:
    """JSM's satisfaction field holds {"rating": 1..5}; the changelog item gives it as text."""
    for value in fields.values():
        if isinstance(value, dict) and isinstance(value.get("rating"), int):
            score = csat_score(value["rating"])
            if score is not None:
                return score
    return csat_score(item.get("toString"))


def _sla_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """JSM's SLA fields by id: breached or not, and the breach time of the running cycle."""
    slas: dict[str, Any] = {}
    for name, value in fields.items():
        if not isinstance(value, dict) or not ("ongoingCycle" in value or "completedCycles" in value):
            continue
        cycle = as_object(value.get("ongoingCycle"))
        completed = [as_object(c) for c in value.get("completedCycles") or []]
        breach = as_object(cycle.get("breachTime")).get("epochMillis")
        slas[name] = {
            "name": value.get("name"),
            "breached": bool(cycle.get("breached")) or any(c.get("breached") for c in completed),
            "breach_at": _millis(breach),
        }
    return slas


def _millis(raw: Any) -> str | None:
    try:
        return datetime.fromtimestamp(int(raw) / 1000, tz=UTC).isoformat() if raw is not None else None
    except (TypeError, ValueError, OverflowError):
        raise AdapterError(f"Jira timestamp {raw!r} is not epoch milliseconds") from None


def _instant(raw: Any) -> str | None:
    """Jira writes `2026-11-24T10:00:00.000+0300`: an offset without a colon."""
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw)).isoformat()  # Python 3.11 reads `+0300` too
    except ValueError:
        raise AdapterError(f"Jira time {raw!r} is not ISO 8601") from None


def _plain(raw: Any) -> str | None:
    """Text of a description or comment: a string, or the text nodes of an ADF document."""
    if raw is None or isinstance(raw, str):
        return raw or None
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text" and isinstance(node.get("text"), str):
                parts.append(node["text"])
            for child in node.get("content") or []:
                walk(child)
            if node.get("type") in ("paragraph", "heading", "listItem"):
                parts.append("\n")

    walk(raw)
    return "".join(parts).strip() or None


def _scrub(context: AdapterContext, raw: Any, person: dict[str, Any]) -> str | None:
    if raw in (None, ""):
        return None
    known = [str(person["displayName"])] if person.get("displayName") else []
    return context.pii.scrub(str(raw), known)
