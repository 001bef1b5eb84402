"""The replay reads a trace once, row group by row group: where the row groups end changes no
result, and the file is opened, decoded and hashed in that one read."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replay_helpers import access, hand_profile, migrate_node, migrate_pages, write_trace

import tracereplay.replay as rp
import tracereplay.trace as trace
import tracereplay.trace.read as tr
from tracereplay.errors import TraceFormatError
from tracereplay.machine import Machine

MACHINE = Machine.spread(4, 2)  # CPUs 0-1 on node 0, 2-3 on node 1


def map_row(ts: int, vpn: int, node: int, *, pid: int = 1) -> dict[str, Any]:
    return {"ts_ns": ts, "kind": "map", "pid": pid, "vaddr": vpn * 4096, "dst_node": node}


def grouped(path: Path, rows: list[dict[str, Any]], group_rows: int) -> Path:
    """A trace file whose row groups hold ``group_rows`` rows each."""
    return write_trace(path, rows, MACHINE, row_group_rows=group_rows)


def replayed(path: Path, out: Path, profile: Any) -> dict[str, Any]:
    """Every event table and summary of a replay of both policies."""
    res = rp.run(path, out, policies=["serial", "batched"], profile=profile)
    tables = {f"{r.policy}/{f.name}": pq.read_table(f)
              for r in res for f in sorted(Path(r.path).glob("*.parquet"))}
    return {"tables": tables, "metrics": [r.metrics for r in res]}


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["metrics"] == b["metrics"]
    assert a["tables"].keys() == b["tables"].keys()
    for name, table in a["tables"].items():
        assert table.equals(b["tables"][name]), name


def one_group_and_small_groups(tmp: Path, rows: list[dict[str, Any]], group_rows: int,
                               profile: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    whole = replayed(grouped(tmp / "one.parquet", rows, 1 << 20), tmp / "one", profile)
    cut = replayed(grouped(tmp / "cut.parquet", rows, group_rows), tmp / "cut", profile)
    return whole, cut


def test_a_call_at_the_time_a_group_ends_sees_the_rows_of_that_time_in_the_next_group(
        tmp_path: Path) -> None:
    # Row groups of 8: the call at ts 150 comes after row 15 (ts 150, the last of group 2);
    # page 7 is first touched at ts 150 in group 3, so it exists when the call starts.
    rows = [access(10 * i, i % 4, i % 5) for i in range(16)] + [access(150, 2, 7)]
    rows += migrate_pages(150, 1, [3, 7], 0, req=1) + [access(160 + i, 1, 1) for i in range(8)]
    whole, cut = one_group_and_small_groups(tmp_path, rows, 8, hand_profile())
    assert_same(whole, cut)
    assert cut["metrics"][1]["pages_migrated"] == 2  # pages 3 (CPU 3) and 7 (CPU 2), node 1 to 0


def test_rows_that_share_one_timestamp_across_many_groups(tmp_path: Path) -> None:
    rows = [access(5, i % 4, i % 9) for i in range(96)] + [access(6 + i, 0, 1) for i in range(8)]
    rows += [migrate_node(5, 0, 0, 1, req=1)]
    whole, cut = one_group_and_small_groups(tmp_path, rows, 8, hand_profile())
    assert_same(whole, cut)


@st.composite
def traces(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 80))
    # Map rows come first (at ts 0), before any access can touch their pages.
    rows = [map_row(0, v, draw(st.integers(0, 1)), pid=p)
            for v, p in draw(st.lists(st.tuples(st.integers(0, 12), st.sampled_from([1, 2])),
                                      max_size=3, unique=True))]
    rows += [access(draw(st.integers(1, 4_000)), draw(st.integers(0, 3)), draw(st.integers(0, 12)),
                    pid=draw(st.sampled_from([1, 2])), write=draw(st.booleans())) for _ in range(n)]
    for req in range(draw(st.integers(0, 3))):
        ts, cpu, dst = draw(st.integers(0, 4_000)), draw(st.integers(0, 3)), draw(st.integers(0, 1))
        if draw(st.booleans()):
            rows.append(migrate_node(ts, cpu, 1 - dst, dst, req))
        else:
            rows += migrate_pages(ts, cpu, draw(st.lists(st.integers(0, 12), min_size=1, max_size=5)), dst, req)
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces(), st.integers(1, 16), st.sampled_from(["sticky", "window"]))
def test_where_row_groups_end_changes_no_result(rows: list[dict[str, Any]], group_rows: int,
                                                mask: str) -> None:
    profile = hand_profile("tlb.l1_entries=2", "tlb.l1_ways=2", "tlb.l2_entries=4", "tlb.l2_ways=2",
                           f"flush.mm_cpumask={mask}", "flush.mm_cpumask_window_ns=500")
    with tempfile.TemporaryDirectory() as d:
        whole, cut = one_group_and_small_groups(Path(d), rows, group_rows, profile)
    assert_same(whole, cut)


def test_the_file_is_opened_decoded_and_hashed_in_one_read(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [access(10 * i, i % 4, i % 5) for i in range(40)] + migrate_pages(205, 0, [0, 1], 1, req=7)
    path = grouped(tmp_path / "t.parquet", rows, 8)
    calls = {"open": 0, "read": 0, "hash": 0}
    real_open, real_read, real_hash = tr._open, tr._read_groups, tr.file_sha256

    def count(name: str, fn: Any) -> Any:
        def spy(*a: Any, **k: Any) -> Any:
            calls[name] += 1
            return fn(*a, **k)
        return spy

    monkeypatch.setattr(tr, "_open", count("open", real_open))
    monkeypatch.setattr(tr, "_read_groups", count("read", real_read))
    monkeypatch.setattr(tr, "file_sha256", count("hash", real_hash))
    res = rp.run(path, tmp_path / "out", policies=["serial", "batched"], profile=hand_profile())
    assert calls == {"open": 1, "read": 1, "hash": 0}
    manifest = json.loads((res[0].path / "run.json").read_text())
    assert manifest["trace"]["sha256"] == real_hash(path)


def test_a_map_row_after_an_access_to_its_page_is_refused(tmp_path: Path) -> None:
    rows = [access(10 * i, 0, i % 3) for i in range(24)] + [map_row(235, 0, 1)]
    with pytest.raises(TraceFormatError, match="map-before-access"):  # write checks it too
        grouped(tmp_path / "t.parquet", rows, 8)
    # A file written without a machine is not checked for placement until it is read.
    path = tmp_path / "t.parquet"
    schema = trace.arrow_schema()
    trace.write(pa.table({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema),
                path, machine=None, row_group_rows=8)
    with pytest.raises(TraceFormatError, match="map-before-access") as e:
        rp.run(path, tmp_path / "out", profile=hand_profile())
    assert (e.value.row, e.value.column) == (24, "kind")
    assert not (tmp_path / "out").exists()


def test_a_second_map_row_before_any_access_changes_nothing(tmp_path: Path) -> None:
    rows = [map_row(0, 9, 1), map_row(1, 9, 0)] + [access(10 * i + 5, 0, 9) for i in range(20)]
    res = rp.run(write_trace(tmp_path / "t.parquet", rows, MACHINE), tmp_path / "out",
                 policies=["batched"], profile=hand_profile())
    assert res[0].metrics["remote_accesses"] == 20  # on node 1, accessed from CPU 0 (node 0)


def test_progress_rises_to_every_row(tmp_path: Path) -> None:
    rows = [access(10 * i, i % 4, i % 5) for i in range(40)] + migrate_pages(205, 0, [0, 1, 4], 1, req=7)
    path = grouped(tmp_path / "t.parquet", rows, 8)
    seen: list[tuple[int, int]] = []
    rp.run(path, tmp_path / "out", policies=["batched"], profile=hand_profile(),
           progress=lambda done, total: seen.append((done, total)))
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == len(rows)
    assert {t for _, t in seen} == {len(rows)}
    assert done[0] < len(rows)  # shown while the replay goes on, not only at its end
