"""The whole worker on the real broker next to a bare aiokafka consume -> produce loop, in the same run.

    .venv/bin/python bench/worker_throughput.py [--events 20000] [--bootstrap 127.0.0.1:9092]

1. Bare loop: one aiokafka consumer reads N records from a 4-partition topic and a producer writes each
   to another topic (acks=all): the floor any Kafka stage pays per record on this machine.
2. Worker, sustained: N realistic simulated events wait on contacts.events (4 partitions); the worker
   starts; the rate is N over the time from its first detected event to its last (validation, the
   ClickHouse sink, the event-time merge, every detector, alerts and ticket states out).
3. Latency at half that rate: the worker is caught up; new contacts are produced at 50% of the sustained
   rate, one in 20 of them a `csat_submitted` probe with score 1 (it fires `negative_csat` at once);
   event -> alert latency is from the broker's acknowledgement of the probe (the event is in Kafka) to
   the alert record's broker timestamp. (From the produce call instead, a producer in this process that
   falls behind the pace counts its own queue as the worker's latency.) The rate achieved is printed.
   Checkpoints run as configured (every 60 s).

It needs a broker (deploy/kafka/kafkactl start). The figure that matters is worker / bare; absolute numbers
move with the machine. Nothing here gates CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.settings import Settings, settings_to_env
from simulation.traffic import MOSCOW, TrafficSimulator
from stream.topics import ensure_topics

PARTITIONS = 4
TOPICS = ("raw", "events", "valid", "tickets", "dead_letter", "alerts_oncall", "alerts_product")


async def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def bare_loop(bootstrap: str, count: int) -> float:
    """Records per second through consume -> produce, nothing else."""
    suffix = uuid.uuid4().hex[:8]
    source, sink = f"bench-{suffix}.in", f"bench-{suffix}.out"
    settings = Settings(kafka_bootstrap_servers=bootstrap, topic_events=source, topic_raw=sink)
    await ensure_topics(settings)
    payload = orjson.dumps({"event_id": "x" * 16, "type": "contact_received", "text": "y" * 200})
    await produce_all(bootstrap, source, [(str(n).encode(), payload) for n in range(count)])
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batch.values():
                for record in records:
                    await producer.send(sink, key=record.key, value=record.value)
                seen += sum(1 for _ in records)
            await producer.flush()
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


async def scrape(url: str) -> dict[str, float]:
    values: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
    except aiohttp.ClientError:
        return values
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def detected(metrics: dict[str, float]) -> float:
    return sum(
        v
        for k, v in metrics.items()
        if k.startswith("contactpulse_detector_events_total{") and 'verdict="invalid"' not in k
    )


async def worker_run(bootstrap: str, count: int, workdir: Path) -> tuple[float, list[float], float]:
    suffix = uuid.uuid4().hex[:8]
    port = 6100 + int(suffix[:3], 16) % 800
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        clickhouse_dsn=f"chdb://{workdir / 'clickhouse'}",  # type: ignore[arg-type]
        app_id=f"bench-{suffix}",
        data_dir=workdir / "data",
        **{  # type: ignore[arg-type]
            f"topic_{name}": f"bench-{suffix}.{name}"
            for name in (
                "raw",
                "events",
                "valid",
                "tickets",
                "dead_letter",
                "alerts_oncall",
                "alerts_product",
            )
        },
        topic_partitions=PARTITIONS,
        web_port=port,
        detector_idle_advance_seconds=0,
    )
    await ensure_topics(settings)
    start = datetime.now(MOSCOW) - timedelta(days=3)
    simulator = TrafficSimulator(seed=5, start=start, broken_share=0.0, duplicate_share=0.0)
    records = []
    for record in simulator.advance(datetime.now(MOSCOW) - timedelta(minutes=10)):
        records.append((record.key, record.value))
        if len(records) == count:
            break
    await produce_all(bootstrap, settings.topic_events, records)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTPULSE_")}
    env.update(settings_to_env(settings))
    log = (workdir / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "worker"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        first_at = None
        while True:
            metrics = await scrape(url)
            done = detected(metrics)
            if done > 0 and first_at is None:
                first_at = time.perf_counter()
            if done >= len(records):
                break
            if process.poll() is not None:
                raise RuntimeError(f"worker exited; see {workdir / 'worker.log'}")
            await asyncio.sleep(0.05)
        assert first_at is not None
        sustained = len(records) / (time.perf_counter() - first_at)
        achieved = [0.0]
        latencies = await latency_run(settings, sustained / 2, achieved)
        return sustained, latencies, achieved[0]
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


async def latency_run(
    settings: Settings, rate: float, achieved: list[float], seconds: float = 20.0
) -> list[float]:
    """Traffic at `rate`: new e-mail contacts (no alert at once, as most traffic), and one in 20 a
    negative CSAT probe (`negative_csat` fires at once); seconds from each probe's produce to its alert."""
    bootstrap = settings.kafka_bootstrap_servers
    consumer = AIOKafkaConsumer(
        settings.topic_alerts_oncall, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest"
    )
    await consumer.start()
    await asyncio.sleep(1.0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    latencies: list[float] = []

    async def read_alerts() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    alert = orjson.loads(record.value)
                    ticket = alert.get("subject", {}).get("ticket_id")
                    if alert["rule"] == "negative_csat" and ticket in sent and alert["status"] == "firing":
                        latencies.append(record.timestamp / 1000 - sent.pop(ticket))

    reader = asyncio.create_task(read_alerts())
    try:
        total = int(rate * seconds)
        started = time.perf_counter()
        for n in range(total):
            ticket = f"lat-{uuid.uuid4().hex[:10]}"
            probe = n % 20 == 0
            event = {
                "event_id": f"{ticket}-{n}",
                "type": "csat_submitted" if probe else "contact_received",
                "occurred_at": datetime.now(UTC).isoformat(),
                "ticket_id": ticket,
                "channel": "email",
                "customer_id": f"bench-{n % 500}",
                **({"score": 1} if probe else {"text": "Не приходят счета на почту"}),
            }
            delivery = await producer.send(
                settings.topic_events, key=ticket.encode(), value=orjson.dumps(event)
            )
            if probe:
                delivery.add_done_callback(lambda _, ticket=ticket: sent.__setitem__(ticket, time.time()))
            delay = started + (n + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()
        achieved[0] = total / (time.perf_counter() - started)
        deadline = time.perf_counter() + 30
        while sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
    if sent:
        print(f"warning: {len(sent)} negative CSAT probes had no alert within 30 s", file=sys.stderr)
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = parser.parse_args()
    bare = await bare_loop(args.bootstrap, args.events)
    with tempfile.TemporaryDirectory(prefix="contactpulse-bench-") as workdir:
        sustained, latencies, achieved = await worker_run(args.bootstrap, args.events, Path(workdir))
    print(f"bare aiokafka consume -> produce:   {bare:>9,.0f} records/s")
    print(f"worker (everything), sustained:     {sustained:>9,.0f} events/s")
    print(f"worker / bare: {sustained / bare:.2f}")
    if latencies:
        p50, p99 = statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000
        print(
            f"event -> alert at {sustained / 2:,.0f} events/s asked, {achieved:,.0f} achieved "
            f"({len(latencies)} probes): "
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
