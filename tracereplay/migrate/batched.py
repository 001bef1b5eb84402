"""``batched``: Linux ≥ 6.3 ``migrate_pages_batch()``.

The page list is cut into chunks of ``batch_size`` (512 = HPAGE_PMD_NR) pages. For each chunk:
unmap every page (busy pages are retried within the unmap stage, up to the pass budget), then
**one** flush (an IPI round to the other CPUs in mm_cpumask; more than ``ceiling_pages`` pages
make the targets flush the whole address space), then per page copy and remap.

Sync callers (migratepages, move_pages) run each chunk as an async batch with
``async_passes`` (3) passes and retry each page still busy alone in sync mode for
``sync_passes`` (7) passes, with an immediate per-page flush (kind ``sync_retry``). Async callers
get ``serial_passes`` (10) passes and no fallback. When no other CPU is in mm_cpumask the flush
is not deferred: each page gets its local ``invlpg`` as it is unmapped and no IPIs are sent.
"""

from __future__ import annotations

import numpy as np

from tracereplay.migrate._engine import Call, Engine
from tracereplay.migrate._steps import Phases, one_by_one

NAME = "batched"
DESCRIPTION = "Linux >= 6.3: unmap up to batch_size pages, one flush, then copy and remap each"


def _batch(eng: Engine, call: Call, chunk: np.ndarray, t: int) -> tuple[int, np.ndarray]:
    """One async batch; returns its end time and the pages still busy after its passes."""
    c, f = eng.costs, eng.flush
    batch_id = eng.new_batch_id()
    start = t
    ph = Phases()
    passes = c.serial_passes if call.is_async else c.async_passes
    mask = eng.mask(call.pid_index, t)
    deferred = int(mask.sum()) - int(mask[call.cpu]) > 0
    local_cost = f.invlpg_ns if mask[call.cpu] else 0

    remaining = chunk
    unmapped, unmap_ts, tries = [], [], []
    attempts = np.zeros(len(chunk), np.int64)
    per_page = c.unmap_ns + (0 if deferred else local_cost)
    for _ in range(passes):
        if not len(remaining):
            break
        busy = eng.draw_busy(len(remaining))
        ok = ~busy
        dur = c.other_ns + np.where(ok, per_page, 0).astype(np.int64)
        end = t + np.cumsum(dur)
        unmapped.append(remaining[ok])
        unmap_ts.append((end - dur + c.other_ns + c.unmap_ns)[ok])
        tries.append(attempts[ok] + 1)
        ph.other += len(remaining) * c.other_ns
        ph.unmap += int(ok.sum()) * c.unmap_ns
        t = int(end[-1])
        remaining = remaining[busy]
        attempts = attempts[busy] + 1

    pages = np.concatenate(unmapped) if unmapped else np.zeros(0, np.int64)
    unmap = np.concatenate(unmap_ts) if unmap_ts else np.zeros(0, np.int64)
    k = len(pages)
    if k:
        if deferred:
            cost, targets, full = eng.round_cost(mask, call.cpu, k)
            rounds = eng.add_rounds(
                start_ns=np.array([t]), cost_ns=cost, targets=targets, full=full, mask=mask,
                call=call, batch_id=batch_id, page_ptr=np.array([0, k]), pages=pages,
            )
            round_index = np.repeat(rounds, k)
            flush = np.full(k, t + cost, np.int64)
            t += cost
            ph.flush += cost
        else:
            # Nobody else can hold the translation: a local invlpg at each unmap, no IPIs.
            round_index = eng.add_rounds(
                start_ns=unmap, cost_ns=local_cost, targets=0, full=False, mask=mask, call=call,
                batch_id=batch_id, page_ptr=np.arange(k + 1), pages=pages,
            )
            flush = unmap + local_cost
            ph.flush += k * local_cost
        step = c.copy_ns + c.remap_ns
        copy_start = t + np.arange(k, dtype=np.int64) * step
        eng.add_pages(
            pages=pages, call=call, batch_id=batch_id, pos=np.arange(k), unmap_ns=unmap,
            flush_ns=flush, copy_start_ns=copy_start, remap_ns=copy_start + step,
            round_index=round_index, attempts=np.concatenate(tries),
        )
        t += k * step
        ph.copy += k * c.copy_ns
        ph.remap += k * c.remap_ns
    eng.add_batch(call=call, kind="batch", pages=len(chunk), nr_succeeded=k, start_ns=start,
                  end_ns=t, **ph.as_kwargs())
    if call.is_async:
        eng.add_failed(pages=remaining, call=call, batch_id=batch_id, attempts=passes)
        remaining = remaining[:0]
    return t, remaining


def _sync_retry(eng: Engine, call: Call, page: np.ndarray, t: int) -> int:
    """Retry one page alone in sync mode: immediate flush, up to sync_passes attempts."""
    c = eng.costs
    batch_id = eng.new_batch_id()
    start = t
    ph = Phases()
    attempts = np.array([c.async_passes], np.int64)
    done = 0
    for _ in range(c.sync_passes):
        t, busy = one_by_one(eng, call, batch_id, page, attempts, t, 0, ph)
        if not busy[0]:
            done = 1
            break
        attempts += 1
    if not done:
        eng.add_failed(pages=page, call=call, batch_id=batch_id,
                       attempts=c.async_passes + c.sync_passes)
    eng.add_batch(call=call, kind="sync_retry", pages=1, nr_succeeded=done, start_ns=start,
                  end_ns=t, **ph.as_kwargs())
    return t


def migrate_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """Schedule one call; returns its end time."""
    t = start_ns
    size = eng.costs.batch_size
    for s in range(0, len(pages), size):
        t, still_busy = _batch(eng, call, pages[s:s + size], t)
        for i in range(len(still_busy)):
            t = _sync_retry(eng, call, still_busy[i:i + 1], t)
    return t
