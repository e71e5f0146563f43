"""The detector's long-lived heap is frozen out of garbage collection; young garbage is collected first,
and frozen cycles are freed at the hourly thaw."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Gauge

from stream.heap_freezer import HeapFreezer


class Node:
    """A ticket-like object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    first, second = Node(), Node()
    first.other, second.other = second, first
    return first, weakref.ref(first)


def frozen(target: object) -> bool:
    return gc.is_tracked(target) and all(obj is not target for obj in gc.get_objects())


@pytest.fixture
def clock() -> Iterator[list[float]]:
    now = [1000.0]
    yield now
    gc.unfreeze()  # leave the test process as it was


def freezer(clock: list[float]) -> tuple[HeapFreezer, Gauge]:
    gauge = Gauge("frozen", "frozen objects", registry=CollectorRegistry())
    return HeapFreezer(gauge, every=5.0, thaw_every=3600.0, clock=lambda: clock[0]), gauge


def test_nothing_happens_between_ticks(clock: list[float]) -> None:
    heap, _ = freezer(clock)
    kept, _ = cycle()
    clock[0] += 4.9
    heap.tick()
    assert not frozen(kept)


def test_live_state_is_frozen_and_young_garbage_is_collected_first(clock: list[float]) -> None:
    heap, gauge = freezer(clock)
    kept, _ = cycle()
    dropped, dropped_ref = cycle()
    del dropped
    assert dropped_ref() is not None  # a cycle: reference counting alone does not free it
    clock[0] += 5.0
    heap.tick()
    assert dropped_ref() is None  # collected, not frozen forever
    assert frozen(kept)
    assert gauge._value.get() == gc.get_freeze_count() > 0


def test_a_frozen_cycle_that_becomes_garbage_is_freed_at_the_hourly_thaw(clock: list[float]) -> None:
    heap, _ = freezer(clock)
    state, state_ref = cycle()
    clock[0] += 5.0
    heap.tick()
    assert frozen(state)
    del state  # the ticket closed, but its objects point at each other
    clock[0] += 5.0
    heap.tick()
    assert state_ref() is not None  # frozen: the short passes never look at it
    clock[0] += 3600.0
    heap.tick()
    assert state_ref() is None
