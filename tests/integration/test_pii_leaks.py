"""Planted personal data goes in through every kind of source; none of it comes out anywhere but
`contacts.raw`: not on any other topic (keys, values, headers, the detector's checkpoints), not in any
ClickHouse table, not in the worker's log.

The planted values: a phone number, an e-mail address, Russian and English full names, a Telegram user
id, a WhatsApp number (its wa_id) and an e-mail Message-ID that embeds an address. They arrive in valid
payloads (signed or with their token) and in refused ones from senders that proved nothing (whose dead
letters keep a hash, not the bytes).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable

import aiohttp
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from schemas.settings import Settings
from sinks.clickhouse import connected
from stream.checkpoint import load_latest
from stream.topics import ensure_topics
from tests.integration.conftest import (
    WorkerProcess,
    consume_until_quiet,
    group_caught_up,
    wait_for_metrics,
)
from tests.integration.test_ingest import (
    PII_KEY,
    TELEGRAM_TOKEN,
    WHATSAPP_SECRET,
    ZENDESK_SECRET,
    whatsapp_message,
    whatsapp_signature,
    zendesk_signature,
)

pytestmark = pytest.mark.integration

PHONE = "+7 916 555-12-34"
EMAIL = "Planted.Person@example.org"
RU_FIRST, RU_LAST = "Евлампия", "Пантелеймонова"
EN_FIRST, EN_LAST = "Bartholomew", "Quigley"
TELEGRAM_USER = 987654321
WA_ID = "79035557788"
MESSAGE_ID = "<planted.person.42@example.org>"
PBX_TOKEN, EMAIL_TOKEN = "pbx-token-for-pii-test", "email-token-for-pii-test"

# What must not appear outside contacts.raw, in the forms it may take after parsing and lower-casing.
FORBIDDEN = [
    "9165551234",
    "916 555",
    "555-12-34",
    "planted.person",
    "example.org",
    "Евлампи",  # every case form of the first name
    "Пантелеймонов",  # and of the surname
    EN_FIRST,
    EN_LAST,
    str(TELEGRAM_USER),
    WA_ID,
    "9035557788",
]
FORBIDDEN_PATTERN = re.compile("|".join(re.escape(v) for v in FORBIDDEN), re.IGNORECASE)


def payloads() -> list[tuple[str, bytes, dict[str, str]]]:
    text_ru = (
        f"Здравствуйте, меня зовут {RU_FIRST} {RU_LAST}, телефон {PHONE}, почта {EMAIL}. "
        f"Не работает выгрузка отчётов. Передайте {RU_FIRST[:-1]}и {RU_LAST[:-1]}ой, что счёт оплачен."
    )
    telegram = orjson.dumps(
        {
            "update_id": 77,
            "message": {
                "message_id": 5,
                "date": 1795400000,
                "chat": {"id": TELEGRAM_USER, "type": "private", "first_name": RU_FIRST},
                "from": {"id": TELEGRAM_USER, "is_bot": False, "first_name": RU_FIRST, "last_name": RU_LAST},
                "text": text_ru,
            },
        }
    )
    telegram_contact = orjson.dumps(
        {
            "update_id": 78,
            "message": {
                "message_id": 6,
                "date": 1795400060,
                "chat": {"id": TELEGRAM_USER, "type": "private"},
                "from": {"id": TELEGRAM_USER, "is_bot": False, "first_name": RU_FIRST},
                "contact": {"phone_number": PHONE, "first_name": RU_FIRST, "user_id": TELEGRAM_USER},
            },
        }
    )
    whatsapp = whatsapp_message(
        WA_ID,
        f"wamid.{WA_ID}.1",
        1795400100,
        f"Hi, this is {EN_FIRST} {EN_LAST}, call me at {PHONE} or write to {EMAIL}. "
        "The export to Excel fails.",
        profile_name=f"{EN_FIRST} {EN_LAST}",
    )
    zendesk = orjson.dumps(
        {
            "type": "zen:event-type:ticket.created",
            "id": "evt-pii-1",
            "time": "2026-11-23T10:00:00+00:00",
            "subject": "zen:ticket:4242",
            "detail": {
                "id": "4242",
                "status": "NEW",
                "priority": "HIGH",
                "requester_id": "9001",
                "subject": f"{RU_LAST} {RU_FIRST}: счёт не пришёл",
                "description": f"Клиент {RU_FIRST} {RU_LAST} ({EMAIL}, {PHONE}) ждёт счёт.",
                "via": {"channel": "email"},
            },
        }
    )
    call = orjson.dumps(
        {
            "call_id": "pii-call-1",
            "direction": "inbound",
            "status": "answered",
            "started_at": "2026-11-23T13:00:00+03:00",
            "caller": PHONE,
            "callee": "+7 495 000 00 00",
            "transcript": f"Добрый день, это {RU_FIRST} {RU_LAST}, перезвоните на {PHONE}.",
        }
    )
    mail = (
        f"From: {EN_FIRST} {EN_LAST} <{EMAIL}>\r\n"
        f"To: support@contactpulse.invalid\r\n"
        f"Subject: Invoice for {EN_FIRST} {EN_LAST}\r\n"
        f"Message-ID: {MESSAGE_ID}\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0300\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello, my name is {EN_FIRST} {EN_LAST}. Please call {PHONE}.\r\n"
    ).encode()
    # Refused, from senders that proved nothing: their dead letters must not keep these bytes.
    wrong_token = orjson.dumps({"call_id": "x", "caller": PHONE, "note": f"{EN_FIRST} {EN_LAST} {EMAIL}"})
    forged = orjson.dumps({"update_id": 79, "message": {"text": f"{RU_FIRST} {RU_LAST} {PHONE}"}})
    return [
        ("telegram", telegram, {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_TOKEN}),
        ("telegram", telegram_contact, {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_TOKEN}),
        ("whatsapp", whatsapp, whatsapp_signature(whatsapp)),
        ("zendesk", zendesk, zendesk_signature(zendesk)),
        ("pbx", call, {"X-ContactPulse-Token": PBX_TOKEN}),
        ("email", mail, {"X-ContactPulse-Token": EMAIL_TOKEN}),
        ("pbx", wrong_token, {"X-ContactPulse-Token": "not-the-token"}),
        ("telegram", forged, {"X-Telegram-Bot-Api-Secret-Token": "forged"}),
    ]


def leaks(where: str, data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    return [f"{where}: {match.group(0)!r}" for match in FORBIDDEN_PATTERN.finditer(text)]


async def test_planted_personal_data_stays_on_the_raw_topic(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    settings = isolated_settings.model_copy(
        update={
            "telegram_secret_token": TELEGRAM_TOKEN,
            "whatsapp_app_secret": WHATSAPP_SECRET,
            "zendesk_webhook_secret": ZENDESK_SECRET,
            "pbx_token": PBX_TOKEN,
            "email_token": EMAIL_TOKEN,
            "pii_key": PII_KEY,
            "detector_checkpoint_seconds": 1.0,
            "log_level": "debug",  # the most a log ever says
        }
    )
    await ensure_topics(settings)
    worker = start_worker(settings)
    await wait_for_metrics(worker, lambda m: m.get("contactpulse_detector_owner", 0) == 1)
    statuses = []
    async with aiohttp.ClientSession() as session:
        for source, body, headers in payloads():
            url = f"http://127.0.0.1:{settings.web_port}/ingest/{source}"
            async with session.post(url, data=body, headers=headers) as response:
                statuses.append((source, response.status, await response.text()))
    assert [status for _, status, _ in statuses] == [202] * 6 + [401, 401], statuses
    bootstrap = settings.kafka_bootstrap_servers
    await group_caught_up(bootstrap, settings.app_id, settings.topic_raw, 4, timeout=60)
    await group_caught_up(
        bootstrap, f"{settings.app_id}-clickhouse-sink", settings.topic_events, 4, timeout=60
    )
    metrics = await wait_for_metrics(
        worker, lambda m: m.get("contactpulse_detector_checkpoint_seconds_count", 0) >= 2
    )
    assert metrics["contactpulse_raw_payloads_normalized_total{source=email}"] == 1
    worker.stop()  # a clean stop writes the final checkpoint and flushes the log

    found: list[str] = []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if settings.app_id in t or t.startswith("t-"))
    finally:
        await admin.close()
    suffix = settings.topic_raw.split(".")[0]
    ours = [t for t in topics if t.startswith(suffix) or t.startswith(settings.app_id)]
    assert settings.topic_raw in ours
    assert any(t.endswith("-detector-checkpoint") for t in ours)
    for topic in ours:
        if topic == settings.topic_raw:
            continue
        for record in await consume_until_quiet(bootstrap, topic, quiet=2):
            parts = [record.key or b"", record.value or b"", *(v for _, v in record.headers)]
            found += leaks(f"topic {topic}", b"\x00".join(parts))
    # The checkpoint's chunks are one compressed pickle: read it back whole, as a new owner would.
    checkpoint_topic = next(t for t in ours if t.endswith("-detector-checkpoint"))
    loaded = await load_latest(bootstrap, checkpoint_topic)
    assert loaded.checkpoint is not None
    found += leaks("checkpoint state", pickle.dumps(loaded.checkpoint.state))
    with connected(settings.dsn()) as client:
        tables = [row[0] for row in client.query("SHOW TABLES").result_rows]
        assert {"contact_events", "tickets"} <= set(tables)
        for table in tables:
            dump = client.raw_query(f"SELECT * FROM {table} FORMAT TSVRaw")
            found += leaks(f"table {table}", dump)
            if table in ("contact_events", "tickets"):
                assert dump, f"table {table} is empty: the test would prove nothing"
    found += leaks("worker log", worker.log_path.read_bytes())
    assert not found, "\n".join(sorted(set(found)))
