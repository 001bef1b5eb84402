"""``invlpgb``: AMD broadcast TLB invalidation (Zen 3 and later; Linux 6.15, Rik van Riel's
"AMD broadcast TLB invalidation" series, LKML December 2024 - February 2025).

A process active on ``min_cpus`` (3) CPUs or more gets a global ASID; its flushes are INVLPGB
instructions, one per page (``arch_tlbbatch_add_pending`` issues it as each PTE is cleared,
without waiting), that the hardware broadcasts to every CPU, and one TLBSYNC that waits for all
of them to complete (``arch_tlbbatch_flush``, or at once in ``flush_tlb_mm_range``). No IPI is
sent and no CPU is interrupted; the broadcast reaches the initiator's own TLB too. A process
active on fewer CPUs keeps a per-CPU ASID and is flushed by IPIs exactly as ``ipi`` does.
Whether a batched unmap defers is unchanged (x86 ``arch_tlbbatch_should_defer``).

Simplification: the model charges the per-page INVLPGBs to the flush round (in Linux they are
issued during the unmap stage) and applies every CPU's invalidation when the round completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracereplay.config import setting
from tracereplay.flush import ipi
from tracereplay.flush.registry import Round, Scope, register


@dataclass(frozen=True, slots=True, kw_only=True)
class InvlpgbConfig:
    """``[flush.invlpgb]``."""

    page_ns: int = setting("initiator time to issue one INVLPGB (one page, no wait), ns")
    tlbsync_ns: int = setting("TLBSYNC: wait until every CPU completed the broadcasts, ns")
    min_cpus: int = setting(
        "CPUs a process must be active on to get a global ASID and broadcast flushes", at_least=1)


def _broadcasts(own: InvlpgbConfig, scope: Scope) -> bool:
    return int(scope.local) + scope.targets >= own.min_cpus


def defers(flush: Any, own: InvlpgbConfig, scope: Scope) -> bool:
    return ipi.defers(flush, ipi.IpiConfig(), scope)


def invlpgb_round(flush: Any, own: InvlpgbConfig, scope: Scope) -> Round:
    if not _broadcasts(own, scope):
        return ipi.ipi_round(flush, ipi.IpiConfig(), scope)
    return Round(cost_ns=own.page_ns * scope.pages + own.tlbsync_ns, full=False, ipis=0,
                 broadcast=True)


MECHANISM = register(
    name="invlpgb",
    description="AMD INVLPGB per page + one TLBSYNC, no IPIs (processes on >= min_cpus CPUs)",
    config=InvlpgbConfig, arches=("x86_64",), order=1, defers=defers, round=invlpgb_round)
