"""``tracereplay generate move-pages``: the batch-copy series' move_pages() benchmark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tracereplay import BadInputError, trace
from tracereplay.generate.move_pages import MovePagesParams, write_move_pages
from tracereplay.generate.pmbench import BASE_VADDR
from tracereplay.replay import run


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from tracereplay.cli import main; main()",
                           "generate", "move-pages", *args], capture_output=True, text=True,
                          check=False)


def test_the_mapping_is_folios_on_node_0_and_one_call_moves_them_to_node_1(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_move_pages(path, MovePagesParams(folio_kib=64, total_mib=1))
    rows = pq.read_table(path).to_pylist()
    maps = [r for r in rows if r["kind"] == "map"]
    touches = [r for r in rows if r["kind"] == "access"]
    calls = [r for r in rows if r["kind"] == "migrate"]
    # 1 MiB of 64 KiB folios: 16 folios of order 4, each mapped and touched, then named once.
    assert [(r["vaddr"], r["order"], r["dst_node"]) for r in maps] == [
        (BASE_VADDR + i * 65536, 4, 0) for i in range(16)]
    assert [(r["vaddr"], r["cpu"], r["write"]) for r in touches] == [
        (BASE_VADDR + i * 65536, 0, True) for i in range(16)]
    assert [(r["vaddr"], r["dst_node"], r["req_id"], r["mode"], r["ts_ns"]) for r in calls] == [
        (BASE_VADDR + i * 65536, 1, 0, "sync", 16 + 1_000_000) for i in range(16)]
    assert trace.load(path).machine.cpus == 64


@pytest.mark.parametrize("folio_kib", [4, 2048])
def test_a_replay_moves_every_page_of_the_mapping(tmp_path: Path, folio_kib: int) -> None:
    path = tmp_path / "t.parquet"
    write_move_pages(path, MovePagesParams(folio_kib=folio_kib, total_mib=4, threads=2,
                                           duration_ms=0.5))
    out = tmp_path / "run"
    results = {r.policy: r.metrics for r in run(path, out, policies=["batched"])}
    assert results["batched"]["pages_migrated"] == 1024
    migrations = pq.read_table(out / "policy=batched" / "migrations.parquet")
    assert migrations.num_rows == 4 * 1024 // folio_kib
    assert set(migrations.column("pages").to_pylist()) == {folio_kib // 4}


def test_same_options_give_identical_bytes_and_the_seed_changes_them(tmp_path: Path) -> None:
    args = ["--folio-kib", "16", "--total-mib", "2", "--threads", "3", "--duration-ms", "1"]
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert _cli("-o", str(tmp_path / f"{name}.parquet"), *args, "--seed", seed).returncode == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert (tmp_path / "a.parquet").read_bytes() != (tmp_path / "c.parquet").read_bytes()


@pytest.mark.parametrize(("args", "option"), [
    (["--folio-kib", "3"], "--folio-kib"),
    (["--folio-kib", "4096"], "--folio-kib"),
    (["--folio-kib", "2048", "--total-mib", "3"], "--total-mib"),
    (["--total-mib", "0"], "--total-mib"),
    (["--threads", "64"], "--threads"),
    (["--threads", "-1"], "--threads"),
    (["--rate", "0"], "--rate"),
    (["--nodes", "1"], "--nodes"),
])
def test_a_bad_value_exits_2_naming_the_option_and_writes_nothing(
        tmp_path: Path, args: list[str], option: str) -> None:
    r = _cli("-o", str(tmp_path / "x.parquet"), *args)
    assert r.returncode == 2
    assert f"{option} " in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_params_check_their_values() -> None:
    with pytest.raises(BadInputError, match="--folio-kib"):
        MovePagesParams(folio_kib=6)
