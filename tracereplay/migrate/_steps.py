"""Time layouts shared by the policies: the per-page step and the batched unmap pass."""

from __future__ import annotations

import numpy as np

from tracereplay.migrate._engine import Call, Engine


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


def rows(base: list[int], slope: list[int] | int, counts: np.ndarray) -> np.ndarray:
    """int64 ``base[g] + j * slope[g]`` for the j-th of the ``counts[g]`` rows of group g, the
    groups one after another (``slope`` may be one value for all groups)."""
    b = np.asarray(base, np.int64)
    n = int(counts.sum())
    size = int(counts[0]) if len(counts) else 0
    if len(counts) and (counts[:-1] == size).all() and counts[-1] <= size:
        # Equal groups but a shorter last one: a [groups, size] table cut at n.
        j = np.arange(size, dtype=np.int64)
        if isinstance(slope, int):
            return (b[:, None] + (j * slope)[None, :]).ravel()[:n]
        return (b[:, None] + np.asarray(slope, np.int64)[:, None] * j).ravel()[:n]
    j = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    s = slope if isinstance(slope, int) else np.repeat(np.asarray(slope, np.int64), counts)
    return np.repeat(b, counts) + j * s


def group_sizes(n: int, size: int) -> np.ndarray:
    """Sizes of the consecutive groups of at most ``size`` that ``n`` rows are cut into."""
    counts = np.full(-(-n // size), size, np.int64)
    if len(counts):
        counts[-1] = n - size * (len(counts) - 1)
    return counts


class MaskReader:
    """mm_cpumask of a call's pid as a call's policy samples it, with what a flush round needs
    of it: (mask id, targets other than the initiator, initiator in the mask)."""

    __slots__ = ("call", "eng", "seen")

    def __init__(self, eng: Engine, call: Call) -> None:
        self.eng, self.call = eng, call
        self.seen: dict[bytes, tuple[int, int, bool]] = {}

    def at(self, t: int) -> tuple[int, int, bool]:
        mask = self.eng.mask(self.call.pid_index, t)
        key = mask.tobytes()
        got = self.seen.get(key)
        if got is None:
            local = bool(mask[self.call.cpu])
            got = self.seen[key] = (self.eng.mask_id(mask), int(mask.sum()) - int(local), local)
        return got
