"""Tables fit a 100-column terminal, keep the keys --set needs whole, show NULL where a value is
unknown and say why, and say why an answer is empty or a replay migrated nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from golden.build import build_runs

from tracereplay.cli._tables import cells
from tracereplay.config import load_profile
from tracereplay.generate import PmbenchParams, write_pmbench

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "tracereplay", *map(str, args)], env=env,
                          capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A modelled trace (a) and a measured one (b), as a corpus."""
    return build_runs("corpus_measured", tmp_path_factory.mktemp("corpus")) / "corpus"


@pytest.fixture(scope="module")
def seed_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_runs("seed_small", tmp_path_factory.mktemp("seed_small")) / "run"


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


@pytest.mark.parametrize("query", ["flush_counts", "policy_compare", "page_stall_summary"])
def test_query_tables_fit_a_100_column_terminal(corpus: Path, query: str) -> None:
    r = _cli("query", query, corpus)
    assert r.returncode == 0, r.stderr
    assert _widest(r.stdout) <= 100
    # all of it is shown: sideways (a column per row) when that fits, else in parts
    if "part 1 of" in r.stdout:
        assert "--format csv or --format json gives each row whole" in r.stdout
    else:
        assert "┃ a serial ┃ b measured ┃" in r.stdout.replace("  ", " ").replace("  ", " ")


def test_config_show_fits_and_keeps_every_key_whole() -> None:
    r = _cli("config", "show")
    assert r.returncode == 0, r.stderr
    assert _widest(r.stdout) <= 100
    shown = {line.split("│")[1].strip() for line in r.stdout.splitlines() if line.startswith("│")}
    assert {key for key, *_ in load_profile().rows()} <= shown


def test_a_few_rows_that_the_keys_do_not_tell_apart_are_not_turned_sideways(seed_small: Path) -> None:
    r = _cli("query", seed_small, "--sql", "SELECT * FROM flushes LIMIT 2")
    assert r.returncode == 0, r.stderr
    headers = [line for line in r.stdout.splitlines() if line.startswith("┃")]
    assert headers and all("NULL" not in h for h in headers)
    assert "flush_id" in headers[0]  # the columns are the table's, a row per flush


def test_unknown_is_null_with_its_reason_in_a_note(corpus: Path) -> None:
    r = _cli("query", "flush_counts", corpus, "--format", "csv")
    rows = [line.split(",") for line in r.stdout.splitlines()]
    head = rows[0]
    by = {row[head.index('"trace"')].strip('"'): dict(zip(head, row, strict=True)) for row in rows[1:]}
    assert by["b"]['"ipis_received"'] == "" and by["b"]['"irq_ns"'] == ""  # measured: unknown
    assert by["a"]['"ipis_received"'] == "1" and by["a"]['"irq_ns"'] == "1000"
    stalls = _cli("query", "page_stall_summary", corpus, "--format", "csv").stdout.splitlines()
    assert stalls[1].endswith('"serial",1,750,750,750,750,0,0,0,,,,')
    assert stalls[2].endswith('"measured",2,2000,3400,3400,3400,,,,,,,')
    table = _cli("query", "flush_counts", corpus).stdout
    assert "NULL is no value, not zero:" in table
    assert "ipis_received: NULL when unknown (measured)" in table


def test_an_empty_answer_says_what_the_runs_hold(tmp_path: Path) -> None:
    trace = tmp_path / "t.parquet"
    write_pmbench(trace, PmbenchParams(threads=2, cpus=4, map_mib=1, set_mib=1,
                                       migrate_every_ms=0, duration_ms=1))
    r = _cli("replay", trace, "-o", tmp_path / "r")
    assert r.returncode == 0, r.stderr
    assert ("No page was migrated: the trace has no migrate rows, so the migration metrics are "
            "0 or – (no value).") in " ".join(r.stderr.split())
    r = _cli("query", "page_stall", tmp_path / "r")
    assert r.returncode == 0, r.stderr
    assert "page_stall: no rows. The runs hold migrations 0, flushes 0, batches 0, stalls 0 rows" \
        in " ".join(r.stdout.split())


def test_a_call_that_finds_nothing_to_move_is_said(tmp_path: Path) -> None:
    # 4 nodes, pages on nodes 0 and 1 moved 2 -> 3: the calls find nothing.
    trace = tmp_path / "t.parquet"
    write_pmbench(trace, PmbenchParams(threads=2, cpus=8, nodes=4, cpus_list=(0, 2), map_mib=1,
                                       set_mib=1, migrate_every_ms=1, duration_ms=3.5,
                                       src_node=2, dst_node=3))
    kinds = pq.read_table(trace, columns=["kind"])["kind"].cast(pa.string()).to_pylist()
    assert kinds.count("migrate") == 3  # at 1, 2 and 3 ms
    r = _cli("replay", trace, "-o", tmp_path / "r", "-p", "serial")
    assert r.returncode == 0, r.stderr
    assert "3 migrate calls found nothing to move" in " ".join(r.stderr.split())
    assert "No page was migrated" not in r.stderr


def test_a_column_of_numbers_has_one_rule_for_decimals() -> None:
    table = pa.table({"value": [0.671, 4.0, 40.9, None], "rate": [0.0123, 0.05, 0.001, 0.0]})
    assert [r[0] for r in cells(table)] == ["0.67", "4", "40.90", "NULL"]
    assert [r[1] for r in cells(table)] == ["0.0123", "0.05", "0.001", "0"]
