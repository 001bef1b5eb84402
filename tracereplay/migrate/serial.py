"""``serial``: Linux ≤ 6.2 ``migrate_pages()``.

Up to ``serial_passes`` (10) passes over the page list; each page goes through
``unmap_and_move()``: unmap, flush that one PTE at once (local ``invlpg`` and one IPI round to
the other CPUs in mm_cpumask, each invalidating the page), copy, remap. A busy page is retried
in the next pass. The whole call is one row of the ``batches`` table (kind ``serial``).
"""

from __future__ import annotations

import numpy as np

from tracereplay.migrate._engine import Call, Engine
from tracereplay.migrate._steps import MaskReader, Phases, group_sizes, one_by_one, rows

NAME = "serial"
DESCRIPTION = "Linux <= 6.2: unmap, flush, copy, remap one page at a time"


def _whole_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """:func:`migrate_call` when no page is ever busy: one pass, every page migrated, so the
    segments' times follow from a loop over segments and every row is laid out at once.
    Plans exactly what the segment-by-segment path would."""
    c = eng.costs
    batch_id = eng.new_batch_id()
    sizes = group_sizes(len(pages), eng.flush.mm_cpumask_sample_pages)
    masks = MaskReader(eng, call)
    unmap0, dur, costs, targets, full, mask_ids = [], [], [], [], [], []
    t = start_ns
    flush_ns = 0
    # mm_cpumask is read once per segment of mm_cpumask_sample_pages pages.
    for k in sizes.tolist():
        mask_id, n_targets, local = masks.at(t)
        cost, is_full = eng.flush_cost(local, n_targets, 1)
        d = c.other_ns + c.unmap_ns + cost + c.copy_ns + c.remap_ns
        unmap0.append(t + c.other_ns + c.unmap_ns)
        dur.append(d)
        costs.append(cost)
        targets.append(n_targets)
        full.append(is_full)
        mask_ids.append(mask_id)
        flush_ns += k * cost
        t += k * d
    n = len(pages)
    unmap = rows(unmap0, dur, sizes)
    cost_rows = np.repeat(np.asarray(costs, np.int64), sizes)
    first = eng.add_round_rows(
        start_ns=unmap.copy(), cost_ns=cost_rows, targets=np.repeat(np.asarray(targets, np.int32), sizes),
        full=np.repeat(np.asarray(full, bool), sizes),
        mask_id=np.repeat(np.asarray(mask_ids, np.int32), sizes), batch_id=batch_id,
        n_pages=np.ones(n, np.int64), pages=pages.copy(),
    )
    flush = unmap + cost_rows
    eng.add_page_rows(
        pages=pages, call=call, batch_id=batch_id, pos=np.arange(n, dtype=np.int32),
        unmap_ns=unmap, flush_ns=flush, copy_start_ns=flush.copy(),
        remap_ns=flush + (c.copy_ns + c.remap_ns),
        round_index=np.arange(first, first + n, dtype=np.int64), attempts=1,
    )
    eng.add_batch(call=call, kind="serial", pages=n, nr_succeeded=n, start_ns=start_ns, end_ns=t,
                  unmap_ns=n * c.unmap_ns, flush_ns=flush_ns, copy_ns=n * c.copy_ns,
                  remap_ns=n * c.remap_ns, other_ns=n * c.other_ns)
    return t


def migrate_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """Schedule one call; returns its end time."""
    c = eng.costs
    if c.fail_probability <= 0.0:
        return _whole_call(eng, call, pages, start_ns)
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
