"""The pmbench generator: deterministic, shaped as asked, with migratepages back and forth."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, SAMPLES

from tracereplay import BadInputError, trace
from tracereplay.generate.pmbench import (
    PmbenchParams,
    generate_pmbench,
    parse_cpu_list,
    write_pmbench,
)

SMALL = {"set_mib": 4, "map_mib": 8, "accesses": 40_000}


def accesses(table: pa.Table) -> dict[str, np.ndarray]:
    """The workload's access rows (prefault off) as numpy columns."""
    rows = table.filter(pa.compute.equal(table.column("kind").cast(pa.string()), "access"))
    return {n: rows.column(n).to_numpy() for n in ("ts_ns", "cpu", "vaddr", "write")}


def pages_of(vaddr: np.ndarray, page_size: int = 4096) -> np.ndarray:
    return (vaddr - vaddr.min()) // page_size


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    p = PmbenchParams(**SMALL)
    write_pmbench(tmp_path / "a.parquet", p)
    write_pmbench(tmp_path / "b.parquet", p)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_another_seed_gives_another_trace(tmp_path: Path) -> None:
    write_pmbench(tmp_path / "a.parquet", PmbenchParams(**SMALL, seed=0))
    write_pmbench(tmp_path / "b.parquet", PmbenchParams(**SMALL, seed=1))
    assert (tmp_path / "a.parquet").read_bytes() != (tmp_path / "b.parquet").read_bytes()


