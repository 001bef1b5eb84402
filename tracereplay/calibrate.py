"""Fit the profile's migration and flush costs to a capture's measured tables.

``tracereplay import CAPTURE -o RUN --as-trace T`` gives the calls the kernel ran
(``batches``: start, end, ``nr_succeeded``, ``nr_failed``), the PTEs each unmapped
(``migrations``) and the flushes inside each (``flushes`` with a ``req_id``). A call's duration
is modelled as

    duration = pages x page_ns + ptes x pte_ns + rounds x round_ns

(pages: every page the call moved or failed, mapped or not; ptes: ``set_migration_pte`` rows;
rounds: ``tlb_flush`` reasons 2, 3, 4 inside the call), fitted by least squares over the calls
with every coefficient at least 0. The duration is the call's own time: ``end_ns - start_ns``
minus the time its task was off its CPU (the import's ``off_cpu`` table), which the trace
carries on its pages (``off_cpu_unmap_ns``, ``off_cpu_move_ns``) and every policy waits out, so
the costs must not hold it again. The profile charges each page ``other_ns + copy_ns``
(``copy_ns``: the cpu engine's ``copy.cpu.page_ns``) and each of its mappings ``unmap_ns +
remap_ns`` (the rmap walk visits every PTE); the trace of ``--as-trace`` gives the model every
page of a call, mapped or not, with its mappings (the ``set_migration_pte`` lines of its
physical page; 0 for a page without a PTE), so:

- ``unmap_ns + remap_ns`` = pte_ns: the rmap step and PTE work of one mapping, split as the
  base profile splits them;
- ``other_ns + copy_ns`` = page_ns, split as the base profile splits them (no tracepoint falls
  between allocation, copy and remap, so the capture cannot tell them apart);
- ``flush.ipi_initiator_ns`` = round_ns (a round of the capture: the migrating CPU's flush and
  its IPIs, if any);
- ``migrate.call_start = "trace"``: each call starts at its measured time, not behind the
  model's end of the previous call on its CPU (which would count a call's modelling error
  again in every later call).

The result is a partial profile (cost sections only: the trace of ``--as-trace`` carries the
captured machine) whose ``[sources]`` name the capture and the fit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from tracereplay.config import DEFAULT_PROFILE, load_profile
from tracereplay.errors import ImportFormatError, OutputExistsError

__all__ = ["Fit", "fit_capture", "write_profile"]

_CALLS_SQL = """
with m as (
    select req_id, count(*) as ptes from read_parquet(?) where req_id is not null group by req_id
), f as (
    select req_id, count(*) filter (where reason in (2, 3, 4)) as rounds
    from read_parquet(?) where req_id is not null group by req_id
)
select b.req_id,
       coalesce(b.nr_succeeded, 0) + coalesce(b.nr_failed, 0) as pages,
       coalesce(m.ptes, 0) as ptes,
       coalesce(f.rounds, 0) as rounds,
       b.end_ns - b.start_ns as duration_ns
from read_parquet(?) as b
left join m using (req_id)
left join f using (req_id)
order by b.req_id
"""


_OFF_CPU_SQL = """
select req_id, sum(dur_ns)::BIGINT as off_ns from read_parquet(?) group by req_id order by req_id
"""


@dataclass(frozen=True, slots=True)
class Fit:
    """Fitted profile values, their sources, and how well the fit explains the calls."""

    values: dict[str, int | str]
    sources: dict[str, str]
    coefficients: dict[str, float]  # page_ns, pte_ns, round_ns
    residuals: dict[str, float]
    capture: dict[str, Any] = field(default_factory=dict)


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0 (few columns: drop the negative ones)."""
    keep = list(range(a.shape[1]))
    x = np.zeros(a.shape[1])
    while keep:
        sol, *_ = np.linalg.lstsq(a[:, keep], b, rcond=None)
        if (sol >= 0).all():
            x[keep] = sol
            return x
        keep.pop(int(np.argmin(sol)))
    return x


