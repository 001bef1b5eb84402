"""``tracereplay validate``: check a trace against format v1 and summarise it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tracereplay import trace
from tracereplay.cli._app import app, out


def _ns(value: int) -> str:
    return f"{value:,} ns ({value / 1e6:,.3f} ms)"


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Trace file (Parquet, format trace/1).",
                                         metavar="TRACE")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]
    = False,
) -> None:
    """Check every rule of trace format v1 and print what the trace holds.

    A broken rule prints one line naming the file, column, row and rule, and exits with code 2.
    """
    t = trace.load(path)
    s = t.summary
    assert s is not None  # load() summarises unless told not to
    if as_json:
        doc = {
            "path": str(path),
            "schema": trace.TRACE_SCHEMA,
            "machine": t.machine.to_dict(),
            "machine_from_file": t.machine_from_file,
            "summary": s.to_dict(),
        }
        out.print_json(json.dumps(doc))
        return
    m = t.machine
    origin = "from the file" if t.machine_from_file else "default (not in the file)"
    # the path above the table, not in its title: a title wraps within the table's width
    out.print(f"{path}: valid {trace.TRACE_SCHEMA}", highlight=False, soft_wrap=True)
    table = Table()
    table.add_column("", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("rows", f"{s.rows:,}"),
        ("accesses", f"{s.accesses:,}"),
        ("  reads / writes", f"{s.reads:,} / {s.writes:,}"),
        ("maps", f"{s.maps:,}"),
        ("pids", f"{s.pids:,}"),
        ("CPUs used", f"{s.cpus:,}"),
        ("distinct pages", f"{s.pages:,}"),
        ("migrate calls", f"{s.migrate_calls:,}"),
        ("  whole-node calls", f"{s.whole_node_calls:,}"),
        ("  explicit pages", f"{s.migrate_pages:,}"),
        ("first ts", _ns(s.ts_first_ns)),
        ("last ts", _ns(s.ts_last_ns)),
        ("span", _ns(s.span_ns)),
        ("machine", f"{m.cpus} CPUs, {m.nodes} nodes, {m.page_size} B pages, {origin}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
