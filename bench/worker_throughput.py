"""The whole worker on the real broker next to a bare aiokafka consume -> produce loop, in the same run.

    .venv/bin/python bench/worker_throughput.py [--events 60000] [--bootstrap 127.0.0.1:9092]
        [--layouts one,two] [--checkpoint-seconds 5] [--window 20] [--trials 5] [--trial-seconds 8]
        [--setting NAME=VALUE ...]

`--setting` changes one worker setting (a `schemas.settings.Settings` field) for both layouts, so a
change is measured without a code edit: e.g. `--setting detector_fetch_wait_seconds=0.1`.

1. Bare loop: one aiokafka consumer reads N records from a 4-partition topic and a producer writes each
   to another topic (acks=all): the floor any Kafka stage pays per record on this machine. It runs just
   before and just after each layout (the faster counts), and once at the start without counting.
2. Worker, reading a backlog: the worker starts and takes 1,000 realistic simulated events (consumer groups
   joined, tables made); then N more are produced to contacts.events (4 partitions) at once: by default
   while the workers are frozen (SIGSTOP, a few seconds, within the session timeout), so the clock starts
   with the backlog waiting in Kafka, as the bare loop's input does (`--backlog arriving`: produced while
   the workers read it, the bench's producer on the same two cores; every figure before 2026-12-02's
   sixth session was measured that way). They are
   the last events before now of a simulation, so the stream clock ends where the latency traffic
   (stamped now) begins. The rate is N over the time from the start of that produce to the instant the
   last of them is both detected and in ClickHouse (validation, the ClickHouse sink, the event-time
   merge, every detector, alerts and ticket states out); each stage's own rate (validated, detected,
   in ClickHouse) is printed beside it. Detected means applied by the engine. Right after the backlog
   each partition gets one event stamped now (a new ticket), as a steady stream goes on: so the
   backlog's last events leave the event-time merge on those, instead of waiting for quiet partitions
   (2 s idle time) as a stream's very last events do. Until 2026-12-03 (third session) detected meant
   applied or held by the merge, which also counted events read and not yet applied (the merge holds
   up to 10,000 per partition); before that the 2 s idle wait counted, a third or more of a
   60,000-event run. So are the events the detector refused (late, duplicate,
   invalid): the stream is clean and each partition in order, so any of them is a defect (with
   partitions idle after 0.2 s, 7,300-15,900 of 61,000 were late: see README, event-time merge).
   Both layouts run: one process with everything, and two (`CONTACTPULSE_WORKER_ROLES=detector` and
   `=sink`), each with its own core if the machine has one to give.
3. Worker, sustained: the highest rate a steady stream is kept up with, by bisection (`--trials` steps of
   `--trial-seconds` each, between nothing and the backlog's rate), each step the traffic and probes of
   the latency window below, the worker caught up before the next. Kept up means the bench sent at the
   rate, every probe was answered, latency did not climb, and ClickHouse had the step's last event
   within 5 s of it (`keeping_up`: the "sustainable throughput" of stream-processing benchmarks, for
   the whole pipeline, not the detector alone). This is the rate the goals are judged on (since
   2026-12-03, fifth session; before, the backlog's rate, which is a catch-up rate: a steady stream
   comes in polls of a few hundred events, not 2,000, and costs about twice as much an event, so
   half the backlog's rate asked the whole machine, not half of it). Each step's events stay in the
   state, so the later steps and the window run on a larger one (more tickets, larger clusters).
   With `--trials 0` there is no search and the window asks half the backlog's rate, as before.
4. Latency at half the sustained rate: the worker is caught up (the sink too, on the ticket snapshots
   and alerts that came after the last event); the simulation goes on at 50% of the sustained rate, each
   event stamped with the instant it is sent (its tickets are the backlog's: replies, assignments,
   resolutions, CSAT, new contacts: the backlog's mix, and the steps'), and one in 20
   events is a `csat_submitted` probe with score 1 on a ticket of its own (it fires `negative_csat`
   at once). Until 2026-12-03 the traffic was new tickets only (`--latency-traffic new-tickets`), a
   new ticket per event: 30 us of detector CPU each against 17 us for the backlog's mix, so "half the
   rate" asked nearly nine tenths of the detector;
   event -> alert latency is from the broker's acknowledgement of the probe (the event is in Kafka) to
   the alert record's timestamp (CreateTime: the instant the detector hands it to its producer, which
   sends it within its 5 ms linger). (From the produce call instead, a producer in this process that
   falls behind the pace counts its own queue as the worker's latency.) The rate achieved is printed.
   The traffic goes out every 5 ms, what is due by then as one batch per partition (an upstream
   producer's linger): sent record by record, the bench's producer took a third of a core of the two
   the workers share.
   Probes go out for the window (20 s); the traffic goes on 3 s more without probes, so the last
   probes leave the event-time merge on the other partitions' next events, as in a steady stream,
   rather than after the 2 s a stream's last events wait for quiet partitions (until 2026-12-03 that
   wait was in the window: its last 2 s held a probe of 2.0-2.2 s in every run, and at 500 probes
   a second, the last fifth of a second of them is 1%, enough to set the p99).
   The detector checkpoints every 5 s here (60 s by default), so the 20 s window holds several
   checkpoint forks; their count and the loop's share are printed, and the worst latency of each 2 s.
5. CPU per event: each worker process's CPU time (`process_cpu_seconds_total` on its /metrics; its
   checkpoints' forked children not included) per event the detector applied, through the latency
   window and through the backlog: where the machine's two cores went. It moves with the VM's speed
   as the rates do (the detector 37-78 us an event through windows of one afternoon), so a change is
   judged on runs taken in turn with and without it.
   Beside it, each table's ClickHouse rows per event: a ticket's state goes out once a second, so a
   stream writes more ticket snapshots an event than a backlog does, and they cost both processes.
It needs a broker (deploy/kafka/kafkactl start). The figure that matters is worker / bare; absolute numbers
move with the machine. Nothing here gates CI. Each run deletes the topics it made.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import processors
from schemas.settings import Settings, settings_to_env
from simulation.traffic import MOSCOW, TrafficSimulator
from stream.keyed_batches import partition_for
from stream.topics import delete_topics_where, ensure_topics

PARTITIONS = 4
TOPICS = ("raw", "events", "tickets", "dead_letter", "alerts_oncall", "alerts_product")


async def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def produce_tail(bootstrap: str, topic: str) -> None:
    """One new ticket on each partition, stamped now: what comes after a backlog in a steady stream."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        stamp = datetime.now(UTC).isoformat()
        for partition in sorted(await producer.partitions_for(topic)):
            ticket = f"tail-{uuid.uuid4().hex[:10]}"
            event = {**new_ticket(partition)[1], "event_id": f"{ticket}-0", "ticket_id": ticket}
            event["occurred_at"] = stamp
            await producer.send(topic, key=ticket.encode(), value=orjson.dumps(event), partition=partition)
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
        await delete_topics_where(bootstrap, lambda name: suffix in name)


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


