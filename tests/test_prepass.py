"""The pre-pass: dense page ids in first-touch order, placement, mm_cpumask first runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from replay_helpers import access, write_trace

from tracereplay import trace as tr
from tracereplay.machine import Machine
from tracereplay.prepass import NEVER, PrePass

MACHINE = Machine.spread(4, 2)  # CPUs 0, 1 on node 0; 2, 3 on node 1 (the traces' own)


def mapped(ts: int, vpn: int, node: int, *, pid: int = 1) -> dict:
    return {"ts_ns": ts, "kind": "map", "pid": pid, "vaddr": vpn * 4096, "dst_node": node}


def build(path: Path) -> tuple:
    reader = tr.TraceReader(path)
    pre = PrePass(reader.pages)
    ids: list[np.ndarray] = []
    for group in reader.groups():
        pre.add_rows(group)
        ids.append(group.page)
    pre.close()
    return pre, np.concatenate(ids)


def test_placement_by_first_touch_and_by_map_rows(tmp_path: Path) -> None:
    rows = [
        mapped(0, 10, 1),  # page 0: mapped on node 1 ...
        access(5, 0, 10),  # ... then touched from node 0: stays on node 1, first toucher CPU 0
        access(6, 2, 11),  # page 1: first touch from CPU 2 (node 1)
        access(7, 1, 12, pid=2),  # page 2: another process
        mapped(9, 13, 0),  # page 3: mapped, never touched
        mapped(9, 13, 1),  # a second map row of a page: the first one wins
        access(10, 3, 11),
    ]
    pre, ids = build(write_trace(tmp_path / "t.parquet", rows, MACHINE))
    assert list(ids) == [0, 1, 2, 1]  # the page of each access, in order
    assert pre.n_pages == 4
    assert list(pre.page_vpn) == [10, 11, 12, 13]
    assert list(pre.pids[pre.page_pid]) == [1, 1, 2, 1]
    assert list(pre.page_first_ns) == [0, 6, 7, 9]
    assert list(pre.page_node) == [1, 1, 0, 0]
    assert pre.accesses == 4
    first = pre.cpu_first_ns[list(pre.pids).index(1)]
    assert list(first) == [5, NEVER, 6, 10]
    assert list(pre.page_ids(np.array([1, 1, 2, 2, 1]), np.array([10, 13, 12, 10, 99]))) == [0, 3, 2, -1, -1]


def test_ids_stay_dense_when_the_tables_grow_inside_a_row_group(tmp_path: Path) -> None:
    # 10,000 new pages in one row group: the tables start at 4,096 pages and grow twice.
    rng = np.random.default_rng(3)
    vpns = rng.permutation(10_000) + 1_000
    rows = [access(i, i % 4, int(v)) for i, v in enumerate(vpns)]
    rows += [access(10_000 + i, 0, int(v)) for i, v in enumerate(vpns[::-1])]
    pre, ids = build(write_trace(tmp_path / "t.parquet", rows, MACHINE))
    assert pre.n_pages == 10_000
    assert np.array_equal(pre.page_vpn, vpns)
    assert np.array_equal(ids[:10_000], np.arange(10_000))
    assert np.array_equal(ids[10_000:], np.arange(10_000)[::-1])
    assert np.array_equal(pre.page_ids(np.ones(10_000, np.int64), vpns), np.arange(10_000))
    assert list(pre.page_node[:4]) == [0, 0, 1, 1]
