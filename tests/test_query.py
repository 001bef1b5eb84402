"""The query loader, the documented headers of queries/*.sql, the DuckDB CLI script and the command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from golden.build import build_runs, to_csv

from tracereplay import seed
from tracereplay._resources import resource_dir
from tracereplay.cli import main
from tracereplay.errors import QueryError
from tracereplay.query import (
    LOAD_SQL_NAME,
    _queries,
    connect,
    list_queries,
    load_sql,
    query_info,
    run_query,
)

PUBLIC = [name for name, _ in list_queries()]


@pytest.fixture(scope="module")
def seed_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_runs("seed_small", tmp_path_factory.mktemp("seed_small")) / "run"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_runs("corpus_measured", tmp_path_factory.mktemp("corpus")) / "corpus"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``tracereplay query ARGS`` in a new process: exit code, stdout and stderr as a user sees them."""
    return subprocess.run(
        [sys.executable, "-c", "from tracereplay.cli import main; main()", "query", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """``tracereplay query ARGS`` in this process (fast): (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["tracereplay", "query", *args])
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


# --- the library's headers ------------------------------------------------------------------


def test_the_library_lists_the_queries_the_design_names() -> None:
    assert {"flush_counts", "copy_share", "page_stall", "throughput", "policy_compare"} <= set(
        PUBLIC
    )
    assert all(description for _, description in list_queries())


@pytest.mark.parametrize("name", PUBLIC)
def test_each_header_documents_every_column_with_its_type(name: str, seed_small: Path) -> None:
    info = query_info(name)
    described = connect(seed_small).sql(f"DESCRIBE {name}").fetchall()
    assert [(c.name, c.type) for c in info.columns] == [(r[0], r[1]) for r in described]
    assert all(c.doc for c in info.columns)
    assert [c.name for c in info.columns[:3]] in (["run", "trace", "policy"], ["run", "trace", "metric"])


@pytest.mark.parametrize("name", PUBLIC)
def test_each_file_defines_one_public_view_named_after_it(name: str) -> None:
    info = query_info(name)
    public = [d for d in info.defines if not d.startswith("_")]
    assert public == [name]
    assert all(d.startswith(f"_{name}_") for d in info.defines if d.startswith("_"))


def test_each_file_declares_what_it_reads() -> None:
    # a view that reads an undeclared view may still load when the file order happens to suit
    # it; check the declared reads against every name the SQL mentions
    names = {d: q.name for q in _queries() for d in q.defines}
    for q in _queries():
        body = "\n".join(line for line in q.sql.splitlines() if not line.lstrip().startswith("--"))
        mentioned = {n for n in names if n not in q.defines and re.search(rf"\b{n}\b", body)}
        assert mentioned <= set(q.reads), f"{q.name} reads {mentioned - set(q.reads)} undeclared"


# --- run directories ------------------------------------------------------------------------


def test_a_policy_directory_loads_alone(seed_small: Path) -> None:
    table = run_query("throughput", seed_small / "policy=serial")
    assert table.column("policy").to_pylist() == ["serial"]
    assert "run" not in table.column_names and "trace" not in table.column_names


def test_a_policy_directory_not_named_policy_takes_its_policy_from_run_json(
    seed_small: Path, tmp_path: Path
) -> None:
    shutil.copytree(seed_small / "policy=batched", tmp_path / "mine")
    manifest = json.loads((tmp_path / "mine" / "run.json").read_text())
    assert manifest["policy"] == "batched"
    assert run_query("throughput", tmp_path / "mine").column("policy").to_pylist() == ["batched"]


def test_several_run_directories_get_a_run_column(
    seed_small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(seed_small, tmp_path / "a")
    shutil.copytree(seed_small / "policy=serial", tmp_path / "b" / "policy=serial")
    monkeypatch.chdir(tmp_path)
    table = run_query("flush_counts", ["a", "b/"])
    assert table.column_names[:2] == ["run", "policy"]
    assert list(zip(table["run"].to_pylist(), table["policy"].to_pylist(), strict=True)) == [
        ("a", "batched"),
        ("a", "serial"),
        ("b", "serial"),
    ]


def test_a_corpus_carries_the_trace_partition(corpus: Path) -> None:
    table = run_query("throughput", corpus)
    assert table.column("trace").to_pylist() == ["a", "b"]
    assert table.column("policy").to_pylist() == ["serial", "measured"]


def test_a_missing_table_names_the_run_and_the_table(seed_small: Path, tmp_path: Path) -> None:
    shutil.copytree(seed_small, tmp_path / "run")
    (tmp_path / "run" / "policy=serial" / "stalls.parquet").unlink()
    with pytest.raises(QueryError, match=r"policy=serial has no table 'stalls'"):
        connect(tmp_path / "run")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent", "does not exist"),
        (lambda p: p, "is not a run directory"),
    ],
)
def test_a_bad_run_directory_is_a_query_error(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError, match=message):
        connect(make(tmp_path))


def test_a_run_directory_given_twice_is_refused(seed_small: Path) -> None:
    with pytest.raises(QueryError, match="given twice"):
        connect([seed_small, seed_small])


def test_optional_tables_are_empty_views_when_not_written(seed_small: Path) -> None:
    con = connect(seed_small)
    assert con.sql("SELECT count(*) FROM accesses").fetchall() == [(0,)]


# --- queries: by name, file or text ---------------------------------------------------------


def test_an_unknown_query_lists_the_known_ones(seed_small: Path) -> None:
    with pytest.raises(QueryError, match=r"unknown query 'flush_count'.*flush_counts"):
        run_query("flush_count", seed_small)


def test_sql_text_may_read_the_library_views(seed_small: Path) -> None:
    table = run_query("SELECT policy, ipis_sent FROM flush_counts ORDER BY policy", seed_small)
    assert table.to_pylist() == [
        {"policy": "batched", "ipis_sent": 2},
        {"policy": "serial", "ipis_sent": 8},
    ]


def test_a_sql_file_answers_with_the_view_named_after_it(seed_small: Path, tmp_path: Path) -> None:
    path = tmp_path / "mine.sql"
    path.write_text("CREATE VIEW mine AS SELECT policy, count(*) AS n FROM stalls GROUP BY ALL;\n")
    assert sorted(run_query(path, seed_small).to_pylist(), key=str) == [
        {"policy": "batched", "n": 3},
        {"policy": "serial", "n": 2},
    ]


def test_a_sql_file_answers_with_its_last_select(seed_small: Path, tmp_path: Path) -> None:
    path = tmp_path / "two.sql"
    path.write_text("CREATE VIEW x AS SELECT 1 AS a;\nSELECT a + 1 AS b FROM x;\n")
    assert run_query(str(path), seed_small).to_pylist() == [{"b": 2}]


def test_sql_errors_become_query_errors(seed_small: Path, tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="no_such_column"):
        run_query("SELECT no_such_column FROM flushes", seed_small)
    with pytest.raises(QueryError, match="cannot read query file"):
        run_query(tmp_path / "absent.sql", seed_small)


# --- the DuckDB CLI script ------------------------------------------------------------------


def test_the_checked_in_load_script_is_current(request: pytest.FixtureRequest) -> None:
    path = resource_dir("queries") / LOAD_SQL_NAME
    if request.config.getoption("--regen-golden"):
        path.write_text(load_sql(), encoding="utf-8")
    assert path.read_text(encoding="utf-8") == load_sql(), (
        f"{path} is stale: run pytest --regen-golden"
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_the_load_script_answers_as_the_loader_does(
    name: str, seed_small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what `duckdb -cmd "SET VARIABLE run = 'run/policy=*'" -cmd ".read queries/_load.sql"` runs
    monkeypatch.chdir(seed_small.parent)
    con = duckdb.connect()
    con.execute("SET VARIABLE run = 'run/policy=*'")
    con.execute((resource_dir("queries") / LOAD_SQL_NAME).read_text(encoding="utf-8"))
    by_script = con.sql(f"FROM {name}").to_arrow_table().drop_columns(["run", "trace"])
    # tracereplay gives a sweep point's params as one column per key: none outside sweeps
    if "params" in by_script.column_names:
        by_script = by_script.drop_columns(["params"])
    assert to_csv(by_script) == to_csv(run_query(name, "run"))


def test_the_load_script_reads_a_corpus(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(corpus)
    con = duckdb.connect()
    con.execute("SET VARIABLE run = 'trace=*/policy=*'")
    con.execute(load_sql())
    assert con.sql("SELECT trace, policy FROM throughput").fetchall() == [
        ("a", "serial"),
        ("b", "measured"),
    ]


@pytest.mark.skipif(shutil.which("duckdb") is None, reason="the DuckDB CLI is not installed")
def test_the_readme_one_liner_runs_in_the_duckdb_cli(seed_small: Path) -> None:
    script = resource_dir("queries") / LOAD_SQL_NAME
    r = subprocess.run(
        ["duckdb", "-csv", "-cmd", "SET VARIABLE run = 'run/policy=*'", "-cmd",
         f".read {script}", "-c", "SELECT policy, ipis_sent FROM flush_counts"],
        capture_output=True, text=True, cwd=seed_small.parent, check=True,
    )  # fmt: skip
    assert r.stdout.splitlines() == ["policy,ipis_sent", "batched,2", "serial,8"]


# --- the command ----------------------------------------------------------------------------


def test_query_list_names_every_query(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("--list")
    assert code == 0
    for name in PUBLIC:
        assert name in out


def test_query_prints_csv_to_stdout(cli, seed_small: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("throughput", str(seed_small), "--format", "csv")
    assert code == 0, err
    assert out.splitlines()[0].startswith('"policy","calls"')


def test_query_writes_json_and_parquet_files(cli, seed_small: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("copy_share", str(seed_small), "-f", "json", "-o", str(tmp_path / "a.json"))[0] == 0
    rows = json.loads((tmp_path / "a.json").read_text())
    assert [r["flush_pct"] for r in rows] == pytest.approx([100 * 870 / 1630, 80.0])
    assert cli("copy_share", str(seed_small), "-f", "parquet", "-o", str(tmp_path / "a.parquet"))[0] == 0
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 2


def test_query_runs_sql_text_and_prints_a_table(cli, seed_small: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("--sql", "SELECT count(*) AS n FROM migrations", str(seed_small))
    assert code == 0, err
    assert "8" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["flush_counts", "{run}/absent"], "does not exist"),
        (["--sql", "SELECT x FROM flushes", "{run}"], "Binder Error"),
        (["flush_counts"], "name at least one run directory"),
        (["copy_share", "{run}", "-f", "parquet"], "--format parquet needs -o FILE"),
    ],
)
def test_query_errors_exit_2_with_one_message(cli, seed_small: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(*(a.format(run=seed_small) for a in args))
    assert code == 2
    assert message in " ".join(err.split())


def test_an_unknown_query_exits_2_without_a_traceback(seed_small: Path) -> None:
    r = _cli("nope", str(seed_small))
    assert r.returncode == 2
    assert "unknown query 'nope'" in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "csv", "-o", "{tmp}/absent/x.csv"], "absent does not exist"),
        (["-f", "parquet", "-o", "{tmp}/absent/x.parquet"], "absent does not exist"),
        (["-f", "json", "-o", "{tmp}"], "is a directory"),
        (["-f", "csv", "-o", "{tmp}/file.txt/x.csv"], "file.txt is not a directory"),
    ],
)
def test_a_bad_output_path_exits_2_before_the_query_runs(  # type: ignore[no-untyped-def]
    cli, seed_small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list, message: str
) -> None:
    (tmp_path / "file.txt").write_text("")
    ran = []
    monkeypatch.setattr("tracereplay.cli.query.run_query", lambda *a: ran.append(a))
    code, _, err = cli("flush_counts", str(seed_small), *(a.format(tmp=tmp_path) for a in args))
    assert code == 2, err
    assert message in " ".join(err.split()) and "internal error" not in err
    assert not ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_a_failed_write_exits_2_and_leaves_no_file(  # type: ignore[no-untyped-def]
    cli, seed_small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(table, where):  # type: ignore[no-untyped-def]
        Path(where).write_text("partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tracereplay.cli.query.pacsv.write_csv", full)
    code, _, err = cli("flush_counts", str(seed_small), "-f", "csv", "-o", str(tmp_path / "x.csv"))
    assert code == 2, err
    assert "No space left on device" in err and "internal error" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_output_format_follows_the_extension_of_o(cli, seed_small: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("a.csv", "a.json", "a.parquet", "B.CSV"):
        code, out, err = cli("copy_share", str(seed_small), "-o", str(tmp_path / name))
        assert code == 0, err
        assert out == ""
    assert (tmp_path / "a.csv").read_text().startswith('"policy",')
    assert [r["policy"] for r in json.loads((tmp_path / "a.json").read_text())] == ["batched", "serial"]
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 2
    assert (tmp_path / "B.CSV").read_text() == (tmp_path / "a.csv").read_text()
    # --format wins over the extension
    assert cli("copy_share", str(seed_small), "-f", "json", "-o", str(tmp_path / "j.csv"))[0] == 0
    assert json.loads((tmp_path / "j.csv").read_text())[0]["policy"] == "batched"


@pytest.mark.parametrize("name", ["a.txt", "a"])
def test_an_unknown_output_extension_exits_2(cli, seed_small: Path, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("copy_share", str(seed_small), "-o", str(tmp_path / name))
    assert code == 2
    assert "cannot tell the format" in err and "--format" in err
    assert list(tmp_path.iterdir()) == []


def test_the_readme_names_the_leading_columns_of_every_view(seed_small: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Queries with the DuckDB CLI") :]
    text = " ".join(section[: section.index("\n## ")].split())
    assert "starts with the columns `run` (the value of the variable), `trace`" in text
    for name in PUBLIC:
        lead = [c.name for c in query_info(name).columns]
        if lead[:3] != ["run", "trace", "policy"]:  # the exceptions are named with their columns
            shown = ", ".join(f"`{c}`" for c in lead[: lead.index("policy") + 1])
            assert f"`{name}`, which starts with {shown}" in text, name
    # and what a named query leaves out of its answer
    assert "leaves out `run` when one run directory is given and `trace` when none" in text
    columns = run_query("policy_compare", seed_small).column_names
    assert columns[:3] == ["metric", "unit", "policy"]


# --- policy_compare's baseline ----------------------------------------------------------------


def _as_runs_of_the_seed_trace(run: Path) -> None:
    """Mark the policy directories of ``run`` as replays of the seed experiment's trace (the
    figures are given on those only)."""
    for manifest in run.glob("policy=*/run.json"):
        body = json.loads(manifest.read_text())
        body.setdefault("trace", {})["sha256"] = seed.TRACE_SHA256
        manifest.write_text(json.dumps(body))


def test_without_the_seeds_baseline_policies_are_compared_with_the_first_by_name(
    seed_small: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(seed_small / "policy=batched", run / "policy=batched")
    shutil.copytree(seed_small / "policy=serial", run / "policy=zeta")  # serial's rows, renamed
    _as_runs_of_the_seed_trace(run)
    rows = run_query("policy_compare", run).to_pylist()
    ipis = [r for r in rows if r["metric"] == "ipis_sent"]
    assert [(r["policy"], r["baseline_policy"], r["value"], r["baseline"], r["change_pct"])
            for r in ipis] == [("batched", "batched", 2, 2, None), ("zeta", "batched", 8, 2, 300)]
    # the seed's change in IPIs is from serial: not shown beside a change from another policy
    assert ipis[0]["seed_change_pct"] is None
    copy = next(r for r in rows if r["metric"] == "copy_pct" and r["policy"] == "batched")
    assert copy["seed_value"] == _seed_figure("copy_pct", "batched").value_pct


def test_the_seeds_baseline_comes_first_whatever_the_names(seed_small: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    for policy in ("serial", "batched"):
        shutil.copytree(seed_small / f"policy={policy}", run / f"policy={policy}")
    shutil.copytree(seed_small / "policy=batched", run / "policy=aaa")
    _as_runs_of_the_seed_trace(run)
    ipis = [r for r in run_query("policy_compare", run).to_pylist() if r["metric"] == "ipis_sent"]
    published = _seed_figure("ipis_sent", "batched").value_pct
    assert [(r["policy"], r["baseline_policy"], r["change_pct"], r["seed_change_pct"])
            for r in ipis] == [("serial", "serial", None, None), ("aaa", "serial", -75, None),
                               ("batched", "serial", -75, published)]


def _seed_figure(metric: str, policy: str) -> seed.SeedFigure:
    return next(f for f in seed.FIGURES if (f.metric, f.policy) == (metric, policy))
