"""The summary of one policy's run (``run.json``'s ``summary``), selected from the query library.

Every metric is defined once, by a view of ``queries/`` (``flush_counts``, ``throughput``,
``copy_share``, ``page_stall_summary``, ``tlb_hits``): the summary only names, for each of its
keys, the view and the column it is read from. The views give shares and hit rates in percent;
the summary keeps them as fractions (``flush_share`` 0.77 where ``copy_share.flush_pct`` is 77),
as ``run.json`` always had them, and that conversion is the one thing done here.

Each key means what its view says: ``migration_ns`` is the sum of batch durations (a replay's
phases add up to it), ``pages_failed`` counts pages given up on (a replay has no other status),
and counts the event tables cannot give (``ipis_sent`` of a measured run) are None, not 0.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracereplay.query import Session

__all__ = ["SUMMARY", "SummaryField", "summarise"]


@dataclass(frozen=True, slots=True)
class SummaryField:
    """One key of the summary: the view column it is read from."""

    key: str  # key in run.json's summary
    view: str  # the view of queries/ that defines the metric
    column: str  # its column there (policy_compare names a metric it compares so, too)
    fraction: bool = False  # the column is in percent and the summary gives a fraction


# page_stall_summary but its stalled_pages, which the summary does not report: that column
# matches every stall to its page's windows, a join over every migration row.
_STALLS = "_page_stall_summary_distributions"

SUMMARY: tuple[SummaryField, ...] = (
    SummaryField("pages_migrated", "throughput", "pages_migrated"),
    SummaryField("pages_failed", "throughput", "pages_failed"),
    SummaryField("batches", "throughput", "batches"),
    SummaryField("flush_rounds", "flush_counts", "flush_rounds"),
    SummaryField("ipis_sent", "flush_counts", "ipis_sent"),
    SummaryField("ipis_holding", "flush_counts", "ipis_useful"),
    SummaryField("ipis_per_1000_pages", "flush_counts", "ipis_per_1000_pages"),
    SummaryField("migration_ns", "throughput", "migration_ns"),
    SummaryField("pages_per_s", "throughput", "pages_per_s"),
    SummaryField("first_folio_p50_ns", "throughput", "first_folio_p50_ns"),
    SummaryField("first_folio_p99_ns", "throughput", "first_folio_p99_ns"),
    SummaryField("unmap_share", "copy_share", "unmap_pct", fraction=True),
    SummaryField("flush_share", "copy_share", "flush_pct", fraction=True),
    SummaryField("copy_share", "copy_share", "copy_pct", fraction=True),
    SummaryField("remap_share", "copy_share", "remap_pct", fraction=True),
    SummaryField("other_share", "copy_share", "other_pct", fraction=True),
    SummaryField("window_p50_ns", _STALLS, "window_p50_ns"),
    SummaryField("window_max_ns", _STALLS, "window_max_ns"),
    SummaryField("stalled_accesses", _STALLS, "stalls"),
    SummaryField("stall_p50_ns", _STALLS, "stall_p50_ns"),
    SummaryField("stall_p99_ns", _STALLS, "stall_p99_ns"),
    SummaryField("stall_max_ns", _STALLS, "stall_max_ns"),
    SummaryField("attempts_aborted", "throughput", "attempts_aborted"),
    SummaryField("aborted_share", "throughput", "aborted_pct", fraction=True),
    SummaryField("accesses", "tlb_hits", "accesses"),
    SummaryField("l1_hit_rate", "tlb_hits", "l1_hit_pct", fraction=True),
    SummaryField("l2_hit_rate", "tlb_hits", "l2_hit_pct", fraction=True),
    SummaryField("stale_hits", "tlb_hits", "stale_hits"),
    SummaryField("remote_accesses", "tlb_hits", "remote_accesses"),
)
"""The summary's keys, in order, each with the view column it comes from."""


def _select_sql() -> str:
    views = list(dict.fromkeys(f.view for f in SUMMARY))
    alias = {v: f"v{i}" for i, v in enumerate(views)}
    columns = ", ".join(f'{alias[f.view]}."{f.column}" AS "{f.key}"' for f in SUMMARY)
    tables = ", ".join(f"{v} AS {alias[v]}" for v in views)
    return f"SELECT {columns} FROM {tables}"


_sessions = threading.local()  # one Session per thread (and process): its views are bound once


def _session() -> Session:
    # A process forked from one that summarised has a copy of its session, whose DuckDB
    # threads did not come along: it opens its own.
    mine: tuple[int, Session] | None = getattr(_sessions, "mine", None)
    if mine is None or mine[0] != os.getpid():
        mine = _sessions.mine = (os.getpid(), Session({f.view for f in SUMMARY}))
    return mine[1]


def summarise(policy_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The headline numbers of one policy directory: run.json's ``summary``.

    Each value is the column of a view of the query library named in ``SUMMARY`` over that
    directory alone (shares and hit rates as fractions); a directory without any event row gives
    None for each. The directory may be one being written (its name and run.json need not tell
    its policy). Raises ``QueryError`` when the directory lacks an event table.
    """
    path = Path(policy_dir)
    # The policy's name is no part of the summary; any label does for a directory that is not
    # named policy=<name> (a run being written is .policy=<name>.tmp-...).
    row = _session().read(path, policy=path.name).execute(_select_sql()).fetchone()
    if row is None:
        return dict.fromkeys((f.key for f in SUMMARY), None)
    return {
        f.key: v / 100 if f.fraction and v is not None else v
        for f, v in zip(SUMMARY, row, strict=True)
    }
