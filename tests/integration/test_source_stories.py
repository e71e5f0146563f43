"""One ticket's whole story per source, told in that source's own payloads to the running worker on the
real broker: opened, answered, put on hold, answered by the customer, escalated, solved, rated 1, as far
as the source can say each. The alerts equal those `replay` gives for the equivalent normalized stream
(no false SLA alert, one `negative_csat` per rated ticket), and the ticket rows in ClickHouse show the
reply, the escalation and the rating."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from processors.adapters.outbound import signed_headers
from processors.classify import Classifier
from processors.pii import Pseudonymizer
from schemas.config import load_config
from schemas.event import ContactEvent
from schemas.settings import Settings
from simulation.traffic import MOSCOW
from sinks.clickhouse import connected
from stream.replay import replay
from stream.topics import ensure_topics
from tests.integration.conftest import WorkerProcess, consume_until_quiet, detector_judged, wait_for_metrics
from tests.integration.test_ingest import WHATSAPP_SECRET, whatsapp_message, whatsapp_signature

pytestmark = pytest.mark.integration

PII_KEY = "source-stories-test-key-0123"
PII = Pseudonymizer(PII_KEY.encode())
TOKEN, OUTBOUND_SECRET, TELEGRAM_SECRET = "story-token", "story-outbound", "story-tg"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=MOSCOW)  # a Monday, in business hours


@dataclass
class Step:
    at: datetime
    path: str
    body: bytes
    expected: list[dict[str, Any]]  # the normalized events it stands for
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Story:
    source: str
    ticket: str
    steps: list[Step]
    escalated: bool
    rated: bool
    resolved: bool


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def token() -> dict[str, str]:
    return {"X-ContactPulse-Token": TOKEN}


def ev(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "occurred_at": at.isoformat(), **fields}


def zendesk() -> Story:
    ticket, requester = "zendesk:9001", PII.account("zendesk", "555")
    common = {"ticket_id": ticket, "channel": "web_form", "customer_id": requester, "priority": "p3"}

    def event(
        action: str, at: datetime, change: dict[str, Any], status: str = "OPEN", prio: str = "NORMAL"
    ) -> bytes:
        detail = {
            "id": "9001",
            "status": status,
            "priority": prio,
            "requester_id": "555",
            "via": {"channel": "web_form"},
        }
        detail |= {
            "subject": "Не выгружаются отчёты",
            "description": "Отчёты за ноябрь не выгружаются в Excel",
        }
        return orjson.dumps(
            {
                "type": f"zen:event-type:ticket.{action}",
                "id": f"zd-{action}-{at:%H%M}",
                "time": at.isoformat(),
                "subject": "zen:ticket:9001",
                "detail": detail,
                "event": change,
            }
        )

    def comment(staff: bool, at: datetime, text: str) -> bytes:
        author = {"id": "77" if staff else "555", "is_staff": staff}
        return event(
            "comment_added",
            at,
            {"comment": {"id": at.minute, "body": text, "is_public": True, "author": author}},
        )

    rating = orjson.dumps(
        {
            "zendesk_trigger": {
                "event": "satisfaction_rated",
                "ticket_id": "9001",
                "requester_id": "555",
                "via": "web_form",
                "priority": "high",
                "satisfaction": "bad",
                "updated_at": minutes(90).isoformat(),
            }
        }
    )
    steps = [
        Step(
            minutes(0),
            "/ingest/zendesk",
            event("created", minutes(0), {}, "NEW"),
            [
                ev(
                    "contact_received",
                    minutes(0),
                    **common,
                    subject="Не выгружаются отчёты",
                    text="Отчёты за ноябрь не выгружаются в Excel",
                )
            ],
        ),
        Step(
            minutes(5),
            "/ingest/zendesk",
            comment(True, minutes(5), "Смотрим"),
            [ev("agent_replied", minutes(5), **common, agent="zendesk-agent:77")],
        ),
        Step(
            minutes(10),
            "/ingest/zendesk",
            event("status_changed", minutes(10), {"current": "PENDING"}, "PENDING"),
            [ev("status_changed", minutes(10), **common, status="waiting_customer")],
        ),
        Step(
            minutes(30),
            "/ingest/zendesk",
            comment(False, minutes(30), "Вот файл"),
            [ev("contact_received", minutes(30), **common, text="Вот файл")],
        ),
        Step(
            minutes(40),
            "/ingest/zendesk",
            event("priority_changed", minutes(40), {"current": "HIGH", "previous": "NORMAL"}, prio="HIGH"),
            [ev("escalated", minutes(40), **{**common, "priority": "p2"})],
        ),
        Step(
            minutes(60),
            "/ingest/zendesk",
            event("status_changed", minutes(60), {"current": "SOLVED"}, "SOLVED", "HIGH"),
            [ev("status_changed", minutes(60), **{**common, "priority": "p2"}, status="resolved")],
        ),
        Step(
            minutes(90),
            "/ingest/zendesk",
            rating,
            [ev("csat_submitted", minutes(90), **{**common, "priority": "p2"}, score=1)],
        ),
    ]
    for step in steps:
        step.headers = token()
    return Story("zendesk", ticket, steps, escalated=True, rated=True, resolved=True)


def freshdesk() -> Story:
    ticket = "freshdesk:4242"
    customer = PII.email("buh@client.example")
    common = {"ticket_id": ticket, "channel": "email", "customer_id": customer}

    def hook(at: datetime, triggered: str, **more: str) -> bytes:
        fields = {
            "triggered_event": triggered,
            "ticket_id": "4242",
            "ticket_source": "Email",
            "ticket_requester_email": "buh@client.example",
            "ticket_priority": "Low",
            "ticket_updated_at": at.strftime("%Y-%m-%dT%H:%M:%S"),
            **more,
        }
        return orjson.dumps({"freshdesk_webhook": fields})

    steps = [
        Step(
            minutes(1),
            "/ingest/freshdesk",
            hook(
                minutes(1),
                "{ticket_action:created}",
                ticket_subject="Счёт не пришёл",
                ticket_description="<div>Пришлите счёт за ноябрь</div>",
            ),
            [
                ev(
                    "contact_received",
                    minutes(1),
                    **common,
                    priority="p4",
                    subject="Счёт не пришёл",
                    text="Пришлите счёт за ноябрь",
                )
            ],
        ),
        Step(
            minutes(6),
            "/ingest/freshdesk",
            hook(minutes(6), "{reply:sent}", ticket_agent_email="anna@acme.example"),
            [ev("agent_replied", minutes(6), **common, priority="p4", agent=PII.email("anna@acme.example"))],
        ),
        Step(
            minutes(11),
            "/ingest/freshdesk",
            hook(minutes(11), "{status:{from:2,to:6}}"),
            [ev("status_changed", minutes(11), **common, priority="p4", status="waiting_customer")],
        ),
        Step(
            minutes(31),
            "/ingest/freshdesk",
            hook(
                minutes(31),
                "{reply:sent}",
                actor="requester",
                ticket_latest_public_comment="Реквизиты прежние",
            ),
            [ev("contact_received", minutes(31), **common, priority="p4", text="Реквизиты прежние")],
        ),
        Step(
            minutes(41),
            "/ingest/freshdesk",
            hook(minutes(41), "{priority:{from:1,to:4}}", ticket_priority="Urgent"),
            [ev("escalated", minutes(41), **common, priority="p1")],
        ),
        Step(
            minutes(61),
            "/ingest/freshdesk",
            hook(minutes(61), "{status:{from:2,to:4}}", ticket_priority="Urgent"),
            [ev("status_changed", minutes(61), **common, priority="p1", status="resolved")],
        ),
        Step(
            minutes(91),
            "/ingest/freshdesk",
            hook(
                minutes(91),
                "{customer_feedback:received}",
                ticket_priority="Urgent",
                ticket_satisfaction_rating="-103",
            ),
            [ev("csat_submitted", minutes(91), **common, priority="p1", score=1)],
        ),
    ]
    for step in steps:
        step.headers = token()
    return Story("freshdesk", ticket, steps, escalated=True, rated=True, resolved=True)


def jira() -> Story:
    ticket = "jira:SUP-7"
    customer = PII.email("irina@client.example")
    reporter = {"accountId": "qm:cust-1", "accountType": "customer", "emailAddress": "irina@client.example"}
    common = {"ticket_id": ticket, "channel": "other", "customer_id": customer}

    def issue(status: str, category: str, priority: str = "Medium") -> dict[str, Any]:
        return {
            "id": "10007",
            "key": "SUP-7",
            "fields": {
                "summary": "Не работает интеграция",
                "description": "Вебхуки не доходят",
                "created": minutes(2).strftime("%Y-%m-%dT%H:%M:%S.000%z"),
                "priority": {"name": priority},
                "status": {"name": status, "statusCategory": {"key": category}},
                "reporter": reporter,
            },
        }

    def updated(
        at: datetime,
        items: list[dict[str, Any]],
        status: str,
        category: str,
        prio: str = "Medium",
        **fields: Any,
    ) -> bytes:
        body = {
            "timestamp": int(at.timestamp() * 1000),
            "webhookEvent": "jira:issue_updated",
            "issue": issue(status, category, prio),
            "changelog": {"id": f"cl-{at:%H%M}", "items": items},
        }
        body["issue"]["fields"] |= fields
        return orjson.dumps(body)

    def comment(at: datetime, author: dict[str, Any], text: str) -> bytes:
        return orjson.dumps(
            {
                "timestamp": int(at.timestamp() * 1000),
                "webhookEvent": "comment_created",
                "issue": issue("Waiting for support", "new"),
                "comment": {
                    "id": f"c{at:%H%M}",
                    "author": author,
                    "body": text,
                    "created": at.strftime("%Y-%m-%dT%H:%M:%S.000%z"),
                    "jsdPublic": True,
                },
            }
        )

    agent = {"accountId": "agent-1", "accountType": "atlassian", "emailAddress": "boris@acme.example"}
    created = orjson.dumps(
        {
            "timestamp": int(minutes(2).timestamp() * 1000),
            "webhookEvent": "jira:issue_created",
            "issue": issue("Waiting for support", "new"),
        }
    )
    steps = [
        Step(
            minutes(2),
            "/ingest/jira",
            created,
            [
                ev(
                    "contact_received",
                    minutes(2),
                    **common,
                    priority="p3",
                    subject="Не работает интеграция",
                    text="Вебхуки не доходят",
                )
            ],
        ),
        Step(
            minutes(7),
            "/ingest/jira",
            comment(minutes(7), agent, "Проверяем"),
            [ev("agent_replied", minutes(7), **common, priority="p3", agent=PII.email("boris@acme.example"))],
        ),
        Step(
            minutes(12),
            "/ingest/jira",
            updated(
                minutes(12),
                [{"field": "status", "toString": "Waiting for customer"}],
                "Waiting for customer",
                "indeterminate",
            ),
            [ev("status_changed", minutes(12), **common, priority="p3", status="waiting_customer")],
        ),
        Step(
            minutes(32),
            "/ingest/jira",
            comment(minutes(32), reporter, "Логи приложил"),
            [ev("contact_received", minutes(32), **common, priority="p3", text="Логи приложил")],
        ),
        Step(
            minutes(42),
            "/ingest/jira",
            updated(
                minutes(42),
                [{"field": "priority", "fromString": "Medium", "toString": "Highest"}],
                "In Progress",
                "indeterminate",
                "Highest",
            ),
            [ev("escalated", minutes(42), **common, priority="p1")],
        ),
        Step(
            minutes(62),
            "/ingest/jira",
            updated(
                minutes(62), [{"field": "status", "toString": "Resolved"}], "Resolved", "done", "Highest"
            ),
            [ev("status_changed", minutes(62), **common, priority="p1", status="resolved")],
        ),
        Step(
            minutes(92),
            "/ingest/jira",
            updated(
                minutes(92),
                [{"field": "Satisfaction", "toString": "1"}],
                "Resolved",
                "done",
                "Highest",
                customfield_10060={"rating": 1},
            ),
            [ev("csat_submitted", minutes(92), **common, priority="p1", score=1)],
        ),
    ]
    for step in steps:
        step.headers = token()
    return Story("jira", ticket, steps, escalated=True, rated=True, resolved=True)


def webchat() -> Story:
    ticket = "webchat:ch-3"
    customer = PII.account("webchat", "v-3")
    common = {"ticket_id": ticket, "channel": "chat", "customer_id": customer}

    def callback(at: datetime, event: str, **more: Any) -> bytes:
        return orjson.dumps(
            {"event": event, "chat_id": "ch-3", "timestamp": at.isoformat(), "visitor": {"id": "v-3"}, **more}
        )

    steps = [
        Step(
            minutes(3),
            "/ingest/webchat",
            callback(minutes(3), "visitor_message", message_id="m1", text="Не могу войти"),
            [ev("contact_received", minutes(3), **common, text="Не могу войти")],
        ),
        Step(
            minutes(4),
            "/ingest/webchat",
            callback(minutes(4), "agent_message", message_id="m2", agent={"id": "op-1"}),
            [ev("agent_replied", minutes(4), **common, agent="webchat-agent:op-1")],
        ),
        Step(
            minutes(8),
            "/ingest/webchat",
            callback(minutes(8), "chat_transferred", group="L2", escalated=True, agent={"id": "op-9"}),
            [ev("escalated", minutes(8), **common, team="L2", agent="webchat-agent:op-9")],
        ),
        Step(
            minutes(20),
            "/ingest/webchat",
            callback(minutes(20), "chat_finished"),
            [ev("status_changed", minutes(20), **common, status="resolved")],
        ),
        Step(
            minutes(21),
            "/ingest/webchat",
            callback(minutes(21), "chat_rated", rating=1),
            [ev("csat_submitted", minutes(21), **common, score=1)],
        ),
    ]
    for step in steps:
        step.headers = token()
    return Story("webchat", ticket, steps, escalated=True, rated=True, resolved=True)


def pbx() -> Story:
    customer = PII.phone("+79165550001")
    ticket = f"pbx:{customer}"
    common = {"ticket_id": ticket, "channel": "phone", "customer_id": customer, "agent": "ext-7"}
    call = {
        "call_id": "c-1",
        "direction": "inbound",
        "status": "answered",
        "started_at": minutes(5).isoformat(),
        "answered_at": minutes(5.5).isoformat(),
        "ended_at": minutes(9).isoformat(),
        "caller": "+7 916 555-00-01",
        "callee": "+7 495 000-00-00",
        "agent": "ext-7",
        "survey_score": 1,
    }
    steps = [
        Step(
            minutes(5),
            "/ingest/pbx",
            orjson.dumps(call),
            [
                ev("contact_received", minutes(5), **common, text="[answered call]"),
                ev("agent_replied", minutes(5.5), **common),
                ev("csat_submitted", minutes(9), **common, score=1),
            ],
            token(),
        ),
    ]
    return Story("pbx", ticket, steps, escalated=False, rated=True, resolved=False)


def amocrm() -> Story:
    ticket = "amocrm:acme:talk:501"
    customer = PII.account("amocrm", "9001")
    common = {"ticket_id": ticket, "channel": "telegram", "customer_id": customer}

    def message(at: datetime, n: int, kind: str, text: str) -> bytes:
        return urlencode(
            [
                ("message[add][0][id]", f"msg-{n}"),
                ("message[add][0][talk_id]", "501"),
                ("message[add][0][contact_id]", "9001"),
                ("message[add][0][type]", kind),
                ("message[add][0][text]", text),
                ("message[add][0][created_at]", str(int(at.timestamp()))),
                ("message[add][0][origin]", "telegram"),
                ("message[add][0][author][id]", "31"),
                ("account[subdomain]", "acme"),
                ("account[id]", "1"),
            ]
        ).encode()

    steps = [
        Step(
            minutes(4),
            "/ingest/amocrm",
            message(minutes(4), 1, "incoming", "Где заказ?"),
            [ev("contact_received", minutes(4), **common, text="Где заказ?")],
            token(),
        ),
        Step(
            minutes(9),
            "/ingest/amocrm",
            message(minutes(9), 2, "outgoing", "Уже едет"),
            [ev("agent_replied", minutes(9), **common, agent="amocrm-user:31")],
            token(),
        ),
    ]
    return Story("amocrm", ticket, steps, escalated=False, rated=False, resolved=False)


def telegram() -> Story:
    chat = PII.identifier("chat", "8801")
    ticket = f"telegram:{chat}"
    common = {"ticket_id": ticket, "channel": "telegram"}
    update = orjson.dumps(
        {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": int(minutes(3).timestamp()),
                "chat": {"id": 8801, "type": "private"},
                "from": {"id": 8801, "is_bot": False, "first_name": "Анна"},
                "text": "Не приходит код подтверждения",
            },
        }
    )
    reply = orjson.dumps({"message_id": 2, "telegram_chat_id": 8801, "sent_at": minutes(6).isoformat()})
    steps = [
        Step(
            minutes(3),
            "/ingest/telegram",
            update,
            [
                ev(
                    "contact_received",
                    minutes(3),
                    **common,
                    customer_id=PII.account("telegram", "8801"),
                    text="Не приходит код подтверждения",
                )
            ],
            {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        ),
        Step(minutes(6), "/ingest/outbound/telegram", reply, [ev("agent_replied", minutes(6), **common)]),
    ]
    return Story("telegram", ticket, steps, escalated=False, rated=False, resolved=False)


def whatsapp() -> Story:
    customer = PII.phone("79265550002")
    ticket = f"whatsapp:{customer}"
    common = {"ticket_id": ticket, "channel": "whatsapp", "customer_id": customer}
    opened = whatsapp_message("79265550002", "wamid.S1", int(minutes(2).timestamp()), "Где мой заказ?")
    reply = orjson.dumps(
        {"message_id": "wamid.R1", "whatsapp_to": "79265550002", "sent_at": minutes(4).isoformat()}
    )
    steps = [
        Step(
            minutes(2),
            "/ingest/whatsapp",
            opened,
            [ev("contact_received", minutes(2), **common, text="Где мой заказ?")],
            whatsapp_signature(opened),
        ),
        Step(minutes(4), "/ingest/outbound/whatsapp", reply, [ev("agent_replied", minutes(4), **common)]),
    ]
    return Story("whatsapp", ticket, steps, escalated=False, rated=False, resolved=False)


def email() -> Story:
    ticket = f"email:{PII.identifier('msgid', 'story-1@client.example')}"
    common = {"ticket_id": ticket, "channel": "email"}

    def mail(sender: str, to: str, msgid: str, at: datetime, answers: bool) -> bytes:
        message = EmailMessage()
        message["From"], message["To"], message["Date"] = sender, to, format_datetime(at)
        message["Subject"], message["Message-ID"] = "Доступ к API", f"<{msgid}>"
        if answers:
            message["In-Reply-To"] = message["References"] = "<story-1@client.example>"
        message.set_content("Не получается получить ключ API" if not answers else "Выслали ключ")
        return message.as_bytes()

    steps = [
        Step(
            minutes(1),
            "/ingest/email",
            mail("ivan@client.example", "help@acme.example", "story-1@client.example", minutes(1), False),
            [
                ev(
                    "contact_received",
                    minutes(1),
                    **common,
                    customer_id=PII.email("ivan@client.example"),
                    subject="Доступ к API",
                    text="Не получается получить ключ API",
                )
            ],
            token(),
        ),
        Step(
            minutes(20),
            "/ingest/email",
            mail("olga@acme.example", "ivan@client.example", "story-2@acme.example", minutes(20), True),
            [
                ev(
                    "agent_replied",
                    minutes(20),
                    **common,
                    customer_id=PII.email("ivan@client.example"),
                    agent=PII.email("olga@acme.example"),
                )
            ],
            token(),
        ),
    ]
    return Story("email", ticket, steps, escalated=False, rated=False, resolved=False)


STORIES = [zendesk(), freshdesk(), jira(), webchat(), pbx(), amocrm(), telegram(), whatsapp(), email()]
# Business hours later, one more contact moves the detector's clock past every first-response deadline.
CLOCK = Step(
    T0 + timedelta(hours=30),
    "/ingest/webchat",
    orjson.dumps(
        {
            "event": "visitor_message",
            "chat_id": "tick",
            "message_id": "t",
            "text": "?",
            "timestamp": (T0 + timedelta(hours=30)).isoformat(),
            "visitor": {"id": "v-tick"},
        }
    ),
    [
        ev(
            "contact_received",
            T0 + timedelta(hours=30),
            ticket_id="webchat:tick",
            channel="chat",
            customer_id=PII.account("webchat", "v-tick"),
            text="?",
        )
    ],
    {"X-ContactPulse-Token": TOKEN},
)


def expected_alerts(steps: list[Step]) -> set[tuple[str, str, str | None]]:
    """What `replay` raises for the normalized events the steps stand for (classified as the raw path
    classifies what a source did not say)."""
    classifier = Classifier.from_file(None)
    lines = []
    for n, step in enumerate(steps):
        for m, fields in enumerate(step.expected):
            event = ContactEvent.model_validate({"event_id": f"e{n}-{m}", "source": "replay", **fields})
            lines.append(classifier.enrich(event).to_json())
    out = io.BytesIO()
    replay(lines, load_config(), out, errors=io.StringIO())
    return {
        (a["rule"], a["status"], a["subject"].get("ticket_id"))
        for a in map(orjson.loads, out.getvalue().splitlines())
    }


async def test_every_source_tells_a_tickets_whole_story_in_its_own_payloads(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    settings = isolated_settings.model_copy(
        update={
            "pii_key": PII_KEY,
            **{
                f"{s}_token": TOKEN
                for s in ("zendesk", "freshdesk", "jira", "webchat", "pbx", "amocrm", "email")
            },
            "telegram_secret_token": TELEGRAM_SECRET,
            "whatsapp_app_secret": WHATSAPP_SECRET,
            "outbound_webhook_secret": OUTBOUND_SECRET,
            "email_support_domains": "acme.example",
        }
    )
    await ensure_topics(settings)
    worker = start_worker(settings)
    await wait_for_metrics(worker, lambda m: True)
    steps = [*sorted((step for story in STORIES for step in story.steps), key=lambda s: s.at), CLOCK]
    posted = 0
    async with aiohttp.ClientSession() as session:
        for step in steps:
            headers = step.headers
            if step.path.startswith("/ingest/outbound/"):
                headers = signed_headers(OUTBOUND_SECRET, int(time.time()), step.body)
            url = f"http://127.0.0.1:{settings.web_port}{step.path}"
            async with session.post(url, data=step.body, headers=headers) as answer:
                body = await answer.json()
                assert answer.status == 202, (step.path, body)
                assert body["accepted"] == len(step.expected), (step.path, body)
            posted += len(step.expected)
            await detector_judged(worker, posted)  # in event-time order, as the vendors send them

    expected = expected_alerts(steps)
    read = "contactpulse_detector_events_total{verdict=accepted}"
    total = sum(len(step.expected) for step in steps)
    await wait_for_metrics(worker, lambda m: m.get(read, 0) >= total, timeout=120)
    await wait_for_metrics(
        worker,
        lambda m: (
            sum(v for k, v in m.items() if k.startswith("contactpulse_alerts_sent_total")) >= len(expected)
        ),
    )
    records = []
    for topic in (settings.topic_alerts_oncall, settings.topic_alerts_product):
        records += await consume_until_quiet(settings.kafka_bootstrap_servers, topic, quiet=3)
    fired = {
        (a["rule"], a["status"], a["subject"].get("ticket_id"))
        for a in (orjson.loads(r.value) for r in records)
    }
    assert fired == expected

    # No false SLA alert on any answered ticket; one negative_csat per ticket rated 1.
    for story in STORIES:
        mine = {(rule, status) for rule, status, ticket in fired if ticket == story.ticket}
        assert not {rule for rule, _ in mine if rule.startswith("sla_first_response")}, story.source
        assert (("negative_csat", "firing") in mine) == story.rated, (story.source, mine)

    # The ticket rows: answered, escalated, rated, solved, as each story told it.
    await wait_for_metrics(
        worker, lambda m: m.get("contactpulse_clickhouse_rows_written_total{table=tickets}", 0) > 0
    )
    await asyncio.sleep(3)  # the last ticket changes reach the sink's next flush
    worker.stop()
    with connected(settings.dsn()) as client:
        rows = {
            row[0]: row[1:]
            for row in client.query(
                "SELECT ticket_id, first_response_at IS NOT NULL, escalations, csat_score, status "
                "FROM tickets FINAL"
            ).result_rows
        }
    for story in STORIES:
        answered, escalations, csat, status = rows[story.ticket]
        assert answered, story.source
        assert (escalations > 0) == story.escalated, (story.source, escalations)
        assert csat == (1 if story.rated else None), (story.source, csat)
        assert (status == "resolved") == story.resolved, (story.source, status)
