"""Two rules of a migration call's timing, each checked by hand on a small trace.

- ``mappings``: a page mapped k times is unmapped and remapped k times (``rmap_walk()`` from
  ``try_to_migrate()`` and ``remove_migration_ptes()`` visits every mapping), so its unmap
  costs ``unmap_ns`` x k and its remap ``remap_ns`` x k.
- ``migrate.call_start``: ``queued`` starts a call when the previous call on its CPU has
  ended; ``trace`` starts it at its trace time, overlapping that call in the model.

The default profile's costs: other 150, unmap 200, remap 150, copy 350 ns a page. No CPU ever
accesses the process, so mm_cpumask is empty: every flush costs 0 and sends no IPI.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from replay_helpers import load_prepass, migrate_pages, write_trace

from tracereplay.config import load_profile
from tracereplay.machine import Machine
from tracereplay.migrate import Planner
from tracereplay.replay import run

MACHINE = Machine.spread(2, 2)


def map_page(vpn: int, node: int = 0) -> dict:
    return {"ts_ns": 0, "kind": "map", "pid": 1, "vaddr": vpn * 4096, "dst_node": node}


def three_pages(tmp_path: Path) -> Path:
    """One call at 1,000 ns on CPU 0 moving pages 1, 2, 3; page 2 has 4 mappings."""
    rows = [map_page(v) for v in (1, 2, 3)]
    rows += migrate_pages(1000, 0, [1, 2, 3], 1, 0, mappings=[None, 4, 1])
    return write_trace(tmp_path / "t.parquet", rows, MACHINE)


def plans(path: Path, policy: str, *overrides: str) -> tuple[Planner, list]:
    profile = load_profile(overrides=list(overrides))
    planner = Planner(load_prepass(path, profile)[1], profile, policy)
    return planner, list(planner)


def test_serial_unmaps_and_remaps_each_mapping_of_a_page(tmp_path: Path) -> None:
    # page 1: other 1000-1150, unmap 1150-1350, copy 1350-1700, remap 1700-1850
    # page 2: other 1850-2000, unmap 4 x 200 2000-2800, copy 2800-3150, remap 4 x 150 3150-3750
    # page 3: other 3750-3900, unmap 3900-4100, copy 4100-4450, remap 4450-4600
    _, (plan,) = plans(three_pages(tmp_path), "serial")
    assert plan.pages["unmap_ns"].tolist() == [1350, 2800, 4100]
    assert plan.pages["copy_start_ns"].tolist() == [1350, 2800, 4100]
    assert plan.pages["remap_ns"].tolist() == [1850, 3750, 4600]
    assert (plan.start_ns, plan.end_ns) == (1000, 4600)
    (b,) = plan.batches
    assert (b["unmap_ns"], b["remap_ns"], b["copy_ns"], b["other_ns"], b["flush_ns"]) == \
        (1200, 900, 1050, 450, 0)


def test_batched_unmaps_every_mapping_before_the_moves(tmp_path: Path) -> None:
    # unmap stage: 1000 +150 +200 = 1350 | +150 +800 = 2300 | +150 +200 = 2650
    # moves: page 1 copy 2650-3000 remap -3150; page 2 copy -3500 remap 4 x 150 -4100;
    # page 3 copy -4450 remap -4600
    _, (plan,) = plans(three_pages(tmp_path), "batched")
    assert plan.pages["unmap_ns"].tolist() == [1350, 2300, 2650]
    assert plan.pages["copy_start_ns"].tolist() == [2650, 3150, 4100]
    assert plan.pages["remap_ns"].tolist() == [3150, 4100, 4600]
    assert (plan.start_ns, plan.end_ns) == (1000, 4600)
    (b,) = plan.batches
    assert (b["unmap_ns"], b["remap_ns"]) == (1200, 900)


def test_a_page_without_mappings_costs_what_it_did_before(tmp_path: Path) -> None:
    rows = [map_page(v) for v in (1, 2, 3)] + migrate_pages(1000, 0, [1, 2, 3], 1, 0)
    _, (plan,) = plans(write_trace(tmp_path / "t.parquet", rows, MACHINE), "batched")
    # unmap stage 1000 + 3 x (150 + 200) = 2050, then 350 + 150 a page
    assert plan.pages["remap_ns"].tolist() == [2550, 3050, 3550]


def test_a_page_no_process_maps_costs_no_unmap_or_remap(tmp_path: Path) -> None:
    rows = [map_page(v) for v in (1, 2)] + migrate_pages(1000, 0, [1, 2], 1, 0, mappings=[0, 1])
    _, (plan,) = plans(write_trace(tmp_path / "t.parquet", rows, MACHINE), "serial")
    # page 1: other -1150, no unmap, copy -1500, no remap; page 2: other -1650, unmap -1850,
    # copy -2200, remap -2350
    assert plan.pages["unmap_ns"].tolist() == [1150, 1850]
    assert plan.pages["remap_ns"].tolist() == [1500, 2350]


def test_the_replay_writes_the_longer_windows(tmp_path: Path) -> None:
    run(three_pages(tmp_path), tmp_path / "run", policies=["serial"])
    mig = pq.read_table(tmp_path / "run" / "policy=serial" / "migrations.parquet")
    windows = [r - u for u, r in zip(mig.column("unmap_ns").to_pylist(),
                                      mig.column("remap_ns").to_pylist(), strict=True)]
    assert windows == [500, 950, 500]  # copy 350 + remap 150, or + 4 x 150


def two_calls_on_one_cpu(tmp_path: Path) -> Path:
    """Call 0 at 1,000 ns moves vpns 1, 2, 3 from node 0 to 1 (ends at 3,550 under batched);
    call 1 at 2,000 ns on the same CPU moves vpns 3 and 4 (on node 1) to node 0."""
    rows = [map_page(1), map_page(2), map_page(3), map_page(4, node=1)]
    rows += migrate_pages(1000, 0, [1, 2, 3], 1, 0)
    rows += migrate_pages(2000, 0, [3, 4], 0, 1)
    return write_trace(tmp_path / "t.parquet", rows, MACHINE)


def test_queued_calls_wait_for_the_previous_call_on_their_cpu(tmp_path: Path) -> None:
    planner, (first, second) = plans(two_calls_on_one_cpu(tmp_path), "batched")
    assert (first.start_ns, first.end_ns) == (1000, 3550)
    # Call 1 starts when call 0 ends; vpn 3 is remapped by then and moves back:
    # unmaps 3550 +350 = 3900, +350 = 4250; moves 4250 +500 = 4750, +500 = 5250
    assert (second.start_ns, second.end_ns) == (3550, 5250)
    assert second.pages["page"].tolist() == [2, 3]  # page ids of vpns 3 and 4
    assert second.pages["remap_ns"].tolist() == [4750, 5250]
    assert planner.skipped_busy == 0


def test_trace_start_overlaps_the_previous_call_and_skips_its_busy_page(tmp_path: Path) -> None:
    planner, (first, second) = plans(two_calls_on_one_cpu(tmp_path), "batched",
                                     "migrate.call_start=trace")
    assert (first.start_ns, first.end_ns) == (1000, 3550)
    # At 2,000 vpn 3 is under migration by call 0 until 3,550: busy, skipped. vpn 4 moves:
    # other 2000-2150, unmap -2350, copy -2700, remap -2850
    assert (second.start_ns, second.end_ns) == (2000, 2850)
    assert second.pages["page"].tolist() == [3]
    assert second.pages["unmap_ns"].tolist() == [2350]
    assert planner.skipped_busy == 1


def test_trace_start_replays_overlapping_calls_on_one_cpu(tmp_path: Path) -> None:
    run(two_calls_on_one_cpu(tmp_path), tmp_path / "run", policies=["batched"],
                 profile=load_profile(overrides=["migrate.call_start=trace"]))
    batches = pq.read_table(tmp_path / "run" / "policy=batched" / "batches.parquet")
    assert list(zip(batches.column("start_ns").to_pylist(), batches.column("end_ns").to_pylist(),
                    strict=True)) == [(1000, 3550), (2000, 2850)]
    mig = pq.read_table(tmp_path / "run" / "policy=batched" / "migrations.parquet")
    assert mig.column("vpn").to_pylist() == [1, 2, 3, 4]
    assert mig.column("remap_ns").to_pylist() == [2550, 3050, 3550, 2850]
