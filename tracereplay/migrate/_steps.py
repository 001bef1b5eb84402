"""Steps shared by the policies: mm_cpumask readings and pages migrated one at a time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.migrate._engine import Call, Engine, PageRows, RoundRows
from tracereplay.migrate._engine import within as within  # where policies found it before


class Phases:
    """Running sums of a batch's phase durations, ns."""

    __slots__ = ("copy", "flush", "other", "remap", "unmap")

    def __init__(self) -> None:
        self.unmap = self.flush = self.copy = self.remap = self.other = 0

    def as_kwargs(self) -> dict[str, int]:
        return {"unmap_ns": self.unmap, "flush_ns": self.flush, "copy_ns": self.copy,
                "remap_ns": self.remap, "other_ns": self.other}


@dataclass(frozen=True, slots=True)
class Mask:
    """One reading of mm_cpumask, with what a flush round from the call's CPU needs of it."""

    cpus: np.ndarray  # bool over CPUs
    targets: int  # CPUs in it but the initiator: each gets an IPI
    local: bool  # the initiator is in it (it ran the process): it flushes its own TLB


class MaskReader:
    """mm_cpumask of a call's pid as the call's policy reads it. A reading holds from its time
    up to :attr:`until` (exclusive): readings in between are not made again."""

    __slots__ = ("_last", "_since", "call", "eng", "seen", "until")

    def __init__(self, eng: Engine, call: Call) -> None:
        self.eng, self.call = eng, call
        self.seen: dict[bytes, Mask] = {}
        self._last: Mask | None = None
        self._since = self.until = 0

    def at(self, t_ns: int) -> Mask:
        if self._last is not None and self._since <= t_ns < self.until:
            return self._last
        cpus = self.eng.mask(self.call.pid_index, t_ns)
        key = cpus.tobytes()
        got = self.seen.get(key)
        if got is None:
            local = bool(cpus[self.call.cpu])
            got = self.seen[key] = Mask(cpus, int(cpus.sum()) - int(local), local)
        self._last, self._since = got, t_ns
        self.until = self.eng.mask_until(self.call.pid_index, t_ns)
        return got

    def id(self, mask: Mask) -> int:
        """The mask's number in the run's mask table, given when a round first uses it."""
        return self.eng.mask_id(mask.cpus)


