"""``tlbi``: arm64 broadcast TLB invalidation (TLBI ... IS instructions and a DSB).

The hardware broadcasts each TLBI to every CPU of the inner-shareable domain; the initiator
waits for completion with one DSB ISH. A single-page flush (``flush_tlb_page``) is one TLBI and
one DSB. Since Linux 6.5 ("arm64: support batched/deferred tlb shootdown during page
reclamation/migration", Barry Song and Yicong Yang) a batched unmap queues one TLBI per page in
``arch_tlbbatch_add_pending`` without waiting and ``arch_tlbbatch_flush`` issues one DSB;
arm64 keeps no mm_cpumask, so the flush is always deferred (``arch_tlbbatch_should_defer``
returns true unless the ARM64_WORKAROUND_REPEAT_TLBI erratum applies). Before 6.5 arm64 did not
defer at all: set ``policy.batched`` aside and compare with ``serial``.

Simplification: as for ``invlpgb``, the per-page TLBIs are charged to the round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracereplay.config import setting
from tracereplay.flush.registry import Round, Scope, register


@dataclass(frozen=True, slots=True, kw_only=True)
class TlbiConfig:
    """``[flush.tlbi]``."""

    page_ns: int = setting("initiator time to issue one broadcast TLBI (one page, no wait), ns")
    dsb_ns: int = setting("DSB ISH: wait until every CPU completed the TLBIs, ns")


def defers(flush: Any, own: TlbiConfig, scope: Scope) -> bool:
    return True


def tlbi_round(flush: Any, own: TlbiConfig, scope: Scope) -> Round:
    return Round(cost_ns=own.page_ns * scope.pages + own.dsb_ns, full=False, ipis=0,
                 broadcast=True)


MECHANISM = register(
    name="tlbi", description="arm64 broadcast TLBI per page + one DSB, no IPIs",
    config=TlbiConfig, arches=("arm64",), order=2, defers=defers, round=tlbi_round)
