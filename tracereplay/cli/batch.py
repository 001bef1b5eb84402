"""``tracereplay batch``: replay a corpus, and ``tracereplay generate corpus``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tracereplay.batch import EXECUTORS, BatchSummary, ResultRecord, run_batch
from tracereplay.cli._app import app, err
from tracereplay.cli.generate import generate_app
from tracereplay.cli.replay import ConfigOpt, ProfileOpt, SetOpt, _profile, policy_names
from tracereplay.generate.corpus import DEFAULT_ACCESSES, write_corpus
from tracereplay.replay import DEFAULT_POLICIES

# Exit code of a batch in which some traces failed (0: none did; 2: bad usage).
EXIT_SOME_FAILED = 3
_SHOWN_FAILURES = 20


# The options of the commands that run work items on an executor (batch, sweep).
JobsOpt = Annotated[int | None, typer.Option(
    "-j", "--jobs", help="Worker processes (default: the machine's cores; dask: workers of the "
                         "local cluster).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo complete results too.")]
JsonLinesOpt = Annotated[bool, typer.Option(
    "--json", help="One JSON line per finished result on stdout.")]
ExecutorOpt = Annotated[str, typer.Option(help=f"Where the work runs: {', '.join(EXECUTORS)}.")]
SchedulerOpt = Annotated[str | None, typer.Option(
    help="Dask scheduler address (tcp://HOST:8786); default: a local cluster.")]


class _RateColumn(ProgressColumn):
    """Results per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("–/s" if speed is None else f"{speed:.1f}/s", style="progress.data.speed")


@app.command()
def batch(
    corpus: Annotated[str, typer.Argument(
        help="Traces: a directory (every *.parquet below it), a glob ('traces/**/*.parquet'), "
             "a file listing paths, or an s3:// URL.")],
    results: Annotated[str, typer.Option(
        "-o", "--out", help="Results directory or s3:// URL: trace=<id>/policy=<name>/.")],
    policy: Annotated[list[str] | None, typer.Option(
        "-p", "--policy", metavar="NAME[,NAME]",
        help="Migration policies, repeated or comma-separated. Default: "
             f"{','.join(DEFAULT_POLICIES)}.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", help="Pages per batch (batched policy).")] = None,
    profile: str = ProfileOpt,
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
    jobs: JobsOpt = None,
    force: ForceOpt = False,
    as_json: JsonLinesOpt = False,
    executor: ExecutorOpt = "local",
    scheduler: SchedulerOpt = None,
) -> None:
    """Replay every trace of CORPUS under each policy; resumable, one result per trace x policy.

    Complete results are skipped on a rerun; failed traces are listed in RESULTS/_failures.parquet
    and the exit code is 3 when some failed.
    """
    p = _profile(profile, config, set_, batch_size)
    columns = (TextColumn("batch"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
               TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("batch", total=None, failed=0)
        failed = 0
        stdout_closed = False

        def on_start(todo: int, skipped: int) -> None:
            bar.update(task, total=todo)
            if skipped:
                bar.console.print(f"skipping {skipped:,} complete results", highlight=False)

        def on_result(rec: ResultRecord) -> None:
            nonlocal failed
            failed += rec.status != "ok"
            bar.update(task, advance=1, failed=failed)
            if as_json and not stdout_closed:
                _emit(rec)

        def _emit(rec: ResultRecord) -> None:
            nonlocal stdout_closed
            try:
                sys.stdout.write(json.dumps(rec.to_dict()) + "\n")
                sys.stdout.flush()
            except BrokenPipeError:
                # The reader went away (| head): the results still matter, so finish them.
                stdout_closed = True
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())

        summary = run_batch(corpus, results, policies=policy_names(policy), profile=p,
                            jobs=jobs, force=force, executor=executor, scheduler=scheduler,
                            on_start=on_start, on_result=on_result)
    _print_summary(summary)
    if summary.failed:
        raise typer.Exit(EXIT_SOME_FAILED)


def _print_summary(s: BatchSummary) -> None:
    done = s.ok + s.failed
    table = Table("results", "count", title=f"tracereplay batch: {s.traces:,} traces x "
                  f"{len(s.policies)} policies -> {s.results}")
    table.add_row("written", f"{s.ok:,}")
    table.add_row("skipped (complete)", f"{s.skipped:,}")
    table.add_row("failed", f"[red]{s.failed:,}[/]" if s.failed else "0")
    rate = f"{done / s.wall_s:,.1f} results/s" if done and s.wall_s else "–"
    table.add_row("wall time", f"{s.wall_s:,.1f} s ({rate})")
    if s.peak_rss_mib is not None:
        table.add_row("peak worker memory (RSS)", f"{s.peak_rss_mib:,.0f} MiB")
    err.print(table)
    if s.failures:
        # One row per trace and error: a bad trace fails the same way under every policy.
        groups: dict[tuple[str, str, str], list[str]] = {}
        for r in s.failures:
            groups.setdefault((r.trace, r.error_class or "", r.message or ""), []).append(r.policy)
        ft = Table(title=f"failures (all in {s.results}/_failures.parquet)")
        ft.add_column("trace", no_wrap=True)
        ft.add_column("policies")
        ft.add_column("error")
        ft.add_column("message", ratio=1, overflow="fold")
        for (trace, cls, message), policies in list(groups.items())[:_SHOWN_FAILURES]:
            ft.add_row(trace, ", ".join(policies), cls, escape(message))
        if len(groups) > _SHOWN_FAILURES:
            ft.add_row("…", "", "", f"{len(groups) - _SHOWN_FAILURES} more")
        err.print(ft)


@generate_app.command("corpus")
def corpus(
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write.")],
    count: Annotated[int, typer.Option(help="Number of traces.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the corpus.")] = 0,
    accesses: Annotated[int, typer.Option(
        help="Typical workload accesses of one trace (each has 0.5x to 2x).")] = DEFAULT_ACCESSES,
    max_set_mib: Annotated[int, typer.Option(
        help="Largest working set, MiB (1, 2, 4 or 8): fewer pages to migrate.")] = 8,
) -> None:
    """A varied corpus of small pmbench + migratepages traces, and corpus.csv of their parameters.

    Patterns, machines, threads, working sets, read shares and migratepages intervals vary from
    trace to trace. Same options, byte-identical files.
    """
    with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("corpus", total=count)
        paths = write_corpus(output, count, seed, accesses=accesses, max_set_mib=max_set_mib,
                             progress=lambda done, total: bar.update(task, completed=done))
    size_mib = sum(os.path.getsize(p) for p in paths) / (1 << 20)
    err.print(f"wrote {len(paths)} traces to {output} ({size_mib:,.1f} MiB) and "
              f"{output / 'corpus.csv'}", highlight=False)
