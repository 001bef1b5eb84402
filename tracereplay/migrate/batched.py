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
timed together and their rows computed at once. Without busy pages the whole call is one
stretch. A chunk reads mm_cpumask when it starts; the chunks that start while one reading
holds (a sticky mask changes only when a CPU first runs the process) are timed at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.config import setting
from tracereplay.migrate._engine import Call, Draws, Engine, PageRows, RoundRows, within
from tracereplay.migrate._steps import (
    MaskReader,
    Phases,
    chunk_bounds,
    one_by_one,
)
from tracereplay.migrate._windows import folio_windows
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


@dataclass(frozen=True, slots=True)
class _Timed:
    """The chunks of a stretch as mm_cpumask, read when each starts, makes them flush."""

    start: np.ndarray  # when each chunk starts
    flush: np.ndarray  # its flush time: its round (if it unmapped a folio) or its local flushes
    deferred: np.ndarray  # bool: the chunk's flush is one round after its unmaps
    full: np.ndarray  # bool: that round flushes the whole address space
    targets: np.ndarray  # that round's IPIs
    broadcast: np.ndarray  # bool: a round from the chunk is a broadcast
    mask_id: np.ndarray  # the mask its rounds read (-1: it unmapped nothing)
    local: np.ndarray  # each folio's own flush, in a chunk that does not defer (else 0)
    local_full: np.ndarray  # bool: and whether that flush drops the whole address space


