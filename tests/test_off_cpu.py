"""The migrating task off its CPU (``off_cpu_unmap_ns``, ``off_cpu_move_ns``), checked by hand.

A capture measures when the task that migrates was preempted inside a call; the trace gives each
page the time it was off its CPU just before the page's unmap and just before its move (copy and
remap). Every policy waits that long there, on the attempt that unmaps the page, and counts it
as ``other`` time.

The default profile's costs: other 150, unmap 200, remap 150, copy 350 ns a page. No CPU ever
accesses the process, so mm_cpumask is empty: every flush costs 0 and sends no IPI. One call at
1,000 ns on CPU 0 moves pages 1, 2, 3; the task was off its CPU 1,000 ns before page 2's unmap
and 500 ns before page 3's move.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from replay_helpers import load_prepass, migrate_pages, write_trace

from tracereplay.config import load_profile
from tracereplay.machine import Machine
from tracereplay.migrate import Planner
from tracereplay.replay import run

MACHINE = Machine.spread(2, 2)


def call_with_pauses(tmp_path: Path, off_cpu: list[tuple[int | None, int | None]] | None
                     ) -> Path:
    rows = [{"ts_ns": 0, "kind": "map", "pid": 1, "vaddr": v * 4096, "dst_node": 0}
            for v in (1, 2, 3)]
    rows += migrate_pages(1000, 0, [1, 2, 3], 1, 0, off_cpu=off_cpu)
    return write_trace(tmp_path / "t.parquet", rows, MACHINE)


PAUSES = [(None, None), (1000, None), (None, 500)]


def plan(path: Path, policy: str) -> tuple:
    profile = load_profile()
    (p,) = list(Planner(load_prepass(path, profile)[1], profile, policy))
    return p


def test_serial_waits_before_the_unmap_and_before_the_move(tmp_path: Path) -> None:
    # page 1: other 1000-1150, unmap -1350, copy -1700, remap -1850
    # page 2: other -2000, off CPU -3000, unmap -3200, copy -3550, remap -3700
    # page 3: other -3850, unmap -4050, off CPU -4550, copy -4900, remap -5050
    p = plan(call_with_pauses(tmp_path, PAUSES), "serial")
    assert p.pages["unmap_ns"].tolist() == [1350, 3200, 4050]
    assert p.pages["flush_ns"].tolist() == [1350, 3200, 4050]
    assert p.pages["copy_start_ns"].tolist() == [1350, 3200, 4550]
    assert p.pages["copy_end_ns"].tolist() == [1700, 3550, 4900]
    assert p.pages["remap_ns"].tolist() == [1850, 3700, 5050]
    (b,) = p.batches
    assert (b["start_ns"], b["end_ns"]) == (1000, 5050)
    assert (b["unmap_ns"], b["flush_ns"], b["copy_ns"], b["remap_ns"], b["other_ns"]) == \
        (600, 0, 1050, 450, 3 * 150 + 1500)


@pytest.mark.parametrize(("policy", "remaps"), [
    # page 1 copy 3050-3400 remap -3550; page 2 copy -3900 remap -4050;
    # page 3 off CPU -4550, copy -4900, remap -5050
    ("batched", [3550, 4050, 5050]),
    # the three pages copied together 3050-4100, then the remaps, page 3's after its pause:
    # -4250, -4400, off CPU -4900, -5050
    ("batched-copy", [4250, 4400, 5050]),
])
def test_batched_waits_in_the_unmap_stage_and_in_the_moves(tmp_path: Path, policy: str,
                                                           remaps: list[int]) -> None:
    # unmap stage: 1000 +150 +200 = 1350 | +150 +1000 off CPU +200 = 2700 | +150 +200 = 3050
    p = plan(call_with_pauses(tmp_path, PAUSES), policy)
    assert p.pages["unmap_ns"].tolist() == [1350, 2700, 3050]
    assert p.pages["remap_ns"].tolist() == remaps
    if policy == "batched":
        assert p.pages["copy_start_ns"].tolist() == [3050, 3550, 4550]
        assert p.pages["copy_end_ns"].tolist() == [3400, 3900, 4900]
    (b,) = p.batches
    assert (b["start_ns"], b["end_ns"]) == (1000, 5050)
    assert (b["unmap_ns"], b["copy_ns"], b["remap_ns"], b["other_ns"]) == \
        (600, 1050, 450, 3 * 150 + 1500)


def test_transactional_waits_on_the_first_attempt(tmp_path: Path) -> None:
    # Nomad copies first: other, off CPU before the move, copy, off CPU before the unmap,
    # unmap, flush, remap. page 1: copy 1150-1500, unmap -1700, remap -1850
    # page 2: copy 2000-2350, off CPU -3350, unmap -3550, remap -3700
    # page 3: other -3850, off CPU -4350, copy -4700, unmap -4900, remap -5050
    p = plan(call_with_pauses(tmp_path, PAUSES), "transactional")
    assert p.pages["copy_start_ns"].tolist() == [1150, 2000, 4350]
    assert p.pages["unmap_ns"].tolist() == [1700, 3550, 4900]
    assert p.pages["remap_ns"].tolist() == [1850, 3700, 5050]
    (b,) = p.batches
    assert (b["end_ns"], b["other_ns"]) == (5050, 3 * 150 + 1500)


def test_without_the_columns_or_with_zeros_nothing_moves(tmp_path: Path) -> None:
    # serial without pauses: page 3 remapped at 1000 + 3 x (150 + 200 + 350 + 150) = 3550
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = plan(call_with_pauses(tmp_path / "a", None), "serial")
    zeros = plan(call_with_pauses(tmp_path / "b", [(0, 0), (None, 0), (0, None)]), "serial")
    assert plain.pages["remap_ns"].tolist() == zeros.pages["remap_ns"].tolist() == \
        [1850, 2700, 3550]


def test_a_replay_windows_grow_by_the_pauses_inside_them(tmp_path: Path) -> None:
    # batched: page 1 is unmapped at 1350 and remapped at 3550 (without pauses 1350 and 2550),
    # its window 1,000 ns longer by page 2's wait before its unmap; page 3's 500 ns longer.
    path = call_with_pauses(tmp_path, PAUSES)
    (res,) = run(path, tmp_path / "run", policies=["batched"])
    m = pq.read_table(res.path / "migrations.parquet").to_pydict()
    assert [r - u for u, r in zip(m["unmap_ns"], m["remap_ns"], strict=True)] == \
        [3550 - 1350, 4050 - 2700, 5050 - 3050]
