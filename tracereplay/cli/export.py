"""``tracereplay export perfetto``: a run as a timeline for ui.perfetto.dev."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracereplay.cli._app import app, err
from tracereplay.export import DEFAULT_MAX_EVENTS, export_perfetto

export_app = typer.Typer(help="Write a run in a format other tools open.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("perfetto")
def perfetto(
    run: Annotated[Path, typer.Argument(help="A run directory (policy=<name>/ inside).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="FILE.json or FILE.json.gz.")],
    max_events: Annotated[int, typer.Option(
        "--max-events", help="Keep at most this many timed events, the earliest; what is cut "
                             "is said on stderr.")] = DEFAULT_MAX_EVENTS,
) -> None:
    """Write RUN as Chrome JSON trace events (ui.perfetto.dev, chrome://tracing): flush rounds
    and stalls on CPU tracks, each migration call's batches and phases, the pages unmapped."""
    got = export_perfetto(run, out, max_events=max_events)
    err.print(f"wrote {got.path}: {got.events:,} events", highlight=False)
    if got.cut:
        what = ", ".join(f"{n:,} {k}" for k, n in sorted(got.cut.items()))
        err.print(f"cut at --max-events {max_events:,}: the events after "
                  f"{got.cut_after_ns:,} ns were left out ({what})", highlight=False)
