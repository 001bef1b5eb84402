"""``transactional``: Nomad's transactional page migration (Xiang et al., "Nomad: Non-Exclusive
Memory Tiering via Transactional Page Migration", OSDI 2024).

Per page: copy it (alone, with the profile's copy engine) while it stays mapped (reads and writes go on to the old frame), then unmap
it, flush its PTE at once (a round of the profile's flush mechanism), and check whether it was
written since its copy began (the PTE's dirty bit). If it was not, the copy is current: remap to
it. If it was, the copy is stale: the attempt *aborts*, the old PTE is restored and the page is
tried again at once, up to ``retries`` more times. A page whose every attempt aborted is left
where it is (status ``aborted``): Nomad makes migration asynchronous and never falls back to the
stop-the-world path for a page that is being written, the page whose accesses a stall would
hurt most; a later call may move it. Accesses stall only between the unmap and the remap (or the
restore); a read during the copy costs nothing, a write during it costs the copy.

Simplifications (docs/whatifs.md): the dirty bit is taken as cleared when the copy begins
(Nomad clears it and flushes first; that flush is not modelled); a store through a stale TLB
entry between the PTE clear and the flush is not seen; attempts never find the page busy
(``migrate.fail_probability`` is not drawn); the page is flushed and remapped one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.config import setting
from tracereplay.migrate._engine import (
    STATUS_ABORTED,
    STATUS_MIGRATED,
    Call,
    Engine,
    PageRows,
    RoundRows,
)
from tracereplay.migrate._steps import MaskReader, Phases
from tracereplay.migrate.registry import register


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionalConfig:
    """``[policy.transactional]``."""

    retries: int = setting("attempts made again at once after an abort, per page", at_least=0)


def horizon(eng: Engine, n_pages: int) -> int:
    """How far past its start a call of ``n_pages`` pages may look at stores: every attempt of
    every page at the dearest flush round."""
    c, cpus = eng.costs, eng.pre.machine.cpus
    # The largest folio (PMD-sized) bounds every folio's copy and flush.
    big = 1 << eng.pmd_order
    flush = max(eng.flush_round(local, k, big).cost_ns for local in (False, True)
                for k in range(cpus))
    # Every mapping of a folio is unmapped and remapped: bound them by the most of any page.
    maps = int(eng.mappings.max()) if len(eng.mappings) else 1
    # And a folio's time off the CPU by the most of any page (the first attempt waits it out).
    off = int(eng.off_cpu.sum(axis=1).max()) if len(eng.off_cpu) else 0
    step = (c.other_ns + eng.copier.alone(big * eng.page_bytes) + maps * (c.unmap_ns + c.remap_ns)
            + flush + off)
    return n_pages * (eng.config.retries + 1) * step + 1


def _written(stores: np.ndarray | None, lo_ns: int, hi_ns: int) -> bool:
    """Whether ``stores`` (sorted times) has one in [lo_ns, hi_ns)."""
    if stores is None:
        return False
    return bool(np.searchsorted(stores, lo_ns) < np.searchsorted(stores, hi_ns))


@register(
    name="transactional",
    description="Nomad (OSDI 2024): copy while mapped, then unmap, flush, remap unless written",
    config=TransactionalConfig, order=3, horizon=horizon,
)
def migrate_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """Schedule one call; returns its end time."""
    cfg: TransactionalConfig = eng.config
    c = eng.costs
    assert eng.pre.writes is not None  # the planner checks it
    stores = eng.pre.writes.between(start_ns, start_ns + horizon(eng, len(pages)))
    batch_id = eng.new_batch_id()
    masks = MaskReader(eng, call)
    copy, span, size = eng.copy_times(pages), eng.flush_span(pages), eng.folio_pages(pages)
    unmap_c, remap_c = eng.unmap_remap(pages)  # once per mapping
    off_u, off_m = eng.pauses(pages)  # the task off its CPU before the unmap, the move
    ph = Phases()
    cols: dict[str, list[int]] = {k: [] for k in (
        "page", "copy_start", "copy", "unmap", "cost", "ipis", "full", "mask_id", "broadcast", "status",
        "attempts", "remap")}
    t = start_ns
    moved = 0
    for i, page in enumerate(pages.tolist()):
        # A folio is dirty when any of its pages is (their ids follow the head's).
        parts = [w for q in range(page, page + int(size[i])) if (w := stores.get(q)) is not None]
        written = np.sort(np.concatenate(parts)) if len(parts) > 1 else (parts[0] if parts else None)
        for attempt in range(1, cfg.retries + 2):
            # The measured pauses come with the folio's first attempt: before its copy (the move
            # begins with it here) and before its unmap.
            pause_m, pause_u = (int(off_m[i]), int(off_u[i])) if attempt == 1 else (0, 0)
            copy_start = t + c.other_ns + pause_m
            unmap = copy_start + int(copy[i]) + pause_u + int(unmap_c[i])
            mask = masks.at(unmap)
            rnd = eng.flush_round(mask.local, mask.targets, int(span[i]))
            # The dirty bit: a store between the start of the copy and the PTE clear.
            dirty = _written(written, copy_start, unmap)
            t = unmap + rnd.cost_ns + int(remap_c[i])
            for k, v in (("page", page), ("copy_start", copy_start), ("copy", copy[i]), ("unmap", unmap),
                         ("cost", rnd.cost_ns), ("ipis", rnd.ipis), ("full", rnd.full),
                         ("mask_id", masks.id(mask)), ("broadcast", rnd.broadcast),
                         ("status", STATUS_ABORTED if dirty else STATUS_MIGRATED),
                         ("attempts", attempt), ("remap", remap_c[i])):
                cols[k].append(int(v))
            ph.other += c.other_ns + pause_m + pause_u
            ph.copy += int(copy[i])
            ph.unmap += int(unmap_c[i])
            ph.flush += rnd.cost_ns
            ph.remap += int(remap_c[i])
            if not dirty:
                moved += int(size[i])
                break
    n = len(cols["page"])
    a = {k: np.asarray(v, np.int64) for k, v in cols.items()}
    flush = a["unmap"] + a["cost"]
    ids = np.full(n, batch_id, np.int64)
    first = eng.add_rounds(RoundRows(
        ts_ns=a["unmap"], cost_ns=a["cost"], targets=a["ipis"], full=a["full"].astype(bool),
        mask_id=a["mask_id"], batch_id=ids, n_pages=eng.flush_entries(a["page"]),
        page_list=eng.translations(a["page"]), broadcast=a["broadcast"].astype(bool)))
    eng.add_pages(PageRows(
        page=a["page"], batch_id=ids.copy(), pos=np.arange(n, dtype=np.int32),
        unmap_ns=a["unmap"], flush_ns=flush, copy_start_ns=a["copy_start"],
        remap_ns=flush + a["remap"], round=np.arange(first, first + n, dtype=np.int64),
        status=a["status"].astype(np.int8), attempts=a["attempts"].astype(np.int32),
        copy_end_ns=a["copy_start"] + a["copy"]), call)
    eng.add_batch(call=call, kind="transactional", pages=int(size.sum()), nr_succeeded=moved,
                  start_ns=start_ns, end_ns=t, folios=len(pages), **ph.as_kwargs())
    return t