def stalls(before: dict[str, float], after: dict[str, float]) -> str:
    """The worker's event-loop stalls during the latency run (its 20 ms timer's lateness histogram),
    and its checkpoint forks: where a slow p99 comes from when it is the worker's own doing."""
    name = "contactpulse_event_loop_stall_seconds"

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    total = delta(f"{name}_count")
    parts = [f"{total:.0f} timer ticks"]
    for bound in ("0.1", "0.25", "0.5", "1.0"):
        late = total - delta(f'{name}_bucket{{le="{bound}"}}')
        parts.append(f"{late:.0f} late > {float(bound) * 1000:.0f} ms")
    forks = delta("contactpulse_detector_checkpoint_fork_seconds_count")
    fork_seconds = delta("contactpulse_detector_checkpoint_fork_seconds_sum")
    parts.append(f"{forks:.0f} checkpoint forks ({fork_seconds * 1000:.0f} ms in all)")
    written = delta("contactpulse_detector_checkpoint_seconds_count")
    writing = delta("contactpulse_detector_checkpoint_seconds_sum")
    parts.append(f"{written:.0f} checkpoints written ({writing:.1f} s from fork to written, in all)")
    poll = "contactpulse_detector_poll_seconds"
    for phase in ("fetch", "apply", "publish"):
        count = delta(f'{poll}_count{{phase="{phase}"}}')
        slow = count - delta(f'{poll}_bucket{{le="0.25",phase="{phase}"}}')
        held = delta(f'{poll}_sum{{phase="{phase}"}}')
        parts.append(f"poll {phase} {held:.1f} s in all, {slow:.0f} of {count:.0f} over 250 ms")
    pause = 'contactpulse_gc_pause_seconds_{}{{generation="{}"}}'
    for generation, name in (("0", "young"), ("1", "middle"), ("2", "full")):
        collections = delta(pause.format("count", generation))
        held = delta(pause.format("sum", generation))
        garbage = delta(f'contactpulse_gc_collected_objects_total{{generation="{generation}"}}')
        parts.append(
            f"{collections:.0f} {name} garbage collections ({held * 1000:.0f} ms in all, "
            f"{garbage:,.0f} objects found)"
        )
    return ", ".join(parts)