def _time_chunks(eng: Engine, masks: MaskReader, t: int, st: _Stretch, firsts: np.ndarray,
                 before: np.ndarray, after: np.ndarray, span: np.ndarray) -> tuple[_Timed, int]:
    """Time the chunks one after another from ``t``: each takes ``before`` (its unmap stage
    but its flushes), its flush and ``after`` (its moves); returns them and when the last
    ends. A chunk reads mm_cpumask when it starts, so the chunks that start while a reading
    holds (before ``masks.until``) flush alike and are timed at once. ``span``: what the flush
    of each folio unmapped covers."""
    n = len(st.k)
    out = _Timed(start=np.zeros(n, np.int64), flush=np.zeros(n, np.int64),
                 deferred=np.zeros(n, bool), full=np.zeros(n, bool),
                 targets=np.zeros(n, np.int64), broadcast=np.zeros(n, bool),
                 mask_id=np.full(n, -1, np.int64), local=np.zeros(len(span), np.int64),
                 local_full=np.zeros(len(span), bool))
    span_sum = _chunk_sums(span, firsts, st.k)
    own: dict[bool, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # local flushes, by `local`
    j = 0
    while j < n:
        mask = masks.at(t)
        deferred = eng.defers(mask.local, mask.targets)
        if deferred:
            # try_to_unmap_flush(): one round per chunk, once its folios are unmapped.
            sizes, at = np.unique(span_sum[j:], return_inverse=True)
            rounds = [eng.flush_round(mask.local, mask.targets, s) for s in sizes.tolist()]
            flush = np.where(st.k[j:] > 0, np.array([r.cost_ns for r in rounds], np.int64)[at], 0)
        else:
            # Nobody else can hold the translations: each folio's are flushed at once (a local
            # flush of its range, as serial does), no IPIs.
            if mask.local not in own:
                cost, full = eng.flush_costs(mask.local, 0, span)
                own[mask.local] = cost, full, _chunk_sums(cost, firsts, st.k)
            flush = own[mask.local][2][j:]
        dur = before[j:] + flush + after[j:]
        start = t + np.cumsum(dur) - dur
        m = int(np.searchsorted(start, masks.until, side="left"))  # chunks it holds for (>= 1)
        run = slice(j, j + m)
        out.start[run], out.flush[run], out.deferred[run] = start[:m], flush[:m], deferred
        if deferred:
            out.full[run] = np.array([r.full for r in rounds], bool)[at[:m]]
            out.targets[run] = np.array([r.ipis for r in rounds], np.int64)[at[:m]]
            out.broadcast[run] = np.array([r.broadcast for r in rounds], bool)[at[:m]]
        else:
            rows = slice(int(firsts[j]), int(firsts[j + m - 1] + st.k[j + m - 1]))
            out.local[rows], out.local_full[rows] = own[mask.local][0][rows], own[mask.local][1][rows]
            out.broadcast[run] = eng.flush_round(mask.local, 0, 1).broadcast
        if st.k[run].any():
            out.mask_id[run] = np.where(st.k[run] > 0, masks.id(mask), -1)
        t = int(start[m - 1] + dur[m - 1])
        j += m
    return out, t


def _chunk_sums(v: np.ndarray, firsts: np.ndarray, k: np.ndarray) -> np.ndarray:
    """int64: the sum of ``v`` over each chunk's rows (``firsts[j]`` its first, ``k[j]`` its
    count; the chunks' rows one after another)."""
    out = np.zeros(len(k), np.int64)
    some = k > 0
    if some.any():
        out[some] = np.add.reduceat(v, firsts[some])
    return out


def _lay_out(eng: Engine, call: Call, pages: np.ndarray, st: _Stretch, masks: MaskReader,
             t: int, batch_copy: bool, chunk_pages: np.ndarray) -> tuple[int, int]:
    """Time the stretch's chunks (``chunk_pages``: the base pages of each) one after another
    and record their batches, rounds and folio rows; returns the end time and the last chunk's
    batch id. After a chunk's flush its folios are copied and remapped one after another, or,
    with ``batch_copy``, copied together by the copy engine and then remapped one after
    another."""
    c = eng.costs
    folios = pages[st.order]  # the folios unmapped, chunk after chunk
    copy = eng.copy_times(folios)  # each copied by itself
    unmap_c, remap_c = eng.unmap_remap(folios)  # once per mapping of each folio
    off_u, off_m = eng.pauses(folios)  # the task off its CPU before each unmap, each move
    entries = eng.flush_entries(folios)
    firsts = np.cumsum(st.k) - st.k  # each chunk's first row
    sums = {name: _chunk_sums(v, firsts, st.k) for name, v in (
        ("entries", entries), ("unmap", unmap_c), ("remap", remap_c), ("off_unmap", off_u),
        ("off_move", off_m), ("pages", eng.folio_pages(folios)))}
    if batch_copy:
        # The series' flow: every folio of the chunk copied at once, then each remapped.
        copied = [eng.copier.batch(eng.folio_bytes(folios[a:a + k]))
                  for a, k in zip(firsts.tolist(), st.k.tolist(), strict=True)]
        copy_ns = np.array([cp.total_ns for cp in copied], np.int64)
        copied_start = _joined_offsets([cp.start_ns for cp in copied])
        copied_end = _joined_offsets([cp.end_ns for cp in copied])
    else:
        copy_ns = _chunk_sums(copy, firsts, st.k)
        copied_start = copied_end = np.zeros(0, np.int64)
    # Each chunk: its attempts and unmaps, its flush, then its moves.
    before = st.attempts * c.other_ns + sums["off_unmap"] + sums["unmap"]
    after = sums["off_move"] + copy_ns + sums["remap"]
    ch, t = _time_chunks(eng, masks, t, st, firsts, before, after, eng.flush_span(folios))
    moves = ch.start + before + ch.flush
    unmapped = np.where(ch.deferred, moves - ch.flush, moves)  # the chunk's last unmap ends
    batch_ids = np.array([eng.new_batch_id() for _ in range(len(st.k))], np.int64)
    eng.add_batches(call=call, kind="batch", batch_id=batch_ids, pages=chunk_pages,
                    nr_succeeded=sums["pages"], start_ns=ch.start, end_ns=moves + after,
                    unmap_ns=sums["unmap"], flush_ns=ch.flush, copy_ns=copy_ns,
                    remap_ns=sums["remap"],
                    other_ns=st.attempts * c.other_ns + sums["off_unmap"] + sums["off_move"],
                    folios=st.sizes)
    pos, batch_id, unmap, flush, copy_start, copy_end, remap, round_ = folio_windows(
        st.k, ch.start, moves, copy_ns, ch.deferred, batch_ids, st.attempt, c.other_ns,
        off_u + unmap_c, ch.local, off_m, copy, remap_c, copied_start, copied_end, batch_copy)
    # The rounds: a deferring chunk's one (if it unmapped a folio), else one per folio.
    n_rounds = np.where(ch.deferred, st.k > 0, st.k)
    of = np.repeat(np.arange(len(st.k)), n_rounds)  # each round's chunk
    row = np.repeat(firsts, n_rounds) + within(n_rounds)  # and its first folio's row
    one = ch.deferred[of]
    first = eng.add_rounds(RoundRows(
        ts_ns=np.where(one, unmapped[of], unmap[row]),
        cost_ns=np.where(one, ch.flush[of], ch.local[row]),
        targets=ch.targets[of],
        full=np.where(one, ch.full[of], ch.local_full[row]),
        mask_id=ch.mask_id[of], batch_id=batch_ids[of],
        n_pages=np.where(one, sums["entries"][of], entries[row]),
        page_list=eng.translations(folios),
        broadcast=ch.broadcast[of],
    ))
    eng.add_pages(PageRows(
        page=folios, batch_id=batch_id, pos=pos, unmap_ns=unmap, flush_ns=flush,
        copy_start_ns=copy_start, remap_ns=remap, round=first + round_,
        status=np.zeros(len(pos), np.int8), attempts=st.tries, copy_end_ns=copy_end,
    ), call)
    return t, int(batch_ids[-1])


def _joined_offsets(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)


def plan_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int, *,
              batch_copy: bool) -> int:
    """Schedule one call (``pages``: its folios, by head page) in chunks of ``batch_pages``
    base pages (see :func:`_lay_out` for ``batch_copy``); returns its end time."""
    cfg: BatchedConfig = eng.config
    passes = cfg.passes if call.is_async else cfg.async_passes
    n_pages = eng.folio_pages(pages)
    bounds = chunk_bounds(n_pages, cfg.batch_pages)
    chunk_pages = np.add.reduceat(n_pages, bounds[:-1]) if len(pages) else n_pages
    masks = MaskReader(eng, call)
    t = start_ns
    c = 0
    while c < len(bounds) - 1:
        st = _stretch(eng.draws, bounds, c, passes)
        t, batch_id = _lay_out(eng, call, pages, st, masks, t, batch_copy,
                               chunk_pages[c:c + len(st.sizes)])
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
                          pages=int(n_pages[i]),
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
