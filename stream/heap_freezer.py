"""Keep the detection state out of the cyclic garbage collector's way, so no collection walks it.

The detector holds a large, long-lived heap (every open ticket), and CPython's collector walks every
object of the generations it collects: a middle-generation pass took 332 ms in the worker bench at
12,000 events/s, and a full one 1.7 s, each an alert that late. The state is plain data and is freed by
reference counting when a ticket goes; the collector has nothing to find in it. So whenever the young
generation has grown by `FREEZE_AT_YOUNG_OBJECTS` (checked at every poll, far below the 50,000 at which
CPython would collect it, `stream/cli.py`), everything is frozen (`gc.freeze`: moved, in constant time,
to a generation no collection walks, and the young count starts again): no automatic collection runs
while the detector polls. Frozen objects are still freed by reference counting the moment nothing
points at them.

What freezing gives up: a reference cycle that becomes garbage is kept until the next thaw. Once an
hour everything is unfrozen, collected in full (one pause, at a time this module picks, instead of
full collections at random), and frozen again; `contactpulse_gc_frozen_objects` shows whether the
frozen heap keeps growing across thaws, `contactpulse_gc_collected_objects_total` what each collection
found. Measured before this (2026-12-03, worker bench, 20 s windows at 9,200-17,000 events/s): every
collection of a window together found 64-118 unreachable objects, a few a second (aiokafka's and
asyncio's, none of the engine's: a replay of 150,000 events found 0); an hour of them is what a thaw
frees.

Measured (worker bench, two processes, checkpoints every 5 s): with no freezing, one middle-generation
pass of 332 ms or a full one of 1.7 s in a 20 s window, p99 event -> alert 520-830 ms at 9,000-12,000
events/s. Then, until 2026-12-03, every 5 s the young generations were collected and the survivors
frozen: each window still spent 0.7-1.3 s in 16-30 young and 6-7 middle collections (34 and 68 ms
each at 13,000-17,000 events/s: what an event leaves behind, walked once or twice before its freeze),
and a freeze every second with a collection first only moved that time into 33-36 middle
collections. Freezing without collecting walks nothing.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from prometheus_client import Gauge

FREEZE_AT_YOUNG_OBJECTS = 10_000
"""Objects the young generation may gain before everything is frozen (a fifth of the collection
threshold: a poll of 2,000 events adds a few thousand)."""
THAW_EVERY_SECONDS = 3600.0
COUNT_EVERY_SECONDS = 60.0
"""How often the frozen objects are counted: `gc.get_freeze_count` walks them all (43 ms at 3 million,
in the loop), so not at every freeze."""


class HeapFreezer:
    """Call `tick` from the loop often (every poll)."""

    def __init__(
        self,
        frozen: Gauge,
        *,
        young_objects: int = FREEZE_AT_YOUNG_OBJECTS,
        thaw_every: float = THAW_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._frozen = frozen
        self._young_objects = young_objects
        self._thaw_every = thaw_every
        self._clock = clock
        now = clock()
        self._last_thaw = now
        self._last_count = now - COUNT_EVERY_SECONDS

    def tick(self) -> None:
        now = self._clock()
        thaw = now - self._last_thaw >= self._thaw_every
        if thaw:
            self._last_thaw = now
            gc.unfreeze()
            gc.collect()
            gc.freeze()
        elif gc.get_count()[0] >= self._young_objects:
            gc.freeze()
        if thaw or now - self._last_count >= COUNT_EVERY_SECONDS:
            self._last_count = now
            self._frozen.set(gc.get_freeze_count())
