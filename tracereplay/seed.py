"""The seed experiment's published figures: the one place they are written down.

Huang Ying's batched TLB flushing in ``migrate_pages()`` (LKML, September 2022; merged in
Linux 6.3) measured pmbench while ``migratepages`` moved its pages between two nodes, one page at
a time and then in batches. Five of its figures are what tracereplay reproduces. The query
library reads them as the view ``_seed_figures`` (generated from this module by
``tracereplay.query``), which ``policy_compare`` joins; ``tracereplay replay`` prints the same
rows of ``policy_compare`` beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BASELINE_POLICY", "FIGURES", "SOURCE", "TRACE_SHA256", "SeedFigure"]

SOURCE = (
    'Huang Ying, "migrate_pages(): batch TLB flushing", LKML, September 2022; '
    "Linux 6.3, commit 7e12beb8ca2a"
)
"""Where the figures are published."""

TRACE_SHA256 = "69fd715094aa0711d6713a1fa22fa664ecd907862dac62389259661ff7166e27"
"""sha256 of the seed experiment's trace, ``sample_traces/seed.parquet`` (its README gives the
command that regenerates it byte for byte). Its runs are the ones compared with the figures:
beside another trace they would read as a validation of a workload they were not measured on."""

BASELINE_POLICY = "serial"
"""The policy the seed's changes are measured from: pages migrated one at a time (Linux <= 6.2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedFigure:
    """One published figure: a metric of ``policy_compare`` for one policy, or its change."""

    name: str  # stable key (JSON output of tracereplay replay)
    label: str  # what the figure measures, in words
    metric: str  # a metric of policy_compare: a column of the view that defines it
    policy: str  # the policy the figure was measured for
    change: bool  # True: relative change from BASELINE_POLICY to policy; False: the value
    value_pct: float  # the figure, in percent (every figure is a share or a change)


FIGURES: tuple[SeedFigure, ...] = (
    SeedFigure(name="ipis_change", label="TLB-flush IPIs", metric="ipis_sent",
               policy="batched", change=True, value_pct=-99.1),
    SeedFigure(name="pages_per_s_change", label="pages migrated per second",
               metric="pages_per_s", policy="batched", change=True, value_pct=291.7),
    SeedFigure(name="serial_flush_share", label="share of migration time flushing",
               metric="flush_pct", policy="serial", change=False, value_pct=83.3),
    SeedFigure(name="batched_copy_share", label="share of migration time copying",
               metric="copy_pct", policy="batched", change=False, value_pct=43.7),
    SeedFigure(name="batched_unmap_flush_share", label="share unmapping + flushing",
               metric="unmap_flush_pct", policy="batched", change=False, value_pct=8.3),
)
"""The figures, in the order the seed reports them."""
