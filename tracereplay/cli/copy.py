"""``tracereplay config copy-gbps``: the model's move_pages() GB/s per folio size and copy
engine, from the cost functions alone (``tracereplay.copy.throughput``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from tracereplay.cli._app import out
from tracereplay.cli.replay import ConfigOpt, ProfileOpt, SetOpt, _profile, config_app
from tracereplay.copy.throughput import FOLIO_KIB, table
from tracereplay.errors import ConfigError


@config_app.command("copy-gbps")
def copy_gbps(
    profile: str = ProfileOpt,
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
    batch_pages: int | None = typer.Option(
        None, "--batch-pages", help="Base pages per batch (default: policy.batched.batch_pages)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """GB/s of moving 1 GB of folios of each size with one move_pages() call, per copy engine."""
    if batch_pages is not None and batch_pages < 1:
        raise ConfigError(f"--batch-pages must be at least 1: {batch_pages}")
    rows = table(_profile(profile, config, set_), batch_pages=batch_pages)
    if as_json:
        out.print_json(json.dumps([asdict(r) for r in rows]))
        return
    t = Table("engine", "policy", *(f"{k // 1024}M" if k >= 1024 else f"{k}K" for k in FOLIO_KIB),
              title="model GB/s, 1 GB moved by one move_pages() call")
    for r in rows:
        t.add_row(r.label, r.policy, *(f"{g:.2f}" for g in r.gbps))
    out.print(t)