@dataclass(frozen=True)
class Trial:
    """One step of the steady-rate search: a steady stream at `rate` for a while."""

    rate: float
    probes: list[tuple[float, float]]
    """(seconds into the trial, event -> alert latency) of each probe answered."""
    verdict: str | None
    """None when the worker kept up; otherwise why not."""
    behind: float
    """Seconds from the step's last event to every stage having it (ClickHouse last)."""

    def describe(self) -> str:
        latencies = [latency for _, latency in self.probes]
        p50 = statistics.median(latencies) * 1000 if latencies else 0.0
        outcome = "kept up" if self.verdict is None else f"not kept up ({self.verdict})"
        return f"{self.rate:,.0f}/s {outcome}, p50 {p50:.0f} ms, all stages {self.behind:.1f} s after"


BEHIND_LIMIT_SECONDS = 5.0
"""How long after a step's last event every stage may still be without it: the sink writes once a
second with its fetches held up to half a second, so a sink that keeps up has it in ClickHouse 1-3 s
after; one that fell behind through the step has its queue still to write."""

QUEUE_GROWTH_SECONDS = 0.1
"""How much later the median probe may come in a trial's second half than in its first: a stream the
worker does not keep up with queues, and its latency climbs for as long as it lasts (at 5% over what it
can take, by 0.05 s every second)."""


def keeping_up(
    rate: float, achieved: float, probes: list[tuple[float, float]], seconds: float, behind: float
) -> str | None:
    """Whether a steady stream at `rate` for `seconds` was kept up with: None if so, otherwise why not.

    Kept up: the bench sent at the rate asked (a bench that cannot is a machine already full), every
    probe was answered, latency did not climb (the median of the second half no more than
    `QUEUE_GROWTH_SECONDS` above the first's; the first second, the stream's start, left out), and
    every stage, ClickHouse too, had the last event within `BEHIND_LIMIT_SECONDS` (`behind`). This is
    the "sustainable throughput" of Karimov et al., *Benchmarking Distributed Stream Data Processing
    Systems* (ICDE 2018): the highest load a system takes without latency that keeps growing."""
    if achieved < 0.95 * rate:
        return f"the bench sent {achieved:,.0f}/s"
    expected = (int(rate * seconds) + 19) // 20
    if len(probes) < expected:
        return f"{expected - len(probes)} of {expected} probes unanswered"
    first = [latency for at, latency in probes if 1.0 <= at < seconds / 2]
    second = [latency for at, latency in probes if at >= seconds / 2]
    if not first or not second:
        return "too few probes to judge"
    if behind > BEHIND_LIMIT_SECONDS:
        return f"ClickHouse {behind:.1f} s behind at its end"
    before, after = statistics.median(first), statistics.median(second)
    if after > before + QUEUE_GROWTH_SECONDS:
        return f"latency climbed, median {before * 1000:.0f} -> {after * 1000:.0f} ms"
    return None


@dataclass(frozen=True)
class Run:
    stages: dict[str, float]
    """Events per second to each stage's last event (validated, detected, in ClickHouse)."""
    timeline: list[tuple[float, float]]
    """Each probe: seconds into the latency window, its event -> alert latency."""
    achieved: float
    loop: str
    """The detector's loop through the latency window."""
    backlog_loop: str
    """The detector's loop through the backlog: where its time went while it was the slowest stage."""
    settled: float
    """Seconds from the last event in ClickHouse to the sink's end of every topic (snapshots, alerts)."""
    refused: dict[str, float]
    """The detector's verdicts other than accepted over the backlog (all 0 for this clean stream)."""
    cpu: str
    """Each process's CPU time per event through the latency window."""
    backlog_cpu: str
    """The same through the backlog."""
    rows: str
    """ClickHouse rows per event through the latency window, and through the backlog."""
    trials: list[Trial]
    """The steady-rate search before the window, in the order tried."""

    @property
    def latencies(self) -> list[float]:
        return [latency for _, latency in self.timeline]

    @property
    def backlog(self) -> float:
        """Events per second through everything, reading the backlog: the slowest stage's."""
        return min(self.stages.values())

    @property
    def sustained(self) -> float:
        return sustained_rate(self.backlog, self.trials)


def sustained_rate(backlog: float, tried: list[Trial]) -> float:
    """The rate the goals are judged on, and the latency window asks half of: the highest steady rate
    kept up with (0 when none was), or with no search the backlog's (as until 2026-12-03)."""
    if not tried:
        return backlog
    return max((trial.rate for trial in tried if trial.verdict is None), default=0.0)


