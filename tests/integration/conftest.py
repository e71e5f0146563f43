"""Real services for integration tests: the local Apache Kafka broker and the embedded ClickHouse engine.

The broker is the one `deploy/kafka/kafkactl` runs (CI starts it first; on a developer machine this
fixture starts it when none answers). Each test gets its own topic names, consumer group, web port and
ClickHouse directory, so tests never see each other's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from schemas.errors import InvalidEvent
from schemas.event import parse_contact_event
from schemas.settings import Settings, settings_to_env
from stream.topics import delete_topics_where
from tests.integration.analytics_data import Traffic, simulate

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKACTL = REPO_ROOT / "deploy" / "kafka" / "kafkactl"
BOOTSTRAP = os.environ.get("CONTACTPULSE_TEST_KAFKA", "127.0.0.1:9092")


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    if not _answers(BOOTSTRAP):
        port = BOOTSTRAP.rpartition(":")[2]
        subprocess.run([str(KAFKACTL), "start"], check=True, env={**os.environ, "KAFKA_PORT": port})
    assert _answers(BOOTSTRAP), f"no Kafka broker at {BOOTSTRAP}"
    return BOOTSTRAP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair() -> int:
    """A port p with p + 1 free too (a local broker listens on p, its controller on p + 1)."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports on loopback")


