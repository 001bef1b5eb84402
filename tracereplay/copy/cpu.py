"""``cpu``: the migrating CPU copies each folio itself, one after another (``folio_copy()`` /
``folio_mc_copy()``, mm/migrate.c), as Linux does without an offload driver.

Per folio a fixed cost plus its bytes over the CPU's copy bandwidth; a list is copied folio
after folio, so copying a batch costs what copying its folios one by one costs (the series'
``migrate_folios_mc_copy()`` walks the lists and calls ``folio_mc_copy()`` on each: Shivank Garg,
"[PATCH RFC v6 2/5] mm/migrate: add batch-copy path in migrate_pages_batch", linux-mm,
30 Jun 2026).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.config import setting
from tracereplay.copy.registry import Copied, Setup, bytes_ns, register


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuCopyConfig:
    """``[copy.cpu]``."""

    folio_ns: int = setting("per folio: fixed cost of one folio copy (mapping, loop set-up), ns")
    page_ns: int = setting(
        "time to copy one base page's bytes, ns: the copy bandwidth is page_size / page_ns "
        "bytes per ns (a folio of n pages costs folio_ns + n * page_ns)")


@register(name="cpu", description="the migrating CPU copies folio after folio (folio_copy)",
          config=CpuCopyConfig, order=0)
def cost(cfg: CpuCopyConfig, setup: Setup, sizes: np.ndarray) -> Copied:
    each = cfg.folio_ns + bytes_ns(sizes, cfg.page_ns, setup.page_size)
    end = np.cumsum(each)
    return Copied(start_ns=end - each, end_ns=end, total_ns=int(end[-1]))
