"""``serial``: Linux ≤ 6.2 ``migrate_pages()``.

Up to ``passes`` (10) passes over the page list; each page goes through ``unmap_and_move()``:
unmap, flush that one PTE at once (local ``invlpg`` and one IPI round to the other CPUs in
mm_cpumask, each invalidating the page), copy, remap. A busy page is retried in the next pass.
The whole call is one row of the ``batches`` table (kind ``serial``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.config import setting
from tracereplay.migrate._engine import Call, Engine
from tracereplay.migrate._steps import Phases, one_by_one
from tracereplay.migrate.registry import register


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialConfig:
    """``[policy.serial]``."""

    passes: int = setting("passes over the page list (NR_MAX_MIGRATE_PAGES_RETRY)", at_least=1)
    mm_cpumask_sample_pages: int = setting(
        "page attempts between two readings of mm_cpumask, a model resolution", at_least=1)


@register(
    name="serial", description="Linux <= 6.2: unmap, flush, copy, remap one page at a time",
    config=SerialConfig, default=True, order=0,
    aliases={"migrate.serial_passes": "passes",
             "flush.mm_cpumask_sample_pages": "mm_cpumask_sample_pages"},
)
def migrate_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """Schedule one call (``pages``: its folios, by head page); returns its end time."""
    cfg: SerialConfig = eng.config
    batch_id = eng.new_batch_id()
    ph = Phases()
    moved = one_by_one(eng, call, pages, batch_id=batch_id, passes=cfg.passes,
                       sample_pages=cfg.mm_cpumask_sample_pages, attempts_before=0,
                       t_ns=start_ns, ph=ph)
    eng.add_failed(pages=moved.left, call=call, batch_id=batch_id, attempts=cfg.passes)
    eng.add_batch(call=call, kind="serial", pages=int(eng.folio_pages(pages).sum()),
                  nr_succeeded=moved.nr_succeeded, start_ns=start_ns, end_ns=moved.end_ns,
                  folios=len(pages), **ph.as_kwargs())
    return moved.end_ns
