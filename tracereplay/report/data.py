"""What the report's figures draw, read with the query library from a run directory, a batch
results directory or a sweep (each series is one run, trace and policy)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tracereplay.query import connect
from tracereplay.sweep import read_sweep

__all__ = ["MAX_SERIES", "ReportData", "load"]

MAX_SERIES = 8
"""Series drawn in the per-series figures (CDFs, bars); the report says which were left out."""

PHASES = ("unmap", "flush", "copy", "remap", "other")


@dataclass
class ReportData:
    """The rows of each figure, by series label."""

    source: str
    kind: str  # run, batch or sweep
    summary: list[dict[str, Any]]  # tradeoff rows
    seed: list[dict[str, Any]]  # policy_compare rows that carry a seed figure
    phases: dict[str, dict[str, int]]  # series -> phase -> ns
    stalls: dict[str, np.ndarray]  # series -> stall_ns
    windows: dict[str, np.ndarray]  # series -> unmapped window ns of migrated pages
    rounds: dict[str, tuple[int, int, int]]  # series -> (rounds with IPIs, IPIs, useful IPIs)
    call: dict[str, Any] | None  # one migration call's batches, for the timeline
    keys: list[dict[str, Any]] = field(default_factory=list)  # sweep.json keys
    left_out: int = 0  # series beyond MAX_SERIES


def _label(run: str, trace: str | None, policy: str, root: str, kind: str) -> str:
    parts = []
    if kind == "sweep":
        parts.append(run[len(root):].lstrip("/") or run)
    if trace is not None and kind != "run":
        parts.append(trace)
    parts.append(policy)
    return " ".join(parts)


def load(path: str | os.PathLike[str]) -> ReportData:
    """The report's data of ``path``: a run directory (``policy=*/``), a batch results
    directory (``trace=*/policy=*/``) or a sweep (``sweep.json``)."""
    root = os.path.normpath(os.fspath(path))
    sweep = read_sweep(root)
    kind = "sweep" if sweep is not None else (
        "batch" if any(Path(root).glob("trace=*/policy=*")) else "run")
    con = connect(root)
    try:
        def rows(sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
            cur = con.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

        summary = rows("FROM tradeoff")
        for r in summary:
            r["series"] = _label(r["run"], r["trace"], r["policy"], root, kind)
        keep = [r["series"] for r in summary][:MAX_SERIES]
        label = {(r["run"], r["trace"], r["policy"]): r["series"] for r in summary}

        def series_of(r: dict[str, Any]) -> str | None:
            s = label.get((r["run"], r["trace"], r["policy"]))
            return s if s in keep else None

        # the seed's figures compare serial with batched in one run: not a sweep's points
        seed = rows("FROM policy_compare WHERE seed_value IS NOT NULL OR seed_change_pct IS NOT NULL") if kind == "run" else []
        phases = {}
        for r in rows("FROM copy_share"):
            s = series_of(r)
            if s is not None:
                phases[s] = {p: int(r[f"{p}_ns"] or 0) for p in PHASES}
        def sorted_values(sql: str) -> dict[str, np.ndarray]:
            """Per series, the sorted values ``v`` of ``SELECT run, trace, policy, v``."""
            got = {}
            for r in rows(f"SELECT run, trace, policy, list(v ORDER BY v) AS v FROM ({sql}) "
                          "GROUP BY ALL"):
                s = series_of(r)
                if s is not None:
                    got[s] = np.asarray(r["v"], np.int64)
            return got

        stalls = sorted_values("SELECT run, trace, policy, stall_ns AS v FROM stalls")
        windows = sorted_values("SELECT run, trace, policy, remap_ns - unmap_ns AS v "
                                "FROM migrations WHERE status = 'migrated'")
        ipis: dict[str, tuple[int, int, int]] = {}
        for r in rows("SELECT run, trace, policy, count(*) FILTER (WHERE targets > 0) AS rounds, "
                      "coalesce(sum(targets), 0) AS ipis, coalesce(sum(targets_holding), 0) AS useful "
                      "FROM flushes WHERE reason = 4 OR reason = 3 GROUP BY ALL"):
            s = series_of(r)
            if s is not None:
                ipis[s] = (int(r["rounds"]), int(r["ipis"]), int(r["useful"]))
        call = _one_call(rows, keep, series_of)
        # every figure lists the series in the summary's order (points by value)
        phases = {k: phases[k] for k in keep if k in phases}
        stalls = {k: stalls[k] for k in keep if k in stalls}
        windows = {k: windows[k] for k in keep if k in windows}
        ipis = {k: ipis[k] for k in keep if k in ipis}
    finally:
        con.close()
    return ReportData(source=root, kind=kind, summary=summary, seed=seed, phases=phases,
                      stalls=stalls, windows=windows, rounds=ipis, call=call,
                      keys=(sweep or {}).get("keys", []),
                      left_out=max(0, len(summary) - MAX_SERIES))


_TIMELINE_BATCHES = 24


def _one_call(rows: Any, keep: list[str], series_of: Any) -> dict[str, Any] | None:
    """The batches of one migration call: the first call of the first series whose calls have
    more than one batch (the batched flow is what a timeline shows), else of the first series;
    at most _TIMELINE_BATCHES batches."""
    calls = rows("SELECT run, trace, policy, req_id, count(*) AS n, min(start_ns) AS t0 "
                 "FROM batches GROUP BY ALL ORDER BY n > 1 DESC, t0, policy")
    for c in calls:
        s = series_of(c)
        if s is None:
            continue
        batches = rows(
            "SELECT batch_id, start_ns, end_ns, unmap_ns, flush_ns, copy_ns, remap_ns, other_ns, "
            "first_remap_ns, pages FROM batches WHERE run = ? AND trace IS NOT DISTINCT FROM ? "
            "AND policy = ? AND req_id IS NOT DISTINCT FROM ? ORDER BY start_ns LIMIT ?",
            [c["run"], c["trace"], c["policy"], c["req_id"], _TIMELINE_BATCHES])
        return {"series": s, "req_id": c["req_id"], "batches": batches, "total": c["n"]}
    return None
