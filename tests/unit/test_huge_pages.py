"""Which parts of a process's memory map are collapsed into huge pages before a checkpoint's fork."""

from __future__ import annotations

import os
import sys
import time

import pytest

from stream.huge_pages import HUGE_PAGE, anonymous_ranges, collapse_heap

MAPS = """\
55d0c0000000-55d0c0a00000 rw-p 00000000 00:00 0                          [heap]
7f0000100000-7f0000900000 rw-p 00000000 00:00 0
7f0000900000-7f0000a00000 rw-p 00000000 00:00 0
7f1000000000-7f1000400000 r--p 00000000 08:01 1234                       /usr/lib/libc.so.6
7f2000000000-7f2000400000 rw-p 00000000 08:01 1234                       /usr/lib/libc.so.6
7f3000000000-7f3000400000 rw-s 00000000 00:05 99                         /dev/zero (deleted)
7ffc00000000-7ffc00400000 rw-p 00000000 00:00 0                          [stack]
"""


def test_only_whole_huge_pages_of_private_anonymous_memory_and_the_heap_are_collapsed() -> None:
    assert list(anonymous_ranges(MAPS)) == [
        (0x55D0C0000000, 0x55D0C0A00000),  # the heap: five whole 2 MiB pages
        (0x7F0000200000, 0x7F0000800000),  # rounded in to 2 MiB boundaries
    ]  # a 1 MiB mapping, files, shared memory and the stack are left alone
    assert all((end - start) % HUGE_PAGE == 0 for start, end in anonymous_ranges(MAPS))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and MADV_COLLAPSE are Linux's")
def test_a_collapsed_heap_forks_faster_than_the_same_heap_in_small_pages() -> None:
    def fork_seconds() -> float:
        best = float("inf")
        for _ in range(9):  # the best of nine: another test process shares the two cores in CI
            started = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            best = min(best, time.perf_counter() - started)
            os.waitpid(pid, 0)
        return best

    heap = [{"ticket": n, "text": "x" * 40} for n in range(1_000_000)]  # ~300 MB in small pages
    small = fork_seconds()
    covered = collapse_heap()
    huge = fork_seconds()
    assert len(heap) == 1_000_000
    if covered == 0:
        pytest.fail("MADV_COLLAPSE refused on this machine (kernel older than 6.1 or THP off)")
    assert covered > 100 * 1024 * 1024
    # Idle, a collapsed heap forks in 0.28-0.30 of the time; on a loaded CI machine one run measured 0.56
    # with the best of three. A third faster is still the difference the collapse exists for.
    assert huge < small * 0.67, (small, huge)
