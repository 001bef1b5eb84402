"""Row groups replayed during the validating read (before any migration call can start) give
exactly the results of a replay that waits for the whole pre-pass."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replay_helpers import access, hand_profile, migrate_node, migrate_pages, write_trace

import tracereplay.replay as rp
import tracereplay.trace as tr
from tracereplay.machine import Machine

MACHINE = Machine.spread(4, 2)  # CPUs 0-1 on node 0, 2-3 on node 1


def map_row(ts: int, vpn: int, node: int, *, pid: int = 1) -> dict[str, Any]:
    return {"ts_ns": ts, "kind": "map", "pid": pid, "vaddr": vpn * 4096, "dst_node": node}


def small_groups(path: Path, rows: list[dict[str, Any]], group_rows: int) -> Path:
    """A trace file whose row groups hold ``group_rows`` rows each."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(tr, "_ROW_GROUP_ROWS", group_rows)
        return write_trace(path, rows, MACHINE)
    finally:
        mp.undo()


def replay_both(path: Path, out: Path, profile: Any) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Every event table and summary of a replay with and without the early replay, and the
    first row the replay's own read started at with it."""
    starts: list[int] = []
    arrays = tr.Trace.arrays

    def spy(self: tr.Trace, columns: list[str], *, first_row: int = 0) -> Any:
        starts.append(first_row)
        return arrays(self, columns, first_row=first_row)

    results = {}
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(tr.Trace, "arrays", spy)
        for early in (False, True):
            mp.setattr(rp, "EARLY_REPLAY", early)
            starts.clear()
            res = rp.run(path, out / str(early), policies=["serial", "batched"], profile=profile)
            tables = {f"{r.policy}/{f.name}": pq.read_table(f)
                      for r in res for f in sorted(Path(r.path).glob("*.parquet"))}
            results[early] = {"tables": tables, "metrics": [r.metrics for r in res]}
    finally:
        mp.undo()
    return results[False], results[True], starts[0]


def assert_same(off: dict[str, Any], on: dict[str, Any]) -> None:
    assert off["metrics"] == on["metrics"]
    assert off["tables"].keys() == on["tables"].keys()
    for name, table in off["tables"].items():
        assert table.equals(on["tables"][name]), name


def test_without_migrations_the_whole_trace_is_replayed_during_the_read(tmp_path: Path) -> None:
    rows = [access(10 * i, i % 4, i % 7, write=i % 3 == 0) for i in range(40)]
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    off, on, start = replay_both(path, tmp_path / "out", hand_profile())
    assert_same(off, on)
    assert start == 40  # the replay's own read had nothing left to do
    assert on["metrics"][0]["accesses"] == 40


def test_groups_before_the_first_call_are_replayed_during_the_read(tmp_path: Path) -> None:
    rows = [access(10 * i, i % 4, i % 5) for i in range(40)]
    rows += migrate_pages(205, 0, [0, 1, 4], 1, req=7)  # after the row at ts 200 (row 20)
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    off, on, start = replay_both(path, tmp_path / "out", hand_profile())
    assert_same(off, on)
    # Groups of rows 0-7 and 8-15 end before the call; the third (16-23) holds its rows.
    assert start == 16
    assert on["metrics"][1]["pages_migrated"] == 3


def test_a_call_at_the_time_a_group_ends_keeps_that_group_for_the_replay(tmp_path: Path) -> None:
    rows = [access(10 * i, i % 4, i % 5) for i in range(24)]
    rows += migrate_pages(150, 1, [3], 1, req=1)  # same ts as row 15, the last of group 2
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    off, on, start = replay_both(path, tmp_path / "out", hand_profile())
    assert_same(off, on)
    assert start == 8  # group 2 reaches the call at ts 150: replayed after the read


def test_a_later_map_row_that_moves_a_replayed_page_voids_the_early_replay(tmp_path: Path) -> None:
    # Page 0 is first touched on node 0 (CPU 0); a map row in the last group declares it on
    # node 1, which makes its earlier accesses remote: the replay starts over.
    rows = [access(10 * i, 0, i % 3) for i in range(24)] + [map_row(235, 0, 1)]
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    off, on, start = replay_both(path, tmp_path / "out", hand_profile())
    assert_same(off, on)
    assert start == 0
    assert on["metrics"][0]["remote_accesses"] == 8  # every access of page 0


def test_a_map_row_before_the_first_touch_keeps_the_early_replay(tmp_path: Path) -> None:
    rows = [map_row(0, 9, 1)] + [access(10 * i + 5, 0, 9) for i in range(20)]
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    off, on, start = replay_both(path, tmp_path / "out", hand_profile())
    assert_same(off, on)
    assert start == 21
    assert on["metrics"][0]["remote_accesses"] == 20


