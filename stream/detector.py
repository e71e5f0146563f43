"""The detector: the engine of `processors/` over every partition of `contacts.events`, alerts out.

One worker of the group owns it at a time (`stream/lease.py`); another takes over within the session
timeout when the owner dies. The owner reads all partitions of contacts.events itself, admits each
record with the ClickHouse sink's check (`processors.admission.admit`; the sink dead-letters what
fails it), and hands each event to the event-time merge (`processors/ordering.py`), which lets events
out in `occurred_at` order once every partition that still has something to say has moved past them;
so a backlog on one partition after a restart never makes another partition's events late, and the
engine sees the order `replay` sees.
It reads the producers' topic because a partition is judged idle by its lag: downstream of another
stage, a partition would look caught up while that stage still had a backlog of it to forward.

A partition is idle (it stops holding the others back) when it is caught up with its end offset and has
delivered nothing for `detector_partition_idle_seconds`. A partition far ahead of the slowest one is
paused once it has `MAX_BUFFERED_PER_PARTITION` events waiting, so the buffer stays bounded while a
backlog is read, however far apart the partitions are in time.

Its state (the engine, the merge's buffer, the next offset of every partition) is checkpointed to a
compacted topic from a forked copy-on-write snapshot; after a crash or a move to another worker the new
owner loads the latest checkpoint and re-reads each partition from there, re-sending the alerts of that
stretch with the same ids. Duplicates and late events go to the dead-letter topic.

With `detector_idle_advance_seconds` > 0 the clock also follows the wall clock (minus that grace)
when every partition is quiet, so SLA deadlines and silence checks fire on time at night.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from mode import Service

from processors.admission import admit
from processors.engine import REFUSAL_REASON, DetectionEngine, Verdict
from processors.ordering import Applied, ArrivalGrace, OrderedDetection
from schemas.alert import Alert, Audience
from schemas.config import DetectionConfig
from schemas.errors import DeadLetterReason, InvalidEvent
from schemas.event import ContactEvent
from schemas.settings import Settings
from stream import checkpoint, huge_pages
from stream.dead_letter import DEAD_LETTER_MAX_BYTES, RECORD_HEADROOM_BYTES, DeadLetter
from stream.deliveries import Deliveries, DeliveryFailed
from stream.heap_freezer import HeapFreezer
from stream.keyed_batches import KeyedBatches
from stream.lease import DetectorLease
from stream.metrics import WorkerMetrics
from stream.topics import ensure_topic, fetch_batching, partition_count

log = logging.getLogger(__name__)

MAX_BUFFERED_PER_PARTITION: Final = 10_000
"""A partition ahead of the watermark is paused once this many of its events wait in the merge."""
RESUME_BELOW: Final = MAX_BUFFERED_PER_PARTITION // 2
"""A paused partition resumes once no more than this many of its events wait (or it is the slowest)."""


def idle_clock(
    clock_at_arrival: datetime | None, idle_seconds: float, grace_seconds: float
) -> datetime | None:
    """Where the stream clock may go after `idle_seconds` without input (None: stay).

    Only time the input was quiet beyond the grace moves it: a backlog being read (after a restart, or
    a backfill of old events) keeps arriving, so its events are never overtaken and made late; a
    quiet night moves the clock with the wall, `grace` behind, so deadlines fire on time.
    """
    if grace_seconds <= 0 or clock_at_arrival is None or idle_seconds <= grace_seconds:
        return None
    return clock_at_arrival + timedelta(seconds=idle_seconds - grace_seconds)


def checkpoint_topic(settings: Settings) -> str:
    return f"{settings.app_id}-detector-checkpoint"


def lease_topic(settings: Settings) -> str:
    return f"{settings.app_id}-detector-lease"


@dataclass(frozen=True, slots=True)
class InputRecord:
    """Where a buffered event came from: what its dead letter names if the engine refuses it."""

    partition: int
    offset: int
    value: bytes


@dataclass
class DetectorState:
    """What a checkpoint holds: the engine behind its merge, and where each input partition resumes."""

    ordered: OrderedDetection[InputRecord]
    positions: dict[int, int] = field(default_factory=dict)


@dataclass
class _Ownership:
    epoch: int
    state: DetectorState
    consumer: AIOKafkaConsumer
    partitions: list[TopicPartition]
    obsolete_keys: frozenset[bytes]
    grace: ArrivalGrace
    """How far the merge may release past idle partitions (`processors/ordering.py`): what had arrived
    an idle time ago, so a partition that went idle just before its share of a burst is not overtaken."""
    checkpoints: int = 0
    last_arrival: dict[int, float] = field(default_factory=dict)
    last_any_arrival: float = field(default_factory=time.monotonic)
    clock_at_arrival: datetime | None = None
    last_checkpoint: float = field(default_factory=time.monotonic)
    last_ticket_states: float = field(default_factory=time.monotonic)
    checkpointing: asyncio.Task[None] | None = None
    preparing: asyncio.Task[int] | None = None
    """The heap being collapsed into huge pages before a checkpoint's fork (`stream/huge_pages.py`)."""
    suspended_since: float | None = None
    """Set while a rebalance has revoked the lease and not yet said who holds it next."""


