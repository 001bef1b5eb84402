"""tracereplay batch on one machine: discovery, ids, results, resume, failures, kill -9, CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from batch_helpers import BROKEN, TABLES, hidden_entries, make_corpus, result_files
from typer.testing import CliRunner

from tracereplay import query
from tracereplay.batch import Results, discover, plan, read_failures, run_batch, trace_id
from tracereplay.cli import app
from tracereplay.config import load_profile
from tracereplay.errors import BadInputError

POLICIES = ("serial", "batched")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    make_corpus(d, 50)
    return d


@pytest.fixture(scope="module")
def clean(corpus: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One uninterrupted -j 2 batch over the corpus: (RESULTS, summary)."""
    results = tmp_path_factory.mktemp("clean") / "results"
    summary = run_batch(corpus, results, policies=POLICIES, jobs=2)
    return results, summary


# --- discovery and ids -------------------------------------------------------------------------


def test_a_directory_corpus_holds_every_parquet_file_but_hidden_ones_and_partitions(
        tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for rel in ("x.parquet", "a/y.parquet", ".hidden/z.parquet", "_tmp/z.parquet",
                "out/trace=t/policy=serial/flushes.parquet", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = discover(tmp_path)
    assert [Path(t.path).relative_to(tmp_path).as_posix() for t in found.traces] == [
        "a/y.parquet", "x.parquet"]


def test_trace_ids_are_stable_when_the_corpus_moves_and_unique_per_relative_path(
        tmp_path: Path) -> None:
    for root in ("one", "two"):
        for rel in ("run.parquet", "sub/run.parquet"):
            (tmp_path / root / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / root / rel).write_bytes(b"")
    one = [t.id for t in discover(tmp_path / "one").traces]
    two = [t.id for t in discover(tmp_path / "two").traces]
    assert one == two
    assert len(set(one)) == 2
    assert all(i.startswith("run-") and len(i) == len("run-") + 8 for i in one)
    assert trace_id(str(tmp_path / "one/we ird=name.parquet"), str(tmp_path / "one")).startswith(
        "we_ird_name-")


def test_a_glob_and_a_list_file_name_the_same_traces_with_the_same_ids(tmp_path: Path) -> None:
    for name in ("a.parquet", "b.parquet", "c.parquet"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "list.txt").write_text("# my corpus\na.parquet\n\nb.parquet\nc.parquet\na.parquet\n")
    by_glob = discover(str(tmp_path / "*.parquet"))
    by_list = discover(tmp_path / "list.txt")
    assert [t.id for t in by_glob.traces] == [t.id for t in by_list.traces]
    assert len(by_list.traces) == 3


def test_an_empty_or_missing_corpus_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="holds no"):
        discover(tmp_path)
    with pytest.raises(BadInputError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(BadInputError, match="matches no files"):
        discover(str(tmp_path / "*.parquet"))


# --- a batch -----------------------------------------------------------------------------------


def test_a_batch_writes_one_result_per_trace_and_policy_and_lists_the_broken_traces(
        corpus: Path, clean) -> None:  # type: ignore[no-untyped-def]
    results, summary = clean
    assert (summary.ok, summary.failed, summary.skipped) == (100, 6, 0)
    dirs = sorted(p.relative_to(results).as_posix() for p in results.glob("trace=*/policy=*"))
    assert len(dirs) == 100
    for d in dirs:
        assert sorted(f.name for f in (results / d).iterdir()) == sorted(
            [f"{t}.parquet" for t in TABLES] + ["run.json"])
    failures = read_failures(results)
    assert failures.schema.names == ["trace", "policy", "path", "error_class", "message"]
    failed = {(Path(r["path"]).stem, r["policy"], r["error_class"]) for r in failures.to_pylist()}
    assert failed == {(b, p, "TraceFormatError") for b in BROKEN for p in POLICIES}
    assert hidden_entries(results) == []
    assert not (results.parent / ".results.scratch").exists()


def test_query_reads_the_whole_batch_with_trace_and_policy_columns(clean) -> None:  # type: ignore[no-untyped-def]
    results, _ = clean
    rows = query.run_query("flush_counts", [results]).to_pylist()
    assert len(rows) == 100
    assert len({r["trace"] for r in rows}) == 50
    assert {r["policy"] for r in rows} == set(POLICIES)
    serial = {r["trace"]: r["ipis_sent"] for r in rows if r["policy"] == "serial"}
    batched = {r["trace"]: r["ipis_sent"] for r in rows if r["policy"] == "batched"}
    assert all(batched[t] <= serial[t] for t in serial)


def test_hive_globs_see_results_only_never_scratch_files(clean) -> None:  # type: ignore[no-untyped-def]
    import duckdb
    import polars as pl

    results, _ = clean
    glob = (results / "trace=*" / "policy=*" / "flushes.parquet").as_posix()
    n = duckdb.sql(f"SELECT count(DISTINCT (trace, policy)) FROM read_parquet('{glob}', "
                   "hive_partitioning = true)").fetchall()
    assert n == [(100,)]
    lf = pl.scan_parquet(glob, hive_partitioning=True)
    assert lf.select(pl.struct("trace", "policy").n_unique()).collect().item() == 100


def test_a_rerun_skips_complete_results_and_keeps_the_failures(corpus: Path, tmp_path: Path,
                                                               clean) -> None:  # type: ignore[no-untyped-def]
    results, _ = clean
    before = result_files(results)
    again = run_batch(corpus, results, policies=POLICIES, jobs=2)
    assert (again.ok, again.skipped, again.failed) == (0, 100, 6)
    assert result_files(results) == before
    assert read_failures(results).num_rows == 6


def test_a_trace_that_now_succeeds_leaves_the_failure_table(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 2)
    results = tmp_path / "results"
    first = run_batch(corpus, results, policies=["serial"], jobs=1)
    assert first.failed == 3
    (corpus / "broken-truncated.parquet").write_bytes(paths[1].read_bytes())
    second = run_batch(corpus, results, policies=["serial"], jobs=1)
    assert (second.ok, second.skipped, second.failed) == (1, 2, 2)
    names = {Path(r["path"]).stem for r in read_failures(results).to_pylist()}
    assert names == {"broken-not-parquet", "broken-time-runs-backwards"}


def test_failures_of_policies_not_run_again_are_kept(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 1)
    results = tmp_path / "results"
    run_batch(corpus, results, policies=POLICIES, jobs=1)
    run_batch(corpus, results, policies=["serial"], jobs=1)
    assert read_failures(results).num_rows == 6


def test_force_redoes_complete_results_with_the_same_bytes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 3, broken=False)
    results = tmp_path / "results"
    run_batch(corpus, results, policies=POLICIES, jobs=2)
    before = result_files(results)
    mtimes = {p: p.stat().st_mtime_ns for p in results.glob("trace=*/policy=*/run.json")}
    again = run_batch(corpus, results, policies=POLICIES, jobs=2, force=True)
    assert (again.ok, again.skipped) == (6, 0)
    assert result_files(results) == before
    assert all(p.stat().st_mtime_ns != t for p, t in mtimes.items())
    assert hidden_entries(results) == []


def test_results_of_another_configuration_are_refused_unless_forced(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 2, broken=False)
    results = tmp_path / "results"
    run_batch(corpus, results, policies=["batched"], jobs=1)
    smaller = load_profile(overrides=["batch_size=64"])
    with pytest.raises(BadInputError, match=r"2 result\(s\) were made with another configuration "
                       r"\(e\.g\. .*: policy\.batched\.batch_pages is 512 there, 64 now\)"):
        run_batch(corpus, results, policies=["batched"], profile=smaller, jobs=1)
    # --force cannot help when the results of another policy would stay behind.
    with pytest.raises(BadInputError, match="does not run, so --force would not replace them"):
        run_batch(corpus, results, policies=["serial"], profile=smaller, jobs=1, force=True)
    forced = run_batch(corpus, results, policies=["batched"], profile=smaller, jobs=1, force=True)
    assert forced.ok == 2
    assert run_batch(corpus, results, policies=POLICIES, profile=smaller, jobs=1).ok == 2


def test_plan_puts_the_largest_traces_first(corpus: Path, tmp_path: Path) -> None:
    items, skipped = plan(discover(corpus), Results(tmp_path), POLICIES)
    sizes = [i.trace.size for i in items]
    assert skipped == 0 and sizes == sorted(sizes, reverse=True)


def test_a_second_batch_on_the_same_results_is_refused(tmp_path: Path) -> None:
    import fcntl

    results = tmp_path / "results"
    results.mkdir()
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 1, broken=False)
    with open(results / ".batch.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(BadInputError, match="another tracereplay batch"):
            run_batch(corpus, results, jobs=1)


# --- kill -9 -----------------------------------------------------------------------------------


def test_a_batch_killed_mid_run_then_rerun_has_every_result_exactly_once(
        corpus: Path, tmp_path: Path, clean) -> None:  # type: ignore[no-untyped-def]
    psutil = pytest.importorskip("psutil")
    clean_results, _ = clean
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracereplay", "batch", str(corpus), "-o", str(results), "-j", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        done = len(list(results.glob("trace=*/policy=*/run.json")))
        if done >= 10:
            break
        time.sleep(0.02)
    workers = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 10 <= done < 100, "the batch must be killed mid-run"
    # The workers die with the batch, so none writes after it.
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []
    killed = len(list(results.glob("trace=*/policy=*/run.json")))
    assert killed < 100

    rerun = run_batch(corpus, results, policies=POLICIES, jobs=2)
    assert rerun.skipped == killed
    assert rerun.ok == 100 - killed
    assert result_files(results) == result_files(clean_results)
    assert hidden_entries(results) == []
    assert read_failures(results).num_rows == 6


# --- command line ------------------------------------------------------------------------------


def test_the_command_streams_json_lines_and_exits_3_when_some_traces_failed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 2)
    results = tmp_path / "results"
    r = CliRunner().invoke(app, ["batch", str(corpus), "-o", str(results), "-j", "2",
                                 "-p", "batched", "--json"])
    assert r.exit_code == 3, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert sorted(x["status"] for x in lines) == ["failed"] * 3 + ["ok"] * 2
    ok = [x for x in lines if x["status"] == "ok"]
    assert all(x["policy"] == "batched" and x["metrics"]["pages_migrated"] > 0 for x in ok)
    assert all(Path(x["output"], "run.json").is_file() for x in ok)
    bad = [x for x in lines if x["status"] == "failed"]
    assert {x["error_class"] for x in bad} == {"TraceFormatError"}


