"""``tracereplay capture``: perf record around a command, then import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tracereplay.cli._app import app, err, out


@app.command(
    "capture",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def capture_(
    ctx: typer.Context,
    out_dir: Annotated[
        Path, typer.Option("-o", "--out", help="Output directory: text, measured run, trace.")
    ],
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Record the whole machine this many seconds (no command)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing outputs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Record the migration, flush and page-fault tracepoints with perf, then import them.

    Records tlb:tlb_flush, migrate:* and exceptions:page_fault_user on every CPU while COMMAND
    runs (tracereplay capture -o DIR -- COMMAND ...), or for --duration seconds, then imports
    the capture into DIR (policy=measured/, trace.parquet, capture.perf-script.zst)."""
    from tracereplay.capture import capture

    with err.status("recording with perf" + (f": {' '.join(ctx.args)}" if ctx.args else "")):
        res = capture(out_dir, ctx.args, duration_s=duration, force=force)
    m = res.manifest
    if as_json:
        out.print_json(json.dumps(m))
    ev = ", ".join(f"{k} {v:,}" for k, v in m["events"].items())
    err.print(f"{m['lines']:,} lines: {ev}")
    if "stalls" in m:
        err.print(f"faults {m['stalls']['faults']:,}, of them stalls {m['stalls']['stalls']:,}")
    if res.command_rc:
        err.print(f"[yellow]the command exited with {res.command_rc}[/]")
    err.print(f"wrote {res.out_dir}/policy=measured, {res.trace}, {res.text}")
    err.print(f"replay it beside the measurement: tracereplay replay {res.trace} -o {res.out_dir}")
