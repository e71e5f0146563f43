"""Keep the detection state out of the cyclic garbage collector's way, so its passes stay short.

The detector holds a large, long-lived heap (every open ticket), and CPython's collector walks every
object of the generations it collects: a middle-generation pass took 332 ms in the worker bench at
12,000 events/s, and a full one 1.7 s, each an alert that late. The state is plain data and is freed by
reference counting when a ticket goes; the collector has nothing to find in it. So, every few seconds,
the young generations are collected (short: only what was allocated since the last time) and what
survived is frozen (`gc.freeze`: moved to a generation no collection walks). Collecting first matters:
a cycle of young garbage frozen would never be freed.

What freezing gives up: a cycle formed among frozen objects that later becomes garbage waits for the
next thaw. Once an hour everything is unfrozen, collected in full (one pause, at a time this module
picks, instead of full collections at random), and frozen again; `contactpulse_gc_frozen_objects` shows
whether the frozen heap keeps growing between thaws.

Measured (worker bench, two processes, checkpoints every 5 s): without it, one middle-generation pass
of 332 ms or a full one of 1.7 s in a 20 s window, p99 event -> alert 520-830 ms at 9,000-12,000
events/s; with it, p99 248-295 ms at 7,100-10,800 events/s (and 158-379 ms in one process). A first
version that froze at each checkpoint fork without collecting gave 100-165 ms at 7,700-10,700, but it
froze young garbage for good, and at the product's 60 s checkpoints it would let a minute of survivors
build up between freezes.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from prometheus_client import Gauge

FREEZE_EVERY_SECONDS = 5.0
THAW_EVERY_SECONDS = 3600.0


class HeapFreezer:
    """Call `tick` from the loop often (every poll); it acts every `every` seconds."""

    def __init__(
        self,
        frozen: Gauge,
        *,
        every: float = FREEZE_EVERY_SECONDS,
        thaw_every: float = THAW_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._frozen = frozen
        self._every = every
        self._thaw_every = thaw_every
        self._clock = clock
        now = clock()
        self._last_freeze = now
        self._last_thaw = now

    def tick(self) -> None:
        now = self._clock()
        if now - self._last_freeze < self._every:
            return
        self._last_freeze = now
        if now - self._last_thaw >= self._thaw_every:
            self._last_thaw = now
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(1)
        gc.freeze()
        self._frozen.set(gc.get_freeze_count())
