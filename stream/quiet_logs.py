"""One log line per interval for a message that repeats, with how often it did.

During a broker outage aiokafka logs the same connection error on every attempt of every client (a
24 s outage wrote 170,000 ERROR lines, 18 MB). The first occurrence of a message (logger, level and
format string, not the formatted values) goes through; repeats within `interval` seconds are counted,
and the first one after the interval goes through carrying "(repeated N times in the last X s)".
Installed on the handlers of the root logger, so it covers every library's loggers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Seen:
    window_start: float
    suppressed: int = 0


class RepeatedMessageFilter(logging.Filter):
    def __init__(
        self,
        interval: float = 10.0,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._interval = interval
        self._min_level = min_level
        self._clock = clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self._min_level:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) > 10_000:  # bounded: messages with unbounded variety are not repeats
                self._seen.clear()
            self._seen[key] = _Seen(now)
            return True
        if now - seen.window_start < self._interval:
            seen.suppressed += 1
            return False
        if seen.suppressed:
            record.msg = (
                f"{record.msg} (repeated {seen.suppressed} times in the last {now - seen.window_start:.0f} s)"
            )
        self._seen[key] = _Seen(now)
        return True


def install(interval: float = 10.0) -> RepeatedMessageFilter:
    """Add one filter to every handler of the root logger (call after logging is configured)."""
    quiet = RepeatedMessageFilter(interval)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatedMessageFilter) for f in handler.filters):
            handler.addFilter(quiet)
    return quiet


PAYLOAD_LOGGERS: tuple[str, ...] = ("aiokafka", "kafka", "faust")
"""Client libraries whose DEBUG lines print whole records (`send: ... v=b'...'`, produce and fetch
requests): raw payloads with phone numbers and names. They stay at INFO even when the worker logs DEBUG."""


def keep_payloads_out(level: int) -> None:
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
