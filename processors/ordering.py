"""Event-time order across input partitions: a watermark over the partitions and a reorder buffer.

Why: the detection engine's clock is the largest `occurred_at` it has applied, and an event more than
the allowed lateness behind it is refused. Partitions of a Kafka topic are read at different speeds (a
backlog after a restart comes in bulk, one partition at a time), so feeding the engine in arrival order
makes one partition's events overtake another's and the slower ones late. Here events wait in a buffer
until every partition that still has something to say has moved past them, and leave it in event-time
order: the Flink / Kafka Streams watermark.

- A source's mark is the latest `occurred_at` it has delivered, minus `reorder_seconds` (the disorder a
  source may have within itself).
- The watermark is the smallest mark over the sources that are not idle; with every source idle it is
  +inf (nothing is left to wait for, so everything buffered goes out).
- An event stamped before the watermark leaves in `(occurred_at, event_id)` order; ties keep the order
  of arrival only between copies of one event.
- An event stamped before what has already left is *behind*: the caller applies it at once, out of order
  (the engine then decides whether it is within the allowed lateness), rather than holding it.
- `OrderedDetection` refuses as late an event more than the allowed lateness behind the latest event of
  its own source (a partition's disorder is bounded; how far other partitions have got is not).

Guarantee (tested): when no source is out of order by more than `reorder_seconds` within itself, and a
source that went idle delivers its older events within `ArrivalGrace.grace` of the other sources'
newer ones (see below), the events leave in one order, the sorted one, however they are spread over
sources and however the reads interleave. So `replay` of a file (one source) and the worker
(one source a partition) hand the engine the same sequence and publish the same alerts.

Which sources are idle is the caller's decision (it knows the wall clock and the partitions' end
offsets); this module takes no time of its own.

Idle sources and bursts. Idleness lets the others' events through instead of waiting for a source that
has nothing to say; but a source judged idle a moment before its own share of a burst arrives (every
partition quiet, then a backlog of hours produced to all of them within milliseconds) would be
overtaken by hours, and its events handed to the engine out of order: false SLA breaches, or late
events dead-lettered. So past an idle source the merge releases only what `ArrivalGrace` allows: events
stamped no later than what had been delivered `grace` seconds of the caller's clock ago. An idle source
thus always has `grace` to deliver anything older than an event before that event leaves; the cost is
up to `grace` more latency while some source is idle.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from mypy_extensions import mypyc_attr

from processors.engine import DetectionEngine, Outcome, Verdict
from schemas.event import ContactEvent

T = TypeVar("T")


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class SourceMark:
    """What the merge knows of one source (a partition)."""

    latest: float = -math.inf
    """The largest `occurred_at` (epoch seconds) this source has delivered."""
    idle: bool = False
    buffered: int = 0
    """How many of the buffered events came from this source."""


@mypyc_attr(allow_interpreted_subclasses=True)
class EventTimeMerge(Generic[T]):
    def __init__(self, reorder_seconds: float = 0.0) -> None:
        self.reorder_seconds = reorder_seconds
        self.sources: dict[int, SourceMark] = {}
        self.released_up_to = -math.inf
        """The largest `occurred_at` that has left the buffer: an event before it is behind."""
        self._in_order: deque[tuple[float, str, int, int, T]] = deque()
        """Entries that arrived in (occurred_at, event_id) order: most of them, appended and popped
        cheaply."""
        self._heap: list[tuple[float, str, int, int, T]] = []
        """Entries that arrived out of order."""
        self._arrivals = 0
        self._watermark: float | None = None
        """The watermark, kept until a mark changes (most events do not move the slowest source)."""

    def track(self, sources: Iterable[int]) -> None:
        """Sources to wait for. New ones start with nothing delivered (the watermark waits for them);
        known ones (a restored merge) start not idle: whether they have more to say is unknown."""
        for source in sources:
            self.sources.setdefault(source, SourceMark()).idle = False
        self._watermark = None

    def set_idle(self, source: int, idle: bool) -> None:
        mark = self.sources[source]
        if mark.idle is not idle:
            mark.idle = idle
            self._watermark = None

    def offer(self, source: int, occurred_at: float, event_id: str, item: T) -> bool:
        """Buffer an event; False when it is behind what has already left (the caller applies it now)."""
        return not self.offer_many(source, [(occurred_at, event_id, item)])

    def offer_many(self, source: int, entries: list[tuple[float, str, T]]) -> list[T]:
        """`offer` of each `(occurred_at, event_id, item)` in turn, in one loop: the items behind what
        has already left, in their order (the caller applies them at once)."""
        if not entries:
            return []
        mark = self.sources[source]
        in_order, heap = self._in_order, self._heap
        released, latest, arrivals = self.released_up_to, mark.latest, self._arrivals
        if in_order:
            last_at, last_id = in_order[-1][0], in_order[-1][1]
        else:
            last_at, last_id = -math.inf, ""
        behind: list[T] = []
        for occurred_at, event_id, item in entries:
            if occurred_at > latest:
                latest = occurred_at
            if occurred_at < released:
                behind.append(item)
                continue
            arrivals += 1
            if occurred_at > last_at or (occurred_at == last_at and event_id >= last_id):
                in_order.append((occurred_at, event_id, arrivals, source, item))
                last_at, last_id = occurred_at, event_id
            else:
                heapq.heappush(heap, (occurred_at, event_id, arrivals, source, item))
        mark.buffered += arrivals - self._arrivals
        self._arrivals = arrivals
        if latest > mark.latest or mark.idle:
            mark.latest = latest
            mark.idle = False
            self._watermark = None
        return behind

    def holds(self, event_id: str) -> bool:
        """Whether an event with this id waits in the buffer. A scan: it is asked only about events
        that are already late, which are rare, so the hot path keeps no index for it."""
        return any(entry[1] == event_id for entry in self._heap) or any(
            entry[1] == event_id for entry in self._in_order
        )

    def slowest(self) -> float:
        """The latest `occurred_at` of the slowest source that is not idle (inf when all are idle)."""
        slowest = math.inf
        for mark in self.sources.values():
            if not mark.idle and mark.latest < slowest:
                slowest = mark.latest
        return slowest

    @property
    def watermark(self) -> float:
        watermark = self._watermark
        if watermark is None:
            watermark = self._watermark = self.slowest() - self.reorder_seconds
        return watermark

    def release(self, ceiling: float = math.inf) -> list[T]:
        """The buffered events stamped before the watermark, in event-time order; while some source is
        idle, none stamped after `ceiling` (`ArrivalGrace.ceiling`)."""
        watermark = self.watermark
        if ceiling < watermark and self.any_idle():
            if self.next_at() > ceiling:
                return []
            return self.pop_before(ceiling, inclusive=True)
        if self.next_at() >= watermark:  # most calls release nothing: no loop, no list
            return []
        return self.pop_before(watermark)

    def any_idle(self) -> bool:
        return any(mark.idle for mark in self.sources.values())

    def newest(self) -> float:
        """The latest `occurred_at` any source has delivered (-inf before the first event)."""
        return max((mark.latest for mark in self.sources.values()), default=-math.inf)

    def flush(self) -> list[T]:
        """Everything buffered, in event-time order (the end of a file)."""
        return self.pop_before(math.inf, inclusive=True)

    def next_at(self) -> float:
        """The earliest buffered `occurred_at` (inf when the buffer is empty)."""
        heap, in_order = self._heap, self._in_order
        first = in_order[0][0] if in_order else math.inf
        return heap[0][0] if heap and heap[0][0] < first else first

    def buffered(self, source: int | None = None) -> int:
        if source is None:
            return len(self._heap) + len(self._in_order)
        return self.sources[source].buffered

    def pop_before(self, limit: float, inclusive: bool = False) -> list[T]:
        """The buffered events stamped before `limit` (at it too when `inclusive`), in order."""
        heap, in_order, sources = self._heap, self._in_order, self.sources
        out: list[T] = []
        while heap or in_order:
            if heap and (not in_order or heap[0] < in_order[0]):
                head = heap[0]
                if not (head[0] < limit or (inclusive and head[0] <= limit)):
                    break
                occurred_at, _, _, source, item = heapq.heappop(heap)
            else:
                head = in_order[0]
                if not (head[0] < limit or (inclusive and head[0] <= limit)):
                    break
                occurred_at, _, _, source, item = in_order.popleft()
            sources[source].buffered -= 1
            if occurred_at > self.released_up_to:
                self.released_up_to = occurred_at
            out.append(item)
        return out


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class ArrivalGrace:
    """How far the merge may release past idle sources: up to the newest `occurred_at` that had been
    delivered `grace` seconds ago (of the caller's clock, e.g. `time.monotonic()`). Not part of a
    checkpoint: a restored merge starts with no source idle."""

    grace: float
    _arrivals: deque[tuple[float, float]] = field(default_factory=deque)
    _settled: float = -math.inf

    def arrived(self, now: float, newest: float) -> None:
        """Events arrived at `now`; `newest` is the latest `occurred_at` delivered so far."""
        self._arrivals.append((now, newest))

    def ceiling(self, now: float) -> float:
        arrivals, before = self._arrivals, now - self.grace
        while arrivals and arrivals[0][0] <= before:
            _, newest = arrivals.popleft()
            if newest > self._settled:
                self._settled = newest
        return self._settled


class Applied(NamedTuple, Generic[T]):
    """An event the engine has seen, with what the caller attached to it (a line, an offset). A tuple:
    one per event, made faster than a dataclass."""

    event: ContactEvent
    item: T
    outcome: Outcome


@mypyc_attr(allow_interpreted_subclasses=True)
class OrderedDetection(Generic[T]):
    """The detection engine behind an event-time merge: what `replay` and the worker both drive.

    Sources are whatever the caller reads (a file is one source, a Kafka partition another); the
    engine sees the merged order. Picklable as a whole, so a checkpoint holds the buffer too and a
    restart re-reads nothing twice.
    """

    def __init__(self, engine: DetectionEngine, sources: Iterable[int] = (0,)) -> None:
        self.engine = engine
        self.merge: EventTimeMerge[tuple[ContactEvent, float, T]] = EventTimeMerge(
            engine.config.engine.reorder_seconds
        )
        self.merge.track(sources)
        self._lateness = engine.config.engine.allowed_lateness_minutes * 60.0

    def offer(self, source: int, event: ContactEvent, item: T, release: bool = True) -> list[Applied[T]]:
        """Buffer an event; an event behind what has left is applied at once. With `release`, what the
        watermark then lets out is applied too; a caller that reads batches from several sources
        passes False and calls `release` once the batch is in and idleness is up to date.

        An event more than the allowed lateness behind the latest event of its own source is late and
        never enters the merge: a source's disorder is bounded, other sources' progress is not."""
        ts = event.occurred_at.timestamp()
        latest = self.merge.sources[source].latest
        if ts < latest - self._lateness and not self.merge.holds(event.event_id):
            # (A copy of an event still waiting joins it in the buffer: the engine calls it a duplicate.)
            if self.engine.seen.seen(event.event_id):  # a redelivery: the engine calls it a duplicate
                return [Applied(event, item, self.engine.observe(event, ts))]
            detail = (
                f"occurred_at {event.occurred_at.isoformat()} is {latest - ts:.0f} s behind the latest event "
                f"of its input (allowed: {self._lateness:.0f} s)"
            )
            return [Applied(event, item, Outcome(Verdict.LATE, detail=detail))]
        merge = self.merge
        if not merge.offer(source, ts, event.event_id, (event, ts, item)):
            return [Applied(event, item, self.engine.observe(event, ts))]
        return self.release() if release else []

    def offer_many(self, source: int, arrivals: Iterable[tuple[ContactEvent, T]]) -> list[Applied[T]]:
        """`offer(source, event, item, release=False)` of each arrival in turn, in one loop (replay's
        and the worker's hot path): the same decisions, in the same order."""
        merge, lateness = self.merge, self._lateness
        latest = merge.sources[source].latest
        applied: list[Applied[T]] = []
        entries: list[tuple[float, str, tuple[ContactEvent, float, T]]] = []
        for event, item in arrivals:
            ts = event.occurred_at.timestamp()
            if ts < latest - lateness:
                # Rare: decided against the buffer and the engine as they are at this event.
                applied += self._apply(merge.offer_many(source, entries))
                entries = []
                applied += self.offer(source, event, item, release=False)
                latest = merge.sources[source].latest
                continue
            if ts > latest:
                latest = ts
            entries.append((ts, event.event_id, (event, ts, item)))
        applied += self._apply(merge.offer_many(source, entries))
        return applied

    def release(self, ceiling: float = math.inf) -> list[Applied[T]]:
        """Apply what the watermark lets out (no later than `ceiling` while a source is idle)."""
        return self._apply(self.merge.release(ceiling))

    def flush(self) -> list[Applied[T]]:
        return self._apply(self.merge.flush())

    def _apply(self, released: list[tuple[ContactEvent, float, T]]) -> list[Applied[T]]:
        if not released:
            return []
        observe = self.engine.observe
        return [Applied(event, item, observe(event, ts)) for event, ts, item in released]
