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

from tracereplay import seed
from tracereplay.cli._app import app, err, out
from tracereplay.config import DEFAULT_PROFILE, Profile, load_profile, profile_names
from tracereplay.metrics import SUMMARY
from tracereplay.query import connect
from tracereplay.replay import DEFAULT_POLICIES, PolicyResult, run

config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ProfileOpt = typer.Option(DEFAULT_PROFILE, "--profile",
                          help="Cost and machine profile: a shipped one (tracereplay profiles) or "
                               "the path of a TOML file of one's own (keys it leaves out: "
                               f"{DEFAULT_PROFILE}).")
ConfigOpt = typer.Option(None, "--config", help="TOML file of overrides (a partial profile).")
SetOpt = typer.Option(None, "--set", help="One override, key=value (repeatable): --set batch_size=64.")


def policy_names(given: list[str] | None) -> list[str]:
    """The policies of ``-p``, repeated or comma-separated (``-p serial,batched``); the
    defaults when none is given."""
    names = [n.strip() for item in given or [] for n in item.split(",") if n.strip()]
    return names or list(DEFAULT_POLICIES)


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
    rows = p.rows()
    table = Table(title=f"{p.name}: {p.description}")
    # The keys are what --set takes: never cut; the words wrap around them.
    table.add_column("key", no_wrap=True, min_width=max(len(k) for k, *_ in rows))
    table.add_column("value", overflow="fold", max_width=24)
    table.add_column("meaning", ratio=1, overflow="fold")
    table.add_column("source", ratio=1, overflow="fold")
    for key, value, doc, source in rows:
        table.add_row(key, _shown(key, value), doc, source)
    out.print(table)
    err.print("[dim]--json gives the values as one object; --set KEY=VALUE changes one.[/]")


def _shown(key: str, value: Any) -> str:
    """A value of ``config show``: a list's items, a matrix's rows as --set takes them."""
    if not isinstance(value, tuple):
        return str(value)
    if key == "memory.distances":
        return ", ".join(str(list(r)) for r in value) or "none"
    return ", ".join(map(str, value)) or "spread over the nodes"


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
    ("first-folio latency p50", "first_folio_p50_ns", "ns"),
    ("first-folio latency p99", "first_folio_p99_ns", "ns"),
    ("share: unmap", "unmap_share", "pct"),
    ("share: flush", "flush_share", "pct"),
    ("share: copy", "copy_share", "pct"),
    ("share: remap", "remap_share", "pct"),
    ("share: other", "other_share", "pct"),
    ("attempts aborted (written)", "attempts_aborted", "int"),
    ("share: aborted attempts", "aborted_share", "pct"),
    ("unmapped window p50", "window_p50_ns", "ns"),
    ("stalled accesses", "stalled_accesses", "int"),
    ("stall p50", "stall_p50_ns", "ns"),
    ("stall p99", "stall_p99_ns", "ns"),
    ("stall max", "stall_max_ns", "ns"),
    ("stale TLB hits", "stale_hits", "int"),
    ("L1 dTLB hit rate", "l1_hit_rate", "rate"),
    ("STLB hit rate", "l2_hit_rate", "rate"),
)


def _compared(run_dir: Path, compare_seed: bool) -> list[dict[str, Any]]:
    """The rows of ``policy_compare`` over ``run_dir``: each metric per policy beside the
    baseline policy's, and the seed's figures. No rows when there is nothing to compare: one
    policy in the directory, a trace other than the seed's, and no ``--compare-seed`` (the
    query reads every event table again; on a 100 M-access trace with migrations, 0.7 s)."""
    policies = sorted(run_dir.glob("policy=*"))
    if len(policies) == 1 and not compare_seed:
        manifest = json.loads((policies[0] / "run.json").read_text(encoding="utf-8"))
        if manifest.get("trace", {}).get("sha256") != seed.TRACE_SHA256:
            return []
    con = connect(run_dir, views=["policy_compare"])
    try:
        cur = con.execute("FROM policy_compare")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def _baseline(rows: list[dict[str, Any]], results: list[PolicyResult]) -> str:
    """The policy the others are compared with (the only one when nothing was compared)."""
    return str(rows[0]["baseline_policy"]) if rows else results[0].policy


def comparison(rows: list[dict[str, Any]], policies: list[str]) -> dict[str, Any]:
    """The seed's figures for ``policies`` beside the model's, from rows of ``policy_compare``
    (as fractions: -0.991 for -99.1%); a change only where the baseline is the seed's."""
    by = {(r["metric"], r["policy"]): r for r in rows}
    figures: dict[str, Any] = {}
    for fig in seed.FIGURES:
        row = by.get((fig.metric, fig.policy))
        if fig.policy not in policies or row is None:
            continue
        if fig.change and row["baseline_policy"] != seed.BASELINE_POLICY:
            continue
        model = row["change_pct"] if fig.change else row["value"]
        figures[fig.name] = {"model": None if model is None else model / 100,
                             # published with one decimal in percent: -99.1% is -0.991
                             "seed": round(fig.value_pct / 100, 6)}
    return figures


