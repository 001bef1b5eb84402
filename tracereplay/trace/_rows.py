"""Compiled row checks of trace validation: one pass over a row group's raw columns.

Every row's ``ts_ns`` (not null, not negative, not below the previous row's) and everything an
``access`` row must satisfy (its required columns not null, ``cpu`` inside the machine, ``pid``
and ``vaddr`` in range) are checked here; rows of the other kinds are few and are checked by the
vectorised rules of ``trace.py``, which also name every broken rule. This pass only finds
whether a row group breaks any of these rules, and where. Arrays in, an index out; nothing of
the package is imported.

A validity array of length 0 means the column has no nulls in the group.
"""

from __future__ import annotations

import numpy as np
from numba import njit

KIND_ACCESS = 0


@njit(cache=True, nogil=True)
def first_bad_row(
    kind, ts, ts_valid, cpu, cpu_valid, pid, pid_valid, vaddr, vaddr_valid, write_valid,
    last_ts, cpus, vaddr_limit,
):
    """Index of the first row that breaks one of the rules above, or -1 when none does.

    ``kind`` holds codes (negative: null or an unknown word, always a break); ``last_ts`` is
    the previous row group's last ``ts_ns`` (-1 before the first group).
    """
    prev = last_ts
    limit = np.uint64(vaddr_limit)
    for i in range(kind.shape[0]):
        k = kind[i]
        if k < 0:
            return i
        if ts_valid.shape[0] and not ts_valid[i]:
            return i
        t = ts[i]
        if t < 0 or t < prev:
            return i
        prev = t
        if k != KIND_ACCESS:
            continue
        if cpu_valid.shape[0] and not cpu_valid[i]:
            return i
        if pid_valid.shape[0] and not pid_valid[i]:
            return i
        if vaddr_valid.shape[0] and not vaddr_valid[i]:
            return i
        if write_valid.shape[0] and not write_valid[i]:
            return i
        c = cpu[i]
        if c < 0 or c >= cpus or pid[i] < 0 or vaddr[i] >= limit:
            return i
    return -1