def test_the_command_exits_0_when_no_trace_failed_and_reports_skips(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 2, broken=False)
    args = ["batch", str(corpus), "-o", str(tmp_path / "results"), "-j", "1"]
    assert CliRunner().invoke(app, args).exit_code == 0
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0
    assert "skipping 4 complete results" in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["batch", "{tmp}/nope", "-o", "{tmp}/r"], "does not exist"),
    (["batch", "{tmp}/corpus", "-o", "{tmp}/r", "-p", "sideways"], "unknown policy"),
    (["batch", "{tmp}/corpus", "-o", "{tmp}/r", "--set", "nonsense=1"], "nonsense"),
])
def test_bad_usage_exits_2_with_one_line_and_no_traceback(tmp_path: Path, args: list[str],
                                                          message: str) -> None:
    make_corpus(tmp_path / "corpus", 1, broken=False)
    argv = [a.format(tmp=tmp_path) for a in args]
    r = subprocess.run([sys.executable, "-m", "tracereplay", *argv], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert not list((tmp_path / "r").glob("trace=*"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"executor": "cloud"}, "executor must be one of local, dask: 'cloud'"),
    ({"scheduler": "tcp://x:1"}, "--scheduler needs --executor dask"),
    ({"jobs": 0}, "jobs must be at least 1: 0"),
    ({"policies": []}, "no policy given"),
])
def test_bad_options_are_bad_input_before_any_work(tmp_path: Path, kwargs: dict[str, object],
                                                   message: str) -> None:
    make_corpus(tmp_path / "corpus", 1, broken=False)
    with pytest.raises(BadInputError, match=re.escape(message)):
        run_batch(tmp_path / "corpus", tmp_path / "r", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "r").exists()


def test_generate_corpus_is_varied_and_reproducible(tmp_path: Path) -> None:
    for d in ("a", "b"):
        r = CliRunner().invoke(app, ["generate", "corpus", "-o", str(tmp_path / d),
                                     "--count", "8", "--seed", "3", "--accesses", "500"])
        assert r.exit_code == 0, r.output
    a = sorted((tmp_path / "a").glob("*.parquet"))
    assert len(a) == 8
    assert all(p.read_bytes() == (tmp_path / "b" / p.name).read_bytes() for p in a)
    rows = pq.read_table(a[0]).num_rows
    assert rows > 0
    params = (tmp_path / "a" / "corpus.csv").read_text().splitlines()
    assert len(params) == 9
    patterns = {p.name.split("-")[2] for p in a}
    assert patterns == {"linear", "uniform", "normal", "pareto"}