class DetectorService(Service):
    def __init__(
        self, settings: Settings, config: DetectionConfig, metrics: WorkerMetrics, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._config = config
        self._metrics = metrics
        self._freezer = HeapFreezer(metrics.gc_frozen_objects)
        bootstrap = settings.kafka_bootstrap_servers
        self._lease = DetectorLease(
            bootstrap,
            f"{settings.app_id}-detector-owner",
            lease_topic(settings),
            settings.kafka_session_timeout_seconds,
        )
        self._owned: _Ownership | None = None
        self._producer: AIOKafkaProducer | None = None
        self._checkpoint_producer: AIOKafkaProducer | None = None
        self._deliveries = Deliveries()
        """Every alert, ticket state and dead letter sent, until Kafka took it (or refused it)."""
        self._tickets: KeyedBatches | None = None
        """Ticket states on their way to the producer, a batch per partition (`stream/keyed_batches.py`)."""
        self._alerts: dict[Audience, KeyedBatches] = {}
        """Alerts on their way to the producer, the same way: a topic per audience, keyed by alert id."""

    @property
    def owns_detection(self) -> bool:
        """Whether this worker runs the detection engine now (one worker of the group does)."""
        return self._owned is not None

    async def on_start(self) -> None:
        bootstrap = self._settings.kafka_bootstrap_servers
        await checkpoint.ensure_checkpoint_topic(bootstrap, checkpoint_topic(self._settings))
        await ensure_topic(bootstrap, lease_topic(self._settings))  # one partition: one holder
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=5,
            # Ticket snapshots go out as whole batches of a poll's tickets (`stream/keyed_batches.py`).
            max_batch_size=256 * 1024,
            max_request_size=DEAD_LETTER_MAX_BYTES + RECORD_HEADROOM_BYTES,
        )
        # Checkpoints have a producer of their own: a fork waits for the alerts' producer to be flushed,
        # and a flush waits for everything that producer holds; sharing it, the fork would wait for the
        # megabytes of the checkpoint before, and alerts would queue behind them.
        self._checkpoint_producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            max_request_size=2 * checkpoint.CHUNK_BYTES + RECORD_HEADROOM_BYTES,
        )
        self._tickets = KeyedBatches(self._producer, self._settings.topic_tickets, self._deliveries)
        alert_topics = {
            Audience.PRODUCT: self._settings.topic_alerts_product,
            Audience.ONCALL: self._settings.topic_alerts_oncall,  # engineering's too (Alertmanager routes)
        }
        self._alerts = {
            audience: KeyedBatches(self._producer, topic, self._deliveries)
            for audience, topic in alert_topics.items()
        }
        await self._producer.start()
        await self._checkpoint_producer.start()
        await self._lease.start()

    async def on_stop(self) -> None:
        owned = self._owned
        if owned is not None and owned.suspended_since is None and self._lease.epoch == owned.epoch:
            # A last checkpoint, so the next owner re-reads (and re-sends) nothing.
            try:
                await self._acknowledged()
                if owned.checkpointing is not None:
                    await owned.checkpointing
                state = owned.state
                await self._write_checkpoint(
                    owned, checkpoint.state_blob(state), owned.epoch, state.positions
                )
            except Exception:
                log.warning("final detector checkpoint failed; the next owner re-reads more", exc_info=True)
        if owned is not None:
            await self._disown()
        await self._lease.stop()
        for producer in (self._producer, self._checkpoint_producer):
            if producer is not None:
                await producer.flush()
                await producer.stop()

    @Service.task
    async def _watch_loop(self) -> None:
        """Measure how late a short timer fires: the longest the loop was kept from anything else."""
        period = 0.02
        while not self.should_stop:
            started = time.perf_counter()
            await asyncio.sleep(period)
            self._metrics.event_loop_stall_seconds.observe(max(0.0, time.perf_counter() - started - period))

    @Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            owned = self._owned
            active = owned is not None and owned.suspended_since is None
            await self._lease.poll(timeout_ms=0 if active else 200)
            epoch = self._lease.epoch
            if owned is not None and epoch != owned.epoch:
                owned = await self._reconcile(owned, epoch)
            if epoch is None or (owned is not None and owned.suspended_since is not None):
                continue
            if owned is None:
                owned = await self._take(epoch)
            await self._step(owned)
            self._freezer.tick()

    async def _reconcile(self, owned: _Ownership, epoch: int | None) -> _Ownership | None:
        """The lease changed under a state we hold. A rebalance revokes and then grants again: keep the
        state while it is undecided; continue with it only when granted the very next generation (no
        other owner can have come in between), otherwise drop it and load the newer checkpoint."""
        now = time.monotonic()
        if epoch is None:
            if owned.suspended_since is None:
                owned.suspended_since = now
            elif now - owned.suspended_since > self._settings.kafka_session_timeout_seconds:
                await self._disown()
                return None
            return owned
        if epoch == owned.epoch + 1 and owned.suspended_since is not None:
            owned.epoch, owned.suspended_since = epoch, None
            return owned
        await self._disown()
        return None

    # -- ownership -------------------------------------------------------------------------------------
    async def _take(self, epoch: int) -> _Ownership:
        settings = self._settings
        bootstrap = settings.kafka_bootstrap_servers
        loaded = await checkpoint.load_latest(bootstrap, checkpoint_topic(settings))
        if loaded.checkpoint is not None:
            state: DetectorState = loaded.checkpoint.state
            ident = loaded.checkpoint.ident
            log.info(
                "detector restored from checkpoint %d.%d at offsets %s",
                ident.epoch,
                ident.number,
                ",".join(f"{p}:{offset}" for p, offset in sorted(state.positions.items())),
            )
        else:
            state = DetectorState(OrderedDetection(DetectionEngine(self._config)))
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            # Assigned by hand, never joined: the group only holds committed offsets, for lag monitoring.
            group_id=f"{settings.app_id}-detector",
            enable_auto_commit=False,
            max_partition_fetch_bytes=DEAD_LETTER_MAX_BYTES + RECORD_HEADROOM_BYTES,
            **fetch_batching(settings.detector_fetch_wait_seconds),
        )
        await consumer.start()
        count = await partition_count(bootstrap, settings.topic_events)
        partitions = [TopicPartition(settings.topic_events, n) for n in range(max(count, 1))]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, state.positions.get(tp.partition, 0))
        state.ordered.merge.track(tp.partition for tp in partitions)
        grace = ArrivalGrace(settings.detector_partition_idle_seconds)
        owned = _Ownership(epoch, state, consumer, partitions, loaded.keys, grace)
        owned.clock_at_arrival = state.ordered.engine.clock
        now = time.monotonic()
        owned.last_arrival = {tp.partition: now for tp in partitions}
        # What the checkpoint buffered counts as arrived now: released once the partitions are idle
        # with nothing new to say. (Without it a restored tail waited for the next arrival, which may be
        # hours away: the fault suite's failover lost an alert that way.)
        grace.arrived(now, state.ordered.merge.newest())
        self._owned = owned
        self._metrics.detector_owner.set(1)
        log.info(
            "detector owns %d partitions of %s (epoch %d)", len(partitions), settings.topic_events, epoch
        )
        return owned

    async def _disown(self) -> None:
        owned, self._owned = self._owned, None
        self._metrics.detector_owner.set(0)
        if owned is None:
            return
        self._deliveries.forget()  # what the dropped state sent; the next state sends its own again
        for batches in self._batches():
            batches.forget()
        if owned.checkpointing is not None:
            owned.checkpointing.cancel()
        await owned.consumer.stop()

    # -- one poll --------------------------------------------------------------------------------------
    async def _step(self, owned: _Ownership) -> None:
        state, consumer = owned.state, owned.consumer
        ordered, positions = state.ordered, state.positions
        polled = time.perf_counter()
        batch = await consumer.getmany(*owned.partitions, timeout_ms=200, max_records=2000)
        fetched = time.perf_counter()
        if self._lease.epoch != owned.epoch:
            # Ownership moved while we waited: apply nothing more, and fetch these again should the
            # lease come back with the state still held (the consumer's position has moved past them).
            for tp, records in batch.items():
                if records:
                    consumer.seek(tp, records[0].offset)
            return
        now = time.monotonic()
        wall = datetime.now(UTC)
        tolerance = timedelta(minutes=self._config.engine.future_tolerance_minutes)
        applied: list[Applied[InputRecord]] = []
        for tp, records in batch.items():
            partition = tp.partition
            arrivals: list[tuple[ContactEvent, InputRecord]] = []
            for record in records:
                value = record.value or b""
                try:
                    event = admit(value, wall, tolerance)
                except InvalidEvent:  # the ClickHouse sink dead-letters it, with the same reason
                    self._metrics.detector_events.labels(verdict="invalid").inc()
                    continue
                arrivals.append((event, InputRecord(partition, record.offset, value)))
            applied += ordered.offer_many(partition, arrivals)
            if records:
                positions[partition] = records[-1].offset + 1
                owned.last_arrival[partition] = now
                owned.last_any_arrival = now
        merge = ordered.merge
        if batch:
            owned.grace.arrived(now, merge.newest())
        idle_after = self._settings.detector_partition_idle_seconds
        for tp in owned.partitions:
            end = consumer.highwater(tp)
            caught_up = end is not None and positions.get(tp.partition, 0) >= end
            merge.set_idle(tp.partition, caught_up and now - owned.last_arrival[tp.partition] >= idle_after)
        applied += ordered.release(owned.grace.ceiling(now))
        alerts = await self._settle(applied)
        if batch:
            owned.clock_at_arrival = ordered.engine.clock
        elif merge.buffered() == 0:
            alerts += self._on_idle(owned, now)
        self._flow_control(owned)
        self._metrics.detector_buffered_events.set(merge.buffered())
        applied_at = time.perf_counter()
        if now - owned.last_ticket_states >= self._settings.detector_ticket_states_seconds:
            # A ticket's states of many polls go out as one: through a backlog it has several events
            # a second (0.46 states an event per poll of 2,000, 0.25 per second at 20,000 events/s),
            # and each state costs a produce here and a read, a check and a row in the sink.
            owned.last_ticket_states = now
            await self._publish_tickets()
        await self._publish(alerts)
        self._deliveries.sweep()
        phases = self._metrics.detector_poll_seconds
        phases.labels(phase="fetch").observe(fetched - polled)
        phases.labels(phase="apply").observe(applied_at - fetched)
        phases.labels(phase="publish").observe(time.perf_counter() - applied_at)
        due = now - owned.last_checkpoint >= self._settings.detector_checkpoint_seconds
        if due and (owned.checkpointing is None or owned.checkpointing.done()):
            # First the heap into huge pages (in a thread, seconds the first time), then the fork at
            # this point of a poll, where the state is consistent and Kafka has acknowledged its alerts.
            if owned.preparing is None:
                owned.preparing = asyncio.create_task(asyncio.to_thread(huge_pages.collapse_heap))
            elif owned.preparing.done():
                collapsed, owned.preparing = owned.preparing, None
                failure = None if collapsed.cancelled() else collapsed.exception()
                if failure is not None:
                    log.warning("heap collapse before a checkpoint failed: %s", failure)
                try:
                    await self._acknowledged()
                except DeliveryFailed as failure:
                    await self._rewind(failure)
                    return
                if self._lease.epoch == owned.epoch and self._owned is owned:
                    self._start_checkpoint(owned)

    async def _rewind(self, failure: DeliveryFailed) -> None:
        """Kafka refused something this state sent since its last checkpoint: drop the state and take
        ownership again from that checkpoint, so the input after it is read again and everything it
        produces is sent again (the same alert ids; a notifier folds repeats). A checkpoint past a lost
        alert would lose it for good."""
        self._metrics.detector_delivery_failures.inc(failure.failed)
        log.error("detector: %s; rewinding to the last checkpoint to send them again", failure)
        await self._disown()

    async def _settle(self, applied: list[Applied[InputRecord]]) -> list[Alert]:
        alerts: list[Alert] = []
        verdicts: Counter[Verdict] = Counter()
        for done in applied:
            outcome = done.outcome
            verdicts[outcome.verdict] += 1
            refused = REFUSAL_REASON.get(outcome.verdict)
            if refused is not None:
                await self._dead_letter(done.item, refused, outcome.detail)
            elif outcome.alerts:
                alerts += outcome.alerts
        # Counted once per verdict and poll: a labelled child per event was a lock and a lookup each.
        counted = self._metrics.detector_events
        for verdict, n in verdicts.items():
            counted.labels(verdict=verdict.value).inc(n)
        return alerts

    def _flow_control(self, owned: _Ownership) -> None:
        """Pause partitions far ahead (many events waiting); never the one the watermark waits for."""
        merge, consumer = owned.state.ordered.merge, owned.consumer
        slowest = merge.slowest()
        paused = consumer.paused()
        for tp in owned.partitions:
            mark = merge.sources[tp.partition]
            if mark.buffered > MAX_BUFFERED_PER_PARTITION and mark.latest > slowest:
                if tp not in paused:
                    consumer.pause(tp)
            elif tp in paused and (mark.buffered <= RESUME_BELOW or mark.latest <= slowest):
                consumer.resume(tp)  # drained to half, or it is the slowest now

    def _on_idle(self, owned: _Ownership, now: float) -> list[Alert]:
        """No new input and nothing buffered: fire what is due at the stream clock; once the input has
        been quiet for longer than the grace, let the clock follow the time that passed since."""
        engine = owned.state.ordered.engine
        if engine.clock is None:
            return []
        alerts = engine.advance_to(engine.clock)
        target = idle_clock(
            owned.clock_at_arrival,
            now - owned.last_any_arrival,
            self._settings.detector_idle_advance_seconds,
        )
        if target is not None and target > engine.clock:
            alerts += engine.advance_to(target)
        self._metrics.detector_clock_lag_seconds.set((datetime.now(UTC) - engine.clock).total_seconds())
        return alerts

    # -- output ----------------------------------------------------------------------------------------
    async def _publish(self, alerts: list[Alert]) -> None:
        """Hand the poll's alerts to the producer, as batches per partition of their audience's topic
        (`stream/keyed_batches.py`: an alert's changes keep their order, its id being the key).

        Nothing waits here for Kafka's acknowledgement: only a checkpoint needs what came before it
        acknowledged (a new owner re-sends whatever came after), so `_acknowledged` runs before the
        fork and before the last checkpoint. Waiting at every poll kept the detector idle about as long
        as it applied events (the worker bench: 9.4 s of publish beside 9.7 s of apply in a 20 s
        window). A partition holding several full batches the producer has not taken makes the poll
        wait, so a slow broker slows the detector instead of filling memory."""
        if not alerts:
            return
        by_audience: dict[Audience, list[tuple[bytes, bytes]]] = {}
        changes: Counter[tuple[str, str]] = Counter()
        for alert in alerts:
            audience = Audience.PRODUCT if alert.audience is Audience.PRODUCT else Audience.ONCALL
            by_audience.setdefault(audience, []).append((alert.alert_id.encode(), alert.to_json()))
            changes[alert.rule, alert.status.value] += 1
        for audience, records in by_audience.items():
            await self._alerts[audience].send(records)
        counted = self._metrics.alerts_sent
        for (rule, status), n in changes.items():  # once per poll and label pair, as the verdicts
            counted.labels(rule=rule, status=status).inc(n)

    def _batches(self) -> list[KeyedBatches]:
        """Everything the detector hands the producer in batches: ticket states and alerts."""
        tickets = [] if self._tickets is None else [self._tickets]
        return tickets + list(self._alerts.values())

    async def _acknowledged(self) -> None:
        """Send the states of the tickets changed since the last ones went out, then wait until Kafka
        has acknowledged everything the polls so far sent; `DeliveryFailed` if it refused (or gave up
        on) any of it. A checkpoint is forked after this, with no ticket left to send."""
        assert self._producer is not None
        assert self._tickets is not None
        await self._publish_tickets()  # what changed since the last states went out, before the fork
        for batches in self._batches():
            await batches.handed_over()
        await self._deliveries.confirm(self._producer)

    async def _publish_tickets(self) -> None:
        """Send the state of every ticket the poll changed (acknowledged with the alerts)."""
        assert self._tickets is not None
        owned = self._owned
        if owned is None:
            return
        book = owned.state.ordered.engine.tickets
        snapshots = (
            (ticket.ticket_id.encode(), book.snapshot_json(ticket)) for ticket in book.take_touched()
        )
        await self._tickets.send(snapshots)

    async def _dead_letter(self, record: InputRecord, reason: DeadLetterReason, detail: str) -> None:
        assert self._producer is not None
        letter = DeadLetter(reason, detail, self._settings.topic_events, record.partition, record.offset)
        # Not awaited one by one: like the alerts, acknowledged before the next checkpoint (`_acknowledged`).
        sending = await self._producer.send(
            self._settings.topic_dead_letter, value=record.value, headers=letter.headers()
        )
        self._deliveries.track(sending)
        self._metrics.dead_letters.labels(reason=reason.value).inc()

    # -- checkpoints -----------------------------------------------------------------------------------
    def _start_checkpoint(self, owned: _Ownership) -> None:
        """Fork a snapshot now (the state as of this poll, whose alerts are acknowledged) and write
        it in the background while events keep flowing."""
        owned.last_checkpoint = time.monotonic()
        started = time.perf_counter()
        snapshot = checkpoint.Snapshot.fork(owned.state, self._settings.data_dir / "checkpoints")
        self._metrics.detector_checkpoint_fork_seconds.observe(time.perf_counter() - started)
        epoch = owned.epoch
        positions = dict(owned.state.positions)

        async def finish() -> None:
            try:
                blob = await snapshot.blob()
                await self._write_checkpoint(owned, blob, epoch, positions)
                self._metrics.detector_checkpoint_seconds.observe(time.perf_counter() - started)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("detector checkpoint failed; the next one retries", exc_info=True)

        owned.checkpointing = asyncio.create_task(finish())

    async def _write_checkpoint(
        self, owned: _Ownership, blob: bytes, epoch: int, positions: dict[int, int]
    ) -> None:
        assert self._checkpoint_producer is not None
        owned.checkpoints += 1
        ident = checkpoint.CheckpointId(epoch, owned.checkpoints)
        records = checkpoint.encode_blob(blob, ident)
        try:
            size = await checkpoint.write(
                self._checkpoint_producer, checkpoint_topic(self._settings), records, owned.obsolete_keys
            )
        except DeliveryFailed:
            # What did arrive of this one is tombstoned with the previous one, after the next success.
            owned.obsolete_keys |= frozenset(key for key, _ in records)
            raise
        owned.obsolete_keys = frozenset(key for key, _ in records)
        self._metrics.detector_checkpoint_bytes.set(size)
        # For monitoring (consumer lag) only: recovery trusts the checkpoint.
        topic = self._settings.topic_events
        await owned.consumer.commit({TopicPartition(topic, p): offset for p, offset in positions.items()})
