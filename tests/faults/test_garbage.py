"""1,000 fuzzed webhooks through the real endpoint and 1,000 bad lines on `contacts.events`, against the
running worker: every one is answered 4xx or 202, never 500, and every refused one is on the dead-letter
topic exactly once with its reason.

The webhooks are drawn by the same hypothesis strategies the adapters' unit fuzz uses (mutated vendor
payloads, arbitrary JSON to any adapter, arbitrary bytes).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.adapters import ADAPTERS
from schemas.settings import Settings
from stream.dead_letter import HEADER_REASON, HEADER_SHA256, HEADER_TOPIC, read_headers
from stream.topics import ensure_topics
from tests.faults.conftest import FaultRow
from tests.integration.conftest import (
    WorkerProcess,
    consume_all,
    consume_until_quiet,
    group_caught_up,
    produce,
    wait_for_metrics,
)
from tests.unit.adapters.test_normalize_payload import json_values, mutated_fixture

pytestmark = [pytest.mark.integration, pytest.mark.faults]

WEBHOOKS = 1000
BAD_LINES = 1000


def fuzzed_webhooks() -> list[tuple[str, bytes]]:
    drawn: list[tuple[str, bytes]] = []
    budget = settings(
        max_examples=WEBHOOKS // 3 + 1,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )

    @budget
    @given(mutated_fixture())
    def mutated(case: tuple[str, bytes]) -> None:
        drawn.append(case)

    @budget
    @given(st.sampled_from(sorted(ADAPTERS)), json_values())
    def any_json(source: str, value: Any) -> None:
        drawn.append((source, orjson.dumps(value)))

    @budget
    @given(st.sampled_from(sorted(ADAPTERS)), st.binary(max_size=300))
    def any_bytes(source: str, body: bytes) -> None:
        drawn.append((source, body))

    for draw in (mutated, any_json, any_bytes):
        draw()
    return drawn[:WEBHOOKS]


def bad_lines() -> list[bytes]:
    """Each of the ways a producer breaks the contract, numbered so every line is distinct."""
    now = datetime.now(UTC)
    valid = {
        "event_id": "",
        "type": "contact_received",
        "occurred_at": "2026-11-24T10:00:00+03:00",
        "ticket_id": "t-1",
        "source": "webchat",
        "channel": "chat",
        "customer_id": "c-1",
    }
    kinds: list[Callable[[int], bytes]] = [
        lambda n: orjson.dumps({**valid, "event_id": f"bad-{n}"})[:-7],  # truncated JSON
        lambda n: b"not json at all %d" % n,
        lambda n: orjson.dumps([n, "a list, not an event"]),
        lambda n: orjson.dumps(
            {k: v for k, v in {**valid, "event_id": f"bad-{n}"}.items() if k != "ticket_id"}
        ),
        lambda n: orjson.dumps({**valid, "event_id": f"bad-{n}", "channel": "pigeon"}),
        lambda n: orjson.dumps({**valid, "event_id": f"bad-{n}", "occurred_at": "24.11.2026 10:00"}),
        lambda n: orjson.dumps({**valid, "event_id": f"bad-{n}", "occurred_at": "2026-11-24T10:00:00"}),
        lambda n: orjson.dumps(
            {**valid, "event_id": f"bad-{n}", "occurred_at": (now + timedelta(days=2)).isoformat()}
        ),
        lambda n: b"\xff\xfe invalid utf-8 %d" % n,
        lambda n: orjson.dumps({**valid, "event_id": f"bad-{n}", "text": "x" * (1024 * 1024 + n)}),
    ]
    return [kinds[n % len(kinds)](n) for n in range(BAD_LINES)]


async def test_fuzzed_webhooks_and_bad_lines_all_end_as_4xx_or_dead_letters(
    isolated_settings: Settings,
    start_worker: Callable[[Settings], WorkerProcess],
    fault_report: list[FaultRow],
) -> None:
    # Every source open, so each fuzzed body reaches its adapter (a closed source would stop it at 403).
    settings = isolated_settings.model_copy(
        update={
            "allow_unsigned_sources": "*",
            "pii_key": "fuzz-test-key-0123456789",
            "dead_letter_budget_ratio": 1.0,
        }
    )
    webhooks = fuzzed_webhooks()
    assert len(webhooks) == WEBHOOKS
    lines = bad_lines()
    await ensure_topics(settings)
    worker = start_worker(settings)
    await wait_for_metrics(worker, lambda m: True)
    url = f"http://127.0.0.1:{settings.web_port}/ingest"
    limit = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as session:

        async def post(source: str, body: bytes) -> tuple[int, dict[str, Any]]:
            async with limit, session.post(f"{url}/{source}", data=body) as response:
                return response.status, await response.json()

        answers = await asyncio.gather(*(post(source, body) for source, body in webhooks))
    await produce(settings.kafka_bootstrap_servers, settings.topic_events, [(None, line) for line in lines])

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {202, 400}, statuses  # no 500, nothing else
    refused = Counter(
        (source, hashlib.sha256(body).hexdigest())
        for (source, body), (status, answer) in zip(webhooks, answers, strict=True)
        if status == 400 or "dead_letter" in answer
    )
    events_expected = sum(answer.get("accepted", 0) for _, answer in answers)
    ignored = sum(1 for _, answer in answers if "ignored" in answer)

    bootstrap = settings.kafka_bootstrap_servers
    await group_caught_up(bootstrap, settings.app_id, settings.topic_raw, 4, timeout=120)
    # The sink validates contacts.events and has each dead letter acknowledged before it commits.
    await group_caught_up(
        bootstrap, f"{settings.app_id}-clickhouse-sink", settings.topic_events, 4, timeout=120
    )
    letters = await consume_until_quiet(bootstrap, settings.topic_dead_letter, quiet=3)
    headers = [read_headers(list(letter.headers)) for letter in letters]
    # Letters of events the fuzzed webhooks produced (a repeated body is a `duplicate`, a stamp days
    # ahead `future_timestamp`) are the webhooks' events, not bad lines: counted apart.
    bad = set(lines)
    from_endpoint = Counter(
        (h[HEADER_TOPIC].removeprefix("http:/ingest/"), h[HEADER_SHA256])
        for h in headers
        if h[HEADER_TOPIC].startswith("http:")
    )
    from_lines = Counter(
        letter.value
        for letter, h in zip(letters, headers, strict=True)
        if h[HEADER_TOPIC] == settings.topic_events and letter.value in bad
    )
    reasons = Counter(
        h[HEADER_REASON]
        for letter, h in zip(letters, headers, strict=True)
        if h[HEADER_TOPIC] == settings.topic_events and letter.value in bad
    )
    assert all(h[HEADER_REASON] for h in headers)

    webhooks_lost = sum((refused - from_endpoint).values())
    webhooks_doubled = sum((from_endpoint - refused).values())
    produced_events = await consume_all(bootstrap, settings.topic_events, events_expected + len(lines))
    lines_lost = sum((Counter(lines) - from_lines).values())
    lines_doubled = sum((from_lines - Counter(lines)).values())
    fault_report.append(
        FaultRow(
            "1,000 fuzzed webhooks",
            WEBHOOKS,
            WEBHOOKS - webhooks_lost,
            webhooks_lost,
            webhooks_doubled,
            f"{statuses[400]} x 400, {statuses[202]} x 202 ({ignored} ignored, {events_expected} events)",
        )
    )
    fault_report.append(
        FaultRow(
            "1,000 bad lines on contacts.events",
            BAD_LINES,
            BAD_LINES - lines_lost,
            lines_lost,
            lines_doubled,
            ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items())),
        )
    )
    assert webhooks_lost == webhooks_doubled == 0
    assert lines_lost == lines_doubled == 0
    # The raw agent derived exactly the events the endpoint counted (the same function on the same bytes).
    assert len(produced_events) == events_expected + len(lines)
    assert statuses[400] > 300  # the fuzz reached both outcomes
    assert statuses[202] > 100
