"""Importing user page faults: faults, measured stalls, page owners, the captured machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from tracereplay.config import load_profile
from tracereplay.errors import ImportFormatError
from tracereplay.importer import import_kernel_trace

FIX = Path(__file__).parent / "fixtures" / "import"
# A cut of a Linux 6.18 capture (perf record -a -e tlb:tlb_flush -e 'migrate:*' -e
# exceptions:page_fault_user) of compaction while the two threads of `writers`
# (bench/capture/writers.c, pid 11711) wrote their pages; perf script --header -F ...pid,tid...
FAULTS = FIX / "perf-F-faults.txt"
BASE = 9683_110157_000  # the first event, ns


def read(run: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(run / "policy=measured" / f"{name}.parquet")


def test_every_fault_line_is_a_fault_row_and_an_access_of_the_trace(tmp_path: Path) -> None:
    text = FAULTS.read_text()
    lines = [ln for ln in text.splitlines() if " exceptions:page_fault_user: " in ln]
    res = import_kernel_trace(FAULTS, tmp_path / "run", as_trace=tmp_path / "t.parquet")
    faults = read(tmp_path / "run", "faults")
    assert faults.height == len(lines) == 6
    assert faults["pid"].to_list() == [11711] * 6
    assert faults["tid"].to_list() == [11735, 11734, 11735, 11734, 11735, 11735]
    assert faults["error_code"].to_list() == [6] * 6 and faults["write"].all()
    assert faults["address"][0] == 0x7F4634F57000
    t = pl.read_parquet(tmp_path / "t.parquet")
    acc = t.filter(pl.col("kind") == "access")
    assert acc.height == 6
    assert acc["vaddr"].to_list() == faults["address"].to_list()
    assert acc["ts_ns"].to_list() == faults["ts_ns"].to_list()
    assert acc["cpu"].to_list() == [0] * 6 and acc["pid"].to_list() == [11711] * 6
    assert res.manifest["stalls"]["faults"] == 6


def test_faults_inside_migration_windows_are_the_measured_stalls(tmp_path: Path) -> None:
    import_kernel_trace(FAULTS, tmp_path)
    st = read(tmp_path, "stalls")
    # Each fault and the set/remove of its address, by hand from the fixture (us after BASE):
    #   7f4634f57000 set  49 fault 131 remove 138 -> 7 us
    #   7f462e7f7000 set 373 fault 381 remove 422 -> 41 us
    #   7f463508d000 set 384 fault 411 remove 506 -> 95 us
    #   7f46307cd000 set 773 fault 826 remove 895 -> 69 us
    #   7f463508f000 set 765 fault 837 remove 845 -> 8 us
    #   7f463a80f000 set 4207 fault 4273 remove 4276 -> 3 us
    assert st["ts_ns"].to_list() == [131_000, 381_000, 411_000, 826_000, 837_000, 4_273_000]
    assert st["stall_ns"].to_list() == [7_000, 41_000, 95_000, 69_000, 8_000, 3_000]
    assert st["vpn"][0] == 0x7F4634F57000 >> 12
    assert st["pid"].to_list() == [11711] * 6
    mig = read(tmp_path, "migrations")
    # the owner of a page is the process that faulted on it, not the migrating shell (11758)
    owned = mig.filter(pl.col("pid").is_not_null())
    assert sorted(owned["vpn"].to_list()) == sorted(st["vpn"].to_list())
    assert set(owned["pid"]) == {11711}
    req = mig.filter(pl.col("vpn") == st["vpn"][0])["req_id"].to_list()
    assert st["req_id"][0] == req[0]


def test_a_fault_outside_every_window_is_no_stall(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text(
        "  sh 9/9 [001] 1.000000: migrate:mm_migrate_pages_start: mode=MIGRATE_SYNC reason=compaction\n"
        "  sh 9/9 [001] 1.000010: migrate:set_migration_pte: addr=7f0000001000, pte=1 order=0\n"
        "   w 5/6 [000] 1.000020: exceptions:page_fault_user: address=0x7f0000001abc ip=0x1 error_code=0x4\n"
        "   w 5/7 [000] 1.000025: exceptions:page_fault_user: address=0x7f0000002000 ip=0x1 error_code=0x6\n"
        "  sh 9/9 [001] 1.000030: migrate:remove_migration_pte: addr=7f0000001000, pte=2 order=0\n"
        "   w 5/6 [000] 1.000031: exceptions:page_fault_user: address=0x7f0000001000 ip=0x1 error_code=0x6\n"
        "  sh 9/9 [001] 1.000040: migrate:mm_migrate_pages: nr_succeeded=1 nr_failed=0 mode=MIGRATE_SYNC reason=compaction\n"
    )
    import_kernel_trace(src, tmp_path / "run")
    st = read(tmp_path / "run", "stalls")
    assert st.to_dicts() == [
        {
            "ts_ns": 20_000,
            "cpu": 0,
            "pid": 5,
            "vpn": 0x7F0000001,
            "stall_ns": 10_000,
            "batch_id": 0,
            "req_id": 0,
        }
    ]
    assert read(tmp_path / "run", "faults")["write"].to_list() == [False, True, True]
    assert read(tmp_path / "run", "migrations")["pid"].to_list() == [5]


BAD = {
    "address=": "page_fault_user payload has no hexadecimal address",
    "address=0x200000000000000": "page_fault_user address is not below 2^57",
    "address=0x7f0000001000 error_code=six": "page_fault_user payload has no hexadecimal error_code",
    "address=0x7f0000001000 ip=0x1": "page_fault_user payload has no hexadecimal error_code",
}


@pytest.mark.parametrize("payload", sorted(BAD))
def test_bad_fault_lines_are_counted_or_fail_under_strict(tmp_path: Path, payload: str) -> None:
    good = (
        "  w 5/6 [000] 1.000000: exceptions:page_fault_user: address=0x10 ip=0x1 error_code=0x6\n"
    )
    bad = f"  w 5/6 [000] 1.000001: exceptions:page_fault_user: {payload}\n"
    src = tmp_path / "in.txt"
    src.write_text(good + bad + good)
    res = import_kernel_trace(src, tmp_path / "run")
    assert res.manifest["malformed_lines"] == [2]
    skipped = read(tmp_path / "run", "skipped")
    assert skipped["why"][0].startswith("malformed: " + BAD[payload])
    assert read(tmp_path / "run", "faults").height == 2
    with pytest.raises(ImportFormatError, match=r"in\.txt:2: malformed line: " + BAD[payload][:20]):
        import_kernel_trace(src, tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists()


def test_a_capture_cut_mid_line_counts_the_cut_line(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text(
        "  w 5/6 [000] 1.000000: exceptions:page_fault_user: address=0x10 ip=0x1 error_code=0x6\n"
        "  w 5/6 [000] 1.000001: exceptions:page_fault_user: addre"
    )
    res = import_kernel_trace(src, tmp_path / "run")
    assert res.manifest["malformed_lines"] == [2]
    assert read(tmp_path / "run", "faults").height == 1


def test_the_header_gives_the_captured_machine(tmp_path: Path) -> None:
    res = import_kernel_trace(FAULTS, tmp_path / "run", as_trace=tmp_path / "t.parquet")
    assert res.manifest["machine"] == {
        "cpus": 2, "nodes": 1, "cpu_node": [0, 0], "page_size": 4096, "from": "header"
    }  # fmt: skip
    # one node: compaction's moves within it are replayed as moves from node 0 to node 1
    md = pq.read_schema(tmp_path / "t.parquet").metadata
    assert json.loads(md[b"tracereplay.machine"]) == {
        "cpus": 2, "nodes": 2, "cpu_node": [0, 0], "page_size": 4096
    }  # fmt: skip


def test_options_override_the_header_and_trace_cmd_says_cpus(tmp_path: Path) -> None:
    res = import_kernel_trace(FAULTS, tmp_path / "a", cpus=4, nodes=2)
    assert res.manifest["machine"]["cpu_node"] == [0, 0, 1, 1]
    assert res.manifest["machine"]["from"] == "options"
    src = tmp_path / "r.txt"
    src.write_text(
        "cpus=8\n"
        "  w-6     (5) [003] 1.000000: page_fault_user: address=0x10 ip=0x1 error_code=0x6\n"
    )
    res = import_kernel_trace(src, tmp_path / "b")
    assert res.manifest["machine"]["cpus"] == 8 and res.manifest["machine"]["nodes"] == 1
    assert read(tmp_path / "b", "faults")["pid"].to_list() == [5]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracereplay", "import", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_cpus_zero_and_a_cpu_beyond_cpus_exit_2_naming_them(tmp_path: Path) -> None:
    r = _cli(str(FAULTS), "-o", str(tmp_path / "a"), "--cpus", "0")
    assert r.returncode == 2 and "--cpus must be at least 1: 0" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "a").exists()
    r = _cli(str(FAULTS), "-o", str(tmp_path / "b"), "--cpus", "1")
    assert r.returncode == 2, r.stderr
    # line 13 is the first event of CPU 1 (lines 1-12 are the header)
    assert "perf-F-faults.txt:13: CPU 1 is beyond the 1 CPUs --cpus gives" in r.stderr
    assert not (tmp_path / "b").exists()


def test_the_trace_of_an_import_replays_into_its_run_and_measured_vs_model_compares(
    tmp_path: Path,
) -> None:
    from tracereplay import run_query
    from tracereplay.replay import run as replay

    run, t = tmp_path / "run", tmp_path / "t.parquet"
    import_kernel_trace(FAULTS, run, as_trace=t)
    replay(t, run, policies=["batched"])
    q = run_query("measured_vs_model", [run])
    rows = {r["metric"]: r for r in q.to_pylist()}
    assert {r["policy"] for r in q.to_pylist()} == {"batched"}
    # measured side, by hand from the fixture: 18 calls moved 865 pages (sum of nr_succeeded),
    # 6 faults fell inside windows (see the stalls test), the longest waited 95 us
    assert rows["pages_migrated"]["measured"] == 865
    assert rows["stalls"]["measured"] == 6
    assert rows["stall_max_ns"]["measured"] == 95_000
    mig = read(run, "migrations").filter(pl.col("status") == "migrated")
    windows = sorted((mig["remap_ns"] - mig["unmap_ns"]).to_list())
    assert rows["window_p50_ns"]["measured"] == windows[(len(windows) + 1) // 2 - 1]
    for r in rows.values():
        if r["measured"] and r["model"] is not None:
            assert r["ratio"] == pytest.approx(r["model"] / r["measured"])
        else:  # no measured value, or a quantile of no model stall
            assert r["ratio"] is None
    # the model replays every page the calls moved, those without a PTE included
    assert rows["pages_migrated"]["model"] == 865
    assert {r["mode"] for r in rows.values()} == {"open loop"}
    assert {r["call_start"] for r in rows.values()} == {"queued"}
    # closed loop, said so; the measured side is the same
    replay(t, run, policies=["serial"], closed_loop=True)
    q = run_query("measured_vs_model", [run]).to_pylist()
    assert {(r["policy"], r["mode"]) for r in q} == {("batched", "open loop"),
                                                       ("serial", "closed loop")}
    assert {r["measured"] for r in q if r["metric"] == "stalls"} == {6}
    # the calls at their trace times (another configuration: a run of its own beside the
    # import's measured run), said so
    other = tmp_path / "other"
    other.mkdir()
    (other / "policy=measured").symlink_to(run / "policy=measured")
    replay(t, other, policies=["batched"],
           profile=load_profile(overrides=["migrate.call_start=trace"]))
    q = run_query("measured_vs_model", [other]).to_pylist()
    assert {(r["mode"], r["call_start"]) for r in q} == {("open loop", "trace")}


def test_another_trace_does_not_replay_into_an_import_run(tmp_path: Path) -> None:
    from tracereplay.errors import OutputExistsError
    from tracereplay.replay import run as replay

    run = tmp_path / "run"
    import_kernel_trace(FAULTS, run, as_trace=tmp_path / "t.parquet")
    with pytest.raises(OutputExistsError, match="another trace"):
        replay(Path(__file__).parent.parent / "sample_traces" / "tiny.parquet", run,
               policies=["batched"])  # fmt: skip


def test_a_page_mapped_twice_is_one_page_of_two_mappings_at_its_faulted_address(
    tmp_path: Path,
) -> None:
    # one physical page (pfn 0x101c1f: both migration entries name it) mapped at two addresses
    # (two processes): two PTEs, nr_succeeded=1; the second address was faulted on by pid 5,
    # so the trace writes the page there, in pid 5's space, with 2 mappings.
    # A second call moved 3 pages through 1 PTE (pfn 0x101c1e): 2 pages without a PTE.
    src = tmp_path / "in.txt"
    src.write_text(
        "  sh 9/9 [001] 1.000000: migrate:mm_migrate_pages_start: mode=MIGRATE_SYNC reason=compaction\n"
        "  sh 9/9 [001] 1.000010: migrate:set_migration_pte: addr=7f0000001000, pte=e7ffffffdfc7c000 order=0\n"
        "  sh 9/9 [001] 1.000011: migrate:set_migration_pte: addr=7f0000009000, pte=e7ffffffdfc7c000 order=0\n"
        "   w 5/6 [000] 1.000020: exceptions:page_fault_user: address=0x7f0000009010 ip=0x1 error_code=0x6\n"
        "  sh 9/9 [001] 1.000030: migrate:remove_migration_pte: addr=7f0000001000, pte=80000003fd621005 order=0\n"
        "  sh 9/9 [001] 1.000031: migrate:remove_migration_pte: addr=7f0000009000, pte=80000003fd621005 order=0\n"
        "  sh 9/9 [001] 1.000040: migrate:mm_migrate_pages: nr_succeeded=1 nr_failed=0 mode=MIGRATE_SYNC reason=compaction\n"
        "  sh 9/9 [001] 1.000050: migrate:mm_migrate_pages_start: mode=MIGRATE_SYNC reason=compaction\n"
        "  sh 9/9 [001] 1.000060: migrate:set_migration_pte: addr=7f0000002000, pte=e7ffffffdfc7c200 order=0\n"
        "  sh 9/9 [001] 1.000070: migrate:remove_migration_pte: addr=7f0000002000, pte=80000003fd622005 order=0\n"
        "  sh 9/9 [001] 1.000080: migrate:mm_migrate_pages: nr_succeeded=3 nr_failed=0 mode=MIGRATE_SYNC reason=compaction\n"
    )  # fmt: skip
    res = import_kernel_trace(src, tmp_path / "run", as_trace=tmp_path / "t.parquet")
    measured = pl.read_parquet(tmp_path / "run" / "policy=measured" / "migrations.parquet")
    assert measured["pfn"].to_list() == [0x101C1F, 0x101C1F, 0x101C1E]
    assert res.manifest["as_trace_rows"] == {
        "accesses": 1, "migrate_rows": 4, "pages_without_pte": 2, "pages_with_pte": 2,
        "ptes": 3, "pages_beyond_nr_succeeded": 0, "maps": 4,
    }  # fmt: skip
    mig = pl.read_parquet(tmp_path / "t.parquet").filter(pl.col("kind") == "migrate")
    assert mig.select("req_id", "pid", "vaddr", "ts_ns", "mappings").rows() == [
        (0, 5, 0x7F0000009000, 0, 2),
        # call 1 (pid 9, no known owner): its PTE's page between the two without a PTE
        (1, 9, 1 << 56, 50_000, 0),
        (1, 9, 0x7F0000002000, 50_000, 1),
        (1, 9, (1 << 56) + 4096, 50_000, 0),
    ]


def test_two_pages_at_one_address_each_get_an_address_of_their_own(tmp_path: Path) -> None:
    # A parent and its forked child map different pages (pfns 0x101c1f and 0x101c1e) at
    # 0x7f0000001000; the second page is also mapped at 0x7f0000002000: it is written there.
    src = tmp_path / "in.txt"
    src.write_text(
        "  sh 9/9 [001] 1.000000: migrate:mm_migrate_pages_start: mode=MIGRATE_SYNC reason=compaction\n"
        "  sh 9/9 [001] 1.000010: migrate:set_migration_pte: addr=7f0000001000, pte=e7ffffffdfc7c000 order=0\n"
        "  sh 9/9 [001] 1.000011: migrate:set_migration_pte: addr=7f0000001000, pte=e7ffffffdfc7c200 order=0\n"
        "  sh 9/9 [001] 1.000012: migrate:set_migration_pte: addr=7f0000002000, pte=e7ffffffdfc7c200 order=0\n"
        "  sh 9/9 [001] 1.000040: migrate:mm_migrate_pages: nr_succeeded=2 nr_failed=0 mode=MIGRATE_SYNC reason=compaction\n"
    )  # fmt: skip
    res = import_kernel_trace(src, tmp_path / "run", as_trace=tmp_path / "t.parquet")
    assert res.manifest["as_trace_rows"]["pages_with_pte"] == 2
    mig = pl.read_parquet(tmp_path / "t.parquet").filter(pl.col("kind") == "migrate")
    assert mig.select("vaddr", "mappings").rows() == [(0x7F0000001000, 1), (0x7F0000002000, 2)]
