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
from urllib.parse import urlencode

import orjson

from processors.pii import Pseudonymizer
from schemas.event import EventType, Priority, TicketStatus

NATIVE_CHANNELS: Final = frozenset({"telegram", "web_form", "email", "phone", "chat", "whatsapp", "social"})
AMOCRM_ACCOUNT: Final = "sim"
"""The simulated amoCRM account's subdomain (ticket ids `amocrm:sim:talk:<id>`)."""


def native_source(channel: str, number: int) -> str:
    """The source that reports a simulated ticket of this channel (the adapter its payloads go to):
    e-mail is read from the mailbox or arrives through Freshdesk, web forms through Zendesk or Jira."""
    if channel == "email":
        return "freshdesk" if number % 3 == 0 else "email"
    if channel == "web_form":
        return "jira" if number % 2 == 0 else "zendesk"
    return {"telegram": "telegram", "phone": "pbx", "chat": "webchat", "whatsapp": "whatsapp"}.get(
        channel, "amocrm"
    )


_ZENDESK_PRIORITY: Final[dict[str, str]] = {
    Priority.P1: "URGENT",
    Priority.P2: "HIGH",
    Priority.P3: "NORMAL",
    Priority.P4: "LOW",
}


def _number(seed: str, digits: int) -> int:
    return int(hashlib.sha256(seed.encode()).hexdigest(), 16) % int(10**digits)


def native_ticket_id(source: str, prefix: str, number: int, pii: Pseudonymizer) -> tuple[str, str] | None:
    """(the ticket id the source's adapter derives for this simulated ticket, the source's own id it is
    derived from), or None: keep ours. Ids that name a person are keyed hashes, as the adapters make
    them; `pii` must hold the worker's key."""
    name = f"{prefix}-{number:06d}"
    if source == "telegram":
        chat = str(7_000_000_000 + _number(name, 9))
        return f"telegram:{pii.identifier('chat', chat)}", chat
    if source == "zendesk":
        return f"zendesk:{name}", name
    if source == "email":
        message_id = f"sim-{name}@client.example"
        return f"email:{pii.identifier('msgid', message_id)}", message_id
    if source == "webchat":
        return f"webchat:{name}", name
    if source == "freshdesk":
        number_there = str(10_000_000 + _number(name, 7))
        return f"freshdesk:{number_there}", number_there
    if source == "jira":
        key = f"SIM-{_number(name, 8)}"
        return f"jira:{key}", key
    if source == "whatsapp":
        phone = f"7926{_number(name, 7):07d}"
        return f"whatsapp:{pii.phone(phone)}", phone
    if source == "amocrm":
        talk = str(_number(name, 9))
        return f"amocrm:{AMOCRM_ACCOUNT}:talk:{talk}", talk
    return None