SINK_SETTLE_LIMIT_SECONDS = 120.0


async def sink_settled(settings: Settings) -> float:
    """Wait until the ClickHouse sink's group has committed the end of every topic it reads; the seconds
    waited. The detector's ticket snapshots and alerts reach it after the events they came from, so when
    the last event is in ClickHouse the sink still has their backlog to write: a latency window started
    then measures the detector beside a busy sink, not a caught-up worker."""
    started = time.perf_counter()
    bootstrap, group = settings.kafka_bootstrap_servers, f"{settings.app_id}-clickhouse-sink"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = (
            settings.topic_events,
            settings.topic_tickets,
            settings.topic_alerts_oncall,
            settings.topic_alerts_product,
            settings.topic_dead_letter,
        )
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in consumer.partitions_for_topic(topic) or ()
        ]
        ends = await consumer.end_offsets(partitions)
        while time.perf_counter() - started < SINK_SETTLE_LIMIT_SECONDS:
            committed = {tp: await consumer.committed(tp) for tp in partitions}
            if all((committed[tp] or 0) >= end for tp, end in ends.items()):
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"the sink did not catch up within {SINK_SETTLE_LIMIT_SECONDS:.0f} s")
    finally:
        await consumer.stop()
    return time.perf_counter() - started


def written(metrics: dict[str, float]) -> float:
    """Contact events in ClickHouse, by the sink's own count."""
    return metrics.get('contactpulse_clickhouse_rows_written_total{table="contact_events"}', 0.0)


def detected(metrics: dict[str, float]) -> float:
    return sum(
        v
        for k, v in metrics.items()
        if k.startswith("contactpulse_detector_events_total{") and 'verdict="invalid"' not in k
    )


def cpu_per_event(roles: list[str], before: list[dict[str, float]], after: list[dict[str, float]]) -> str:
    """Each worker process's CPU time per event the detector applied in between (its checkpoints' forked
    children not included): where the cores went, stage by stage."""
    events = detected(after[0]) - detected(before[0])
    if events <= 0:
        return "no events"
    name = "process_cpu_seconds_total"
    return ", ".join(
        f"{role} {(later.get(name, 0.0) - earlier.get(name, 0.0)) / events * 1e6:.0f} us"
        for role, earlier, later in zip(roles, before, after, strict=True)
    )


def rows_per_event(before: list[dict[str, float]], after: list[dict[str, float]]) -> str:
    """ClickHouse rows each table got per event the detector applied in between: a ticket snapshot is
    written once a second per changed ticket, so a steady stream (a ticket's events seconds apart)
    writes more of them an event than a backlog (several events of a ticket in one second)."""
    events = detected(after[0]) - detected(before[0])
    if events <= 0:
        return "no events"

    def rows(table: str) -> float:
        name = f'contactpulse_clickhouse_rows_written_total{{table="{table}"}}'
        return after[-1].get(name, 0.0) - before[-1].get(name, 0.0)

    tables = ("contact_events", "tickets", "alerts")
    return ", ".join(f"{table} {rows(table) / events:.2f}" for table in tables)