@st.composite
def traces(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 80))
    rows = [access(draw(st.integers(0, 4_000)), draw(st.integers(0, 3)), draw(st.integers(0, 12)),
                   pid=draw(st.sampled_from([1, 2])), write=draw(st.booleans())) for _ in range(n)]
    for _ in range(draw(st.integers(0, 3))):
        rows.append(map_row(draw(st.integers(0, 4_000)), draw(st.integers(0, 12)),
                            draw(st.integers(0, 1)), pid=draw(st.sampled_from([1, 2]))))
    for req in range(draw(st.integers(0, 2))):
        ts, cpu, dst = draw(st.integers(0, 4_000)), draw(st.integers(0, 3)), draw(st.integers(0, 1))
        if draw(st.booleans()):
            rows.append(migrate_node(ts, cpu, 1 - dst, dst, req))
        else:
            rows += migrate_pages(ts, cpu, draw(st.lists(st.integers(0, 12), min_size=1, max_size=5)), dst, req)
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces(), st.integers(1, 16), st.sampled_from(["sticky", "window"]))
def test_early_replay_changes_no_result(rows: list[dict[str, Any]], group_rows: int, mask: str) -> None:
    profile = hand_profile("tlb.l1_entries=2", "tlb.l1_ways=2", "tlb.l2_entries=4", "tlb.l2_ways=2",
                           f"flush.mm_cpumask={mask}", "flush.mm_cpumask_window_ns=500")
    with tempfile.TemporaryDirectory() as d:
        path = small_groups(Path(d) / "t.parquet", rows, group_rows)
        off, on, _ = replay_both(path, Path(d) / "out", profile)
    assert_same(off, on)


@pytest.mark.parametrize("calls", [False, True])
def test_progress_rises_to_every_row(tmp_path: Path, calls: bool) -> None:
    rows = [access(10 * i, i % 4, i % 5) for i in range(40)]
    if calls:
        rows += migrate_pages(205, 0, [0, 1, 4], 1, req=7)
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    seen: list[tuple[int, int]] = []
    rp.run(path, tmp_path / "out", policies=["batched"], profile=hand_profile(),
           progress=lambda done, total: seen.append((done, total)))
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == len(rows)
    assert {t for _, t in seen} == {len(rows)}
    assert done[0] < len(rows)  # shown while the replay goes on, not only at its end


def test_rows_that_share_one_timestamp_across_many_groups_are_not_all_held(tmp_path: Path) -> None:
    # No group can be replayed before the read is past its last timestamp; 12 groups at one
    # time: the early replay holds at most MAX_WAITING of them, then leaves the rest alone.
    rows = [access(5, i % 4, i % 9) for i in range(96)] + [access(6 + i, 0, 1) for i in range(8)]
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    off, on, start = replay_both(path, tmp_path / "out", hand_profile())
    assert_same(off, on)
    assert start == 0


def test_progress_never_falls_when_the_early_replay_starts_over(tmp_path: Path) -> None:
    rows = [access(10 * i, 0, i % 3) for i in range(24)] + [map_row(235, 0, 1)]
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    seen: list[int] = []
    rp.run(path, tmp_path / "out", policies=["batched"], profile=hand_profile(),
           progress=lambda done, total: seen.append(done))
    assert seen == sorted(seen) and seen[-1] == len(rows)


def test_a_map_row_for_a_page_not_yet_replayed_keeps_the_groups_before_it(tmp_path: Path) -> None:
    # Group 1 (rows 0-7) touches pages 0-2; group 2 first touches page 9 and ends at ts 150,
    # the time of a call: the early replay stops after group 1; a later map row moves page 9,
    # which group 1 never touched: group 1's replay stands.
    rows = [access(10 * i, 0, i % 3) for i in range(8)] + [access(80 + 10 * i, 0, 9) for i in range(8)]
    rows += migrate_pages(150, 1, [0], 1, req=1) + [access(160 + i, 1, 1) for i in range(8)]
    rows += [map_row(170, 9, 1)]
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    off, on, start = replay_both(path, tmp_path / "out", hand_profile())
    assert_same(off, on)
    assert start == 8


def test_the_read_reports_its_rows_as_it_goes(tmp_path: Path) -> None:
    rows = [access(10 * i, i % 4, i % 5) for i in range(40)]
    rows += migrate_pages(205, 0, [0, 1, 4], 1, req=7)
    path = small_groups(tmp_path / "t.parquet", rows, 8)
    read: list[tuple[int, int]] = []
    rp.run(path, tmp_path / "out", policies=["batched"], profile=hand_profile(),
           reading=lambda done, total: read.append((done, total)))
    assert read == [(n, len(rows)) for n in (8, 16, 24, 32, 40, 43)]
