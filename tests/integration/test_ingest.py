"""Concurrent webhooks of several sources, some invalid, against the running worker: every valid one
becomes normalized events exactly once, every invalid one is answered with its status and kept on the
dead-letter topic with its reason."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from processors.pii import Pseudonymizer
from schemas.settings import Settings
from stream.dead_letter import HEADER_REASON, HEADER_SHA256, HEADER_TOPIC, HEADER_WITHHELD, read_headers
from stream.topics import ensure_topics
from tests.integration.conftest import (
    PrivateBroker,
    WorkerProcess,
    consume_all,
    consume_until_quiet,
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
    return body, zendesk_signature(body), f"zendesk:evt-{n}"


def zendesk_signature(body: bytes) -> dict[str, str]:
    # Signed now: the endpoint refuses a signature timestamp more than 5 minutes from its clock.
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(
        hmac.new(ZENDESK_SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()
    )
    return {
        "X-Zendesk-Webhook-Signature": signature.decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def whatsapp_signature(body: bytes) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": "sha256="
        + hmac.new(WHATSAPP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    }


def whatsapp_message(
    sender: str, wamid: str, stamp: int, text: str, profile_name: str | None = None
) -> bytes:
    """A Cloud API webhook with one text message (and the sender's profile, if named)."""
    contacts = [{"wa_id": sender, "profile": {"name": profile_name}}] if profile_name else []
    message = {"from": sender, "id": wamid, "timestamp": str(stamp), "type": "text", "text": {"body": text}}
    value = {"messaging_product": "whatsapp", "contacts": contacts, "messages": [message]}
    change = {"field": "messages", "value": value}
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]})


def whatsapp(n: int) -> tuple[bytes, dict[str, str], str]:
    body = whatsapp_message(f"7926111{n:04d}", f"wamid.{n}", 1795400000 + n, "Где заказ?")
    return body, whatsapp_signature(body), f"whatsapp:{PII.identifier('wamid', f'wamid.{n}')}"


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
    # Signed by Zendesk but unreadable: kept whole, to be fixed and re-sent. A wrong Telegram secret and
    # a raw record that came through no endpoint: their hash, size and reason only.
    kept = {r.value for r in letters if HEADER_WITHHELD not in read_headers(list(r.headers))}
    assert kept == {b for _, b, *_ in unparsable}
    withheld = [read_headers(list(r.headers)) for r in letters if not r.value]
    assert {h[HEADER_WITHHELD] for h in withheld} == {"unverified_sender"}
    assert {h[HEADER_SHA256] for h in withheld} == {
        hashlib.sha256(b).hexdigest() for b in [stray] + [b for _, b, *_ in bad_signature]
    }
    # The Telegram secret is a credential: it is not stored with the raw payload.
    raw = await consume_all(settings.kafka_bootstrap_servers, settings.topic_raw, len(valid) + 1)
    assert not [r for r in raw if TELEGRAM_TOKEN.encode() in b"".join(v for _, v in r.headers)]


