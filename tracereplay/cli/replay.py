"""``tracereplay replay``, ``tracereplay profiles`` and ``tracereplay config show``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tracereplay.cli._app import app, err, out
from tracereplay.config import DEFAULT_PROFILE, Profile, load_profile, profile_names
from tracereplay.replay import DEFAULT_POLICIES, PolicyResult, run

# The seed: Huang Ying, "migrate_pages(): batch TLB flushing" (Linux 6.3 merge, commit 7e12beb8ca2a).
SEED_FIGURES = {
    "ipis_change": -0.991,
    "pages_per_s_change": 2.917,
    "serial_flush_share": 0.833,
    "batched_copy_share": 0.437,
    "batched_unmap_flush_share": 0.083,
}

config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ProfileOpt = typer.Option(DEFAULT_PROFILE, "--profile", help="Cost and machine profile.")
ConfigOpt = typer.Option(None, "--config", help="TOML file of overrides (a partial profile).")
SetOpt = typer.Option(None, "--set", help="One override, key=value (repeatable): --set batch_size=64.")


def _profile(profile: str, config: Path | None, sets: list[str] | None,
             batch_size: int | None = None) -> Profile:
    overrides = list(sets or [])
    if batch_size is not None:
        overrides.append(f"migrate.batch_size={batch_size}")
    return load_profile(profile, config_file=config, overrides=overrides)


@app.command()
def profiles() -> None:
    """List the shipped cost and machine profiles."""
    table = Table("profile", "description")
    for name in profile_names():
        table.add_row(name, load_profile(name).description)
    out.print(table)


@config_app.command("show")
def config_show(
    profile: str = ProfileOpt,
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the effective configuration: every key with its value, meaning and source."""
    p = _profile(profile, config, set_)
    if as_json:
        out.print_json(json.dumps(p.to_dict()))
        return
    table = Table("key", "value", "meaning", "source", title=f"{p.name}: {p.description}")
    for key, value, doc, source in p.rows():
        shown = (", ".join(map(str, value)) or "spread over the nodes") if isinstance(value, tuple) else str(value)
        table.add_row(key, shown, doc, source)
    out.print(table)


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "–"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "rate":
        return f"{v:.1%}"
    if kind == "float":
        return f"{v:,.1f}"
    if kind == "ns":
        return f"{v:,} ns"
    return f"{v:,}"


_ROWS = (
    ("pages migrated", "pages_migrated", "int"),
    ("pages failed", "pages_failed", "int"),
    ("migrate calls", "migrate_calls", "int"),
    ("flush rounds", "flush_rounds", "int"),
    ("IPIs sent", "ipis_sent", "int"),
    ("IPIs that found a translation", "ipis_holding", "int"),
    ("IPIs per 1000 pages", "ipis_per_1000_pages", "float"),
    ("pages/s of migration time", "pages_per_s", "float"),
    ("share: unmap", "unmap_share", "pct"),
    ("share: flush", "flush_share", "pct"),
    ("share: copy", "copy_share", "pct"),
    ("share: remap", "remap_share", "pct"),
    ("share: other", "other_share", "pct"),
    ("unmapped window p50", "window_p50_ns", "ns"),
    ("stalled accesses", "stalled_accesses", "int"),
    ("stall p50", "stall_p50_ns", "ns"),
    ("stall p99", "stall_p99_ns", "ns"),
    ("stall max", "stall_max_ns", "ns"),
    ("stale TLB hits", "stale_hits", "int"),
    ("L1 dTLB hit rate", "l1_hit_rate", "rate"),
    ("STLB hit rate", "l2_hit_rate", "rate"),
)


def _change(a: Any, b: Any) -> float | None:
    if a is None or b is None or a == 0:
        return None
    return float(b) / float(a) - 1.0