def fit_capture(run: str | os.PathLike[str], *, base_profile: str = DEFAULT_PROFILE) -> Fit:
    """Fit the costs to the measured run ``run`` (a run directory or its ``policy=measured``)."""
    d = Path(run)
    if (d / "policy=measured").is_dir():
        d = d / "policy=measured"
    manifest_path = d / "run.json"
    if not manifest_path.is_file():
        raise ImportFormatError(
            f"{run}: not an import's run directory (no policy=measured/run.json); make one with "
            "tracereplay import CAPTURE -o RUN --as-trace TRACE"
        )
    manifest = json.loads(manifest_path.read_text())
    paths = [str(d / f"{t}.parquet") for t in ("migrations", "flushes", "batches")]
    con = duckdb.connect()
    calls = con.execute(_CALLS_SQL, paths).fetchnumpy()
    pages = calls["pages"].astype(float)
    ptes = calls["ptes"].astype(float)
    rounds = calls["rounds"].astype(float)
    # The call's own time: the replay waits out the task's time off its CPU itself (the trace's
    # off_cpu_*_ns), so a cost fitted to the whole duration would count it twice.
    off = np.zeros(len(pages))
    if (d / "off_cpu.parquet").is_file() and len(off):
        gaps = con.execute(_OFF_CPU_SQL, [str(d / "off_cpu.parquet")]).fetchnumpy()
        at = np.searchsorted(calls["req_id"], gaps["req_id"])
        ok = (at < len(off)) & (calls["req_id"][np.minimum(at, len(off) - 1)] == gaps["req_id"])
        off[at[ok]] = gaps["off_ns"][ok]
    duration = calls["duration_ns"].astype(float) - off
    if len(pages) < 3 or pages.sum() == 0:
        raise ImportFormatError(
            f"{run}: {len(pages)} migration call(s) in the capture; calibrate needs at least 3 "
            "complete mm_migrate_pages calls"
        )
    a = np.column_stack([pages, ptes, rounds])
    page_ns, pte_ns, round_ns = _nnls(a, duration)
    pred = a @ np.array([page_ns, pte_ns, round_ns])
    res = duration - pred
    rel = np.abs(res) / np.maximum(duration, 1)
    base = load_profile(base_profile)
    m = base.migrate
    unmap_share = m.unmap_ns / (m.unmap_ns + m.remap_ns)
    copy_ns = base.copy_engines["cpu"].page_ns  # a base page copied by the migrating CPU
    other_share = m.other_ns / (m.other_ns + copy_ns)
    values = {
        "migrate.unmap_ns": round(pte_ns * unmap_share),
        "migrate.remap_ns": round(pte_ns * (1 - unmap_share)),
        "migrate.other_ns": round(page_ns * other_share),
        "copy.cpu.page_ns": round(page_ns * (1 - other_share)),
        "flush.ipi_initiator_ns": round(round_ns),
        "migrate.call_start": "trace",
    }
    source = manifest.get("source", {})
    cap = f"capture {Path(source.get('path', '?')).name} (sha256 {source.get('sha256', '?')[:12]})"
    fit = (
        f"least squares over {len(pages)} calls: duration - off-CPU time = pages x "
        f"{page_ns:.0f} ns + PTEs x {pte_ns:.0f} ns + flush rounds x {round_ns:.0f} ns"
    )
    sources = {
        "migrate.unmap_ns": f"calibrate: {cap}; {fit}; the PTE cost (charged once per mapping: "
        f"{int(ptes.sum())} PTEs of {int(pages.sum())} pages) x the base profile's unmap share "
        f"({unmap_share:.2f})",
        "migrate.remap_ns": f"calibrate: {cap}; {fit}; the PTE cost x the base profile's remap "
        f"share ({1 - unmap_share:.2f})",
        "migrate.other_ns": f"calibrate: {cap}; {fit}; page cost x the base profile's other "
        f"share ({other_share:.2f})",
        "copy.cpu.page_ns": f"calibrate: {cap}; {fit}; page cost x the base profile's copy share "
        f"({1 - other_share:.2f})",
        "flush.ipi_initiator_ns": f"calibrate: {cap}; {fit}; the flush-round cost",
        "migrate.call_start": f"calibrate: {cap}; the capture's calls started at their measured "
        "times: queueing each behind the model's end of the previous call on its CPU would "
        "count every call's modelling error again in all later calls",
    }
    total = float(duration.sum())
    residuals = {
        "calls": float(len(pages)),
        "rms_ns": float(np.sqrt(np.mean(res**2))),
        "median_abs_rel": float(np.median(rel)),
        "p90_abs_rel": float(np.quantile(rel, 0.9)),
        "total_duration_ns": total,
        "total_fitted_ns": float(pred.sum()),
        "r2": float(1 - (res**2).sum() / max(((duration - duration.mean()) ** 2).sum(), 1e-9)),
        "off_cpu_ns": float(off.sum()),
        "off_cpu_calls": float((off > 0).sum()),
        # of which the trace of --as-trace does not carry (docs/importing.md)
        "off_cpu_not_in_trace_ns": float(
            manifest.get("as_trace_rows", {}).get("off_cpu_dropped_ns", 0)
        ),
    }
    return Fit(
        values=values,
        sources=sources,
        coefficients={"page_ns": float(page_ns), "pte_ns": float(pte_ns),
                      "round_ns": float(round_ns)},
        residuals=residuals,
        capture={"run": str(d), "source": source, "as_trace": manifest.get("as_trace"),
                 "as_trace_sha256": manifest.get("as_trace_sha256"),
                 "machine": manifest.get("machine")},
    )  # fmt: skip


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def write_profile(fit: Fit, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``fit`` as a partial profile (cost sections and their sources) at ``path``."""
    out = Path(path)
    if out.exists() and not force:
        raise OutputExistsError(f"{out} already exists; use --force to replace it")
    sections: dict[str, dict[str, int | str]] = {}
    for key, v in fit.values.items():
        section, name = key.rsplit(".", 1)
        sections.setdefault(section, {})[name] = v
    src = fit.capture.get("source", {})
    lines = [
        "# A partial profile fitted by `tracereplay calibrate` to a capture:",
        f"#   {src.get('path', '?')} (sha256 {src.get('sha256', '?')})",
        "# Only cost sections: the trace written by `tracereplay import --as-trace` carries the",
        "# captured machine. Use: tracereplay replay TRACE --config " + out.name,
        "",
    ]
    for section, kv in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_str(v) if isinstance(v, str) else v}" for k, v in kv.items()]
        lines.append("")
    lines.append("[sources]")
    lines += [f"{_toml_str(k)} = {_toml_str(v)}" for k, v in fit.sources.items()]
    text = "\n".join(lines) + "\n"
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# The targets a calibrated profile must meet on its own capture: unmapped windows within 25%,
# stalled accesses within a factor of 2 (model / measured).
TARGETS = {
    "window_p50_ns": (0.75, 1.25),
    "window_p99_ns": (0.75, 1.25),
    "stalls": (0.5, 2.0),
}


def check_targets(
    fit: Fit, profile_path: str | os.PathLike[str], *, policy: str = "batched"
) -> list[dict[str, Any]]:
    """Replay the capture's ``--as-trace`` trace under ``policy`` with the fitted profile as
    ``--config`` and compare with the measured run (``measured_vs_model``): one row per metric
    with ``target`` and ``met`` where a target applies."""
    import shutil
    import tempfile

    from tracereplay.query import run_query
    from tracereplay.replay import run as replay
    from tracereplay.trace import file_sha256

    trace = fit.capture.get("as_trace")
    if not trace or not Path(trace).is_file():
        raise ImportFormatError(
            f"{fit.capture['run']}: the import wrote no --as-trace trace, or it is gone "
            f"({trace}); import with --as-trace to check the targets"
        )
    if file_sha256(trace) != fit.capture.get("as_trace_sha256"):
        raise ImportFormatError(f"{trace}: changed since the import wrote it (sha256 differs)")
    tmp = Path(tempfile.mkdtemp(prefix=".tracereplay-calibrate-"))
    try:
        (tmp / "policy=measured").symlink_to(Path(fit.capture["run"]).resolve())
        replay(trace, tmp, policies=[policy],
               profile=load_profile(DEFAULT_PROFILE, config_file=Path(profile_path)))  # fmt: skip
        rows = run_query("measured_vs_model", [tmp]).to_pylist()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = []
    for r in rows:
        lo_hi = TARGETS.get(r["metric"])
        ratio = r["ratio"]
        r = {k: r[k] for k in ("metric", "unit", "policy", "measured", "model", "ratio", "mode",
                               "call_start")}
        if lo_hi is not None:
            r["target"] = f"{lo_hi[0]:g}..{lo_hi[1]:g}"
            r["met"] = ratio is not None and lo_hi[0] <= ratio <= lo_hi[1]
        out.append(r)
    return out
