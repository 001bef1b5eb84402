"""Run directories: byte-identical outputs, no overwrite without --force, nothing half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tracereplay import events
from tracereplay.cli import app
from tracereplay.errors import OutputExistsError
from tracereplay.replay import run

TABLES = ("flushes", "migrations", "batches", "stalls", "cpu_stats")


def test_same_trace_and_config_give_byte_identical_event_files(tiny_trace: Path, tmp_path: Path) -> None:
    run(tiny_trace, tmp_path / "a")
    run(tiny_trace, tmp_path / "b")
    for policy in ("serial", "batched"):
        for name in TABLES:
            a = (tmp_path / "a" / f"policy={policy}" / f"{name}.parquet").read_bytes()
            b = (tmp_path / "b" / f"policy={policy}" / f"{name}.parquet").read_bytes()
            assert a == b, f"{policy}/{name}"


def test_every_table_matches_the_event_schema(tiny_trace: Path, tmp_path: Path) -> None:
    run(tiny_trace, tmp_path / "r", emit_accesses=True)
    for name in (*TABLES, "accesses"):
        got = pq.read_schema(tmp_path / "r" / "policy=batched" / f"{name}.parquet")
        assert got.remove_metadata().equals(events.table_schema(name).remove_metadata()), name
    manifest = json.loads((tmp_path / "r" / "policy=batched" / "run.json").read_text())
    assert manifest["policy"] == "batched"
    assert len(manifest["trace"]["sha256"]) == 64
    assert manifest["config"]["migrate"]["batch_size"] == 512
    assert set(manifest["tables"]) >= set(TABLES)


def test_an_existing_run_is_not_overwritten_without_force(tiny_trace: Path, tmp_path: Path) -> None:
    run(tiny_trace, tmp_path / "r", policies=["serial"])
    before = (tmp_path / "r" / "policy=serial" / "run.json").read_bytes()
    with pytest.raises(OutputExistsError, match="--force"):
        run(tiny_trace, tmp_path / "r", policies=["serial"])
    assert (tmp_path / "r" / "policy=serial" / "run.json").read_bytes() == before
    run(tiny_trace, tmp_path / "r", policies=["serial"], force=True)


def test_an_interrupted_run_leaves_nothing_that_looks_complete(tiny_trace: Path, tmp_path: Path) -> None:
    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tiny_trace, tmp_path / "r", progress=interrupt)
    assert list((tmp_path / "r").iterdir()) == []


def test_cli_replay_prints_json_and_the_seed_comparison(tiny_trace: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", str(tiny_trace), "-o", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body["policies"]) == {"serial", "batched"}
    assert body["seed_comparison"]["ipis_change"]["seed"] == -0.991


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "lazy"], "unknown policy 'lazy'"),
    (["--set", "batch_size=0"], "'migrate.batch_size' must be at least 1"),
    (["--set", "nonsense=1"], "unknown key 'nonsense'"),
])
def test_cli_replay_bad_options_exit_2_without_traceback(
    tiny_trace: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    r = subprocess.run([sys.executable, "-m", "tracereplay", "replay", str(tiny_trace),
                        "-o", str(tmp_path / "r"), *args], capture_output=True, text=True)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()


def test_cli_replay_of_a_file_that_is_not_parquet_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_text("ts_ns,kind\n")
    r = subprocess.run([sys.executable, "-m", "tracereplay", "replay", str(bad), "-o", str(tmp_path / "r")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert str(bad) in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()
