"""``serial``: Linux ≤ 6.2 ``migrate_pages()``.

Up to ``serial_passes`` (10) passes over the page list; each page goes through
``unmap_and_move()``: unmap, flush that one PTE at once (local ``invlpg`` and one IPI round to
the other CPUs in mm_cpumask, each invalidating the page), copy, remap. A busy page is retried
in the next pass. The whole call is one row of the ``batches`` table (kind ``serial``).
"""

from __future__ import annotations

import numpy as np

from tracereplay.migrate._engine import Call, Engine
from tracereplay.migrate._steps import Phases, one_by_one

NAME = "serial"
DESCRIPTION = "Linux <= 6.2: unmap, flush, copy, remap one page at a time"


def migrate_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """Schedule one call; returns its end time."""
    c = eng.costs
    batch_id = eng.new_batch_id()
    ph = Phases()
    t = start_ns
    remaining = pages
    attempts = np.zeros(len(pages), np.int64)
    done = 0
    for _ in range(c.serial_passes):
        if not len(remaining):
            break
        busy_all = np.zeros(len(remaining), bool)
        # mm_cpumask is read once per segment of mm_cpumask_sample_pages pages.
        step = eng.flush.mm_cpumask_sample_pages
        for s in range(0, len(remaining), step):
            seg = slice(s, s + step)
            t, busy = one_by_one(eng, call, batch_id, remaining[seg], attempts[seg], t, done, ph)
            busy_all[seg] = busy
            done += int((~busy).sum())
        attempts = attempts[busy_all] + 1
        remaining = remaining[busy_all]
    eng.add_failed(pages=remaining, call=call, batch_id=batch_id, attempts=c.serial_passes)
    eng.add_batch(call=call, kind="serial", pages=len(pages), nr_succeeded=done,
                  start_ns=start_ns, end_ns=t, **ph.as_kwargs())
    return t