@dataclass
class PrivateBroker:
    """A broker of one test's own (its port and data directory), so the test may stop or freeze it."""

    port: int
    data_dir: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_DATA_DIR": str(self.data_dir)}

    def start(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KAFKACTL), "start"], env=self._env(), capture_output=True, text=True)

    def stop(self) -> None:
        subprocess.run([str(KAFKACTL), "stop"], env=self._env(), capture_output=True, check=False)

    def _signal(self, signal_name: str) -> None:
        # kafkactl's pid is the wrapper's; the JVM is its child.
        wrapper = (self.data_dir / "broker.pid").read_text().strip()
        subprocess.run(["pkill", f"-{signal_name}", "-P", wrapper], check=True)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing is answered (a hung broker, a GC pause)."""
        self._signal("STOP")

    def thaw(self) -> None:
        self._signal("CONT")


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    failures = []
    for attempt in range(3):  # a port taken between choosing and binding is not the test's subject
        broker = PrivateBroker(free_port_pair(), tmp_path / f"kafka-{attempt}")
        started = broker.start()
        if started.returncode == 0:
            break
        failures.append(started.stderr[-2000:])
    else:
        pytest.fail("the test's own broker did not start:\n" + "\n---\n".join(failures))
    try:
        yield broker
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            broker.thaw()
        broker.stop()


def delete_test_topics(bootstrap: str, suffix: str) -> None:
    """Delete the topics one test made, so a long-lived broker does not collect thousands of them.

    A broker kept between runs with ~9,000 leftover partitions took over a minute to reopen its port
    (it loads every log at start). Best effort: a test that broke the broker must not fail here too.
    """

    with contextlib.suppress(Exception):
        asyncio.run(asyncio.wait_for(delete_topics_where(bootstrap, lambda name: suffix in name), 30))


@pytest.fixture
def isolated_settings(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    suffix = uuid.uuid4().hex[:8]
    yield Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}",  # type: ignore[arg-type]
        app_id=f"cp-test-{suffix}",
        data_dir=tmp_path / "data",
        topic_raw=f"t-{suffix}.raw",
        topic_events=f"t-{suffix}.events",
        topic_tickets=f"t-{suffix}.tickets",
        topic_dead_letter=f"t-{suffix}.dead-letter",
        topic_alerts_oncall=f"t-{suffix}.alerts.oncall",
        topic_alerts_product=f"t-{suffix}.alerts.product",
        topic_partitions=4,  # the default: the detector must merge partitions in event-time order
        web_port=free_port(),
        sink_flush_interval_seconds=0.5,
        # Test streams are stamped in the past: the detector's clock must follow them, not the wall.
        detector_idle_advance_seconds=0,
        detector_partition_idle_seconds=0.5,
        kafka_session_timeout_seconds=6,  # a killed worker's partitions move on quickly
    )
    delete_test_topics(kafka_bootstrap, suffix)


def settings_env(settings: Settings) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONTACTPULSE_")}
    return {**env, **settings_to_env(settings)}


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:  # stuck in shutdown (its broker gone): do not leak it
                self.process.kill()
                self.process.wait(timeout=30)


@pytest.fixture
def start_worker(isolated_settings: Settings, tmp_path: Path) -> Iterator[object]:
    started: list[WorkerProcess] = []

    def start(settings: Settings | None = None) -> WorkerProcess:
        """Start `contactpulse worker` with the test's settings (or a variant of them)."""
        settings = settings or isolated_settings
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=settings_env(settings),
                cwd=tmp_path,
            )
        worker = WorkerProcess(process, log_path, f"http://127.0.0.1:{settings.web_port}/metrics")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def start_notifier(tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(settings: Settings) -> subprocess.Popen[bytes]:
        """Start `contactpulse notify` with these settings (its log beside the test's files)."""
        with (tmp_path / f"notifier-{len(started)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "notify"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=settings_env(settings),
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


async def scrape(url: str) -> dict[str, float]:
    """Counter totals by sample name and labels, e.g. `contactpulse_dead_letters_total{reason=oversized}`."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


async def wait_for_metrics(
    worker: WorkerProcess, done: object, timeout: float = 90.0, poll: float = 0.5
) -> dict[str, float]:
    """Poll /metrics until `done(values)` is true; fail with the worker's log when it never is."""
    deadline = time.monotonic() + timeout
    values: dict[str, float] = {}
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            pytest.fail(f"worker exited with {worker.process.returncode}:\n{worker.log()[-4000:]}")
        try:
            values = await scrape(worker.metrics_url)
        except aiohttp.ClientError:
            values = {}
        if values and done(values):  # type: ignore[operator]
            return values
        await asyncio.sleep(poll)
    pytest.fail(f"metrics never satisfied the condition: {values}\n{worker.log()[-4000:]}")


DETECTOR_VERDICTS = ("accepted", "duplicate", "late")


def judged(values: dict[str, float]) -> float:
    """How many events the detector has judged (accepted, duplicate or late)."""
    return sum(values.get(f"contactpulse_detector_events_total{{verdict={v}}}", 0) for v in DETECTOR_VERDICTS)


async def detector_judged(worker: WorkerProcess, count: float) -> dict[str, float]:
    """Wait until the detector has judged `count` events in all.

    Tests that tell a story of hours in a second post a step only once the previous one reached the
    detector: the raw path's partitions run concurrently, and a step overtaken by a later one by more
    than the allowed lateness (minutes of event time, milliseconds of wall time here) would be late."""
    return await wait_for_metrics(worker, lambda m: judged(m) >= count, timeout=30, poll=0.05)


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def set_topic_config(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    """Replace a topic's overrides with `config` (the legacy AlterConfigs request replaces them all)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, config)])
    finally:
        await admin.close()


async def _from_the_start(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A started consumer of every partition of `topic` from its first record, in no group; large records
    (up to the dead-letter limit) fit in one fetch."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    return consumer


async def consume_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = await _from_the_start(bootstrap, topic)
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
        # One more short poll: more records than expected is a failure the caller must see.
        for partition_records in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def consume_until_quiet(
    bootstrap: str, topic: str, quiet: float = 2.0, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a topic: read from the start until nothing new arrives for `quiet` seconds."""
    consumer = await _from_the_start(bootstrap, topic)
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() - last_new < quiet and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for partition_records in batch.values():
                if partition_records:
                    records.extend(partition_records)
                    last_new = time.monotonic()
    finally:
        await consumer.stop()
    return records


async def group_caught_up(
    bootstrap: str, group: str, topic: str, partitions: int, timeout: float = 90.0
) -> None:
    """Wait until a consumer group has committed every partition's end offset."""
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        committed: dict[object, int | None] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed = {tp: await consumer.committed(tp) for tp in tps}
            if all((committed[tp] or 0) >= ends[tp] for tp in tps):
                return
            await asyncio.sleep(0.5)
        pytest.fail(f"{group} never caught up on {topic}: committed {committed}, end offsets {ends}")
    finally:
        await consumer.stop()


def keyed_by_ticket(lines: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    """Records keyed by ticket, as every producer of contacts.events keys them (a broken line: no key)."""
    out: list[tuple[bytes | None, bytes]] = []
    for line in lines:
        try:
            out.append((str(orjson.loads(line)["ticket_id"]).encode(), line))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            out.append((None, line))
    return out


def parsable_count(lines: list[bytes]) -> int:
    """How many lines are events (what the detector counts, whatever its verdict)."""
    count = 0
    for line in lines:
        try:
            parse_contact_event(line)
        except InvalidEvent:
            continue
        count += 1
    return count


@pytest.fixture(scope="session")
def traffic() -> Traffic:
    """A month of simulated traffic through the engine, for the analytics tests (simulated once)."""
    return simulate()
