"""Which records the worker admits: to the detectors and to the contact_events table.

The ClickHouse sink and the detector both call `admit`, so they agree on what is an event (the
worker's wall clock is passed in; nothing here reads it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.errors import DeadLetterReason, InvalidEvent
from schemas.event import ContactEvent, parse_contact_event


def admit(value: bytes, now: datetime, tolerance: timedelta) -> ContactEvent:
    """The event a record holds, if it is valid and not stamped too far ahead; else InvalidEvent."""
    event = parse_contact_event(value)
    ahead = future_timestamp_detail(event.occurred_at, now, tolerance)
    if ahead is not None:
        raise InvalidEvent(DeadLetterReason.FUTURE_TIMESTAMP, ahead)
    return event


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
