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
from tracereplay.migrate._steps import MaskReader, Phases, group_sizes, one_by_one, rows

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


def _whole_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """:func:`migrate_call` when no page is ever busy: every chunk unmaps all its pages in its
    first pass and nothing is retried, so the chunks' times follow from a loop over chunks and
    every row is laid out at once. Plans exactly what the chunk-by-chunk path would."""
    if not len(pages):
        return start_ns
    c, f = eng.costs, eng.flush
    sizes = group_sizes(len(pages), c.batch_size)
    step = c.copy_ns + c.remap_ns
    masks = MaskReader(eng, call)
    gid = eng.n_rounds
    # Per chunk: unmap/flush/round/copy layouts (base + j * slope) and its rounds' values.
    unmap0: list[int] = []
    dur: list[int] = []
    round0: list[int] = []
    copy0: list[int] = []
    flush0: list[int] = []
    flush_step: list[int] = []
    round_step: list[int] = []
    r_ts: list[int] = []
    r_step: list[int] = []
    r_count: list[int] = []
    r_pages: list[int] = []
    r_cost: list[int] = []
    r_targets: list[int] = []
    r_full: list[bool] = []
    r_mask: list[int] = []
    bids: list[int] = []
    t = start_ns
    for k in sizes.tolist():
        bid = eng.new_batch_id()
        mask_id, targets, local = masks.at(t)
        local_cost = f.invlpg_ns if local else 0
        d = c.other_ns + c.unmap_ns + (0 if targets else local_cost)
        u0 = t + c.other_ns + c.unmap_ns
        t_unmapped = t + k * d
        if targets:
            # One round for the chunk once every page is unmapped.
            cost, full = eng.flush_cost(local, targets, k)
            flushed = t_unmapped + cost
            layout = (flushed, 0, 0, t_unmapped, 0, 1, k)
            flush_ns = cost
        else:
            # Nobody else can hold the translation: a local invlpg at each unmap, no IPIs.
            cost, full = local_cost, False
            flushed = t_unmapped
            layout = (u0 + local_cost, d, 1, u0, d, k, 1)
            flush_ns = k * local_cost
        for out, v in zip((flush0, flush_step, round_step, r_ts, r_step, r_count, r_pages),
                          layout, strict=True):
            out.append(v)
        r_cost.append(cost)
        r_targets.append(targets)
        r_full.append(full)
        r_mask.append(mask_id)
        bids.append(bid)
        unmap0.append(u0)
        dur.append(d)
        round0.append(gid)
        copy0.append(flushed)
        gid += r_count[-1]
        end = flushed + k * step
        eng.add_batch(call=call, kind="batch", pages=k, nr_succeeded=k, start_ns=t, end_ns=end,
                      unmap_ns=k * c.unmap_ns, flush_ns=flush_ns, copy_ns=k * c.copy_ns,
                      remap_ns=k * c.remap_ns, other_ns=k * c.other_ns)
        t = end

    counts = np.asarray(r_count, np.int64)
    eng.add_round_rows(
        start_ns=rows(r_ts, r_step, counts), cost_ns=np.repeat(np.asarray(r_cost, np.int64), counts),
        targets=np.repeat(np.asarray(r_targets, np.int32), counts),
        full=np.repeat(np.asarray(r_full, bool), counts),
        mask_id=np.repeat(np.asarray(r_mask, np.int32), counts),
        batch_id=np.repeat(np.asarray(bids, np.int64), counts),
        n_pages=np.repeat(np.asarray(r_pages, np.int64), counts), pages=pages.copy(),
    )
    copy_start = rows(copy0, step, sizes)
    eng.add_page_rows(
        pages=pages, call=call, batch_id=np.repeat(np.asarray(bids, np.int64), sizes),
        pos=rows([0] * len(sizes), 1, sizes).astype(np.int32),
        unmap_ns=rows(unmap0, dur, sizes), flush_ns=rows(flush0, flush_step, sizes),
        copy_start_ns=copy_start, remap_ns=copy_start + step,
        round_index=rows(round0, round_step, sizes), attempts=1,
    )
    return t


def migrate_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """Schedule one call; returns its end time."""
    if eng.costs.fail_probability <= 0.0:
        return _whole_call(eng, call, pages, start_ns)
    t = start_ns
    size = eng.costs.batch_size
    for s in range(0, len(pages), size):
        t, still_busy = _batch(eng, call, pages[s:s + size], t)
        for i in range(len(still_busy)):
            t = _sync_retry(eng, call, still_busy[i:i + 1], t)
    return t
