"""``ipi``: x86 TLB shootdown by inter-processor interrupts (``flush_tlb_multi``).

The initiator flushes its own TLB when it ran the process (``invlpg`` per page, or a full
flush of the address space beyond ``tlb_single_page_flush_ceiling`` pages), sends an IPI to
every other CPU in mm_cpumask and waits for all of them; each receiver is interrupted and does
the same flush. A batched unmap defers its flush only when another CPU is in mm_cpumask
(x86 ``arch_tlbbatch_should_defer``). Its costs are the ``[flush]`` section's: they predate
the mechanisms and keep their keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracereplay.flush.registry import Round, Scope, register


@dataclass(frozen=True, slots=True, kw_only=True)
class IpiConfig:
    """``[flush.ipi]``: none of its own; the IPI costs are ``flush.ipi_*``."""


def defers(flush: Any, own: IpiConfig, scope: Scope) -> bool:
    # arch/x86/include/asm/tlbflush.h arch_tlbbatch_should_defer(): another CPU in the mask.
    return scope.targets > 0


def ipi_round(flush: Any, own: IpiConfig, scope: Scope) -> Round:
    full = scope.pages > flush.ceiling_pages
    cost = 0
    if scope.local:
        cost += flush.full_flush_ns if full else flush.invlpg_ns * scope.pages
    if scope.targets:
        cost += flush.ipi_initiator_ns + flush.ipi_extra_target_ns * (scope.targets - 1)
    return Round(cost_ns=cost, full=full, ipis=scope.targets, broadcast=False)


MECHANISM = register(
    name="ipi", description="x86 IPI rounds to mm_cpumask; receivers interrupted (flush_tlb_multi)",
    config=IpiConfig, arches=("x86_64", "arm64"), order=0, defers=defers, round=ipi_round)
