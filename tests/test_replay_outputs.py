"""Run directories: byte-identical outputs, no overwrite without --force, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tracereplay import events, seed
from tracereplay.cli import app, main
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
    assert manifest["config"]["policy"]["batched"]["batch_pages"] == 512
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
    assert not (tmp_path / "r").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(KeyboardInterrupt):
        run(tiny_trace, tmp_path / "kept", progress=interrupt)
    assert list((tmp_path / "kept").iterdir()) == []  # a directory the user had stays


def test_a_table_that_fails_to_write_fails_the_run_and_leaves_nothing(
    tiny_trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Row groups are written on a background thread: its error must still reach the caller.
    def broken(self: pq.ParquetWriter, table: object, row_group_size: int | None = None) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", broken)
    (tmp_path / "kept").mkdir()
    with pytest.raises(OSError, match="No space left"):
        run(tiny_trace, tmp_path / "kept")
    assert list((tmp_path / "kept").iterdir()) == []
    # The command line says what the system said, without calling it a bug.
    monkeypatch.setattr(sys, "argv", ["tracereplay", "replay", str(tiny_trace), "-o",
                                      str(tmp_path / "kept")])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    said = capsys.readouterr().err
    assert "error: No space left on device" in said and "internal" not in said
    assert list((tmp_path / "kept").iterdir()) == []


def test_a_trace_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    # Nothing may wait on it (a FIFO would block a reader forever).
    fifo = tmp_path / "trace.parquet"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "tracereplay", "replay", str(fifo), "-o",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "not a regular file" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


def test_cli_replay_prints_json_and_the_seed_comparison_on_request(tiny_trace: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", str(tiny_trace), "-o", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body["policies"]) == {"serial", "batched"}
    assert body["seed_comparison"] is None  # not the seed's trace
    result = CliRunner().invoke(app, ["replay", str(tiny_trace), "-o", str(tmp_path / "r"), "--json",
                                      "--force", "--compare-seed"])
    body = json.loads(result.stdout)
    assert body["seed_comparison"]["ipis_change"]["seed"] == -0.991


def test_cli_replay_compares_with_the_first_policy_when_the_seeds_baseline_is_absent(
    tiny_trace: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["replay", str(tiny_trace), "-o", str(tmp_path / "r"),
                                      "-p", "batched", "--json", "--compare-seed"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["baseline_policy"] == "batched"
    # the seed's changes are from another policy; its values for batched remain
    assert set(body["seed_comparison"]) == {
        f.name for f in seed.FIGURES if f.policy == "batched" and not f.change}


def test_cli_replay_of_one_policy_compares_nothing_and_says_so(tiny_trace: Path,
                                                               tmp_path: Path) -> None:
    # Nothing to compare: the policy is its own baseline, no seed figures, no change column.
    args = ["replay", str(tiny_trace), "-o", str(tmp_path / "r"), "-p", "batched"]
    body = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert (body["baseline_policy"], body["seed_comparison"]) == ("batched", None)
    result = CliRunner().invoke(app, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert "pages migrated" in result.output and " vs " not in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "lazy"], "unknown policy 'lazy'"),
    (["--set", "batch_size=0"], "'policy.batched.batch_pages' must be at least 1"),
    (["--batch-size", "0"], "'policy.batched.batch_pages' must be at least 1"),
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


def test_a_run_directory_holds_one_trace_and_one_configuration(tiny_trace: Path, tmp_path: Path) -> None:
    from tracereplay.config import load_profile

    run(tiny_trace, tmp_path / "r2", policies=["serial"])
    with pytest.raises(OutputExistsError, match=r"policy=serial holds results of another configuration "
                                                r"\(policy.batched.batch_pages is 512 there, 1 now\)"):
        run(tiny_trace, tmp_path / "r2", policies=["batched"],
            profile=load_profile(overrides=["batch_size=1"]))
    # --force replaces the whole run: the serial result of the old configuration goes.
    run(tiny_trace, tmp_path / "r2", policies=["batched"], force=True,
        profile=load_profile(overrides=["batch_size=1"]))
    assert sorted(p.name for p in (tmp_path / "r2").iterdir()) == ["policy=batched"]


def test_machine_settings_that_contradict_a_trace_that_records_its_machine_are_refused(
    tiny_trace: Path, tmp_path: Path
) -> None:
    from tracereplay.config import load_profile
    from tracereplay.errors import ConfigError

    with pytest.raises(ConfigError, match=r"the trace records its machine, with machine.cpus = 4"):
        run(tiny_trace, tmp_path / "r", profile=load_profile(overrides=["machine.cpus=2"]))


@pytest.mark.parametrize("make", ["file", "unwritable-parent"])
def test_an_unusable_output_location_is_a_clear_error(tiny_trace: Path, tmp_path: Path, make: str) -> None:
    target = tmp_path / "out"
    if make == "file":
        target.write_text("not a directory")
        expected = "exists and is not a directory"
    else:
        target = Path("/proc/tracereplay-no-such/out")
        expected = "cannot create the run directory"
    with pytest.raises(OutputExistsError, match=expected):
        run(tiny_trace, target)


def test_temporary_directories_of_a_killed_replay_are_cleaned_up(tiny_trace: Path, tmp_path: Path) -> None:
    stale = tmp_path / "r" / ".policy=serial.tmp-deadbeef"
    stale.mkdir(parents=True)
    (stale / "flushes.parquet").write_bytes(b"half")
    run(tiny_trace, tmp_path / "r", policies=["serial"])
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["policy=serial"]
