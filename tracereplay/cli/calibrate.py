"""``tracereplay calibrate``: fit the cost profile to a capture's measured run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tracereplay.cli._app import app, err, out

_STARTS = {"trace": "at their trace times", "queued": "queued on their CPU"}


@app.command("calibrate")
def calibrate(
    run: Annotated[Path, typer.Argument(help="Run directory of `tracereplay import ... --as-trace`.")],
    output: Annotated[Path, typer.Option("-o", "--out", help="The partial profile to write (TOML).")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    check: Annotated[
        bool,
        typer.Option("--check/--no-check",
                     help="Replay the capture's trace with the fitted profile and compare."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the fit as JSON.")] = False,
) -> None:  # fmt: skip
    """Fit the migration and flush costs to a capture's measured calls, as a partial profile.

    Fits the per-page migration costs and the flush-round cost, writes them as a partial profile
    for --config, prints the residuals and, with --check, the model beside the measurement on
    the same capture."""
    from tracereplay.calibrate import check_targets, fit_capture, write_profile

    fit = fit_capture(run)
    path = write_profile(fit, output, force=force)
    t = Table(title=f"fitted to {fit.capture['source'].get('path', run)}")
    t.add_column("key")
    t.add_column("value", justify="right")
    for k, v in fit.values.items():
        t.add_row(k, f"{v:,} ns" if isinstance(v, int) else str(v))
    err.print(t)
    r = fit.residuals
    err.print(
        f"fit: duration - off-CPU time = pages x {fit.coefficients['page_ns']:,.0f} ns + PTEs x "
        f"{fit.coefficients['pte_ns']:,.0f} ns + rounds x {fit.coefficients['round_ns']:,.0f} ns"
        f" over {int(r['calls']):,} calls; residuals: RMS {r['rms_ns']:,.0f} ns, median "
        f"|error| {r['median_abs_rel']:.0%} of a call, p90 {r['p90_abs_rel']:.0%}, R² "
        f"{r['r2']:.3f}; total {r['total_fitted_ns'] / 1e6:,.1f} ms fitted for "
        f"{r['total_duration_ns'] / 1e6:,.1f} ms measured"
    )
    err.print(
        f"subtracted from the calls' durations: {r['off_cpu_ns'] / 1e6:,.1f} ms off the CPU in "
        f"{int(r['off_cpu_calls']):,} calls (the import's off_cpu table; the replay waits out "
        f"the {(r['off_cpu_ns'] - r['off_cpu_not_in_trace_ns']) / 1e6:,.1f} ms of it the trace "
        f"carries, {r['off_cpu_not_in_trace_ns'] / 1e6:,.1f} ms reach no page)"
    )
    report: dict[str, Any] = {"profile": str(path), "values": fit.values, "coefficients": fit.coefficients,
              "residuals": fit.residuals}  # fmt: skip
    if check:
        with err.status("replaying the capture's trace with the fitted profile"):
            rows = check_targets(fit, path)
        modes = sorted({f"{r.get('mode')}, calls {_STARTS.get(str(r.get('call_start')), '?')}"
                        for r in rows})
        c = Table(title=f"measured vs model (batched, {'; '.join(modes)}) with the fitted "
                        "profile")
        for col in ("metric", "measured", "model", "ratio", "target", "met"):
            c.add_column(col, justify="left" if col == "metric" else "right")
        for row in rows:
            c.add_row(
                row["metric"],
                "-" if row["measured"] is None else f"{row['measured']:,.0f}",
                "-" if row["model"] is None else f"{row['model']:,.0f}",
                "-" if row["ratio"] is None else f"{row['ratio']:.2f}",
                row.get("target", ""),
                {True: "yes", False: "[red]no[/]"}.get(row.get("met"), ""),  # type: ignore[arg-type]
            )
        err.print(c)
        report["check"] = rows
    if as_json:
        out.print_json(json.dumps(report))
    err.print(f"wrote {path}")
