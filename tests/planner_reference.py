"""The planning policies as they were before the whole-call fast path, kept as the oracle
that ``test_planner.py`` compares :class:`tracereplay.migrate.Planner` against.

The per-chunk logic of ``_steps.py``, ``serial.py`` and ``batched.py`` verbatim, driven through
the package's :class:`~tracereplay.migrate._engine.Engine` verbs. Do not "fix" or optimise this
file: its only job is to stay what the planner must reproduce.
"""

from __future__ import annotations

import numpy as np

from tracereplay.config import Profile
from tracereplay.migrate import Planner
from tracereplay.migrate._engine import Call, Engine
from tracereplay.prepass import PrePass


class Phases:
    """Running sums of a batch's phase durations, ns."""

    __slots__ = ("copy", "flush", "other", "remap", "unmap")

    def __init__(self) -> None:
        self.unmap = self.flush = self.copy = self.remap = self.other = 0

    def as_kwargs(self) -> dict[str, int]:
        return {"unmap_ns": self.unmap, "flush_ns": self.flush, "copy_ns": self.copy,
                "remap_ns": self.remap, "other_ns": self.other}


def one_by_one(
    eng: Engine, call: Call, batch_id: int, pages: np.ndarray, attempts_before: np.ndarray,
    t: int, pos0: int, ph: Phases,
) -> tuple[int, np.ndarray]:
    """Pages migrated one at a time: per page other → unmap → flush → copy → remap.

    This is Linux ≤ 6.2's ``unmap_and_move()`` and the sync one-by-one fallback of ≥ 6.3: the
    flush follows each PTE clear at once. Returns the end time and which pages were busy.
    """
    c = eng.costs
    n = len(pages)
    mask = eng.mask(call.pid_index, t)
    cost, targets, full = eng.round_cost(mask, call.cpu, 1)
    busy = eng.draw_busy(n)
    ok = ~busy
    step = c.unmap_ns + cost + c.copy_ns + c.remap_ns
    dur = c.other_ns + np.where(ok, step, 0).astype(np.int64)
    end = t + np.cumsum(dur)
    unmap = end - dur + c.other_ns + c.unmap_ns
    k = int(ok.sum())
    if k:
        done = pages[ok]
        rounds = eng.add_rounds(
            start_ns=unmap[ok], cost_ns=cost, targets=targets, full=full, mask=mask, call=call,
            batch_id=batch_id, page_ptr=np.arange(k + 1, dtype=np.int64), pages=done,
        )
        flush = unmap[ok] + cost
        eng.add_pages(
            pages=done, call=call, batch_id=batch_id, pos=pos0 + np.arange(k),
            unmap_ns=unmap[ok], flush_ns=flush, copy_start_ns=flush,
            remap_ns=flush + c.copy_ns + c.remap_ns, round_index=rounds,
            attempts=attempts_before[ok] + 1,
        )
    ph.other += n * c.other_ns
    ph.unmap += k * c.unmap_ns
    ph.flush += k * cost
    ph.copy += k * c.copy_ns
    ph.remap += k * c.remap_ns
    return int(end[-1]) if n else t, busy


# -- serial ------------------------------------------------------------------------------


def serial_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
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


# -- batched -----------------------------------------------------------------------------


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


def batched_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """Schedule one call; returns its end time."""
    t = start_ns
    size = eng.costs.batch_size
    for s in range(0, len(pages), size):
        t, still_busy = _batch(eng, call, pages[s:s + size], t)
        for i in range(len(still_busy)):
            t = _sync_retry(eng, call, still_busy[i:i + 1], t)
    return t


CALLS = {"serial": serial_call, "batched": batched_call}


def reference_planner(pre: PrePass, profile: Profile, policy: str) -> Planner:
    """A :class:`Planner` (same queueing and page lists) whose calls the reference code plans."""
    planner = Planner(pre, profile, policy)
    planner._migrate_call = CALLS[policy]
    return planner