def comparison(results: list[PolicyResult]) -> dict[str, Any]:
    """The seed's five figures from the model, beside the published ones."""
    by = {r.policy: r.metrics for r in results}
    s, b = by.get("serial"), by.get("batched")
    if s is None or b is None:
        return {}
    model = {
        "ipis_change": _change(s["ipis_sent"], b["ipis_sent"]),
        "pages_per_s_change": _change(s["pages_per_s"], b["pages_per_s"]),
        "serial_flush_share": s["flush_share"],
        "batched_copy_share": b["copy_share"],
        "batched_unmap_flush_share": (b["unmap_share"] + b["flush_share"])
        if b["unmap_share"] is not None else None,
    }
    return {k: {"model": model[k], "seed": v} for k, v in SEED_FIGURES.items()}


def _print_results(results: list[PolicyResult]) -> None:
    names = [r.policy for r in results]
    has_delta = "serial" in names and "batched" in names
    table = Table("metric", *names, *(["batched vs serial"] if has_delta else []),
                  title="tracereplay: model results per policy")
    by = {r.policy: r.metrics for r in results}
    for label, key, kind in _ROWS:
        cells = [_fmt(by[n].get(key), kind) for n in names]
        if has_delta:
            ch = _change(by["serial"].get(key), by["batched"].get(key))
            cells.append("–" if ch is None or kind == "pct" else f"{ch:+.1%}")
        table.add_row(label, *cells)
    err.print(table)
    cmp = comparison(results)
    if cmp:
        t2 = Table("figure", "model", "seed (Linux 6.3 commit message)",
                   title="the seed experiment: migrate_pages() batch TLB flushing")
        labels = {
            "ipis_change": "TLB-flush IPIs, batched vs serial",
            "pages_per_s_change": "pages migrated per second, batched vs serial",
            "serial_flush_share": "serial: share of migration time flushing",
            "batched_copy_share": "batched: share of migration time copying",
            "batched_unmap_flush_share": "batched: share unmapping + flushing",
        }
        for k, v in cmp.items():
            sign = "+" if k.endswith("change") else ""
            t2.add_row(labels[k], "–" if v["model"] is None else f"{v['model']:{sign}.1%}",
                       f"{v['seed']:{sign}.1%}")
        err.print(t2)
    for r in results:
        err.print(f"[dim]{r.policy}: {r.path}[/]")


@app.command()
def replay(
    trace: Path = typer.Argument(..., help="Trace file (Parquet, trace v1)."),
    policy: list[str] | None = typer.Option(None, "-p", "--policy",
                                            help="Migration policy (repeatable). Default: "
                                                 f"{' and '.join(DEFAULT_POLICIES)}."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Pages per batch (batched policy)."),
    profile: str = ProfileOpt,
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
    out_dir: Path | None = typer.Option(None, "-o", "--out", help="Run directory (default: runs/<trace stem>). A trace of more than 64 M accesses also needs room there for a scratch file of 4 bytes per access while it replays."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    emit_accesses: bool = typer.Option(False, "--emit-accesses", help="Also write one row per access."),
    force: bool = typer.Option(False, "--force", help="Replace existing results."),
) -> None:
    """Replay TRACE under migration policies; write event tables and print the comparison."""
    p = _profile(profile, config, set_, batch_size)
    target = out_dir or Path("runs") / trace.stem
    bar = Progress(TextColumn("{task.description:>6}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("rows"), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                   transient=True, disable=as_json)
    tasks: dict[str, TaskID] = {}

    def shown(what: str) -> Callable[[int, int], None]:
        # Shown once the first row group has been read, so that an error in it prints alone;
        # "read" is the validating read (and, until a trace's first migration call, the replay
        # too), "replay" counts rows replayed.
        def update(done: int, total: int) -> None:
            if not tasks:
                bar.start()
                for name in ("read", "replay"):
                    tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[what], completed=done, total=total)
        return update

    try:
        results = run(trace, target, policies=policy or DEFAULT_POLICIES, profile=p, force=force,
                      emit_accesses=emit_accesses, progress=shown("replay"))
    finally:
        if tasks:
            bar.stop()
    if as_json:
        body = {"out": str(target), "policies": {r.policy: {"path": str(r.path), **r.metrics}
                                                 for r in results},
                "seed_comparison": comparison(results)}
        out.print_json(json.dumps(body))
    else:
        _print_results(results)
