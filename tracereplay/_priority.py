"""Threads that work behind a command's critical path, at a lower scheduling priority.

What a replay waits for is its lane: the compiled kernel, one thread per policy. The trace's
reader (Parquet decoding, in Arrow's threads as well) and the event tables' writers only have
to keep ahead of it, with bounded queues between them. On two cores they all compete for the
CPU, and at equal priority the lane ran about 85% of the time it had work: the command took
10.3 s on the 100 M-access pmbench trace without migrations and 13.7 s with a call every
50 ms. With the reader and writers at nice +10 they take the CPU the lane leaves, and the same
commands took 9.5 and 12.2 s (best of 3 alternating runs each, the same outputs).

Linux only, where the nice value is a thread's own; raising one's own nice value needs no
privilege, and it is added to what the process was started with (``nice -n 5 tracereplay
…``), up to the maximum, 19. Elsewhere, and where the call is refused, threads keep the
process's priority.
"""

from __future__ import annotations

import os
import sys
import threading

BACKGROUND_NICE = 10
_MAX_NICE = 19


def run_in_background() -> None:
    """Lower the calling thread's priority by :data:`BACKGROUND_NICE` (Linux); a thread it
    starts from then on inherits it."""
    if sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(_MAX_NICE, now + BACKGROUND_NICE))
    except OSError:
        pass
