"""tracereplay sweep: the grid, its hive layout, resuming after kill -9, failures, bad --vary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from batch_helpers import hidden_entries, make_corpus

from tracereplay.errors import BadInputError, ConfigError
from tracereplay.query import run_query
from tracereplay.sweep import Axis, column_name, grid, parse_vary, point_profiles, run_sweep


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracereplay", *args], capture_output=True,
                          text=True, check=False, env={**os.environ, "COLUMNS": "200"})


def _complete(out: Path) -> list[str]:
    return sorted(p.parent.relative_to(out).as_posix() for p in out.glob("**/policy=*/run.json"))


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sweep-corpus")
    make_corpus(d, 2, broken=False)
    return d


# --- the grid ------------------------------------------------------------------------------------


def test_the_grid_is_every_combination_first_key_slowest_with_safe_partition_names() -> None:
    axes = [parse_vary("migrate.batch_size=1,64"), parse_vary("flush.mm_cpumask=sticky,window")]
    assert [p.path for p in grid(axes)] == [
        "migrate_batch_size=1/flush_mm_cpumask=sticky",
        "migrate_batch_size=1/flush_mm_cpumask=window",
        "migrate_batch_size=64/flush_mm_cpumask=sticky",
        "migrate_batch_size=64/flush_mm_cpumask=window",
    ]
    assert grid(axes)[1].overrides() == ["migrate.batch_size=1", "flush.mm_cpumask=window"]
    assert column_name("policy.batched.batch_pages") == "policy_batched_batch_pages"
    assert column_name("copy.engine") == "copy_engine"


@pytest.mark.parametrize(("text", "says"), [
    ("migrate.batch_size", "expected KEY=V1,V2"),
    ("migrate.batch_size=", "empty value"),
    ("migrate.batch_size=1,,8", "empty value"),
    ("migrate.batch_size=1,1", "'1' is given twice"),
    ("migrate.batch_size=a/b", "cannot name a partition directory"),
])
def test_a_malformed_vary_is_bad_input_naming_it(text: str, says: str) -> None:
    with pytest.raises(BadInputError, match=says):
        parse_vary(text)


def test_a_key_varied_twice_or_two_keys_with_one_column_are_refused() -> None:
    with pytest.raises(BadInputError, match="varied twice"):
        grid([Axis("migrate.batch_size", ("1",)), Axis("migrate.batch_size", ("2",))])
    with pytest.raises(BadInputError, match="same partition column 'a_b'"):
        grid([Axis("a.b", ("1",)), Axis("a_b", ("2",))])


def test_values_are_checked_as_set_checks_them_each_point_before_any_work() -> None:
    points = grid([parse_vary("migrate.batch_size=8,0")])
    with pytest.raises(ConfigError, match=r"--vary migrate.batch_size=0: .*must be at least 1"):
        point_profiles(points, "intel-2s")
    with pytest.raises(ConfigError, match=r"--vary copy.nope=1: .*unknown key 'copy.nope'"):
        point_profiles(grid([parse_vary("copy.nope=1")]), "intel-2s")
    profiles = point_profiles(points[:1], "intel-2s", sets=["copy.cpu.page_ns=700"])
    p = profiles["migrate_batch_size=8"]
    assert (p.policy["batched"].batch_pages, p.copy_engines["cpu"].page_ns) == (8, 700)
    # a key is any key of the config's registry: a component's section included
    engines = point_profiles(grid([parse_vary("copy.engine=cpu,dma")]), "intel-2s")
    assert [q.copy.engine for q in engines.values()] == ["cpu", "dma"]
    with pytest.raises(ConfigError, match=r"--vary copy.engine=nope"):
        point_profiles(grid([parse_vary("copy.engine=nope")]), "intel-2s")


@pytest.mark.parametrize("vary", ["migrate.batch_size=8,0", "migrate.nope=1,2", "migrate.batch_size=x"])
def test_the_command_exits_2_on_a_bad_vary_with_no_output(tmp_path: Path, traces: Path,
                                                          vary: str) -> None:
    out = tmp_path / "out"
    r = _run("sweep", str(traces), "-o", str(out), "--vary", vary, "-p", "batched")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("error: --vary")
    assert not out.exists()


# --- results ---------------------------------------------------------------------------------------


def test_a_sweep_writes_one_batch_result_per_point_trace_and_policy_under_hive_partitions(
        tmp_path: Path, traces: Path) -> None:
    out = tmp_path / "out"
    s = run_sweep([traces], out, [parse_vary("migrate.batch_size=1,64")],
                  policies=["batched", "serial"], jobs=1)
    assert (s.points, s.traces, s.ok, s.skipped, s.failed) == (2, 2, 8, 0, 0)
    done = _complete(out)
    assert len(done) == 8
    assert all(d.startswith(("migrate_batch_size=1/trace=", "migrate_batch_size=64/trace="))
               for d in done)
    rows = duckdb.sql(
        f"SELECT migrate_batch_size, policy, count(DISTINCT trace) AS traces, "
        f"max(pages) AS biggest FROM read_parquet('{out}/**/batches.parquet', "
        f"hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
    # serial's batch is its call; batched's hold at most batch_size pages
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, "batched", 2), (1, "serial", 2),
                                                  (64, "batched", 2), (64, "serial", 2)]
    assert rows[0][3] == 1 and rows[2][3] <= 64
    body = json.loads((out / "sweep.json").read_text())
    assert body["keys"] == [{"key": "migrate.batch_size", "column": "migrate_batch_size",
                             "values": ["1", "64"]}]
    assert [p["path"] for p in body["points"]] == ["migrate_batch_size=1", "migrate_batch_size=64"]
    assert body["policies"] == ["batched", "serial"]
    manifest = json.loads(next(out.glob("migrate_batch_size=64/trace=*/policy=batched/run.json"))
                          .read_text())
    assert manifest["config"]["policy"]["batched"]["batch_pages"] == 64
    assert pq.read_table(out / "_failures.parquet").num_rows == 0
    assert hidden_entries(out) == []

    again = run_sweep([traces], out, [parse_vary("migrate.batch_size=1,64")],
                      policies=["batched", "serial"], jobs=1)
    assert (again.ok, again.skipped) == (0, 8)


def test_a_sweep_over_other_keys_into_the_same_directory_is_refused(tmp_path: Path,
                                                                    traces: Path) -> None:
    out = tmp_path / "out"
    one = next(traces.glob("*.parquet"))
    run_sweep([one], out, [parse_vary("migrate.batch_size=4")], policies=["batched"], jobs=1)
    with pytest.raises(BadInputError, match="varies"):
        run_sweep([one], out, [parse_vary("migrate.copy_ns=100")], policies=["batched"], jobs=1)


def test_failures_name_their_point_and_the_command_exits_3(tmp_path: Path, traces: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    out = tmp_path / "out"
    one = sorted(traces.glob("*.parquet"))[0]
    r = _run("sweep", str(one), str(bad), "-o", str(out), "--vary", "migrate.batch_size=2,4",
             "-p", "batched", "-j", "1")
    assert r.returncode == 3, r.stderr
    failures = pq.read_table(out / "_failures.parquet").to_pylist()
    assert [(f["point"], f["trace"].split("-")[0], f["policy"]) for f in failures] == [
        ("migrate_batch_size=2", "bad", "batched"), ("migrate_batch_size=4", "bad", "batched")]
    assert len(_complete(out)) == 2


# --- kill -9 ---------------------------------------------------------------------------------------


def test_a_sweep_killed_mid_run_then_rerun_has_every_result_exactly_once(
        tmp_path: Path, traces: Path) -> None:
    psutil = pytest.importorskip("psutil")
    vary = "migrate.batch_size=1,2,4,8,16,32"
    clean = tmp_path / "clean"
    run_sweep([traces], clean, [parse_vary(vary)], policies=["batched"], jobs=1)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracereplay", "sweep", str(traces), "-o", str(out), "--vary", vary,
         "-p", "batched", "-j", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        done = len(_complete(out)) if out.exists() else 0
        if done >= 3:
            break
        time.sleep(0.02)
    workers = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= done < 12, "the sweep must be killed mid-run"
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []
    killed = len(_complete(out))

    rerun = run_sweep([traces], out, [parse_vary(vary)], policies=["batched"], jobs=2)
    assert (rerun.skipped, rerun.ok, rerun.failed) == (killed, 12 - killed, 0)
    assert _complete(out) == _complete(clean)
    for d in _complete(clean):  # the same bytes as a sweep never killed
        for f in (clean / d).glob("*.parquet"):
            assert (out / d / f.name).read_bytes() == f.read_bytes(), f"{d}/{f.name}"
    assert hidden_entries(out) == []


# --- the seed ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_on_the_seed_pages_per_s_and_first_folio_latency_both_rise_with_the_batch(
        tmp_path: Path) -> None:
    seed = Path(__file__).resolve().parent.parent / "sample_traces" / "seed.parquet"
    out = tmp_path / "out"
    s = run_sweep([seed], out, [parse_vary("migrate.batch_size=1,8,64,512")],
                  policies=["batched"], jobs=2)
    assert (s.ok, s.failed) == (4, 0)
    rows = run_query("tradeoff", out).to_pylist()
    assert [r["migrate_batch_size"] for r in rows] == [1, 8, 64, 512]
    pps = [r["pages_per_s"] for r in rows]
    first = [r["first_folio_p99_ns"] for r in rows]
    assert pps == sorted(pps) and len(set(pps)) == 4
    assert first == sorted(first) and len(set(first)) == 4
    assert [r["chosen"] for r in rows] == [False, False, True, False]  # as docs/sweep.md says
