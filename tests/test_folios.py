"""Hand-checked micro traces of large folios: a PMD-mapped folio is one 2 MiB translation and one
migration unit; a PTE-mapped folio has a translation per page, flushed as one range; batches
count base pages the way migrate_pages() does.

Hand costs throughout (replay_helpers.HAND_COSTS): other 0, unmap 100, invlpg 10, full flush 10,
IPI round 500 (no extra per target), responder 300, copy 1000 per base page, remap 100.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from replay_helpers import access, hand_profile, map_folio, migrate_node, migrate_pages, write_trace

from tracereplay.errors import ConfigError
from tracereplay.kernel import OUT_L1, OUT_WALK
from tracereplay.machine import Machine
from tracereplay.query import run_query
from tracereplay.replay import run

TWO_NODES = Machine.spread(8, 2)  # CPUs 0-3 on node 0, 4-7 on node 1


def _table(out: Path, policy: str, name: str) -> list[dict]:
    return pq.read_table(out / f"policy={policy}" / f"{name}.parquet").to_pylist()


def _stats(out: Path, policy: str) -> dict[int, dict]:
    return {s["cpu"]: s for s in _table(out, policy, "cpu_stats")}


def test_every_page_of_a_pmd_folio_hits_its_one_translation(tmp_path: Path) -> None:
    """CPU 1 touches three pages of the 2 MiB folio at vpn 512 and the two pages of an order-1
    folio at vpn 2: one walk fills the folio's 2 MiB entry, the next two pages hit it in the
    L1 dTLB; the order-1 folio is PTE-mapped, a walk per page."""
    rows = [map_folio(0, 512, 9, 0), map_folio(0, 2, 1, 0),
            access(10, 1, 512), access(20, 1, 700), access(30, 1, 1023),
            access(40, 1, 2), access(50, 1, 3)]
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, policies=["batched"], profile=hand_profile(), emit_accesses=True)
    outcomes = [a["outcome"] for a in _table(out, "batched", "accesses")]
    assert outcomes == [OUT_WALK, OUT_L1, OUT_L1, OUT_WALK, OUT_WALK]
    s = _stats(out, "batched")[1]
    assert (s["walks"], s["l1_hits"], s["l2_hits"]) == (3, 2, 0)


def test_shared_2m_entries_use_the_4k_sets_and_still_one_translation(tmp_path: Path) -> None:
    """With no 2 MiB array of its own the folio's one entry lives in the 4 KiB sets: three
    pages of it, one walk and two hits, as with the array of its own."""
    rows = [map_folio(0, 512, 9, 0), access(10, 1, 512), access(20, 1, 513), access(30, 1, 900)]
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, policies=["batched"], emit_accesses=True,
        profile=hand_profile("tlb.l1_2m_entries=0", "tlb.l1_2m_ways=0"))
    assert [a["outcome"] for a in _table(out, "batched", "accesses")] == [OUT_WALK, OUT_L1, OUT_L1]


@pytest.mark.parametrize("policy", ["serial", "batched"])
@pytest.mark.parametrize(("ceiling", "full"), [(33, True), (512, False)])
def test_migrating_a_pmd_folio_flushes_its_one_entry_or_all_and_copies_2_mib(
        tmp_path: Path, policy: str, ceiling: int, full: bool) -> None:
    """CPU 1 holds the 2 MiB translation (L1 and STLB) and that of the base page 5; CPU 0,
    which never ran the process, moves the folio to node 1 by naming one of its pages (700).

        t: 1000 call, 1100 unmapped, one round to CPU 1 (500: no local flush) -> 1600,
           copy 512 pages x 1000 -> 513600, remap -> 513700.
    x86 flushes the folio's 2 MiB in 4 KiB strides: 512 pages, above a ceiling of 33, so CPU 1
    does a full flush (300 + 35) and loses page 5's entries too; with a ceiling of 512 it
    drops the one 2 MiB entry (300 + one invlpg of 10). CPU 1's access to vpn 600 at 2000
    walks into the migration entry and waits to 513700.
    """
    rows = [map_folio(0, 512, 9, 0), access(10, 1, 512), access(11, 1, 5),
            access(2_000, 1, 600), *migrate_pages(1_000, 0, [700], 1, req=7)]
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, policies=[policy],
        profile=hand_profile("flush.full_flush_ns=35", f"flush.ceiling_pages={ceiling}"))
    [m] = _table(out, policy, "migrations")
    assert (m["vpn"], m["pages"], m["src_node"], m["dst_node"]) == (512, 512, 0, 1)
    assert (m["unmap_ns"], m["flush_ns"], m["copy_start_ns"], m["copy_end_ns"], m["remap_ns"]) == (
        1_100, 1_600, 1_600, 513_600, 513_700)
    [f] = _table(out, policy, "flushes")
    assert (f["pages"], f["targets"], f["targets_holding"], f["cost_ns"], f["target_full_flush"]) == (
        -1 if full else 1, 1, 1, 500, full)
    s = _stats(out, policy)[1]
    # One IPI that found the folio's entry in the L1 dTLB's 2 MiB array and in the STLB.
    assert (s["ipis_received"], s["ipis_useful"], s["full_flushes"]) == (1, 1, int(full))
    assert (s["entries_flushed"], s["irq_ns"]) == ((4, 335) if full else (2, 310))
    [st] = _table(out, policy, "stalls")
    assert (st["ts_ns"], st["vpn"], st["stall_ns"]) == (2_000, 600, 513_700 - 2_000)
    [b] = _table(out, policy, "batches")
    assert (b["pages"], b["folios"], b["nr_succeeded"], b["copy_ns"]) == (512, 1, 512, 512_000)


@pytest.mark.parametrize(("ceiling", "full", "irq_ns"), [(33, False, 300 + 4 * 10), (3, True, 300 + 10)])
def test_a_pte_mapped_folio_is_flushed_as_one_range_of_its_pages(
        tmp_path: Path, ceiling: int, full: bool, irq_ns: int) -> None:
    """The order-2 folio at vpn 4 (pages 4-7): CPU 1 holds three of its translations. Naming
    page 6 moves the whole folio in one round of 4 entries: invlpg of each (300 + 4 x 10 on
    CPU 1), or a full flush above a ceiling of 3 pages (300 + 10)."""
    rows = [map_folio(0, 4, 2, 0), access(10, 1, 4), access(20, 1, 5), access(30, 1, 6),
            *migrate_pages(1_000, 0, [6], 1, req=3)]
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, policies=["serial"], profile=hand_profile(f"flush.ceiling_pages={ceiling}"))
    [f] = _table(out, "serial", "flushes")
    assert (f["pages"], f["target_full_flush"], f["targets_holding"]) == (-1 if full else 4, full, 1)
    s = _stats(out, "serial")[1]
    assert (s["walks"], s["entries_flushed"], s["full_flushes"], s["irq_ns"]) == (3, 6, int(full), irq_ns)
    [m] = _table(out, "serial", "migrations")
    assert (m["vpn"], m["pages"], m["copy_start_ns"], m["copy_end_ns"], m["remap_ns"]) == (
        4, 4, 1_600, 5_600, 5_700)


@pytest.mark.parametrize(("batch_pages", "pages", "folios"), [
    (4, [4, 4, 1], [2, 1, 1]),  # the two order-1 folios fill a chunk exactly
    (5, [8, 1], [3, 1]),  # the order-2 folio crosses 5 and stays in the chunk
])
def test_batches_count_base_pages_and_a_crossing_folio_stays(
        tmp_path: Path, batch_pages: int, pages: list[int], folios: list[int]) -> None:
    """Folios at vpn 8 (order 1), 10 (order 1), 12 (order 2) and the base page 16, all on node
    0; a whole-node call moves them in address order. migrate_pages() adds folios to a chunk
    while it holds fewer than batch_pages pages."""
    rows = [map_folio(0, 8, 1, 0), map_folio(0, 10, 1, 0), map_folio(0, 12, 2, 0),
            access(10, 1, 16), access(20, 1, 13), migrate_node(1_000, 0, 0, 1, req=1)]
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, policies=["batched"],
        profile=hand_profile(f"policy.batched.batch_pages={batch_pages}"))
    batches = _table(out, "batched", "batches")
    assert [b["pages"] for b in batches] == pages
    assert [b["folios"] for b in batches] == folios
    migrations = _table(out, "batched", "migrations")
    assert [(m["vpn"], m["pages"]) for m in migrations] == [(8, 2), (10, 2), (12, 4), (16, 1)]
    for m in migrations:
        assert m["copy_end_ns"] - m["copy_start_ns"] == 1_000 * m["pages"]
    # The queries count base pages, not rows.
    [row] = run_query("throughput", [out / "policy=batched"]).to_pylist()
    assert (row["pages_migrated"], row["pages_failed"]) == (9, 0)


def test_two_pages_of_one_folio_in_a_call_move_it_once(tmp_path: Path) -> None:
    rows = [map_folio(0, 12, 2, 0), access(10, 1, 13),
            *migrate_pages(1_000, 0, [13, 15, 12], 1, req=1)]
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, policies=["serial"], profile=hand_profile())
    assert [(m["vpn"], m["pages"]) for m in _table(out, "serial", "migrations")] == [(12, 4)]


@pytest.mark.parametrize(("overrides", "key"), [
    (["tlb.l1_2m_entries=6", "tlb.l1_2m_ways=4"], "tlb.l1_2m_entries"),
    (["tlb.l1_2m_entries=0", "tlb.l1_2m_ways=4"], "tlb.l1_2m_ways"),
    (["tlb.l2_2m_entries=8", "tlb.l2_2m_ways=0"], "tlb.l2_2m_ways"),
])
def test_a_2m_array_needs_whole_sets(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}'"):
        hand_profile(*overrides)