def is_seed_run(rows: list[dict[str, Any]]) -> bool:
    """Whether the rows of ``policy_compare`` are of the seed experiment's trace: the view
    gives the seed's figures on those only."""
    return any(r["seed_value"] is not None or r["seed_change_pct"] is not None for r in rows)


def _print_results(results: list[PolicyResult], rows: list[dict[str, Any]],
                   compare_seed: bool, closed_loop: bool = False) -> None:
    names = [r.policy for r in results]
    baseline = _baseline(rows, results)
    others = [n for n in names if n != baseline]
    table = Table("metric", *names, *(f"{n} vs {baseline}" for n in others),
                  title="tracereplay: model results per policy, "
                        f"{'closed' if closed_loop else 'open'} loop")
    for numbers in table.columns[1:]:
        numbers.justify = "right"  # numbers line up by their last digit
    by = {r.policy: r.metrics for r in results}
    change = {(r["metric"], r["policy"]): r["change_pct"] for r in rows}
    column = {f.key: f.column for f in SUMMARY}  # policy_compare names a metric by its column
    for label, key, kind in _ROWS:
        cells = [_fmt(by[n].get(key), kind) for n in names]
        for n in others:
            ch = change.get((column.get(key), n))
            cells.append("–" if ch is None or kind == "pct" else f"{ch:+.1f}%")
        table.add_row(label, *cells)
    err.print(table)
    figures = comparison(rows, names) if compare_seed else {}
    if not compare_seed:
        err.print("[dim]The seed's figures: beside sample_traces/seed.parquet, or with "
                  "--compare-seed.[/]")
    if figures:
        t2 = Table("figure", "model", "seed", title="the seed experiment", caption=seed.SOURCE)
        for fig in seed.FIGURES:
            if fig.name not in figures:
                continue
            model, published = figures[fig.name]["model"], figures[fig.name]["seed"]
            label = (f"{fig.label}, {fig.policy} vs {seed.BASELINE_POLICY}" if fig.change
                     else f"{fig.policy}: {fig.label}")
            sign = "+" if fig.change else ""
            t2.add_row(label, "–" if model is None else f"{model:{sign}.1%}", f"{published:{sign}.1%}")
        err.print(t2)
    for line in _migration_notes(results):
        err.print(line, highlight=False)
    for r in results:
        err.print(f"[dim]{r.policy}: {r.path}[/]")


def _migration_notes(results: list[PolicyResult]) -> list[str]:
    """What a table of zeros does not say: that the trace asked for no migration, or that
    calls found nothing to move."""
    calls = {r.metrics.get("migrate_calls", 0) for r in results}
    empty = {r.policy: r.metrics.get("empty_calls", 0) for r in results}
    if calls == {0} and not any(empty.values()):
        return ["No page was migrated: the trace has no migrate rows, so the migration metrics "
                "are 0 or – (no value)."]
    out = []
    for n in sorted(set(empty.values()) - {0}):
        who = [p for p, e in empty.items() if e == n]
        which = "" if len(who) == len(results) else f" ({', '.join(who)})"
        out.append(f"{n:,} migrate call{'s' if n > 1 else ''}{which} found nothing to move: no "
                   "page of the process on the source node, or every page already on the "
                   "destination, not mapped yet or busy.")
    return out


@app.command()
def replay(
    trace: Path = typer.Argument(..., help="Trace file (Parquet, trace v1)."),
    policy: list[str] | None = typer.Option(None, "-p", "--policy", metavar="NAME[,NAME]",
                                            help="Migration policies, repeated or comma-"
                                                 "separated. Default: "
                                                 f"{','.join(DEFAULT_POLICIES)}."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Pages per batch (batched policy)."),
    profile: str = ProfileOpt,
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
    out_dir: Path | None = typer.Option(None, "-o", "--out", help="Run directory (default: runs/<trace stem>)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    emit_accesses: bool = typer.Option(False, "--emit-accesses", help="Also write one row per access."),
    closed_loop: bool = typer.Option(
        False, "--closed-loop",
        help="A stalled access delays the later accesses of its CPU by its wait, as a real "
             "thread would (default: open loop, trace times never delayed; docs/model.md)."),
    force: bool = typer.Option(False, "--force", help="Replace existing results."),
    compare_seed: bool = typer.Option(
        False, "--compare-seed",
        help="Print the seed experiment's figures beside the model's for any trace (by "
             "default only for the seed's own trace, sample_traces/seed.parquet)."),
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
        results = run(trace, target, policies=policy_names(policy), profile=p, force=force,
                      emit_accesses=emit_accesses, progress=shown("replay"),
                      closed_loop=closed_loop)
    finally:
        if tasks:
            bar.stop()
    rows = _compared(target, compare_seed)
    if as_json:
        body = {"out": str(target), "closed_loop": closed_loop, "policies": {r.policy: {"path": str(r.path), **r.metrics}
                                                 for r in results},
                "baseline_policy": _baseline(rows, results),
                "seed_comparison": (comparison(rows, [r.policy for r in results])
                                    if compare_seed or is_seed_run(rows) else None)}
        out.print_json(json.dumps(body))
    else:
        _print_results(results, rows, compare_seed or is_seed_run(rows), closed_loop)
