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