SUPPORT_DOMAIN: Final = "support.contactpulse.example"
"""The simulated team's e-mail domain: the demo configures it as CONTACTPULSE_EMAIL_SUPPORT_DOMAINS."""
_ZENDESK_STATUS: Final[dict[str, str]] = {
    TicketStatus.NEW: "NEW",
    TicketStatus.IN_PROGRESS: "OPEN",
    TicketStatus.WAITING_CUSTOMER: "PENDING",
    TicketStatus.RESOLVED: "SOLVED",
    TicketStatus.CLOSED: "CLOSED",
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
    source, kind = str(event["source"]), str(event["type"])
    if kind == EventType.CONTACT_RECEIVED and event.get("_first") and source in _FIRST:
        return NativePayload(source, source, _FIRST[source](event, at))
    renderer = _LATER.get(source)
    return renderer(event, kind, at) if renderer is not None else None


def _stamp(at: datetime) -> int:
    return int(at.timestamp())


def _telegram(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    chat = int(str(event["_source_id"]))
    # Message ids of a chat count up on both sides; the simulated time in seconds does too.
    message_id = _stamp(at) - 1_700_000_000
    if kind == EventType.CONTACT_RECEIVED:
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
    if kind == EventType.AGENT_REPLIED:
        sent = {"message_id": message_id, "telegram_chat_id": chat, "sent_at": at.isoformat()}
        return NativePayload(
            "outbound", "outbound/telegram", orjson.dumps({**sent, "agent": event.get("agent")})
        )
    return None


def _email(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    root = str(event["_source_id"])
    customer = f"{event.get('_customer') or 'anonymous'}@client.example"
    mail = EmailMessage()
    if kind == EventType.CONTACT_RECEIVED:
        mail["From"], mail["To"] = customer, f"support@{SUPPORT_DOMAIN}"
        mail["Message-ID"] = f"<sim-{_stamp(at)}-{_number(root, 6)}@client.example>"
    elif kind == EventType.AGENT_REPLIED:
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
    if kind in (EventType.CONTACT_RECEIVED, EventType.AGENT_REPLIED):
        staff = kind == EventType.AGENT_REPLIED
        comment = {
            "id": _stamp(at),
            "body": str(event.get("text") or "Ответ службы поддержки."),
            "is_public": True,
            "author": {"id": str(event.get("agent") if staff else customer), "is_staff": staff},
        }
        change: dict[str, Any] = {"comment": comment}
        action = "comment_added"
    elif kind == EventType.STATUS_CHANGED:
        status = _ZENDESK_STATUS[str(event["status"])]
        detail["status"], change, action = status, {"current": status, "previous": "OPEN"}, "status_changed"
    elif kind == EventType.ASSIGNED:
        change, action = {"current": str(event.get("agent")), "previous": None}, "agent_assignment_changed"
    elif kind == EventType.ESCALATED and priority != "URGENT":  # at the top already: Zendesk cannot say it
        raised = "URGENT" if priority == "HIGH" else "HIGH"
        detail["priority"], change, action = (
            raised,
            {"current": raised, "previous": priority},
            "priority_changed",
        )
    elif kind == EventType.CSAT_SUBMITTED:
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
    if kind == EventType.AGENT_REPLIED:  # the call back
        call |= {"direction": "outbound", "status": "answered", "caller": "+74950000000", "callee": number}
        call |= {"answered_at": at.isoformat(), "agent": str(event.get("agent") or "")}
    elif kind == EventType.CONTACT_RECEIVED:  # the customer calls again and nobody picks up
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
    if kind == EventType.CONTACT_RECEIVED:
        callback |= {"event": "visitor_message", "message_id": f"v-{_stamp(at)}", "text": event.get("text")}
    elif kind == EventType.AGENT_REPLIED:
        callback |= {"event": "agent_message", "message_id": f"a-{_stamp(at)}", "agent": agent}
    elif kind == EventType.STATUS_CHANGED and event.get("status") == TicketStatus.RESOLVED:
        callback |= {"event": "chat_finished"}
    elif kind == EventType.CSAT_SUBMITTED:
        callback |= {"event": "chat_rated", "rating": event["score"]}
    elif kind in (EventType.ASSIGNED, EventType.ESCALATED):
        callback |= {"event": "chat_transferred", "group": event.get("team"), "agent": agent}
        callback["escalated"] = kind == EventType.ESCALATED
    else:
        return None
    return NativePayload("webchat", "webchat", orjson.dumps(callback))


def _first_telegram(event: dict[str, Any], at: datetime) -> bytes:
    chat, unix = int(str(event["_source_id"])), _stamp(at)
    sender = {"id": chat, "is_bot": False, "first_name": str(event.get("customer_id") or "")}
    message = {"message_id": 1, "date": unix, "chat": {"id": chat, "type": "private"}, "from": sender}
    return orjson.dumps({"update_id": unix, "message": {**message, "text": str(event.get("text") or "")}})


def _first_zendesk(event: dict[str, Any], at: datetime) -> bytes:
    ticket = str(event["_source_id"])
    detail = {
        "id": ticket,
        "status": "NEW",
        "priority": _ZENDESK_PRIORITY.get(str(event.get("priority")), None),
        "requester_id": str(event.get("customer_id") or "anonymous"),
        "subject": event.get("subject"),
        "description": str(event.get("text") or ""),
        "via": {"channel": "web_form"},
    }
    envelope = {"id": f"sim-zendesk:{ticket}", "time": at.isoformat(), "subject": f"zen:ticket:{ticket}"}
    return orjson.dumps({**envelope, "type": "zen:event-type:ticket.created", "detail": detail})


def _first_email(event: dict[str, Any], at: datetime) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"{event.get('customer_id') or 'anonymous'}@client.example"
    mail["To"] = f"support@{SUPPORT_DOMAIN}"
    mail["Subject"] = str(event.get("subject") or "Обращение")
    mail["Date"] = format_datetime(at)
    mail["Message-ID"] = f"<{event['_source_id']}>"
    mail.set_content(str(event.get("text") or "") or "(без текста)")
    return mail.as_bytes()


def _first_pbx(event: dict[str, Any], at: datetime) -> bytes:
    customer = str(event.get("customer_id") or "anonymous")
    call: dict[str, Any] = {
        "call_id": f"sim-{event['ticket_id']}",
        "direction": "inbound",
        "status": "missed",
    }
    call |= {"started_at": at.isoformat(), "caller": f"+7916{_number(customer, 7):07d}"}
    call |= {"callee": "+74950000000", "ticket_id": str(event["ticket_id"]), "transcript": event.get("text")}
    return orjson.dumps(call)


def _first_webchat(event: dict[str, Any], at: datetime) -> bytes:
    callback: dict[str, Any] = {
        "event": "visitor_message",
        "chat_id": str(event["_source_id"]),
        "message_id": "m-1",
    }
    callback |= {"timestamp": at.isoformat(), "visitor": {"id": event.get("customer_id")}}
    return orjson.dumps({**callback, "text": event.get("text")})


def _first_freshdesk(event: dict[str, Any], at: datetime) -> bytes:
    return _freshdesk_hook(event, at, "{ticket_action:created}", ticket_description=event.get("text"))


def _first_jira(event: dict[str, Any], at: datetime) -> bytes:
    body = {"timestamp": int(at.timestamp() * 1000), "webhookEvent": "jira:issue_created"}
    return orjson.dumps({**body, "issue": _jira_issue(event, at, "Waiting for support", "new")})


def _first_whatsapp(event: dict[str, Any], at: datetime) -> bytes:
    return _whatsapp_message(event, at, f"wamid.SIM{_stamp(at)}{_number(str(event['_source_id']), 6)}")


def _first_amocrm(event: dict[str, Any], at: datetime) -> bytes:
    return _amocrm_message(event, at, "incoming")


_FIRST: Final = {
    "telegram": _first_telegram,
    "zendesk": _first_zendesk,
    "email": _first_email,
    "pbx": _first_pbx,
    "webchat": _first_webchat,
    "freshdesk": _first_freshdesk,
    "jira": _first_jira,
    "whatsapp": _first_whatsapp,
    "amocrm": _first_amocrm,
}

_FRESHDESK_STATUS: Final[dict[str, str]] = {
    TicketStatus.IN_PROGRESS: "2",
    TicketStatus.WAITING_CUSTOMER: "6",
    TicketStatus.RESOLVED: "4",
    TicketStatus.CLOSED: "5",
}
_FRESHDESK_PRIORITY: Final[dict[str, str]] = {
    Priority.P1: "Urgent",
    Priority.P2: "High",
    Priority.P3: "Medium",
    Priority.P4: "Low",
}
_FRESHDESK_RATING: Final = {5: "103", 4: "101", 3: "100", 2: "-101", 1: "-103"}
_JIRA_STATUS: Final[dict[str, tuple[str, str]]] = {
    TicketStatus.IN_PROGRESS: ("In Progress", "indeterminate"),
    TicketStatus.WAITING_CUSTOMER: ("Waiting for customer", "indeterminate"),
    TicketStatus.RESOLVED: ("Resolved", "done"),
    TicketStatus.CLOSED: ("Closed", "done"),
}
_JIRA_PRIORITY: Final[dict[str, str]] = {
    Priority.P1: "Highest",
    Priority.P2: "High",
    Priority.P3: "Medium",
    Priority.P4: "Low",
}


def _freshdesk_hook(event: dict[str, Any], at: datetime, triggered: str, **more: Any) -> bytes:
    fields = {
        "triggered_event": triggered,
        "ticket_id": str(event["_source_id"]),
        "ticket_subject": event.get("subject") if event.get("_first") else None,
        "ticket_source": "Email",
        "ticket_priority": _FRESHDESK_PRIORITY.get(str(event.get("_priority")), "Low"),
        "ticket_requester_email": f"{event.get('_customer') or event.get('customer_id')}@client.example",
        "ticket_updated_at": at.isoformat(),
        **more,
    }
    return orjson.dumps({"freshdesk_webhook": {k: v for k, v in fields.items() if v is not None}})


def _freshdesk(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    agent = f"{event.get('agent') or 'agent'}@{SUPPORT_DOMAIN}"
    if kind == EventType.CONTACT_RECEIVED:
        body = _freshdesk_hook(
            event, at, "{reply:sent}", actor="requester", ticket_latest_public_comment=event.get("text")
        )
    elif kind == EventType.AGENT_REPLIED:
        body = _freshdesk_hook(event, at, "{reply:sent}", ticket_agent_email=agent)
    elif kind == EventType.STATUS_CHANGED and str(event.get("status")) in _FRESHDESK_STATUS:
        body = _freshdesk_hook(
            event, at, f"{{status:{{from:2,to:{_FRESHDESK_STATUS[str(event['status'])]}}}}}"
        )
    elif kind == EventType.ASSIGNED:
        body = _freshdesk_hook(event, at, "{responder_id:{from:,to:7}}", ticket_agent_email=agent)
    elif kind == EventType.ESCALATED:
        body = _freshdesk_hook(event, at, "{priority:{from:1,to:4}}", ticket_priority="Urgent")
    elif kind == EventType.CSAT_SUBMITTED:
        rating = _FRESHDESK_RATING[int(event["score"])]
        body = _freshdesk_hook(event, at, "{customer_feedback:received}", ticket_satisfaction_rating=rating)
    else:
        return None
    return NativePayload("freshdesk", "freshdesk", body)


def _jira_issue(event: dict[str, Any], at: datetime, status: str, category: str) -> dict[str, Any]:
    reporter = {"accountId": f"qm:{event.get('_customer')}", "accountType": "customer"}
    fields = {
        "summary": event.get("subject") or "Обращение",
        "description": event.get("text") if event.get("_first") else None,
        "created": at.strftime("%Y-%m-%dT%H:%M:%S.000%z"),
        "priority": {"name": _jira_priority_name(event)},
        "status": {"name": status, "statusCategory": {"key": category}},
        "reporter": reporter,
    }
    return {"id": str(event["_source_id"]), "key": str(event["_source_id"]), "fields": fields}


def _jira(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    millis, stamp = int(at.timestamp() * 1000), at.strftime("%Y-%m-%dT%H:%M:%S.000%z")
    issue = _jira_issue(event, at, "In Progress", "indeterminate")
    if kind in (EventType.CONTACT_RECEIVED, EventType.AGENT_REPLIED):
        author = (
            issue["fields"]["reporter"]
            if kind == EventType.CONTACT_RECEIVED
            else {
                "accountId": f"agent:{event.get('agent')}",
                "accountType": "atlassian",
            }
        )
        text = str(event.get("text") or "Ответ службы поддержки.")
        comment = {"id": f"c{millis}", "author": author, "body": text, "created": stamp, "jsdPublic": True}
        body = {"timestamp": millis, "webhookEvent": "comment_created", "issue": issue, "comment": comment}
        return NativePayload("jira", "jira", orjson.dumps(body))
    if kind == EventType.STATUS_CHANGED and str(event.get("status")) in _JIRA_STATUS:
        name, category = _JIRA_STATUS[str(event["status"])]
        issue = _jira_issue(event, at, name, category)
        items = [{"field": "status", "toString": name}]
    # An escalation raises the priority to Highest (one already there cannot be told in Jira).
    elif kind == EventType.ESCALATED and _jira_priority_name(event) != "Highest":
        issue["fields"]["priority"] = {"name": "Highest"}
        items = [{"field": "priority", "fromString": _jira_priority_name(event), "toString": "Highest"}]
    elif kind == EventType.ASSIGNED:
        issue["fields"]["assignee"] = {"accountId": f"agent:{event.get('agent')}"}
        items = [{"field": "assignee", "toString": str(event.get("agent"))}]
    elif kind == EventType.CSAT_SUBMITTED:
        issue["fields"]["customfield_10060"] = {"rating": int(event["score"])}
        items = [{"field": "Satisfaction", "toString": str(event["score"])}]
    else:
        return None
    changelog = {"id": f"cl{millis}", "items": items}
    body = {"timestamp": millis, "webhookEvent": "jira:issue_updated", "issue": issue, "changelog": changelog}
    return NativePayload("jira", "jira", orjson.dumps(body))


def _jira_priority_name(event: dict[str, Any]) -> str:
    return _JIRA_PRIORITY.get(str(event.get("_priority")), "Medium")


def _whatsapp_message(event: dict[str, Any], at: datetime, wamid: str) -> bytes:
    phone = str(event["_source_id"])
    message = {"from": phone, "id": wamid, "timestamp": str(_stamp(at)), "type": "text"}
    value = {
        "messaging_product": "whatsapp",
        "messages": [{**message, "text": {"body": event.get("text") or ""}}],
    }
    change = {"field": "messages", "value": value}
    return orjson.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "sim", "changes": [change]}]}
    )


def _whatsapp(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    wamid = f"wamid.SIM{_stamp(at)}{_number(str(event['_source_id']), 6)}"
    if kind == EventType.CONTACT_RECEIVED:
        return NativePayload("whatsapp", "whatsapp", _whatsapp_message(event, at, wamid))
    if kind == EventType.AGENT_REPLIED:
        sent = {"message_id": wamid + "R", "whatsapp_to": str(event["_source_id"]), "sent_at": at.isoformat()}
        return NativePayload(
            "outbound", "outbound/whatsapp", orjson.dumps({**sent, "agent": event.get("agent")})
        )
    return None


def _amocrm_message(event: dict[str, Any], at: datetime, direction: str) -> bytes:
    talk, unix = str(event["_source_id"]), _stamp(at)
    incoming = direction == "incoming"
    message = [
        ("id", f"{talk}-{unix}-{direction}"),
        ("talk_id", talk),
        ("contact_id", str(_number(str(event.get("_customer") or event.get("customer_id")), 7))),
        ("type", direction),
        ("created_at", str(unix)),
        ("origin", "instagram"),
        ("text", str(event.get("text") or "") if incoming else "Ответ службы поддержки."),
    ]
    if not incoming:
        # The key `message[add][0][author][id]`: the outgoing message's amoCRM user.
        message.append(("author][id", str(_number(str(event.get("agent")), 6))))
    pairs = [(f"message[add][0][{key}]", value) for key, value in message]
    return urlencode([*pairs, ("account[subdomain]", AMOCRM_ACCOUNT), ("account[id]", "1")]).encode()


def _amocrm(event: dict[str, Any], kind: str, at: datetime) -> NativePayload | None:
    if kind in (EventType.CONTACT_RECEIVED, EventType.AGENT_REPLIED):
        direction = "incoming" if kind == EventType.CONTACT_RECEIVED else "outgoing"
        return NativePayload("amocrm", "amocrm", _amocrm_message(event, at, direction))
    return None


_LATER: Final = {
    "telegram": _telegram,
    "email": _email,
    "zendesk": _zendesk,
    "pbx": _pbx,
    "webchat": _webchat,
    "freshdesk": _freshdesk,
    "jira": _jira,
    "whatsapp": _whatsapp,
    "amocrm": _amocrm,
}
