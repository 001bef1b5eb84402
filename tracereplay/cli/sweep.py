"""``tracereplay sweep``: a grid of config values over traces and policies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tracereplay.batch import ResultRecord
from tracereplay.cli._app import app, err
from tracereplay.cli.batch import (
    EXIT_SOME_FAILED,
    ExecutorOpt,
    ForceOpt,
    JobsOpt,
    JsonLinesOpt,
    SchedulerOpt,
)
from tracereplay.cli.replay import ConfigOpt, ProfileOpt, SetOpt
from tracereplay.replay import DEFAULT_POLICIES
from tracereplay.sweep import SweepSummary, parse_vary, run_sweep


@app.command()
def sweep(
    traces: Annotated[list[str], typer.Argument(
        help="Traces: files, directories, globs or list files (as batch takes a corpus).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Sweep directory.")],
    vary: Annotated[list[str], typer.Option(
        "--vary", help="KEY=V1,V2,... (repeatable; any key --set takes): one partition per "
                       "value, every combination of the keys.")],
    policy: Annotated[list[str] | None, typer.Option(
        "-p", "--policy",
        help=f"Migration policy (repeatable). Default: {' and '.join(DEFAULT_POLICIES)}.")
    ] = None,
    profile: str = ProfileOpt,
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
    jobs: JobsOpt = None,
    force: ForceOpt = False,
    as_json: JsonLinesOpt = False,
    executor: ExecutorOpt = "local",
    scheduler: SchedulerOpt = None,
) -> None:
    """Replay TRACES under each policy at every point of the grid of --vary values.

    Results go to OUT/<key>=<value>/.../trace=<id>/policy=<name>/ (keys made safe: dots become
    _), with OUT/sweep.json; resumable like batch, failures in OUT/_failures.parquet and exit
    code 3 when some failed. Every key and value is checked before any work (exit 2).
    """
    axes = [parse_vary(v) for v in vary]
    # The bar starts once every point is checked, so that a bad value prints alone.
    bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
                   console=err, transient=False)
    task = bar.add_task("sweep", total=None, failed=0)
    failed = 0
    try:
        def on_start(todo: int, skipped: int) -> None:
            bar.start()
            bar.update(task, total=todo)
            if skipped:
                bar.console.print(f"skipping {skipped:,} complete results", highlight=False)

        def on_result(rec: ResultRecord) -> None:
            nonlocal failed
            failed += rec.status != "ok"
            bar.update(task, advance=1, failed=failed)
            if as_json:
                sys.stdout.write(json.dumps(rec.to_dict()) + "\n")
                sys.stdout.flush()

        summary = run_sweep(traces, out, axes, policies=policy or DEFAULT_POLICIES,
                            profile=profile, config_file=str(config) if config else None,
                            sets=set_ or (), jobs=jobs, force=force, executor=executor,
                            scheduler=scheduler, on_start=on_start, on_result=on_result)
    finally:
        bar.stop()
    _print_summary(summary)
    if summary.failed:
        raise typer.Exit(EXIT_SOME_FAILED)


def _print_summary(s: SweepSummary) -> None:
    table = Table("results", "count", title=f"tracereplay sweep: {s.points:,} points x "
                  f"{s.traces:,} traces x {len(s.policies)} policies -> {s.out}")
    table.add_row("written", f"{s.ok:,}")
    table.add_row("skipped (complete)", f"{s.skipped:,}")
    table.add_row("failed", f"[red]{s.failed:,}[/]" if s.failed else "0")
    table.add_row("wall time", f"{s.wall_s:,.1f} s")
    err.print(table)
    for r in s.failures[:20]:
        err.print(f"[red]failed[/] {escape(r.point)} {escape(r.trace)} {r.policy}: "
                  f"{r.error_class}: {escape(r.message or '')}", highlight=False)
    if s.failures:
        err.print(f"all failures: {s.out}/_failures.parquet", highlight=False)
