"""Hour-bucketed counters for week-over-week comparisons, and the significance test of a rise."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mypy_extensions import mypyc_attr

HOUR = timedelta(hours=1)


def hour_index(instant: datetime) -> int:
    """Whole hours since the epoch: the bucket an instant falls in."""
    return hour_of(instant.timestamp())


def hour_of(ts: float) -> int:
    """`hour_index` of an instant given as epoch seconds."""
    return math.floor(ts / 3600)


def hour_start(index: int) -> datetime:
    return datetime.fromtimestamp(index * 3600, tz=UTC)


def next_hour_boundary(instant: datetime) -> datetime:
    """The first whole hour strictly after `instant`."""
    return hour_start(hour_index(instant) + 1)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class HourlySeries:
    """A sparse series of per-hour sums, with the two trailing windows kept up to date.

    Evaluations come every hour, so `two_windows` slides the cached sums by one hour (O(1)) instead of
    summing 336 buckets; a late addition inside a cached window adjusts it directly.
    """

    buckets: dict[int, float] = field(default_factory=dict)
    _at: int | None = None
    _length: int = 0
    _current: float = 0.0
    _previous: float = 0.0
    _low: int | None = None
    """No bucket is older than this hour: pruning reads only the hours it drops."""

    def add(self, hour: int, amount: float = 1.0) -> None:
        buckets = self.buckets
        buckets[hour] = buckets.get(hour, 0.0) + amount
        low = self._low
        if low is None or hour < low:
            self._low = hour
        at = self._at
        if at is not None:
            start = at - self._length
            if start <= hour < at:
                self._current += amount
            elif start - self._length <= hour < start:
                self._previous += amount

    def two_windows(self, now: int, length: int) -> tuple[float, float]:
        """(sum over [now - length, now), sum over [now - 2 length, now - length))."""
        if self._at == now - 1 and self._length == length:
            get = self.buckets.get
            moved = get(now - 1 - length, 0.0)
            self._current += get(now - 1, 0.0) - moved
            self._previous += moved - get(now - 1 - 2 * length, 0.0)
        elif not (self._at == now and self._length == length):
            self._current = self.total(now - length, now)
            self._previous = self.total(now - 2 * length, now - length)
        self._at, self._length = now, length
        return self._current, self._previous

    def total(self, start_hour: int, end_hour: int) -> float:
        """Sum over hours in [start_hour, end_hour)."""
        if end_hour - start_hour > len(self.buckets):
            return sum((v for h, v in self.buckets.items() if start_hour <= h < end_hour), 0.0)
        get = self.buckets.get
        return sum(get(h, 0.0) for h in range(start_hour, end_hour))

    def prune(self, before_hour: int) -> None:
        """Drop the buckets of hours before `before_hour` (hourly, this reads one hour, not the series)."""
        buckets, low = self.buckets, self._low
        if low is None or low >= before_hour:
            return
        if before_hour - low > len(buckets):
            for hour in [h for h in buckets if h < before_hour]:
                del buckets[hour]
        else:
            for hour in range(low, before_hour):
                buckets.pop(hour, None)
        self._low = before_hour

    def __bool__(self) -> bool:
        return bool(self.buckets)


def binomial_upper_tail(k: int, n: int, p: float = 0.5) -> float:
    """P(X >= k) for X ~ Binomial(n, p), computed in log space (exact to double precision)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n_fact = math.lgamma(n + 1)
    total = 0.0
    peak = None
    for i in range(k, n + 1):
        term = log_n_fact - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        if peak is None:
            peak = term
        elif term > peak:
            # Terms rise until the mode; rescale so the running sum keeps its precision.
            total *= math.exp(peak - term)
            peak = term
        contribution = math.exp(term - peak)
        total += contribution
        if contribution < 1e-18 * total and i > n * p:
            break
    assert peak is not None
    return min(1.0, total * math.exp(peak))


def rise_p_value(current: int, previous: int) -> float:
    """One-sided test of 'the current window's rate is higher' for two equal-length windows.

    Conditional on the total, under equal rates the current window's count is Binomial(total, 1/2)
    (the classic comparison of two Poisson counts).
    """
    return binomial_upper_tail(current, current + previous, 0.5)
