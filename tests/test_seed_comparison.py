"""The seed's published figures appear beside the seed experiment's own trace, or on request;
never as if they validated another workload."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc

from tracereplay import seed
from tracereplay.generate import PmbenchParams, write_pmbench
from tracereplay.query import run_query
from tracereplay.replay import run

REPO = Path(__file__).resolve().parents[1]


def _replay(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "tracereplay", "replay", *map(str, args)],
                          env=env, capture_output=True, text=True, check=False)


def _pareto(tmp_path: Path) -> Path:
    path = tmp_path / "pareto.parquet"
    write_pmbench(path, PmbenchParams(pattern="pareto", threads=3, cpus=4, map_mib=1, set_mib=1,
                                      thread_rate_per_s=2e5, migrate_every_ms=1, duration_ms=3, seed=1))
    return path


def test_the_seed_figures_name_the_bundled_seed_trace(seed_trace: Path) -> None:
    assert hashlib.sha256(seed_trace.read_bytes()).hexdigest() == seed.TRACE_SHA256


def test_the_seed_table_is_printed_for_the_seed_sample(seed_trace: Path, tmp_path: Path) -> None:
    r = _replay(seed_trace, "-o", tmp_path / "r", "-p", "serial")
    assert r.returncode == 0, r.stderr
    assert "the seed experiment" in r.stderr
    assert "serial: share of migration time flushing" in r.stderr


def test_the_seed_table_is_absent_for_a_generated_trace_unless_asked(tmp_path: Path) -> None:
    trace = _pareto(tmp_path)
    r = _replay(trace, "-o", tmp_path / "r")
    assert r.returncode == 0, r.stderr
    assert "the seed experiment" not in r.stderr and "Huang Ying" not in r.stderr
    assert "The seed's figures: beside sample_traces/seed.parquet, or with --compare-seed" in r.stderr
    r = _replay(trace, "-o", tmp_path / "r", "--force", "--compare-seed")
    assert "the seed experiment" in r.stderr and "Huang Ying" in r.stderr


def test_policy_compare_gives_the_seed_figures_only_on_runs_of_the_seed_trace(tmp_path: Path) -> None:
    run(_pareto(tmp_path), tmp_path / "r")
    table = run_query("policy_compare", [tmp_path / "r"])
    assert table.num_rows > 0
    assert pc.count(table["seed_value"]).as_py() == 0
    assert pc.count(table["seed_change_pct"]).as_py() == 0
