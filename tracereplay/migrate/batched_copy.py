"""``batched-copy``: Shivank Garg's batch-copy flow of ``migrate_pages_batch()`` ("Accelerate
page migration with batch copying and hardware offload", RFC v1 Jun 2024 ... RFC v6 30 Jun
2026, linux-mm).

Chunks, unmap stage, flush, busy pages and the sync fallback are those of ``batched`` (it reads
``[policy.batched]``). After the chunk's one flush, the folios are not copied and remapped one
after another: **all** of them are copied in one go by the copy engine (``[copy]``:
``migrate_folios_mc_copy()`` on the CPU, or the offload driver), and only then is each remapped
(the move phase, which skips the copy of a folio marked copied). With the ``cpu`` engine the
work is that of ``batched`` and the chunk ends at the same time, but every page of it stays
unmapped until the whole chunk is copied.
"""

from __future__ import annotations

import numpy as np

from tracereplay.migrate._engine import Call, Engine
from tracereplay.migrate.batched import BatchedConfig, plan_call
from tracereplay.migrate.registry import register


@register(
    name="batched-copy",
    description="batch-copy series: unmap up to batch_pages pages, one flush, copy them all, "
                "then remap each",
    config=BatchedConfig, order=2, section="batched",
)
def migrate_call(eng: Engine, call: Call, pages: np.ndarray, start_ns: int) -> int:
    """Schedule one call; returns its end time."""
    return plan_call(eng, call, pages, start_ns, batch_copy=True)
