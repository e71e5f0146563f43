"""Make the next fork() of a large process cheap: back its heap with transparent huge pages first.

fork() copies the parent's page tables while the parent waits: one entry per 4 KiB page, 15-18 ms for
the 550 MB a detector holds at 100,000 open tickets on an idle 2-core VM, 30-70 ms with another process
busy on it; that is the event loop's stall at every checkpoint (`stream/checkpoint.py`). A 2 MiB huge
page needs one entry instead of 512, and the same fork takes 1-2 ms idle, under 8 ms busy. Python's
small-object allocator maps its arenas 1 MiB at a time, so the kernel never gives them huge pages on its
own; `madvise(MADV_COLLAPSE)` (Linux 6.1+) rewrites the already-populated heap into huge pages on request.

It runs in a thread (ctypes releases the GIL for the call, so the loop keeps serving), one huge page per
call, and a later call only collapses what was allocated since.

Measured in `tests/faults/test_checkpoint_stall.py` at 100,000 open tickets (2026-12-01, 2-core VM,
idle): longest loop stall 8-17 ms (the fork 3.6 ms) instead of 25 ms; with another process busy on the
machine, 10-25 ms instead of 58-140 ms (the test's limit is 50). The child's pickling takes as long
(7.1-7.6 s against 6.6 s); resident memory grows a few percent (a huge page is whole even where the heap
had holes).

Where the call is missing (not Linux, an older kernel, THP set to `never`) nothing happens: fork then
copies small-page tables as before. The first refusal is logged once.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import sys
from collections.abc import Iterator
from typing import Final

log = logging.getLogger(__name__)

MADV_COLLAPSE: Final = 25
HUGE_PAGE: Final = 2 * 1024 * 1024

_refused = False


def anonymous_ranges(maps: str) -> Iterator[tuple[int, int]]:
    """The 2 MiB-aligned parts of the writable private anonymous mappings and the heap in
    /proc/self/maps text (only whole huge pages can be collapsed)."""
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[1].startswith("rw") or fields[1][3] != "p":
            continue
        name = fields[5] if len(fields) > 5 else ""
        if name and name != "[heap]":
            continue  # files, stacks, vdso: not the interpreter's objects
        low, high = (int(bound, 16) for bound in fields[0].split("-"))
        start = -(-low // HUGE_PAGE) * HUGE_PAGE
        end = high // HUGE_PAGE * HUGE_PAGE
        if end > start:
            yield start, end


def collapse_heap() -> int:
    """Collapse this process's anonymous memory into huge pages; the bytes it covered (0 if refused).

    Blocking for up to a few seconds on a large heap the first time: call it from a thread."""
    global _refused
    if _refused or not sys.platform.startswith("linux"):
        return 0
    try:
        with open("/proc/self/maps") as handle:
            maps = handle.read()
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        _refused = True
        return 0
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    covered = 0
    for start, end in anonymous_ranges(maps):
        # One huge page per call: a call stops at the first page it cannot collapse (one in use by
        # another thread's stack, say) and would leave the rest of a large range in small pages.
        for page in range(start, end, HUGE_PAGE):
            if madvise(page, HUGE_PAGE, MADV_COLLAPSE) == 0:
                covered += HUGE_PAGE
                continue
            if ctypes.get_errno() == errno.EINVAL and covered == 0:
                # No MADV_COLLAPSE in this kernel, or THP is off: never again.
                _refused = True
                log.info("huge pages unavailable (MADV_COLLAPSE: EINVAL): checkpoints fork small pages")
                return 0
            # EAGAIN/ENOMEM/EFAULT: a page changed or memory is short right now; the next call retries.
    return covered
