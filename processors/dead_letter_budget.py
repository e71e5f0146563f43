"""How many refused payloads a source may put on the dead-letter topic with their bytes, the way
arroyo's `DlqLimit` bounds a consumer's invalid messages (by ratio and by count).

A sender that is misconfigured or hostile can post garbage as fast as the endpoint answers; keeping every
body would fill the dead-letter topic with whatever the sender chose (and its personal data). Within the
budget a refused payload is kept whole, so an operator can fix and re-send it; over the budget it is kept
as its hash, size and reason only, and the budget's metric says the source is over. Nothing is dropped
without a record either way.

The budget is over when, within the last `window_seconds`, the refused payloads exceed
`max_per_second` on average, or (after `min_payloads`, so one bad request of two is no flood) exceed
`max_ratio` of all the source's payloads. Pure: the caller passes the time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    max_ratio: float = 0.5
    max_per_second: float = 5.0
    window_seconds: float = 60.0
    min_payloads: int = 20


@dataclass(slots=True)
class DeadLetterBudget:
    limits: BudgetLimits = field(default_factory=BudgetLimits)
    _buckets: deque[tuple[int, int, int]] = field(default_factory=deque)
    """(whole second, payloads, refused), oldest first, covering at most the window."""

    def record(self, now: float, refused: bool) -> None:
        second = math.floor(now)
        self._expire(second)
        if self._buckets and self._buckets[-1][0] == second:
            _, payloads, refusals = self._buckets.pop()
        else:
            payloads = refusals = 0
        self._buckets.append((second, payloads + 1, refusals + int(refused)))

    def exceeded(self, now: float) -> bool:
        self._expire(math.floor(now))
        payloads = sum(bucket[1] for bucket in self._buckets)
        refused = sum(bucket[2] for bucket in self._buckets)
        if refused > self.limits.max_per_second * self.limits.window_seconds:
            return True
        return payloads >= self.limits.min_payloads and refused > self.limits.max_ratio * payloads

    def _expire(self, second: int) -> None:
        oldest = second - math.ceil(self.limits.window_seconds) + 1
        while self._buckets and self._buckets[0][0] < oldest:
            self._buckets.popleft()