def group_sizes(n: int, size: int) -> np.ndarray:
    """Sizes of the consecutive groups of at most ``size`` that ``n`` rows are cut into."""
    counts = np.full(-(-n // size), size, np.int64)
    if len(counts):
        counts[-1] = n - size * (len(counts) - 1)
    return counts


def chunk_bounds(n_pages: np.ndarray, batch_pages: int) -> np.ndarray:
    """Where each chunk of the folio list starts, and the end: folios are added to a chunk
    until it holds ``batch_pages`` base pages or more (``migrate_pages()``: the folio that
    reaches the limit stays in the chunk). ``n_pages``: each folio's base pages."""
    n = len(n_pages)
    if not n or n_pages.max() == 1:
        return np.concatenate([[0], np.cumsum(group_sizes(n, batch_pages))])
    cum = np.cumsum(n_pages)
    bounds = [0]
    while bounds[-1] < n:
        before = int(cum[bounds[-1] - 1]) if bounds[-1] else 0
        bounds.append(min(n, int(np.searchsorted(cum, before + batch_pages, side="left")) + 1))
    return np.asarray(bounds, np.int64)


def per_row(groups: list[dict[str, int]], counts: np.ndarray) -> dict[str, np.ndarray]:
    """int64 arrays by name: each group's values (one dict a group, same names) repeated for
    each of its ``counts`` rows."""
    names = list(groups[0])
    table = np.array([[g[name] for name in names] for g in groups], np.int64)
    return dict(zip(names, np.repeat(table.T, counts, axis=1), strict=True))


@dataclass(frozen=True, slots=True)
class OneByOne:
    """What :func:`one_by_one` did: its end time, the folios still busy after its passes (in
    list order) and how many base pages it migrated."""

    end_ns: int
    left: np.ndarray
    nr_succeeded: int


def one_by_one(
    eng: Engine, call: Call, pages: np.ndarray, *, batch_id: int, passes: int,
    sample_pages: int, attempts_before: int, t_ns: int, ph: Phases,
) -> OneByOne:
    """Migrate the folios ``pages`` one at a time, ``passes`` passes over those still busy,
    recording their rounds and rows: per folio attempt ``other``, and when the folio is not
    busy ``unmap``, a flush of its translations at once (one range flush), ``copy``, ``remap``.

    This is Linux ≤ 6.2's ``unmap_and_move()`` and the sync one-by-one fallback of ≥ 6.3.
    mm_cpumask is read at the start of each run of attempts of a pass holding ``sample_pages``
    base pages (cut as :func:`chunk_bounds` cuts a batched call, so that both policies read it
    at the same resolution).
    """
    c = eng.costs
    masks = MaskReader(eng, call)
    remaining = pages
    copy = eng.copy_times(pages)  # each folio copied by itself
    unmap_c, remap_c = eng.unmap_remap(pages)  # once per mapping
    off_u, off_m = eng.pauses(pages)  # the task off its CPU before the unmap, the move
    entries = eng.flush_entries(pages)
    span = eng.flush_span(pages)
    attempts = np.full(len(pages), attempts_before, np.int64)
    t = t_ns
    done = moved = 0
    for _ in range(passes):
        n = len(remaining)
        if not n:
            break
        ok = ~eng.draws.take(n)
        sizes = np.diff(chunk_bounds(eng.folio_pages(remaining), sample_pages))
        t_pass = t
        cost, full, segments, t = _pass_rounds(eng, masks, t, ok, span, copy,
                                               unmap_c + remap_c + off_u + off_m, sizes)
        seg_of = per_row(segments, sizes)
        # Each attempt takes `other`, and a folio that is not busy its whole step besides (with
        # the time its task was off the CPU before its unmap and before its move).
        dur = c.other_ns + np.where(ok, off_u + unmap_c + cost + off_m + copy + remap_c, 0)
        start = t_pass + np.cumsum(dur) - dur
        k = int(ok.sum())
        if k:
            page = remaining[ok]
            unmap = start[ok] + (c.other_ns + off_u[ok] + unmap_c[ok])
            round_cost = cost[ok]
            flush = unmap + round_cost
            moves = flush + off_m[ok]
            first = eng.add_rounds(RoundRows(
                ts_ns=unmap.copy(), cost_ns=round_cost, targets=seg_of["targets"][ok],
                full=full[ok], mask_id=seg_of["mask_id"][ok],
                batch_id=np.full(k, batch_id, np.int64),
                n_pages=entries[ok], page_list=eng.translations(page),
                broadcast=seg_of["broadcast"][ok].astype(bool),
            ))
            eng.add_pages(PageRows(
                page=page, batch_id=np.full(k, batch_id, np.int64),
                pos=np.arange(done, done + k, dtype=np.int32), unmap_ns=unmap, flush_ns=flush,
                copy_start_ns=moves, remap_ns=moves + (copy[ok] + remap_c[ok]),
                round=np.arange(first, first + k, dtype=np.int64),
                status=np.zeros(k, np.int8), attempts=attempts[ok] + 1,
                copy_end_ns=moves + copy[ok],
            ), call)
            ph.flush += int(round_cost.sum())
            ph.copy += int(copy[ok].sum())
            ph.other += int(off_u[ok].sum() + off_m[ok].sum())
            moved += int(eng.folio_pages(page).sum())
        ph.other += n * c.other_ns
        ph.unmap += int(unmap_c[ok].sum())
        ph.remap += int(remap_c[ok].sum())
        done += k
        remaining, copy, entries, span = remaining[~ok], copy[~ok], entries[~ok], span[~ok]
        unmap_c, remap_c, off_u, off_m = unmap_c[~ok], remap_c[~ok], off_u[~ok], off_m[~ok]
        attempts = attempts[~ok] + 1
    return OneByOne(end_ns=t, left=remaining, nr_succeeded=moved)


def _pass_rounds(eng: Engine, masks: MaskReader, t: int, ok: np.ndarray, span: np.ndarray,
                 copy: np.ndarray, ptes: np.ndarray, sizes: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, list[dict[str, int]], int]:
    """The flush rounds of one pass of :func:`one_by_one`: each run of ``sizes`` attempts reads
    mm_cpumask once, at its start (``ptes``: each attempt's unmap and remap, every mapping, and
    its task's time off the CPU).
    Returns each attempt's round cost and fullness, each run's round fields (IPI targets, mask
    id, broadcast) and the pass's end time.

    A sticky mask only grows, so when the reading at the last run's start is the one at the
    first, every run between reads it too: the runs are then costed at once (the general
    per-run step, vectorised); otherwise run by run."""
    c = eng.costs
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    first = masks.at(t)
    if eng.flush.mm_cpumask == "sticky":
        cost, full = eng.flush_costs(first.local, first.targets, span)
        dur = np.where(ok, ptes + cost + copy, 0) + c.other_ns
        run_start = t + np.concatenate(([0], np.cumsum(np.add.reduceat(dur, starts))))
        if masks.at(int(run_start[-2])) is first:
            k = np.add.reduceat(ok.astype(np.int64), starts)
            # Whom the mechanism's round interrupts depends on the mask, not on the pages.
            how = eng.flush_round(first.local, first.targets, 1)
            mask_id = masks.id(first) if k.any() else -1
            segments = [{"targets": how.ipis, "mask_id": mask_id if n_ok else -1,
                         "broadcast": how.broadcast} for n_ok in k.tolist()]
            return cost, full, segments, int(run_start[-1])
    n = len(ok)
    cost = np.zeros(n, np.int64)
    full = np.zeros(n, bool)
    segments = []
    for s0, n_seg in zip(starts.tolist(), sizes.tolist(), strict=True):
        seg = slice(s0, s0 + n_seg)
        mask = masks.at(t)
        cost[seg], full[seg] = eng.flush_costs(mask.local, mask.targets, span[seg])
        n_ok = int(ok[seg].sum())
        how = eng.flush_round(mask.local, mask.targets, 1)
        segments.append({"targets": how.ipis, "mask_id": masks.id(mask) if n_ok else -1,
                         "broadcast": how.broadcast})
        t += n_seg * c.other_ns + int((ptes[seg] + cost[seg] + copy[seg])[ok[seg]].sum())
    return cost, full, segments, t