def test_file_metadata_holds_nothing_time_dependent(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    write_pmbench(path, PmbenchParams(**SMALL))
    meta = pq.ParquetFile(path).metadata
    assert set(meta.metadata) == {b"ARROW:schema", b"tracereplay.schema", b"tracereplay.machine"}


def test_pareto_puts_most_accesses_on_a_tenth_of_the_pages() -> None:
    a = accesses(generate_pmbench(**SMALL, pattern="pareto", prefault=False))
    counts = np.sort(np.bincount(pages_of(a["vaddr"]).astype(np.int64)))[::-1]
    top = counts[: counts.size // 10].sum() / counts.sum()
    assert top > 0.5


def test_uniform_spreads_accesses_evenly() -> None:
    a = accesses(generate_pmbench(**SMALL, pattern="uniform", prefault=False))
    counts = np.bincount(pages_of(a["vaddr"]).astype(np.int64), minlength=1024)
    assert counts.size == 1024  # 4 MiB set
    top = np.sort(counts)[::-1][:102].sum() / counts.sum()
    assert top < 0.15
    assert abs(counts.mean() - 40_000 / 1024) < 1e-9


def test_normal_is_centred_on_the_middle_of_the_set() -> None:
    a = accesses(generate_pmbench(**SMALL, pattern="normal", prefault=False))
    page = pages_of(a["vaddr"])
    middle = (page > 1024 * 0.375) & (page < 1024 * 0.625)  # within one sigma (0.125 of set)
    assert 0.6 < middle.mean() < 0.76


def test_linear_walks_each_thread_through_consecutive_pages() -> None:
    a = accesses(generate_pmbench(**SMALL, pattern="linear", shape=2, prefault=False))
    base = 0x7F00_0000_0000
    for cpu in np.unique(a["cpu"]):
        page = (a["vaddr"][a["cpu"] == cpu] - base) // 4096
        assert set(np.diff(page) % 1024) == {2}


@pytest.mark.parametrize("read_pct", [0, 30, 100])
def test_read_ratio_is_read_pct(read_pct: float) -> None:
    a = accesses(generate_pmbench(**SMALL, read_pct=read_pct, prefault=False))
    assert abs((1 - a["write"].mean()) - read_pct / 100) < 0.01


def test_rate_sets_the_time_span() -> None:
    a = accesses(generate_pmbench(**SMALL, thread_rate_per_s=1e5, prefault=False))
    span_s = a["ts_ns"][-1] / 1e9
    assert span_s == pytest.approx(40_000 / (16 * 1e5), rel=0.02)
    assert np.all(np.diff(a["ts_ns"]) >= 0)


def test_regular_arrivals_rotate_over_the_threads() -> None:
    a = accesses(generate_pmbench(**SMALL, arrivals="regular", prefault=False))
    assert list(a["cpu"][:18]) == [*range(8), *range(16, 24), 0, 1]


def test_default_threads_spread_over_both_nodes_and_driver_runs_on_an_idle_cpu() -> None:
    p = PmbenchParams()
    assert p.thread_cpus() == (*range(0, 8), *range(16, 24))
    assert p.driver_cpu() == 31


def test_migratepages_alternates_node_0_to_1_and_back() -> None:
    table = generate_pmbench(set_mib=4, map_mib=8, duration_ms=12, migrate_every_ms=2)
    calls = table.filter(pa.compute.equal(table.column("kind").cast(pa.string()), "migrate"))
    assert calls.num_rows == 5  # every 2 ms after the workload starts, up to 12 ms
    assert calls.column("src_node").to_pylist() == [0, 1, 0, 1, 0]
    assert calls.column("dst_node").to_pylist() == [1, 0, 1, 0, 1]
    assert calls.column("req_id").to_pylist() == [0, 1, 2, 3, 4]
    assert set(calls.column("cpu").to_pylist()) == {31}
    assert set(calls.column("mode").to_pylist()) == {"sync"}
    assert calls.column("vaddr").null_count == 5
    gaps = np.diff(calls.column("ts_ns").to_numpy())
    assert set(gaps) == {2_000_000}


def test_prefault_touches_each_page_once_from_its_share_thread() -> None:
    table = generate_pmbench(set_mib=4, map_mib=8, accesses=0)
    assert table.num_rows == 1024
    page = pages_of(table.column("vaddr").to_numpy())
    assert sorted(page) == list(range(1024))
    cpu = table.column("cpu").to_numpy()
    node = (cpu >= 16).astype(int)
    assert list(node[np.argsort(page)]) == [0] * 512 + [1] * 512  # split over the nodes
    assert table.column("write").to_pylist() == [True] * 1024
    assert list(cpu[:16]) == [*range(8), *range(16, 24)]  # threads touch concurrently


def test_accesses_count_excludes_prefault_and_migrate_rows() -> None:
    t = generate_pmbench(**SMALL)
    kinds = t.column("kind").cast(pa.string()).to_pylist()
    assert kinds.count("access") == 40_000 + 1024


@pytest.mark.parametrize("bad", [
    {"pattern": "zipf"}, {"pattern": "uniform", "shape": 2.0}, {"set_mib": 16, "map_mib": 8},
    {"threads": 40}, {"cpus_list": (0, 1), "threads": 3}, {"read_pct": 101},
    {"duration_ms": 5, "accesses": 10}, {"nodes": 1}, {"migrate_cpu": 32},
])
def test_bad_parameters_are_refused(bad: dict) -> None:
    with pytest.raises(BadInputError, match="pmbench"):
        PmbenchParams(**bad)


def test_cpu_lists_read_as_taskset_writes_them() -> None:
    assert parse_cpu_list("0-2,8, 10-11") == (0, 1, 2, 8, 10, 11)
    with pytest.raises(BadInputError):
        parse_cpu_list("3-1")


def test_generate_command_writes_a_valid_trace(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    r = subprocess.run([sys.executable, "-c", "from tracereplay.cli import main; main()",
                        "generate", "pmbench", "-o", str(out), "--set-mib", "4", "--map-mib", "8",
                        "--accesses", "1000", "--cpus-list", "0-3"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    t = trace.load(out)
    assert t.summary.accesses == 2024 and t.summary.cpus == 4
    bad = subprocess.run([sys.executable, "-c", "from tracereplay.cli import main; main()",
                          "generate", "pmbench", "-o", str(tmp_path / "x.parquet"),
                          "--pattern", "zipf"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "x.parquet").exists()


def regeneration_command(name: str) -> list[str]:
    """The command sample_traces/README.md gives for ``name``."""
    for line in (SAMPLES / "README.md").read_text().splitlines():
        if line.strip().startswith(("tracereplay ", "python ")) and name in line:
            return shlex.split(line.strip())
    raise AssertionError(f"no command for {name} in sample_traces/README.md")


@pytest.mark.parametrize("name", ["seed.parquet", "tiny.parquet"])
def test_bundled_samples_regenerate_byte_for_byte(name: str, tmp_path: Path) -> None:
    cmd = regeneration_command(name)
    target = f"sample_traces/{name}"
    cmd = [str(tmp_path / name) if a == target else a for a in cmd]
    if cmd[0] == "tracereplay":
        cmd = [sys.executable, "-c", "from tracereplay.cli import main; main()", *cmd[1:]]
    else:
        cmd[0] = sys.executable
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes()


def test_the_migratepages_driver_moves_between_the_nodes_it_is_given(tmp_path: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from tracereplay.generate import PmbenchParams, write_pmbench

    path = tmp_path / "t.parquet"
    write_pmbench(path, PmbenchParams(threads=4, cpus=8, nodes=4, map_mib=1, set_mib=1,
                                      migrate_every_ms=1, duration_ms=3.5, src_node=2, dst_node=3))
    t = pq.read_table(path)
    calls = t.filter(pc.equal(t["kind"].cast("string"), "migrate"))
    assert list(zip(calls["src_node"].to_pylist(), calls["dst_node"].to_pylist(), strict=True)) == \
        [(2, 3), (3, 2), (2, 3)]
