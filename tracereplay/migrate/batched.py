"""``batched``: Linux ≥ 6.3 ``migrate_pages_batch()``.

The folio list is cut into chunks of ``batch_pages`` (512 = HPAGE_PMD_NR) base pages as
``migrate_pages()`` cuts it: folios are added while the chunk holds fewer pages, so the folio
that reaches or crosses the limit stays in the chunk (``nr_pages >= NR_MAX_BATCHED_MIGRATION``
then ``list_cut_before`` the next folio, mm/migrate.c since 6.3). For each chunk:
unmap every page (busy pages are retried within the unmap stage, up to the pass budget), then
**one** flush (a round of the profile's flush mechanism: under ``ipi`` an IPI round to the other
CPUs in mm_cpumask, more than ``ceiling_pages`` pages making the targets flush the whole address
space), then per page copy and remap.

Sync callers (migratepages, move_pages) run each chunk as an async batch with
``async_passes`` (3) passes and retry each page still busy alone in sync mode for
``sync_passes`` (7) passes, with an immediate per-page flush (kind ``sync_retry``). Async callers
get ``passes`` (10) passes and no fallback. When the mechanism does not defer (x86: no other CPU
in mm_cpumask) each page gets its local ``invlpg`` as it is unmapped and no IPIs are sent.

A call is laid out a stretch of chunks at a time: the draws say which attempts find a page
busy before any time is computed, so the chunks up to the first that leaves a page busy are
timed one by one (a few scalars each: mm_cpumask is read when each starts) and their rows are
computed at once. Without busy pages the whole call is one stretch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.config import setting
from tracereplay.copy import Copied
from tracereplay.migrate._engine import Call, Draws, Engine, PageRows, RoundRows, within
from tracereplay.migrate._steps import (
    MaskReader,
    Phases,
    chunk_bounds,
    one_by_one,
    per_row,
)
from tracereplay.migrate.registry import register


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchedConfig:
    """``[policy.batched]``."""

    batch_pages: int = setting(
        "base pages unmapped before one flush (NR_MAX_BATCHED_MIGRATION)", at_least=1)
    passes: int = setting(
        "passes of a batch of an async call, which has no sync fallback "
        "(NR_MAX_MIGRATE_PAGES_RETRY)", at_least=1)
    async_passes: int = setting(
        "passes of a sync call's batch before its sync fallback (NR_MAX_MIGRATE_ASYNC_RETRY)",
        at_least=1)
    sync_passes: int = setting(
        "passes of the one-by-one sync fallback (NR_MAX_MIGRATE_SYNC_RETRY)", at_least=1)


@dataclass(frozen=True, slots=True)
class _Stretch:
    """The unmap stages of consecutive chunks, up to the first that leaves a page busy after
    its passes (or to the call's last). Pages are indices into the call's list."""

    sizes: np.ndarray  # folios of each chunk
    attempts: np.ndarray  # attempts of each chunk's unmap stage
    k: np.ndarray  # pages each chunk unmapped
    order: np.ndarray  # the pages unmapped, chunk after chunk, in the order they were
    attempt: np.ndarray  # for each, which attempt of its chunk's stage unmapped it (from 0)
    tries: np.ndarray  # for each, the attempts it took
    left: np.ndarray  # pages of the last chunk still busy after its passes


def _stretch(draws: Draws, bounds: np.ndarray, c: int, passes: int) -> _Stretch:
    """The unmap stages of chunks ``c``, ``c + 1`` … (``bounds``: where each chunk starts,
    and the end) up to the first that leaves a page busy after its passes, or to the last."""
    n_chunks = len(bounds) - 1
    sizes: list[np.ndarray] = []
    attempts: list[np.ndarray] = []
    ks: list[np.ndarray] = []
    order: list[np.ndarray] = []
    attempt: list[np.ndarray] = []
    tries: list[np.ndarray] = []
    left = np.zeros(0, np.int64)
    while c < n_chunks and not len(left):
        # Chunks that unmap every page at its first attempt, up to the first that does not.
        busy = draws.first_busy(int(bounds[-1] - bounds[c]))
        dirty = n_chunks if busy is None else \
            int(np.searchsorted(bounds, bounds[c] + busy, side="right")) - 1
        clean = np.diff(bounds[c:dirty + 1])
        draws.take(int(bounds[dirty] - bounds[c]))
        sizes.append(clean)
        attempts.append(clean)
        ks.append(clean)
        order.append(np.arange(bounds[c], bounds[dirty], dtype=np.int64))
        attempt.append(within(clean))
        tries.append(np.ones(len(order[-1]), np.int64))
        if dirty == n_chunks:
            break
        # A chunk that finds a page busy: busy pages are retried in the next pass.
        remaining = np.arange(bounds[dirty], bounds[dirty + 1], dtype=np.int64)
        taken = np.zeros(len(remaining), np.int64)
        made = k = 0
        for _ in range(passes):
            if not len(remaining):
                break
            ok = ~draws.take(len(remaining))
            order.append(remaining[ok])
            attempt.append(made + np.flatnonzero(ok))
            tries.append(taken[ok] + 1)
            made += len(remaining)
            k += len(order[-1])
            remaining, taken = remaining[~ok], taken[~ok] + 1
        sizes.append(np.array([bounds[dirty + 1] - bounds[dirty]]))
        attempts.append(np.array([made]))
        ks.append(np.array([k]))
        left = remaining
        c = dirty + 1
    return _Stretch(np.concatenate(sizes), np.concatenate(attempts), np.concatenate(ks),
                    np.concatenate(order), np.concatenate(attempt), np.concatenate(tries), left)


def _lay_out(eng: Engine, call: Call, pages: np.ndarray, st: _Stretch, masks: MaskReader,
             t: int, batch_copy: bool, list_start: int) -> tuple[int, int]:
    """Time the stretch's chunks (the first starts at index ``list_start`` of the folio list)
    one after another and record their batches, rounds and folio rows; returns the end time
    and the last chunk's batch id. After a chunk's flush its folios are copied and remapped one
    after another, or, with ``batch_copy``, copied together by the copy engine and then
    remapped one after another."""
    c = eng.costs
    folios = pages[st.order]  # the folios unmapped, chunk after chunk
    copy = eng.copy_times(folios)  # each copied by itself
    unmap_c, remap_c = eng.unmap_remap(folios)  # once per mapping of each folio
    off_u, off_m = eng.pauses(folios)  # the task off its CPU before each unmap, each move
    entries = eng.flush_entries(folios)
    span = eng.flush_span(folios)
    n_pages = eng.folio_pages(pages)
    ends = np.cumsum(st.k)
    firsts = ends - st.k
    # Prefix sums over the folios unmapped, so that a chunk's total is one difference.
    cum = {name: np.concatenate([[0], np.cumsum(v)]) for name, v in (
        ("copy", copy), ("entries", entries), ("span", span), ("unmap", unmap_c),
        ("remap", remap_c), ("off_unmap", off_u), ("off_move", off_m))}
    list_pages = np.concatenate([[0], np.cumsum(n_pages)])
    chunk_end = list_start + np.cumsum(st.sizes)  # list index after each chunk
    local = np.zeros(len(folios), np.int64)  # each folio's own flush, when nobody else holds it
    local_full = np.zeros(len(folios), bool)  # and whether it flushes the whole address space
    chunks: list[dict[str, int]] = []
    copied: list[Copied] = []  # with batch_copy: each chunk's copy
    for j, (attempts, moved) in enumerate(zip(st.attempts.tolist(), st.k.tolist(), strict=True)):
        a, b = int(firsts[j]), int(ends[j])
        sums = {name: int(v[b] - v[a]) for name, v in cum.items()}
        entry_sum, span_sum = sums["entries"], sums["span"]
        unmap_sum, remap_sum = sums["unmap"], sums["remap"]
        off_unmap, off_move = sums["off_unmap"], sums["off_move"]
        bid = eng.new_batch_id()
        mask = masks.at(t)
        deferred = eng.defers(mask.local, mask.targets)
        if deferred:
            # try_to_unmap_flush(): one round for the chunk once every folio is unmapped.
            rnd = eng.flush_round(mask.local, mask.targets, span_sum)
            round_cost, full, ipis, broadcast = rnd.cost_ns, rnd.full, rnd.ipis, rnd.broadcast
            flush_ns = round_cost if moved else 0
        else:
            # Nobody else can hold the translations: each folio's are flushed at once (a local
            # flush of its range, as serial does), no IPIs.
            cost, local_full[a:b] = eng.flush_costs(mask.local, 0, span[a:b])
            local[a:b] = cost
            round_cost, full, ipis = 0, False, 0
            broadcast = eng.flush_round(mask.local, 0, 1).broadcast
            flush_ns = int(cost.sum())
        unmapped = t + attempts * c.other_ns + off_unmap + unmap_sum + (
            0 if deferred else flush_ns)
        moves = unmapped + (round_cost if deferred and moved else 0)
        if batch_copy:
            # The series' flow: every folio of the chunk copied at once, then each remapped.
            copied.append(eng.copier.batch(eng.folio_bytes(folios[a:b])))
            copy_ns = copied[-1].total_ns
        else:
            copy_ns = sums["copy"]
        end = moves + off_move + copy_ns + remap_sum
        chunk_pages = int(list_pages[chunk_end[j]] - list_pages[chunk_end[j] - st.sizes[j]])
        eng.add_batch(call=call, kind="batch", pages=chunk_pages,
                      nr_succeeded=int(n_pages[st.order[a:b]].sum()), start_ns=t,
                      end_ns=end, unmap_ns=unmap_sum, flush_ns=flush_ns,
                      copy_ns=copy_ns, remap_ns=remap_sum,
                      other_ns=attempts * c.other_ns + off_unmap + off_move,
                      folios=int(st.sizes[j]))
        chunks.append({"start": t, "unmapped": unmapped, "moves": moves, "cost": round_cost,
                       "targets": ipis, "full": full,
                       "mask_id": masks.id(mask) if moved else -1, "batch_id": bid,
                       "one_round": deferred, "entries": entry_sum, "broadcast": broadcast})
        t = end
    ch = per_row(chunks, st.k)  # the chunks' values, one row per folio unmapped
    one_round = ch["one_round"].astype(bool)
    o = within(st.k)  # position among its chunk's moves
    before = np.repeat(firsts, st.k)  # the chunk's first row, for sums over earlier rows
    local_before = (np.cumsum(local) - local) - (np.cumsum(local) - local)[before] \
        if len(local) else local
    # The unmaps of the chunk up to and including each folio's (every mapping of each).
    unmaps = off_u + unmap_c
    unmaps_upto = np.cumsum(unmaps) - (np.cumsum(unmaps) - unmaps)[before] \
        if len(unmaps) else unmaps
    unmap = ch["start"] + (st.attempt + 1) * c.other_ns + unmaps_upto + local_before
    starts = ~one_round | (o == 0)  # the rows that start a round
    first = eng.add_rounds(RoundRows(
        ts_ns=np.where(one_round, ch["unmapped"], unmap)[starts],
        cost_ns=np.where(one_round, ch["cost"], local)[starts],
        targets=ch["targets"][starts],
        full=np.where(one_round, ch["full"].astype(bool), local_full)[starts],
        mask_id=ch["mask_id"][starts], batch_id=ch["batch_id"][starts],
        n_pages=np.where(one_round, ch["entries"], entries)[starts],
        page_list=eng.translations(folios),
        broadcast=ch["broadcast"][starts].astype(bool),
    ))
    if batch_copy:
        # Each folio's copy as the engine did it; the remaps follow the chunk's whole copy.
        copy_start = ch["moves"] + _joined_offsets([cp.start_ns for cp in copied])
        copy_end = ch["moves"] + _joined_offsets([cp.end_ns for cp in copied])
        total = np.repeat(np.array([cp.total_ns for cp in copied], np.int64), st.k)
        # The chunk's pauses before moves fall among its remaps, each before its folio's.
        remaps = off_m + remap_c
        remaps_upto = np.cumsum(remaps) - (np.cumsum(remaps) - remaps)[before]
        remap = ch["moves"] + total + remaps_upto
    else:
        step = off_m + copy + remap_c
        step_before = (np.cumsum(step) - step) - (np.cumsum(step) - step)[before] \
            if len(step) else step
        copy_start = ch["moves"] + step_before + off_m
        copy_end = copy_start + copy
        remap = copy_end + remap_c
    eng.add_pages(PageRows(
        page=folios, batch_id=ch["batch_id"].copy(), pos=o, unmap_ns=unmap,
        flush_ns=np.where(one_round, ch["moves"], unmap + local), copy_start_ns=copy_start,
        remap_ns=remap, round=first + np.cumsum(starts) - 1,
        status=np.zeros(len(o), np.int8), attempts=st.tries, copy_end_ns=copy_end,
    ), call)
    return t, chunks[-1]["batch_id"]


def _joined_offsets(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def plan_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int, *,
              batch_copy: bool) -> int:
    """Schedule one call (``pages``: its folios, by head page) in chunks of ``batch_pages``
    base pages (see :func:`_lay_out` for ``batch_copy``); returns its end time."""
    cfg: BatchedConfig = eng.config
    passes = cfg.passes if call.is_async else cfg.async_passes
    bounds = chunk_bounds(eng.folio_pages(pages), cfg.batch_pages)
    masks = MaskReader(eng, call)
    t = start_ns
    c = 0
    while c < len(bounds) - 1:
        st = _stretch(eng.draws, bounds, c, passes)
        t, batch_id = _lay_out(eng, call, pages, st, masks, t, batch_copy, int(bounds[c]))
        c += len(st.sizes)
        if call.is_async:
            eng.add_failed(pages=pages[st.left], call=call, batch_id=batch_id, attempts=passes)
            continue
        for i in st.left.tolist():
            # The sync fallback: the page alone, flushed at once, up to sync_passes passes.
            retry_id = eng.new_batch_id()
            ph = Phases()
            moved = one_by_one(eng, call, pages[i:i + 1], batch_id=retry_id,
                               passes=cfg.sync_passes, sample_pages=1,
                               attempts_before=cfg.async_passes, t_ns=t, ph=ph)
            eng.add_failed(pages=moved.left, call=call, batch_id=retry_id,
                           attempts=cfg.async_passes + cfg.sync_passes)
            eng.add_batch(call=call, kind="sync_retry",
                          pages=int(eng.folio_pages(pages[i:i + 1])[0]),
                          nr_succeeded=moved.nr_succeeded, start_ns=t, end_ns=moved.end_ns,
                          folios=1, **ph.as_kwargs())
            t = moved.end_ns
    return t


@register(
    name="batched",
    description="Linux >= 6.3: unmap up to batch_pages pages, one flush, then copy and remap each",
    config=BatchedConfig, default=True, order=1,
    aliases={"migrate.batch_size": "batch_pages", "migrate.serial_passes": "passes",
             "migrate.async_passes": "async_passes", "migrate.sync_passes": "sync_passes"},
)
def migrate_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """Schedule one call; returns its end time."""
    return plan_call(eng, call, pages, start_ns, batch_copy=False)
