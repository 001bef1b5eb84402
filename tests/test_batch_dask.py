"""tracereplay batch on Dask distributed (a LocalCluster) and into S3 (moto's server on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from batch_helpers import BROKEN, make_corpus, result_files

from tracereplay import batch, query
from tracereplay.batch import executors, read_failures, run_batch
from tracereplay.errors import BadInputError

distributed = pytest.importorskip("distributed")

POLICIES = ("serial", "batched")


@pytest.fixture(scope="module")
def cluster():  # type: ignore[no-untyped-def]
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as c:
        yield c


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    make_corpus(d, 50)
    return d


def test_a_dask_batch_writes_every_result_and_lists_the_broken_traces(
        cluster, corpus: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = tmp_path / "results"
    summary = run_batch(corpus, results, policies=POLICIES, executor="dask",
                        scheduler=cluster.scheduler_address)
    assert (summary.ok, summary.failed) == (100, 6)
    failed = {(Path(r["path"]).stem, r["policy"]) for r in read_failures(results).to_pylist()}
    assert failed == {(b, p) for b in BROKEN for p in POLICIES}
    rows = query.run_query("flush_counts", [results]).to_pylist()
    assert len(rows) == 100 and len({r["trace"] for r in rows}) == 50

    again = run_batch(corpus, results, policies=POLICIES, executor="dask",
                      scheduler=cluster.scheduler_address)
    assert (again.ok, again.skipped, again.failed) == (0, 100, 6)


def test_dask_and_local_executors_write_the_same_bytes(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 4, broken=False)
    run_batch(corpus, tmp_path / "dask", executor="dask", scheduler=cluster.scheduler_address)
    run_batch(corpus, tmp_path / "local", jobs=2)
    assert result_files(tmp_path / "dask") == result_files(tmp_path / "local")


def test_the_command_runs_its_own_local_cluster(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 2, broken=False)
    r = subprocess.run([sys.executable, "-m", "tracereplay", "batch", str(corpus), "-o",
                        str(tmp_path / "results"), "--executor", "dask", "-j", "2", "-p", "batched"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "results").glob("trace=*/policy=batched/run.json"))) == 2


def test_an_unreachable_scheduler_is_bad_input(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setattr(executors, "DASK_CONNECT_TIMEOUT", "1s")
    make_corpus(tmp_path / "corpus", 1, broken=False)
    with pytest.raises(BadInputError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        run_batch(tmp_path / "corpus", tmp_path / "results", executor="dask",
                  scheduler="tcp://127.0.0.1:9")


# --- S3 ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():  # type: ignore[no-untyped-def]
    """A bucket on moto's S3 server on loopback, and fsspec storage options to reach it."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds).create_bucket(
        Bucket="tracereplay-results")
    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing",
               "client_kwargs": {"region_name": "us-east-1"}}
    yield options
    server.stop()


def test_results_go_to_s3_whole_and_a_rerun_completes_partial_ones(
        cluster, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import fsspec
    import pyarrow.dataset as ds

    corpus = tmp_path / "corpus"
    make_corpus(corpus, 6)
    url = "s3://tracereplay-results/run-1"
    summary = run_batch(corpus, url, policies=POLICIES, executor="dask",
                        scheduler=cluster.scheduler_address, storage_options=s3)
    assert (summary.ok, summary.failed) == (12, 6)
    fs = fsspec.filesystem("s3", **s3)
    markers = fs.glob("tracereplay-results/run-1/trace=*/policy=*/run.json")
    assert len(markers) == 12
    assert read_failures(url, storage_options=s3).num_rows == 6

    files = fs.glob("tracereplay-results/run-1/trace=*/policy=*/flushes.parquet")
    table = ds.dataset(files, filesystem=fs, format="parquet", partitioning="hive",
                       partition_base_dir="tracereplay-results/run-1").to_table()
    pairs = set(zip(table.column("trace").to_pylist(), table.column("policy").to_pylist(),
                    strict=True))
    assert len(pairs) == 12

    # A result cut short by a kill: tables without run.json, plus a leftover. The local
    # executor (in this process) completes it and leaves the others alone.
    victim = markers[0].rsplit("/", 1)[0]
    fs.rm(f"{victim}/run.json")
    fs.pipe(f"{victim}/leftover.parquet", b"junk")
    again = run_batch(corpus, url, policies=POLICIES, jobs=1, storage_options=s3)
    assert (again.ok, again.skipped, again.failed) == (1, 11, 6)
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(victim)) == sorted(
        ["batches.parquet", "cpu_stats.parquet", "flushes.parquet", "migrations.parquet",
         "run.json", "stalls.parquet"])
    assert os.environ.get("AWS_ENDPOINT_URL") is None  # nothing leaked into the environment


def test_a_corpus_on_s3_gets_the_ids_it_has_on_disk(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import fsspec

    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 2, broken=False)
    fs = fsspec.filesystem("s3", **s3)
    for p in paths:
        fs.put_file(str(p), f"tracereplay-results/corpus/{p.name}")
    fs.pipe("tracereplay-results/corpus/notes.txt", b"not a trace")
    url = "s3://tracereplay-results/corpus/"
    on_s3 = batch.discover(url, storage_options=s3)
    assert [t.id for t in on_s3.traces] == [t.id for t in batch.discover(corpus).traces]
    summary = run_batch(url, tmp_path / "results", policies=["batched"], jobs=2,
                        storage_options=s3)
    assert (summary.ok, summary.failed) == (2, 0)


def test_a_sweep_runs_on_dask_and_writes_what_a_local_sweep_writes(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tracereplay.sweep import parse_vary, run_sweep

    corpus = tmp_path / "corpus"
    make_corpus(corpus, 2, broken=False)
    axes = [parse_vary("migrate.batch_size=2,16")]
    on_dask = run_sweep([corpus], tmp_path / "dask", axes, policies=["batched"], executor="dask",
                        scheduler=cluster.scheduler_address)
    assert (on_dask.ok, on_dask.failed) == (4, 0)
    run_sweep([corpus], tmp_path / "local", axes, policies=["batched"], jobs=2)
    for point in ("migrate_batch_size=2", "migrate_batch_size=16"):
        assert result_files(tmp_path / "dask" / point) == result_files(tmp_path / "local" / point)
