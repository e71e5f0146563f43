from __future__ import annotations

import logging

from stream.quiet_logs import RepeatedMessageFilter


def record(
    msg: str, *args: object, level: int = logging.ERROR, name: str = "aiokafka.conn"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_error_passes_once_per_interval_with_its_count() -> None:
    now = [0.0]
    quiet = RepeatedMessageFilter(interval=10.0, clock=lambda: now[0])
    passed = []
    for second in range(25):
        for attempt in range(100):  # every client retries many times a second during an outage
            now[0] = second + attempt / 100
            line = record("Unable connect to %s: %s", "127.0.0.1:9092", f"attempt {attempt}")
            if quiet.filter(line):
                passed.append(line.getMessage())
    assert len(passed) == 3  # at 0 s, 10 s and 20 s
    assert passed[0] == "Unable connect to 127.0.0.1:9092: attempt 0"
    assert passed[1] == "Unable connect to 127.0.0.1:9092: attempt 0 (repeated 999 times in the last 10 s)"
    assert passed[2].endswith("(repeated 999 times in the last 10 s)")


def test_different_messages_and_info_lines_are_not_held_back() -> None:
    quiet = RepeatedMessageFilter(interval=10.0, clock=lambda: 0.0)
    assert quiet.filter(record("broker %s down", "a"))
    assert quiet.filter(record("another failure %s", "a"))
    assert quiet.filter(record("broker %s down", "a", name="aiokafka.consumer"))
    assert all(quiet.filter(record("dead letter %s", n, level=logging.INFO)) for n in range(50))
    assert not quiet.filter(record("broker %s down", "b"))