async def test_who_may_post_tokens_unsigned_sources_and_the_dead_letter_budget(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    settings = isolated_settings.model_copy(
        update={
            "pbx_token": "pbx-shared-token",
            "allow_unsigned_sources": "webchat",
            "dead_letter_budget_ratio": 1.0,  # the rate alone decides here (the ratio: unit tests)
            "dead_letter_budget_per_second": 0.5,  # 30 refusals a minute
            "pii_key": PII_KEY,
        }
    )
    await ensure_topics(settings)
    worker = start_worker(settings)
    base = f"http://127.0.0.1:{settings.web_port}/ingest"
    await wait_for_metrics(worker, lambda m: True)
    call = orjson.dumps(
        {
            "call_id": "c-1",
            "direction": "inbound",
            "status": "answered",
            "started_at": "2026-11-24T10:00:00+03:00",
            "caller": "+7 926 111 22 33",
            "callee": "+7 495 000 00 00",
        }
    )
    broken = [b'{"call_id": "c-%d", "caller": "+7 926 111 22 44"' % n for n in range(40)]
    garbage = [b'{"event": "nonsense", "n": %d}' % n for n in range(10)]
    async with aiohttp.ClientSession() as session:

        async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
            async with session.post(url, data=body, headers=headers or {}) as response:
                await response.read()
                return response.status

        # No secret, no token, not allowed unsigned: refused before the body is read.
        assert await post(f"{base}/freshdesk", b'{"freshdesk_webhook": {}}') == 403
        assert await post(f"{base}/pbx", call) == 401
        assert await post(f"{base}/pbx", call, {"X-ContactPulse-Token": "wrong"}) == 401
        assert await post(f"{base}/pbx", call, {"X-ContactPulse-Token": "pbx-shared-token"}) == 202
        assert await post(f"{base}/pbx?token=pbx-shared-token", call) == 202  # the same call: one event
        # An authenticated PBX sending broken logs: kept whole until its 31st refusal in a minute.
        token = {"X-ContactPulse-Token": "pbx-shared-token"}
        assert [await post(f"{base}/pbx", body, token) for body in broken] == [400] * len(broken)
        # Allowed unsigned: accepted, but whatever anyone posts is kept as its hash only.
        assert [await post(f"{base}/webchat", body) for body in garbage] == [400] * len(garbage)
    metrics = await wait_for_metrics(
        worker, lambda m: m.get("contactpulse_dead_letter_budget_exceeded{source=pbx}") == 1.0
    )
    assert metrics["contactpulse_dead_letter_budget_exceeded{source=webchat}"] == 0.0
    withheld = "contactpulse_dead_letters_withheld_total"
    assert metrics[f"{withheld}{{source=pbx,why=unverified_sender}}"] == 2
    assert metrics[f"{withheld}{{source=pbx,why=over_budget}}"] == 12
    assert metrics[f"{withheld}{{source=webchat,why=unverified_sender}}"] == 10

    letters = await consume_until_quiet(settings.kafka_bootstrap_servers, settings.topic_dead_letter, quiet=3)
    letters = [r for r in letters if read_headers(list(r.headers))[HEADER_TOPIC] == "http:/ingest/pbx"] + [
        r for r in letters if read_headers(list(r.headers))[HEADER_TOPIC] == "http:/ingest/webchat"
    ]
    by_reason = Counter(read_headers(list(r.headers))[HEADER_REASON] for r in letters)
    assert by_reason == {"bad_signature": 2, "unparsable_payload": len(broken) + len(garbage)}
    assert [r.value for r in letters if r.value] == broken[:28]  # one partition (keyed by source)
    hashes = {read_headers(list(r.headers)).get(HEADER_SHA256) for r in letters if not r.value}
    assert hashes == {hashlib.sha256(b).hexdigest() for b in [call, *broken[28:], *garbage]}
    events = await consume_all(settings.kafka_bootstrap_servers, settings.topic_events, 4)
    ids = Counter(orjson.loads(r.value)["event_id"] for r in events)
    assert ids == {"pbx:c-1:received": 2, "pbx:c-1:answered": 2}  # posted twice; the id absorbs it


async def test_backpressure_answers_429_and_503_with_retry_after(
    private_broker: PrivateBroker,  # first: set up before the worker, torn down after it
    isolated_settings: Settings,
    start_worker: Callable[[Settings], WorkerProcess],
) -> None:
    settings = isolated_settings.model_copy(
        update={
            "kafka_bootstrap_servers": private_broker.bootstrap,
            "ingest_max_in_flight": 1,
            "ingest_ack_timeout_seconds": 2.0,
            "pii_key": "backpressure-test-key-01234",
            "allow_unsigned_sources": "telegram",
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
        await asyncio.to_thread(private_broker.freeze)
        try:
            started = time.monotonic()
            status, retry = await post(999)
            waited = time.monotonic() - started
        finally:
            await asyncio.to_thread(private_broker.thaw)
        assert (status, retry) == (503, "5")
        assert 2.0 <= waited < 8
    worker.stop(kill=True)
