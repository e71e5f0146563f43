"""Telegram, WhatsApp and e-mail tickets answered the ways a team answers them (a bot reporting to the
outbound endpoint, WhatsApp receipts, a reply from the support domain) stop their first-response clock
on the running worker: no SLA alert for an answered ticket, while an unanswered twin breaches; and the
alerts equal those `replay` gives for the equivalent normalized stream."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import aiohttp
import orjson
import pytest

from processors.adapters.outbound import signed_headers
from processors.pii import Pseudonymizer
from schemas.config import load_config
from schemas.settings import Settings
from simulation.traffic import MOSCOW
from stream.replay import replay
from stream.topics import ensure_topics
from tests.integration.conftest import WorkerProcess, consume_until_quiet, detector_judged, wait_for_metrics
from tests.integration.test_ingest import whatsapp_message, whatsapp_signature

pytestmark = pytest.mark.integration

PII_KEY = "direct-replies-test-key-0123"
PII = Pseudonymizer(PII_KEY.encode())
TELEGRAM_SECRET, WHATSAPP_SECRET, EMAIL_TOKEN, OUTBOUND_SECRET = "tg", "wa-secret", "mail", "out"
OPENED = datetime(2026, 11, 23, 10, 0, tzinfo=MOSCOW)  # a Monday, in business hours


def telegram_message(chat: int, at: datetime) -> bytes:
    return orjson.dumps(
        {
            "update_id": chat,
            "message": {
                "message_id": 1,
                "date": int(at.timestamp()),
                "chat": {"id": chat, "type": "private"},
                "from": {"id": chat, "is_bot": False, "first_name": "Олег"},
                "text": "Не проходит оплата картой",
            },
        }
    )


def mail(sender: str, to: str, message_id: str, at: datetime, answers: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = "Re: Не приходят счета" if answers else "Не приходят счета"
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<{message_id}>"
    if answers:
        message["In-Reply-To"] = message["References"] = f"<{answers}>"
    message.set_content("Счета за ноябрь не пришли на почту." if not answers else "Отправили повторно.")
    return message.as_bytes()


def story() -> list[tuple[str, bytes, dict[str, str], dict[str, object]]]:
    """(endpoint path, body, headers, the normalized event it stands for), in event-time order."""
    replied = OPENED + timedelta(minutes=5)
    wa_answered, wa_waiting = "79260000001", "79260000002"
    tg = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    token = {"X-ContactPulse-Token": EMAIL_TOKEN}
    receipt = orjson.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "statuses": [
                                    {
                                        "id": "wamid.REPLY1",
                                        "status": "sent",
                                        "timestamp": str(int(replied.timestamp())),
                                        "recipient_id": wa_answered,
                                        "pricing": {"category": "service"},
                                    }
                                ]
                            },
                        }
                    ],
                }
            ],
        }
    )
    wa = [
        whatsapp_message(phone, f"wamid.IN{n}", int(OPENED.timestamp()), "Где мой заказ?")
        for n, phone in enumerate((wa_answered, wa_waiting))
    ]
    tg_chat = lambda chat: f"telegram:{PII.identifier('chat', str(chat))}"  # noqa: E731
    mail_ticket = lambda msgid: f"email:{PII.identifier('msgid', msgid)}"  # noqa: E731
    at = OPENED.isoformat()
    later = replied.isoformat()
    received = {"type": "contact_received", "occurred_at": at}
    return [
        (
            "/ingest/telegram",
            telegram_message(701, OPENED),
            tg,
            {**received, "ticket_id": tg_chat(701), "channel": "telegram"},
        ),
        (
            "/ingest/telegram",
            telegram_message(702, OPENED),
            tg,
            {**received, "ticket_id": tg_chat(702), "channel": "telegram"},
        ),
        (
            "/ingest/whatsapp",
            wa[0],
            whatsapp_signature(wa[0]),
            {**received, "ticket_id": f"whatsapp:{PII.phone(wa_answered)}", "channel": "whatsapp"},
        ),
        (
            "/ingest/whatsapp",
            wa[1],
            whatsapp_signature(wa[1]),
            {**received, "ticket_id": f"whatsapp:{PII.phone(wa_waiting)}", "channel": "whatsapp"},
        ),
        (
            "/ingest/email",
            mail("oleg@client.example", "support@contactpulse.example", "q1@client.example", OPENED),
            token,
            {**received, "ticket_id": mail_ticket("q1@client.example"), "channel": "email"},
        ),
        (
            "/ingest/email",
            mail("olga@client.example", "support@contactpulse.example", "q2@client.example", OPENED),
            token,
            {**received, "ticket_id": mail_ticket("q2@client.example"), "channel": "email"},
        ),
        # The answers, five minutes later, each the way its channel reports it.
        (
            "/ingest/outbound/telegram",
            orjson.dumps({"message_id": 2, "telegram_chat_id": 701, "sent_at": later}),
            {},
            {"type": "agent_replied", "occurred_at": later, "ticket_id": tg_chat(701), "channel": "telegram"},
        ),
        (
            "/ingest/whatsapp",
            receipt,
            whatsapp_signature(receipt),
            {
                "type": "agent_replied",
                "occurred_at": later,
                "ticket_id": f"whatsapp:{PII.phone(wa_answered)}",
                "channel": "whatsapp",
            },
        ),
        (
            "/ingest/email",
            mail(
                "anna@contactpulse.example",
                "oleg@client.example",
                "a1@contactpulse.example",
                replied,
                answers="q1@client.example",
            ),
            token,
            {
                "type": "agent_replied",
                "occurred_at": later,
                "ticket_id": mail_ticket("q1@client.example"),
                "channel": "email",
            },
        ),
        # Business hours later: every deadline of the unanswered ones has passed on the detector's clock.
        (
            "/ingest/telegram",
            telegram_message(799, OPENED + timedelta(hours=30)),
            tg,
            {
                **received,
                "occurred_at": (OPENED + timedelta(hours=30)).isoformat(),
                "ticket_id": tg_chat(799),
                "channel": "telegram",
            },
        ),
    ]


async def test_answered_direct_channel_tickets_raise_no_sla_alert(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    settings = isolated_settings.model_copy(
        update={
            "pii_key": PII_KEY,
            "telegram_secret_token": TELEGRAM_SECRET,
            "whatsapp_app_secret": WHATSAPP_SECRET,
            "whatsapp_sent_is_reply": True,
            "email_token": EMAIL_TOKEN,
            "email_support_domains": "contactpulse.example",
            "outbound_webhook_secret": OUTBOUND_SECRET,
        }
    )
    await ensure_topics(settings)
    worker = start_worker(settings)
    await wait_for_metrics(worker, lambda m: True)
    steps = story()
    posted = 0
    async with aiohttp.ClientSession() as session:
        for path, body, headers, _ in steps:
            if path.startswith("/ingest/outbound/"):
                headers = signed_headers(OUTBOUND_SECRET, int(time.time()), body)
            async with session.post(
                f"http://127.0.0.1:{settings.web_port}{path}", data=body, headers=headers
            ) as answer:
                assert answer.status == 202, (path, await answer.text())
                assert (await answer.json())["accepted"] == 1
            posted += 1
            await detector_judged(worker, posted)  # in event-time order, as the vendors send them

    expected_out = io.BytesIO()
    lines = [
        orjson.dumps(
            {"event_id": f"e{n}", "source": "test", **{k: v for k, v in event.items() if v is not None}}
        )
        for n, (*_, event) in enumerate(steps)
    ]
    replay(lines, load_config(), expected_out, errors=io.StringIO())
    expected = {
        (a["rule"], a["status"], a["subject"].get("ticket_id"))
        for a in map(orjson.loads, expected_out.getvalue().splitlines())
    }

    await wait_for_metrics(
        worker,
        lambda m: (
            sum(v for k, v in m.items() if k.startswith("contactpulse_alerts_sent_total")) >= len(expected)
        ),
    )
    records = await consume_until_quiet(
        settings.kafka_bootstrap_servers, settings.topic_alerts_oncall, quiet=3
    )
    fired = {
        (a["rule"], a["status"], a["subject"].get("ticket_id"))
        for a in (orjson.loads(r.value) for r in records)
    }
    assert fired == expected

    answered = {event["ticket_id"] for *_, event in steps if event["type"] == "agent_replied"}
    waiting = {event["ticket_id"] for *_, event in steps[:6]} - answered
    assert len(answered) == len(waiting) == 3
    assert not [f for f in fired if f[2] in answered]  # answered: no first-response alert of any kind
    breached = {ticket for rule, _, ticket in fired if rule == "sla_first_response_breached"}
    assert breached == waiting  # the unanswered twins did breach: the test can tell the difference
    worker.stop()
