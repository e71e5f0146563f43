"""The detector's heap is frozen out of garbage collection once the young generation has grown; nothing
is walked to do it, and a cycle that becomes garbage is freed at the hourly thaw."""

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
    automatic = gc.isenabled()
    gc.disable()  # the test decides when the young generation is collected
    gc.collect()
    yield now
    gc.unfreeze()  # leave the test process as it was
    if automatic:
        gc.enable()


YOUNG = 500


def freezer(clock: list[float]) -> tuple[HeapFreezer, Gauge]:
    gauge = Gauge("frozen", "frozen objects", registry=CollectorRegistry())
    return HeapFreezer(gauge, young_objects=YOUNG, thaw_every=3600.0, clock=lambda: clock[0]), gauge


def grow_the_young_generation(by: int) -> list[list[int]]:
    return [[n] for n in range(by)]


def test_nothing_is_frozen_while_the_young_generation_is_small(clock: list[float]) -> None:
    heap, _ = freezer(clock)
    kept, _ = cycle()
    clock[0] += 60.0
    heap.tick()
    assert gc.get_count()[0] < YOUNG
    assert not frozen(kept)


def test_once_it_has_grown_everything_is_frozen_without_a_collection(clock: list[float]) -> None:
    heap, gauge = freezer(clock)
    collections = [stats["collections"] for stats in gc.get_stats()]
    kept, _ = cycle()
    dropped, dropped_ref = cycle()
    del dropped
    grown = grow_the_young_generation(YOUNG)
    heap.tick()
    assert frozen(kept)
    assert frozen(grown[-1])
    assert gc.get_count()[0] < 10  # the young generation starts again
    assert [stats["collections"] for stats in gc.get_stats()] == collections  # nothing walked
    assert dropped_ref() is not None  # a garbage cycle waits for the thaw
    assert gauge._value.get() == gc.get_freeze_count() > 0


def test_frozen_objects_are_still_freed_by_reference_counting(clock: list[float]) -> None:
    heap, _ = freezer(clock)
    plain = Node()  # no cycle: freed the moment nothing points at it
    plain_ref = weakref.ref(plain)
    keep = grow_the_young_generation(YOUNG)
    heap.tick()
    assert frozen(plain)
    del plain
    assert plain_ref() is None
    assert keep


def test_a_frozen_cycle_that_becomes_garbage_is_freed_at_the_hourly_thaw(clock: list[float]) -> None:
    heap, _ = freezer(clock)
    state, state_ref = cycle()
    keep = grow_the_young_generation(YOUNG)
    heap.tick()
    assert frozen(state)
    del state  # the ticket closed, but its objects point at each other
    clock[0] += 3599.0
    heap.tick()
    assert state_ref() is not None  # frozen: nothing walks it before the thaw
    clock[0] += 1.0
    heap.tick()
    assert state_ref() is None
    assert frozen(keep[-1])  # frozen again after the thaw's collection