async def worker_run(
    bootstrap: str,
    count: int,
    workdir: Path,
    split: bool,
    checkpoint_seconds: float,
    window: float,
    backlog_waiting: bool,
    latency_traffic: str,
    trials: int,
    trial_seconds: float,
    overrides: dict[str, str],
) -> Run:
    suffix = uuid.uuid4().hex[:8]
    port = 6100 + int(suffix[:3], 16) % 800
    fields: dict[str, object] = {
        "kafka_bootstrap_servers": bootstrap,
        "clickhouse_dsn": f"chdb://{workdir / 'clickhouse'}",
        "app_id": f"bench-{suffix}",
        "data_dir": workdir / "data",
        **{
            f"topic_{name}": f"bench-{suffix}.{name}"
            for name in ("raw", "events", "tickets", "dead_letter", "alerts_oncall", "alerts_product")
        },
        "topic_partitions": PARTITIONS,
        "web_port": port,
        "detector_idle_advance_seconds": 0,
        "detector_checkpoint_seconds": checkpoint_seconds,
    }
    # `--setting` wins over the bench's own choices (e.g. detector_idle_advance_seconds).
    settings = Settings(**{**fields, **overrides})  # type: ignore[arg-type]
    await ensure_topics(settings)
    # About 5,000 events a simulated weekday, fewer at weekends: simulate enough days and keep the last
    # events before now, so the stream clock meets the latency run's traffic (stamped now) where the
    # backlog ended. (Until 2026-12-02 the backlog was the first events of a simulation 45 days back:
    # the first latency event moved the clock a month and fired a month of deadlines and hourly work in
    # one poll, the 1-2 s latency at the window's start; and earlier, 3 days back, every run measured
    # about 14,000 events whatever was asked.)
    warm_up = 1000
    days = 3 + (warm_up + count) // 3000
    simulator = TrafficSimulator(
        seed=5, start=datetime.now(MOSCOW) - timedelta(days=days), broken_share=0.0, duplicate_share=0.0
    )
    simulated = simulator.advance(datetime.now(MOSCOW) - timedelta(minutes=1))
    records = [(record.key, record.value) for record in simulated][-(warm_up + count) :]
    if len(records) < warm_up + count:
        raise SystemExit(f"the simulator gave {len(records) - warm_up} events, not {count}: ask for fewer")
    # The detector's process serves the metrics read here; with `split`, a second process runs the sink.
    layout = [("detector", port), ("sink", port + 1)] if split else [("sink,detector", port)]
    processes = []
    logs = []
    for roles, web_port in layout:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTPULSE_")}
        env.update(settings_to_env(settings))
        env["CONTACTPULSE_WORKER_ROLES"] = roles
        env["CONTACTPULSE_WEB_PORT"] = str(web_port)
        env["CONTACTPULSE_DATA_DIR"] = str(workdir / f"data-{roles.replace(',', '-')}")
        logs.append((workdir / f"worker-{roles.replace(',', '-')}.log").open("wb"))
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker"],
                stdout=logs[-1],
                stderr=subprocess.STDOUT,
                env=env,
                cwd=Path(__file__).resolve().parent.parent,
            )
        )
    urls = (f"http://127.0.0.1:{port}/metrics", f"http://127.0.0.1:{layout[-1][1]}/metrics")

    async def scrape_each() -> list[dict[str, float]]:
        """Each process's metrics, the detector's first."""
        return [await scrape(url) for url in dict.fromkeys(urls)]

    async def until_through(total: int) -> dict[str, float]:
        """When each stage has had `total` events: validated (the sink's admission step), detected,
        and in ClickHouse (perf_counter instants)."""
        done: dict[str, float] = {}
        while len(done) < 3:
            pages = await scrape_each()
            now = time.perf_counter()
            for stage, count in (
                ("validated", sum(page.get("contactpulse_events_accepted_total", 0.0) for page in pages)),
                ("detected", detected(pages[0])),
                ("in ClickHouse", written(pages[-1])),
            ):
                if stage not in done and count >= total:
                    done[stage] = now
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a worker exited; see the logs in {workdir}")
            await asyncio.sleep(0.02)
        return done

    try:
        # Started and caught up (consumer groups joined, tables made), then the backlog arrives.
        await produce_all(bootstrap, settings.topic_events, records[:warm_up])
        await until_through(warm_up)
        before_backlog = await scrape_each()
        if backlog_waiting:
            # Like the bare loop's input: the backlog is in Kafka before the clock starts. The workers
            # are frozen meanwhile (a few seconds, well within the session timeout), so they read it as
            # a restart finds it, with the bench's producer no longer on the machine's two cores.
            for process in processes:
                process.send_signal(signal.SIGSTOP)
            try:
                await produce_all(bootstrap, settings.topic_events, records[warm_up:])
                await produce_tail(bootstrap, settings.topic_events)
            finally:
                for process in processes:
                    process.send_signal(signal.SIGCONT)
            started = time.perf_counter()
        else:
            started = time.perf_counter()
            await produce_all(bootstrap, settings.topic_events, records[warm_up:])
            await produce_tail(bootstrap, settings.topic_events)
        done = await until_through(len(records))
        after_backlog = await scrape_each()
        verdicts = after_backlog[0]
        refused = {
            verdict: verdicts.get(f'contactpulse_detector_events_total{{verdict="{verdict}"}}', 0.0)
            for verdict in ("late", "duplicate", "invalid")
        }
        measured = len(records) - warm_up
        rates = {stage: measured / (at - started) for stage, at in done.items()}
        settled = await sink_settled(settings)

        def traffic_for(rate: float, seconds: float) -> list[tuple[bytes, dict[str, object]]] | None:
            if latency_traffic != "simulated":
                return None
            return continuation(simulator, window_events(settings, rate, seconds) + 1)

        # The steady rate first: the highest rate a steady stream is kept up with, by bisection between
        # nothing (kept up with) and the backlog's rate (taken as too much: a steady stream comes in
        # polls of a few hundred events, not the backlog's 2,000, and costs more an event). Each
        # step's events stay in the state (tickets, clusters, seen ids) as a stream's would.
        tried: list[Trial] = []
        produced = len(records) + PARTITIONS
        low, high = 0.0, min(rates.values())
        for _ in range(trials):
            await sink_settled(settings)  # the ticket states and alerts too, before each step
            rate = (low + high) / 2
            pace = Pace()
            probes = await latency_run(settings, rate, pace, trial_seconds, traffic_for(rate, trial_seconds))
            produced += window_events(settings, rate, trial_seconds)
            await until_through(produced)
            behind = time.perf_counter() - pace.ended
            verdict = keeping_up(rate, pace.rate, probes, trial_seconds, behind)
            tried.append(Trial(rate, probes, verdict, behind))
            low, high = (rate, high) if verdict is None else (low, rate)
        # Then the latency window at half of it (of the backlog's rate with no search, as until
        # 2026-12-03), caught up first; none when no step was kept up with.
        asked = sustained_rate(min(rates.values()), tried) / 2
        pace = Pace()
        latencies: list[tuple[float, float]] = []
        await until_through(produced)
        await sink_settled(settings)
        before = after = await scrape_each()
        if asked > 0:
            traffic = traffic_for(asked, window)
            latencies = await latency_run(settings, asked, pace, window, traffic)
            after = await scrape_each()
        names = [roles for roles, _ in layout]
        return Run(
            rates,
            latencies,
            pace.rate,
            stalls(before[0], after[0]),
            stalls(before_backlog[0], verdicts),
            settled,
            refused,
            cpu_per_event(names, before, after),
            cpu_per_event(names, before_backlog, after_backlog),
            f"{rows_per_event(before, after)} / {rows_per_event(before_backlog, after_backlog)}",
            tried,
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        for log in logs:
            log.close()
        # Every run's topics go (the app's, its changelogs, the lease): a broker kept between runs
        # with the 3,067 partitions earlier runs had left behind was slower for every figure.
        await delete_topics_where(bootstrap, lambda name: suffix in name)


LATENCY_TICK = 0.005
"""The latency traffic is produced every 5 ms, what is due by then."""


def new_ticket(n: int) -> tuple[bytes, dict[str, object]]:
    """A new e-mail contact on a ticket of its own (the latency traffic until 2026-12-03)."""
    ticket = f"lat-{uuid.uuid4().hex[:10]}"
    return ticket.encode(), {
        "event_id": f"{ticket}-{n}",
        "type": "contact_received",
        "ticket_id": ticket,
        "channel": "email",
        "customer_id": f"bench-{n % 500}",
        "text": "Не приходят счета на почту",
    }


def window_events(settings: Settings, rate: float, seconds: float) -> int:
    """How many events the latency window sends at `rate`: its probing seconds, then the partition idle
    time and a second more (see `latency_run`)."""
    return int(rate * (seconds + settings.detector_partition_idle_seconds + 1.0))


def continuation(simulator: TrafficSimulator, count: int) -> list[tuple[bytes, dict[str, object]]]:
    """The simulation's next `count` events after the backlog, parsed (each is stamped when sent)."""
    events: list[tuple[bytes, dict[str, object]]] = []
    until = datetime.now(MOSCOW)
    while len(events) < count:
        until += timedelta(days=2)
        events += [(record.key, orjson.loads(record.value)) for record in simulator.advance(until)]
    return events[:count]


@dataclass
class Pace:
    """What `latency_run` reports of its sending: the rate achieved, and the instant (perf_counter) Kafka
    had the last event."""

    rate: float = 0.0
    ended: float = 0.0


async def latency_run(
    settings: Settings,
    rate: float,
    pace: Pace,
    seconds: float,
    traffic: list[tuple[bytes, dict[str, object]]] | None,
) -> list[tuple[float, float]]:
    """Traffic at `rate`: `traffic`'s events in order (or, with None, new e-mail contacts), each stamped
    when sent, and one in 20 a negative CSAT probe (`negative_csat` fires at once); for each probe,
    (seconds into the window at its acknowledgement, seconds from that acknowledgement to its alert)."""
    bootstrap = settings.kafka_bootstrap_servers
    consumer = AIOKafkaConsumer(
        settings.topic_alerts_oncall, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest"
    )
    await consumer.start()
    await asyncio.sleep(1.0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    latencies: list[tuple[float, float]] = []
    """(seconds into the window the probe was acknowledged, its latency)"""

    async def read_alerts() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    alert = orjson.loads(record.value)
                    ticket = alert.get("subject", {}).get("ticket_id")
                    if alert["rule"] == "negative_csat" and ticket in sent and alert["status"] == "firing":
                        acked = sent.pop(ticket)
                        latencies.append((acked - window_start, record.timestamp / 1000 - acked))

    window_start = time.time()
    reader = asyncio.create_task(read_alerts())
    partitions = sorted(await producer.partitions_for(settings.topic_events))

    def acknowledged(probes: list[str]) -> Callable[[object], None]:
        def note(_: object) -> None:
            at = time.time()
            for ticket in probes:
                sent[ticket] = at

        return note

    try:
        # Probes are sent for `seconds`; the traffic goes on for the partition idle time and a second
        # more, so that the window's last probes leave the event-time merge as in a steady stream (on
        # the next events of the other partitions). When a stream stops, its last events wait for the
        # other partitions to be quiet for the idle time (2 s): until 2026-12-03 the window's last
        # probes did (up to 2.2 s), and at 500 probes a second its last fifth of a second is the p99.
        probing = int(rate * seconds)
        total = window_events(settings, rate, seconds)
        started = time.perf_counter()
        n = 0
        while n < total:
            # What is due by now, as one batch per partition (what a producer's linger does upstream):
            # sent one by one, the bench's own producer took 0.35-0.5 of a core at 12,000 events/s,
            # a core the workers under test share.
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            occurred_at = datetime.now(UTC).isoformat()
            batches: dict[int, list[tuple[bytes, bytes, str | None]]] = {}
            while n < due:
                probe: str | None = None
                if n % 20 == 0 and n < probing:
                    probe = f"lat-{uuid.uuid4().hex[:10]}"
                    key, event = (
                        probe.encode(),
                        {
                            "event_id": f"{probe}-{n}",
                            "type": "csat_submitted",
                            "ticket_id": probe,
                            "channel": "email",
                            "customer_id": f"bench-{n % 500}",
                            "score": 1,
                        },
                    )
                elif traffic is not None:
                    key, event = traffic[n - (min(n, probing) + 19) // 20]  # the probes before n skipped
                else:
                    key, event = new_ticket(n)
                event["occurred_at"] = occurred_at
                batches.setdefault(partition_for(key, partitions), []).append(
                    (key, orjson.dumps(event), probe)
                )
                n += 1
            for partition, records in batches.items():
                batch = producer.create_batch()
                probes: list[str] = []
                for key, value, probe_ticket in records:
                    if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it
                        delivery = await producer.send_batch(
                            batch, settings.topic_events, partition=partition
                        )
                        delivery.add_done_callback(acknowledged(probes))
                        batch, probes = producer.create_batch(), []
                        batch.append(key=key, value=value, timestamp=None)
                    if probe_ticket is not None:
                        probes.append(probe_ticket)
                delivery = await producer.send_batch(batch, settings.topic_events, partition=partition)
                delivery.add_done_callback(acknowledged(probes))
            await asyncio.sleep(LATENCY_TICK)
        await producer.flush()
        pace.ended = time.perf_counter()
        pace.rate = total / (pace.ended - started)
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


TIMELINE_STEP = 2.0


def timeline(probes: list[tuple[float, float]]) -> str:
    """The worst latency of each step of the window: a queue that grows climbs, a stall is one peak."""
    worst: dict[int, float] = {}
    for at, latency in probes:
        step = int(at // TIMELINE_STEP)
        worst[step] = max(worst.get(step, 0.0), latency)
    steps = range(max(worst, default=-1) + 1)
    return " ".join(f"{worst.get(step, 0.0) * 1000:.0f}" for step in steps) + " ms"


def goals(run: Run, bare: float) -> str:
    """Issue 9's three goals, each met or not: >= 10,000 events/s sustained, >= a quarter of the bare
    loop, and p99 event -> alert under 500 ms at half the sustained rate."""
    p99 = percentile(run.latencies, 0.99) if run.latencies else float("inf")
    met = (
        run.sustained >= 10_000,
        run.sustained >= 0.25 * bare,
        p99 < 0.5,
    )
    names = ("10,000 events/s", "a quarter of the bare loop", "p99 under 500 ms")
    return ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in zip(names, met, strict=True)) + (
        f" ({sum(met)} of 3)"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--layouts", default="one,two", help="one (everything in one process), two, or both")
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=5.0,
        help="the detector checkpoint interval (the product: 60 s; 5 puts several in the window)",
    )
    parser.add_argument("--window", type=float, default=20.0, help="seconds of traffic in the latency run")
    parser.add_argument(
        "--backlog",
        choices=("waiting", "arriving"),
        default="waiting",
        help="waiting: produced while the workers are frozen, then read (as the bare loop reads its "
        "input); arriving: produced while they read it (the bench's producer shares the two cores)",
    )
    parser.add_argument(
        "--latency-traffic",
        choices=("simulated", "new-tickets"),
        default="simulated",
        help="simulated: the simulation goes on past the backlog (its mix); new-tickets: every event a "
        "new e-mail contact on a ticket of its own (the window's traffic until 2026-12-03)",
    )
    parser.add_argument("--trials", type=int, default=5, help="steady-rate steps before the window (0: none)")
    parser.add_argument("--trial-seconds", type=float, default=8.0, help="seconds of traffic a step")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting for both layouts (a Settings field, e.g. detector_fetch_wait_seconds=0.1)",
    )
    args = parser.parse_args()
    overrides = dict(setting.split("=", 1) for setting in args.setting)
    if overrides:
        print(f"worker settings changed: {', '.join(f'{k}={v}' for k, v in overrides.items())}")
    layouts = {"one": False, "two": True}
    splits = [layouts[name] for name in args.layouts.split(",")]
    # A first bare run that does not count: on a broker just started it is sometimes half as fast
    # (41,200 then 70,100-79,700 records/s on 2026-12-02), which would flatter the worker's ratio.
    await bare_loop(args.bootstrap, args.events)
    print(f"detection core: {processors.BUILD} ({processors.BUILD_NOTE})")
    print(f"the workers' backlog: {args.backlog}; the latency window's traffic: {args.latency_traffic}")
    for split in splits:
        # The bare loop runs just before and just after each layout and the faster counts: this VM's
        # speed moves within minutes (28,000-82,000 records/s in one hour of 2026-12-03), so a bare
        # run minutes away from the worker's measured a different machine.
        before = await bare_loop(args.bootstrap, args.events)
        with tempfile.TemporaryDirectory(prefix="contactpulse-bench-") as workdir:
            run = await worker_run(
                args.bootstrap,
                args.events,
                Path(workdir),
                split,
                args.checkpoint_seconds,
                args.window,
                args.backlog == "waiting",
                args.latency_traffic,
                args.trials,
                args.trial_seconds,
                overrides,
            )
        after = await bare_loop(args.bootstrap, args.events)
        bare = max(before, after)
        name = "two processes (detector | sink)" if split else "one process (everything)"
        print(f"worker, {name}:")
        print(f"  bare aiokafka consume -> produce, before / after: {before:,.0f} / {after:,.0f} records/s")
        each = ", ".join(f"{stage} {rate:,.0f}" for stage, rate in run.stages.items())
        print(
            f"  reading a backlog: {run.backlog:>9,.0f} events/s, worker / bare: {run.backlog / bare:.2f} "
            f"({each})"
        )
        if run.trials:
            steps = "; ".join(trial.describe() for trial in run.trials)
            print(
                f"  sustained, a steady stream: {run.sustained:,.0f} events/s kept up with, worker / bare: "
                f"{run.sustained / bare:.2f} ({steps})"
            )
        print(f"  the sink's ticket and alert backlog written {run.settled:.1f} s after the last event")
        refused = ", ".join(f"{verdict} {n:,.0f}" for verdict, n in run.refused.items())
        print(f"  refused by the detector (a clean, ordered stream: all 0): {refused}")
        if run.latencies:
            p50 = statistics.median(run.latencies) * 1000
            p99 = percentile(run.latencies, 0.99) * 1000
            print(
                f"  event -> alert at {run.sustained / 2:,.0f} events/s asked, {run.achieved:,.0f} achieved "
                f"({len(run.latencies)} probes): p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
                f"{sum(1 for latency in run.latencies if latency > 0.5)} over 500 ms"
            )
            print(f"  the detector's event loop meanwhile: {run.loop}")
            print(f"  the detector's event loop through the backlog: {run.backlog_loop}")
            print(f"  CPU per event, latency window / backlog: {run.cpu} / {run.backlog_cpu}")
            print(f"  ClickHouse rows per event, latency window / backlog: {run.rows}")
            print(f"  worst latency in each {TIMELINE_STEP:.0f} s of the window: {timeline(run.timeline)}")
        print(f"  issue 9's goals: {goals(run, bare)}")


if __name__ == "__main__":
    asyncio.run(main())
