"""``tracereplay report``: one self-contained HTML page of figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracereplay.cli._app import app, err


@app.command()
def report(
    source: Annotated[Path, typer.Argument(
        help="A run directory, a batch results directory or a sweep directory.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="HTML file to write.")],
    title: Annotated[str | None, typer.Option(help="Title of the page.")] = None,
) -> None:
    """Write one self-contained HTML page of figures for a run, batch results or a sweep.

    Figures are inline SVG; the page opens from disk with no network: the summary table, the
    seed's figures where they apply, migration time per phase, CDFs of stalls and unmapped
    windows, IPIs per flush round, one call's timeline, and for a sweep the trade-off curves
    against each varied key with the chosen point marked."""
    from tracereplay.report import write_report  # matplotlib loads only for this command

    figures = write_report(source, out, title=title)
    err.print(f"wrote {out} ({len(figures)} figures)", highlight=False)
