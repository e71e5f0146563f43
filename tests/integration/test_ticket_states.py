"""The detector sends a ticket's state once for all the events it had within the interval, and before a
checkpoint (here the last one, at a graceful stop) whatever is still unsent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.settings import Settings
from stream.topics import ensure_topics
from tests.integration.conftest import (
    WorkerProcess,
    consume_until_quiet,
    detector_judged,
    produce,
    wait_for_metrics,
)

pytestmark = pytest.mark.integration


def lifecycle(ticket: str, opened: datetime) -> list[bytes]:
    common = {"ticket_id": ticket, "channel": "chat", "source": "webchat", "topic": "billing"}
    steps: list[dict[str, object]] = [
        {"type": "contact_received", "customer_id": "cust-0042", "text": "Счёт не пришёл"},
        {"type": "assigned", "team": "tier1", "agent": "agent-07"},
        {"type": "agent_replied", "agent": "agent-07"},
        {"type": "status_changed", "status": "waiting_customer"},
        {"type": "contact_received", "customer_id": "cust-0042", "text": "Спасибо, пришёл"},
        {"type": "status_changed", "status": "resolved"},
    ]
    return [
        orjson.dumps(
            {
                **common,
                **step,
                "event_id": f"{ticket}-{n}",
                "occurred_at": (opened + timedelta(minutes=7 * n)).isoformat(),
            }
        )
        for n, step in enumerate(steps)
    ]


async def test_a_tickets_events_within_the_interval_give_one_state_sent_before_the_checkpoint(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    # An hour between sends, and no checkpoint before the stop: the state leaves only with the last one.
    settings = isolated_settings.model_copy(update={"detector_ticket_states_seconds": 3600.0})
    await ensure_topics(settings)
    worker = start_worker(settings)
    await wait_for_metrics(worker, lambda m: m.get("contactpulse_detector_owner", 0) == 1, timeout=60)
    ticket = "T-states-1"
    events = lifecycle(ticket, datetime.now(UTC) - timedelta(hours=2))
    for n, event in enumerate(events, start=1):  # each its own poll
        await produce(settings.kafka_bootstrap_servers, settings.topic_events, [(ticket.encode(), event)])
        await detector_judged(worker, n)
    await asyncio.sleep(1.5)  # several polls more
    held = await consume_until_quiet(settings.kafka_bootstrap_servers, settings.topic_tickets, quiet=1.0)
    assert [r for r in held if r.key == ticket.encode()] == []  # per poll, there were six by now

    worker.stop()  # graceful: the last checkpoint, and first what it must not hold unsent
    assert worker.process.returncode == 0, worker.log()[-3000:]
    sent = await consume_until_quiet(settings.kafka_bootstrap_servers, settings.topic_tickets, quiet=1.0)
    states = [orjson.loads(r.value) for r in sent if r.key == ticket.encode()]
    assert len(states) == 1
    assert states[0]["status"] == "resolved"
    assert states[0]["agent"] == "agent-07"
    assert states[0]["agent_replies"] == 1
