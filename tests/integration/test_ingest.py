"""Concurrent webhooks of several sources, some invalid, against the running worker: every valid one
becomes normalized events exactly once, every invalid one is answered with its status and kept on the
dead-letter topic with its reason."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from processors.pii import Pseudonymizer
from schemas.settings import Settings
from stream.dead_letter import HEADER_REASON, read_headers
from stream.topics import ensure_topics
from tests.integration.conftest import (
    KAFKACTL,
    WorkerProcess,
    consume_all,
    consume_until_quiet,
    free_port_pair,
    wait_for_metrics,
)

pytestmark = pytest.mark.integration

TELEGRAM_TOKEN, ZENDESK_SECRET, WHATSAPP_SECRET = "tg-secret", "zd-secret", "wa-secret"
PII_KEY = "integration-test-pii-key-0123"
PII = Pseudonymizer(PII_KEY.encode())


def telegram(n: int) -> tuple[bytes, dict[str, str], str]:
    body = orjson.dumps(
        {
            "update_id": 1000 + n,
            "message": {
                "message_id": n,
                "date": 1795400000 + n,
                "chat": {"id": 500 + n % 40, "type": "private"},
                "from": {"id": 500 + n % 40, "is_bot": False, "first_name": "Ирина"},
                "text": f"Вопрос номер {n}",
            },
        }
    )
    chat = PII.identifier("chat", str(500 + n % 40))
    return body, {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_TOKEN}, f"telegram:{chat}:{n}"


def zendesk(n: int, broken: bool = False) -> tuple[bytes, dict[str, str], str]:
    body = (
        b"{not json"
        if broken
        else orjson.dumps(
            {
                "type": "zen:event-type:ticket.created",
                "id": f"evt-{n}",
                "time": datetime.fromtimestamp(1795400000 + n, UTC).isoformat(),
                "subject": f"zen:ticket:{n}",
                "detail": {
                    "id": str(n),
                    "status": "NEW",
                    "priority": "NORMAL",
                    "requester_id": str(9000 + n),
                    "description": "Не приходят счета",
                    "via": {"channel": "email"},
                },
            }
        )
    )
    # Signed now: the endpoint refuses a signature timestamp more than 5 minutes from its clock.
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(
        hmac.new(ZENDESK_SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()
    )
    headers = {
        "X-Zendesk-Webhook-Signature": signature.decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }
    return body, headers, f"zendesk:evt-{n}"


def whatsapp(n: int) -> tuple[bytes, dict[str, str], str]:
    body = orjson.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "contacts": [],
                                "messages": [
                                    {
                                        "from": f"7926111{n:04d}",
                                        "id": f"wamid.{n}",
                                        "timestamp": str(1795400000 + n),
                                        "type": "text",
                                        "text": {"body": "Где заказ?"},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    )
    signature = "sha256=" + hmac.new(WHATSAPP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": signature}, f"whatsapp:{PII.identifier('wamid', f'wamid.{n}')}"


async def test_concurrent_webhooks_nothing_lost_nothing_doubled(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    settings = isolated_settings.model_copy(
        update={
            "telegram_secret_token": TELEGRAM_TOKEN,
            "zendesk_webhook_secret": ZENDESK_SECRET,
            "whatsapp_app_secret": WHATSAPP_SECRET,
            "pii_key": PII_KEY,
        }
    )
    await ensure_topics(settings)
    valid = [("telegram", *telegram(n)) for n in range(150)]
    valid += [("zendesk", *zendesk(n)) for n in range(100)]
    valid += [("whatsapp", *whatsapp(n)) for n in range(60)]
    bad_signature = [
        ("telegram", telegram(1000 + n)[0], {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, "")
        for n in range(20)
    ]
    unparsable = [("zendesk", *zendesk(2000 + n, broken=True)) for n in range(20)]
    requests = valid + bad_signature + unparsable
    requests.sort(key=lambda r: hashlib.sha256(r[1]).hexdigest())  # interleave sources

    worker = start_worker(settings)
    base = f"http://127.0.0.1:{settings.web_port}"
    await wait_for_metrics(worker, lambda m: True)
    limit = asyncio.Semaphore(64)

    async def post(session: aiohttp.ClientSession, source: str, body: bytes, headers: dict[str, str]) -> int:
        async with limit, session.post(f"{base}/ingest/{source}", data=body, headers=headers) as response:
            await response.read()
            return response.status

    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(*(post(session, s, b, h) for s, b, h, _ in requests))
        async with session.post(f"{base}/ingest/fax", data=b"{}") as response:
            assert response.status == 404
        oversized = b'{"update_id": 1, "pad": "' + b"x" * (1536 * 1024) + b'"}'
        async with session.post(f"{base}/ingest/telegram", data=io.BytesIO(oversized)) as response:
            assert response.status == 413
            assert "the limit is 1048576" in (await response.json())["error"]
    by_status = Counter(statuses)
    assert by_status == {202: len(valid), 401: len(bad_signature), 400: len(unparsable)}

    events = await consume_all(settings.kafka_bootstrap_servers, settings.topic_events, len(valid))
    ids = Counter(orjson.loads(r.value)["event_id"] for r in events)
    assert set(ids) == {event_id for *_, event_id in valid}
    assert set(ids.values()) == {1}
    assert all(b"7926111" not in r.value for r in events)  # phone numbers left only on contacts.raw

    # A raw record that did not come through the endpoint and cannot be parsed is kept too.
    stray = b'{"update_id": 1, "message": {"message_id": 1}}'
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    await producer.send_and_wait(settings.topic_raw, stray, headers=[("contactpulse.source", b"telegram")])
    await producer.stop()

    letters = await consume_until_quiet(settings.kafka_bootstrap_servers, settings.topic_dead_letter, quiet=3)
    reasons = Counter(read_headers(list(r.headers))[HEADER_REASON] for r in letters)
    assert reasons == {"bad_signature": len(bad_signature), "unparsable_payload": len(unparsable) + 1}
    assert {r.value for r in letters} == {b for _, b, *_ in bad_signature + unparsable} | {stray}


async def test_backpressure_answers_429_and_503_with_retry_after(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess], tmp_path: Path
) -> None:
    # A broker of this test's own, so that it can be stopped under the worker.
    failures = []
    for attempt in range(3):  # a port taken between choosing and binding is not this test's subject
        port = free_port_pair()
        kafka_env = {
            **os.environ,
            "KAFKA_PORT": str(port),
            "KAFKA_DATA_DIR": str(tmp_path / f"kafka-{attempt}"),
        }
        started = await asyncio.to_thread(
            subprocess.run, [str(KAFKACTL), "start"], env=kafka_env, capture_output=True, text=True
        )
        if started.returncode == 0:
            break
        failures.append(started.stderr[-2000:])
    else:
        pytest.fail("the test's own broker did not start:\n" + "\n---\n".join(failures))
    try:
        settings = isolated_settings.model_copy(
            update={
                "kafka_bootstrap_servers": f"127.0.0.1:{port}",
                "ingest_max_in_flight": 1,
                "ingest_ack_timeout_seconds": 2.0,
                "pii_key": "backpressure-test-key-01234",
            }
        )
        await ensure_topics(settings)
        worker = start_worker(settings)
        base = f"http://127.0.0.1:{settings.web_port}/ingest/telegram"
        await wait_for_metrics(worker, lambda m: True)
        async with aiohttp.ClientSession() as session:

            async def post(n: int) -> tuple[int, str | None]:
                async with session.post(base, data=telegram(n)[0]) as response:
                    return response.status, response.headers.get("Retry-After")

            answers = await asyncio.gather(*(post(n) for n in range(60)))
            assert {status for status, _ in answers} == {202, 429}
            assert all(retry == "1" for status, retry in answers if status == 429)

            # Freeze the broker (SIGSTOP): connections stay open, nothing is acknowledged.
            broker = (Path(kafka_env["KAFKA_DATA_DIR"]) / "broker.pid").read_text().strip()
            await asyncio.to_thread(subprocess.run, ["pkill", "-STOP", "-P", broker], check=True)
            try:
                started = time.monotonic()
                status, retry = await post(999)
                waited = time.monotonic() - started
            finally:
                await asyncio.to_thread(subprocess.run, ["pkill", "-CONT", "-P", broker], check=True)
            assert (status, retry) == (503, "5")
            assert 2.0 <= waited < 8
        worker.stop(kill=True)
    finally:
        await asyncio.to_thread(
            subprocess.run, [str(KAFKACTL), "stop"], check=False, env=kafka_env, capture_output=True
        )
