"""Which valid events the worker lets into the detectors' ordered input (the worker's wall clock is
passed in; nothing here reads it)."""

from __future__ import annotations

from datetime import datetime, timedelta


def future_timestamp_detail(occurred_at: datetime, now: datetime, tolerance: timedelta) -> str | None:
    """A reason when an event is stamped further ahead of the wall clock than `tolerance`.

    One sender with a wrong clock would otherwise drag the stream clock forward and fire every
    deadline at once.
    """
    ahead = occurred_at - now
    if ahead <= tolerance:
        return None
    return (
        f"occurred_at {occurred_at.isoformat()} is {ahead.total_seconds():.0f} s ahead of the worker's "
        f"clock {now.isoformat()} (allowed: {tolerance.total_seconds():.0f} s)"
    )
