"""The event-time merge: one order out, however events are spread over partitions and read."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.engine import DetectionEngine, Verdict
from processors.ordering import ArrivalGrace, EventTimeMerge, OrderedDetection
from schemas.config import load_config
from schemas.event import ContactEvent


def drain(merge: EventTimeMerge[str], reads: list[tuple[int, float, str]]) -> list[str]:
    """Offer reads one by one, releasing after each; behind events go out at once; flush at the end."""
    out: list[str] = []
    for source, ts, event_id in reads:
        if not merge.offer(source, ts, event_id, event_id):
            out.append(event_id)
        out += merge.release()
    return out + merge.flush()


def test_a_backlog_in_one_partition_does_not_overtake_another() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge()
    merge.track([0, 1])
    # Partition 0 delivers its whole backlog (12 hours) before partition 1 delivers anything.
    for hour in range(12):
        assert merge.offer(0, hour * 3600.0, f"p0-{hour}", f"p0-{hour}")
    assert merge.release() == []  # partition 1 has said nothing yet: nothing may leave
    assert merge.watermark == -math.inf
    assert merge.offer(1, 1800.0, "p1-0", "p1-0")
    assert merge.release() == ["p0-0"]  # before 00:30, the only time both have passed
    assert merge.offer(1, 5 * 3600.0, "p1-1", "p1-1")
    assert merge.release() == ["p1-0", "p0-1", "p0-2", "p0-3", "p0-4"]
    assert merge.buffered(0) == 7
    assert merge.buffered(1) == 1


def test_an_idle_partition_stops_holding_the_others_back() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge()
    merge.track([0, 1])
    merge.offer(0, 100.0, "a", "a")
    merge.offer(0, 200.0, "b", "b")
    assert merge.release() == []
    merge.set_idle(1, True)
    assert merge.release() == ["a"]  # 200 is the latest of partition 0: it waits for its own successor
    merge.set_idle(0, True)
    assert merge.release() == ["b"]  # every source idle: nothing left to wait for
    # A source that wakes up counts again.
    merge.offer(1, 300.0, "c", "c")
    assert merge.watermark == 300.0
    assert merge.sources[0].idle
    assert not merge.sources[1].idle


def test_past_an_idle_partition_only_what_arrived_a_grace_ago_leaves() -> None:
    """Every partition idle, then a burst: partition 0's share arrives at t=10.0, partition 1's (older
    events) at t=10.1. With a grace of 0.5 s nothing overtakes partition 1 before it had its chance."""
    merge: EventTimeMerge[str] = EventTimeMerge()
    merge.track([0, 1])
    grace = ArrivalGrace(0.5)
    merge.set_idle(0, True)
    merge.set_idle(1, True)
    for at, event_id in ((1000.0, "p0-a"), (5000.0, "p0-b"), (9000.0, "p0-c")):
        merge.offer(0, at, event_id, event_id)
    grace.arrived(10.0, merge.newest())
    merge.set_idle(1, True)  # caught up and quiet for long: the detector still calls it idle
    assert merge.release(grace.ceiling(10.0)) == []  # without the grace: all three would leave now
    merge.offer(1, 2000.0, "p1-a", "p1-a")
    merge.offer(1, 6000.0, "p1-b", "p1-b")
    grace.arrived(10.1, merge.newest())
    assert merge.release(grace.ceiling(10.2)) == ["p0-a", "p1-a", "p0-b"]  # the watermark: 6000
    # Both quiet again past the idle time: the rest leaves once it has waited its grace.
    merge.set_idle(0, True)
    merge.set_idle(1, True)
    assert merge.release(grace.ceiling(10.55)) == ["p1-b", "p0-c"]


def test_without_an_idle_partition_the_grace_holds_nothing_back() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge()
    merge.track([0, 1])
    grace = ArrivalGrace(0.5)
    merge.offer(0, 100.0, "a", "a")
    merge.offer(0, 300.0, "c", "c")
    merge.offer(1, 200.0, "b", "b")
    grace.arrived(1.0, merge.newest())
    assert grace.ceiling(1.0) == -math.inf
    assert merge.release(grace.ceiling(1.0)) == ["a"]  # the watermark (200) alone decides


def test_an_event_behind_what_has_left_is_handed_back_at_once() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge()
    merge.track([0])
    merge.offer(0, 100.0, "a", "a")
    merge.offer(0, 200.0, "b", "b")
    assert merge.release() == ["a"]
    assert not merge.offer(0, 50.0, "late", "late")
    assert merge.offer(0, 100.0, "tie", "tie")  # not before what has left: still ordered
    assert merge.release() == ["tie"]


def test_disorder_within_the_reorder_window_is_sorted() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge(reorder_seconds=10)
    merge.track([0])
    out = drain(merge, [(0, 100.0, "a"), (0, 105.0, "c"), (0, 101.0, "b"), (0, 120.0, "d")])
    assert out == ["a", "b", "c", "d"]
    # The same without a window: `b` arrives after `c` left and is handed back behind it.
    merge = EventTimeMerge()
    merge.track([0])
    assert drain(merge, [(0, 100.0, "a"), (0, 105.0, "c"), (0, 101.0, "b"), (0, 120.0, "d")]) == [
        "a",
        "b",
        "c",
        "d",
    ]
    merge = EventTimeMerge()
    merge.track([0])
    reads = [(0, 100.0, "a"), (0, 105.0, "c"), (0, 110.0, "e"), (0, 101.0, "b"), (0, 120.0, "d")]
    assert drain(merge, reads) == ["a", "c", "b", "e", "d"]


@st.composite
def spread_stream(draw: st.DrawFn) -> tuple[list[tuple[float, str]], list[tuple[int, float, str]], float]:
    # Returns (the events, the produced order as one source's reads + the partitioned reads, window).
    """A stream with bounded disorder, spread over partitions and read in an arbitrary interleaving."""
    reorder = draw(st.sampled_from([0.0, 5.0, 30.0]))
    count = draw(st.integers(1, 60))
    base = sorted(draw(st.lists(st.integers(0, 500), min_size=count, max_size=count)))
    events = [(float(ts), f"e{n:03d}") for n, ts in enumerate(base)]
    rng = random.Random(draw(st.integers(0, 2**32)))
    # Disorder within the window: swap neighbours whose stamps are within `reorder` of each other.
    produced = list(events)
    for i in range(len(produced) - 1):
        if produced[i + 1][0] - produced[i][0] <= reorder and rng.random() < 0.5:
            produced[i], produced[i + 1] = produced[i + 1], produced[i]
    partitions = draw(st.integers(1, 4))
    queues: list[list[tuple[float, str]]] = [[] for _ in range(partitions)]
    for event in produced:
        queues[rng.randrange(partitions)].append(event)
    reads: list[tuple[int, float, str]] = []
    while any(queues):
        source = rng.choice([p for p, queue in enumerate(queues) if queue])
        for _ in range(rng.randint(1, 20)):  # a fetch returns a batch of one partition
            if queues[source]:
                ts, event_id = queues[source].pop(0)
                reads.append((source, ts, event_id))
    return events, [(0, ts, event_id) for ts, event_id in produced] + reads, reorder


@settings(max_examples=300, deadline=None)
@given(spread_stream())
def test_any_partitioning_and_interleaving_yields_the_sorted_order(
    case: tuple[list[tuple[float, str]], list[tuple[int, float, str]], float],
) -> None:
    events, both, reorder = case
    produced, reads = both[: len(events)], both[len(events) :]
    merge: EventTimeMerge[str] = EventTimeMerge(reorder_seconds=reorder)
    merge.track({source for source, _, _ in reads})
    merged = drain(merge, reads)
    # The file as `replay` reads it: one source, the produced order.
    single: EventTimeMerge[str] = EventTimeMerge(reorder_seconds=reorder)
    single.track([0])
    assert merged == [event_id for _, event_id in sorted(events)]
    assert drain(single, produced) == merged


def test_a_restored_merge_waits_for_every_source_again() -> None:
    """Idle when the checkpoint was taken says nothing about a restart: each source may have a backlog."""
    merge: EventTimeMerge[str] = EventTimeMerge()
    merge.track([0, 1])
    merge.offer(0, 100.0, "a", "a")
    merge.offer(1, 100.0, "b", "b")
    merge.set_idle(0, True)
    merge.set_idle(1, True)
    assert merge.release() == ["a", "b"]
    merge.track([0, 1])  # what a new owner does with the restored merge
    merge.offer(0, 500.0, "c", "c")
    assert merge.release() == []  # source 1 may still deliver something before 500
    merge.offer(1, 200.0, "d", "d")
    merge.offer(1, 600.0, "e", "e")
    assert merge.release() == ["d"]  # 500 is source 0's latest: it waits for what follows it


def test_a_late_redelivery_of_an_applied_event_is_a_duplicate_and_a_new_one_is_late() -> None:
    def event(event_id: str, minute: int) -> ContactEvent:
        return ContactEvent.model_validate(
            {
                "event_id": event_id,
                "type": "contact_received",
                "occurred_at": datetime(2026, 11, 24, 9, tzinfo=UTC) + timedelta(minutes=minute),
                "ticket_id": f"T-{event_id}",
            }
        )

    ordered: OrderedDetection[str] = OrderedDetection(DetectionEngine(load_config()))
    verdicts = []
    for event_id, minute in (("a", 0), ("b", 20), ("a", 0), ("c", 1)):
        verdicts += [
            (done.item, done.outcome.verdict) for done in ordered.offer(0, event(event_id, minute), event_id)
        ]
    verdicts += [(done.item, done.outcome.verdict) for done in ordered.flush()]
    assert verdicts == [
        ("a", Verdict.ACCEPTED),
        ("a", Verdict.DUPLICATE),  # 20 minutes behind, but already applied: a redelivery
        ("c", Verdict.LATE),  # 19 minutes behind the input's latest event
        ("b", Verdict.ACCEPTED),
    ]


def test_a_late_copy_of_an_event_still_waiting_is_a_duplicate_whatever_the_partitioning() -> None:
    """The worker holds events longer than replay (other partitions hold the watermark back): a
    redelivered copy must get the verdict replay gives it, not `late`."""
    ordered: OrderedDetection[str] = OrderedDetection(DetectionEngine(load_config()), [0, 1])
    base = datetime(2026, 11, 24, 9, tzinfo=UTC)

    def event(event_id: str, minute: int) -> ContactEvent:
        return ContactEvent.model_validate(
            {
                "event_id": event_id,
                "type": "contact_received",
                "occurred_at": base + timedelta(minutes=minute),
                "ticket_id": f"T-{event_id}",
            }
        )

    verdicts = []
    for event_id, minute in (("a", 0), ("b", 20), ("a", 0)):  # partition 1 has said nothing yet
        verdicts += [(d.item, d.outcome.verdict) for d in ordered.offer(0, event(event_id, minute), event_id)]
    assert verdicts == []
    assert ordered.merge.holds("a")
    verdicts = [(d.item, d.outcome.verdict) for d in ordered.flush()]
    assert verdicts == [("a", Verdict.ACCEPTED), ("a", Verdict.DUPLICATE), ("b", Verdict.ACCEPTED)]
    assert not ordered.merge.holds("a")


@settings(max_examples=150, deadline=None)
@given(
    reads=st.lists(
        st.tuples(
            st.integers(0, 1),  # partition
            st.integers(0, 40),  # minute: up to 40 minutes apart, so some are late and some behind
            st.integers(0, 12),  # event id: copies are redeliveries
        ),
        max_size=40,
    ),
    cuts=st.lists(st.integers(1, 8), min_size=1, max_size=40),
)
def test_offering_a_batch_decides_as_offering_its_events_one_by_one(
    reads: list[tuple[int, int, int]], cuts: list[int]
) -> None:
    """`offer_many` is the hot path of replay and the worker: the same verdicts, alerts and order as
    `offer(..., release=False)` of each event, with releases at the same points."""
    base = datetime(2026, 11, 24, 9, tzinfo=UTC)

    def event(number: int, minute: int) -> ContactEvent:
        return ContactEvent.model_validate(
            {
                "event_id": f"e{number}",
                "type": "contact_received",
                "occurred_at": base + timedelta(minutes=minute),
                "ticket_id": f"T-{number % 3}",
                "channel": "email",
                "error_code": "ERR-1",
                "customer_id": f"c{number}",
            }
        )

    # Batches of consecutive reads from one partition, as a poll returns them.
    batches: list[list[tuple[int, int, int]]] = []
    sizes = iter(cuts * 40)
    for read in reads:
        if batches and batches[-1][0][0] == read[0] and len(batches[-1]) < next(sizes):
            batches[-1].append(read)
        else:
            batches.append([read])

    def run(batched: bool) -> list[tuple[int, Verdict, list[str]]]:
        ordered: OrderedDetection[int] = OrderedDetection(DetectionEngine(load_config()), [0, 1])
        out = []
        for position, batch in enumerate(batches):
            arrivals = [(event(number, minute), index) for index, (_, minute, number) in enumerate(batch)]
            partition = batch[0][0]
            if batched:
                applied = ordered.offer_many(partition, arrivals)
            else:
                applied = [
                    done for e, item in arrivals for done in ordered.offer(partition, e, item, release=False)
                ]
            if position % 2:
                applied += ordered.release()
            out += [(d.item, d.outcome.verdict, [a.alert_id for a in d.outcome.alerts]) for d in applied]
        out += [(d.item, d.outcome.verdict, [a.alert_id for a in d.outcome.alerts]) for d in ordered.flush()]
        return out

    assert run(batched=True) == run(batched=False)
