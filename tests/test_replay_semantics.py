"""Hand-checked micro traces that pin the replay's semantics exactly."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from replay_helpers import access, hand_profile, migrate_node, migrate_pages, write_trace

from tracereplay.machine import Machine
from tracereplay.replay import run

TWO_NODES = Machine.spread(8, 2)  # CPUs 0-3 on node 0, 4-7 on node 1


def _table(out: Path, policy: str, name: str) -> list[dict]:
    return pq.read_table(out / f"policy={policy}" / f"{name}.parquet").to_pylist()


def test_thousand_page_migration_from_a_four_cpu_process(tmp_path: Path) -> None:
    """A pid that ran on CPUs 0-3; CPU 0 migrates its 1000 pages from node 0 to node 1.

    serial: one round per page, each to CPUs 1-3 -> 1000 rounds x 3 IPIs.
    batched: chunks of 512 and 488 pages -> 2 rounds x 3 IPIs, both full flushes (> 33 pages).
    """
    rows = [access(v, v % 4, v) for v in range(1000)]
    rows.append(migrate_node(10_000, 0, 0, 1, req=1))
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, profile=hand_profile())
    serial = _table(out, "serial", "flushes")
    batched = _table(out, "batched", "flushes")
    assert len(serial) == 1000
    assert {(f["pages"], f["targets"], f["target_full_flush"]) for f in serial} == {(1, 3, False)}
    assert [(f["pages"], f["targets"], f["target_full_flush"]) for f in batched] == [
        (-1, 3, True), (-1, 3, True)]
    assert sum(b["pages"] for b in _table(out, "batched", "batches")) == 1000
    assert [b["pages"] for b in _table(out, "batched", "batches")] == [512, 488]
    for policy in ("serial", "batched"):
        migrations = _table(out, policy, "migrations")
        assert len(migrations) == 1000
        assert {(m["src_node"], m["dst_node"], m["status"]) for m in migrations} == {(0, 1, "migrated")}


def test_single_cpu_process_gets_no_ipis_under_either_policy(tmp_path: Path) -> None:
    """The process only ran on CPU 2, which also runs the migration: local invlpg only."""
    rows = [access(v, 2, v) for v in range(50)]
    rows.append(migrate_node(1_000, 2, 0, 1, req=1))
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    results = {r.policy: r.metrics for r in run(trace, out, profile=hand_profile())}
    for policy in ("serial", "batched"):
        assert results[policy]["ipis_sent"] == 0
        flushes = _table(out, policy, "flushes")
        # Without another CPU in mm_cpumask the flush is not deferred: one local invlpg per page.
        assert len(flushes) == 50
        assert {(f["targets"], f["pages"], f["cost_ns"], f["reason"]) for f in flushes} == {(0, 1, 10, 3)}


def _two_page_trace(tmp_path: Path, extra: list[dict]) -> Path:
    """Pages A (vpn 10) and B (vpn 11) of pid 1, both on node 0; CPU 0 migrates them to node 1.

    Batched, hand costs (other 0, unmap 100, invlpg 10, IPI round 500, copy 1000, remap 100);
    CPU 1 touched A at t=0 so it holds A's translation; CPU 0 touched B at t=1.

        t:  1000    1100      1200         1720        2720  2820        3820  3920
            call    unmap A   unmap B      flush end   copy A  remap A   copy B  remap B
                    |<- A may be used stale ->|<-- A faults, waits to 2820 -->|
    The round's initiator cost: 2 x 10 (local invlpg, CPU 0 is in the mask) + 500 = 520.
    """
    rows = [access(0, 1, 10), access(1, 0, 11), *migrate_pages(1_000, 0, [10, 11], 1, req=7), *extra]
    return write_trace(tmp_path / "t.parquet", rows, TWO_NODES)


def test_access_between_unmap_and_flush_by_a_holder_is_a_stale_hit(tmp_path: Path) -> None:
    trace = _two_page_trace(tmp_path, [access(1_500, 1, 10)])
    out = tmp_path / "run"
    run(trace, out, policies=["batched"], profile=hand_profile(), emit_accesses=True)
    acc = _table(out, "batched", "accesses")
    assert acc[-1]["ts_ns"] == 1_500
    assert acc[-1]["outcome"] == 3  # stale hit
    assert _table(out, "batched", "stalls") == []
    stats = {s["cpu"]: s for s in _table(out, "batched", "cpu_stats")}
    assert stats[1]["stale_hits"] == 1
    assert stats[1]["stalls"] == 0
    m = {r["vpn"]: r for r in _table(out, "batched", "migrations")}
    assert (m[10]["unmap_ns"], m[10]["flush_ns"], m[10]["copy_start_ns"], m[10]["remap_ns"]) == (1100, 1720, 1720, 2820)
    assert (m[11]["unmap_ns"], m[11]["flush_ns"], m[11]["copy_start_ns"], m[11]["remap_ns"]) == (1200, 1720, 2820, 3920)


def test_access_after_the_flush_stalls_until_the_remap(tmp_path: Path) -> None:
    trace = _two_page_trace(tmp_path, [access(2_000, 1, 10), access(1_300, 1, 11)])
    out = tmp_path / "run"
    run(trace, out, policies=["batched"], profile=hand_profile())
    stalls = [(s["ts_ns"], s["cpu"], s["vpn"], s["stall_ns"], s["req_id"]) for s in _table(out, "batched", "stalls")]
    # B was never in CPU 1's TLB: it walks into the migration entry at 1300 and waits to 3920.
    assert stalls == [(1_300, 1, 11, 3920 - 1300, 7), (2_000, 1, 10, 2820 - 2000, 7)]


def test_the_flush_ipi_is_useful_only_if_the_target_held_a_migrating_page(tmp_path: Path) -> None:
    trace = _two_page_trace(tmp_path, [access(5, 2, 20)])  # CPU 2 in the mask, holds only page 20
    out = tmp_path / "run"
    run(trace, out, policies=["batched"], profile=hand_profile())
    (flush,) = _table(out, "batched", "flushes")
    assert (flush["targets"], flush["targets_holding"]) == (2, 1)  # CPUs 1 and 2; only 1 held A
    stats = {s["cpu"]: s for s in _table(out, "batched", "cpu_stats")}
    assert (stats[1]["ipis_received"], stats[1]["ipis_useful"]) == (1, 1)
    assert (stats[2]["ipis_received"], stats[2]["ipis_useful"]) == (1, 0)
    assert stats[2]["irq_ns"] == 300 + 2 * 10  # responder time plus two invlpg


@pytest.mark.parametrize(("policy", "outcome"), [("serial", 0), ("batched", 2)])
def test_batched_full_flush_evicts_the_pids_other_entries_on_targets(
    tmp_path: Path, policy: str, outcome: int
) -> None:
    """CPU 1 holds page 99, which is not migrated. 40 pages (> ceiling 33) migrate: batched
    targets flush the whole address space, so CPU 1's next access to page 99 walks (2);
    serial invalidates page by page, so it still hits in the L1 dTLB (0)."""
    rows = [access(0, 1, 99)] + [access(1 + v, 0, v) for v in range(40)]
    rows += migrate_pages(1_000, 0, list(range(40)), 1, req=1)
    rows.append(access(10_000_000, 1, 99))
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, policies=[policy], profile=hand_profile(), emit_accesses=True)
    acc = _table(out, policy, "accesses")
    assert (acc[-1]["vpn"], acc[-1]["outcome"]) == (99, outcome)


def test_pages_move_to_the_destination_node_at_their_remap(tmp_path: Path) -> None:
    """CPU 4 (node 1) reads page 10 before and after it moves from node 0 to node 1."""
    rows = [access(0, 0, 10), access(1, 4, 10), *migrate_pages(1_000, 0, [10], 1, req=1),
            access(100_000, 4, 10)]
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, policies=["serial"], profile=hand_profile(), emit_accesses=True)
    acc = _table(out, "serial", "accesses")
    assert [a["remote"] for a in acc] == [False, True, False]


def test_busy_pages_fall_back_to_one_by_one_sync_migration(tmp_path: Path) -> None:
    """With every attempt busy, a sync batched call gives up after 3 async + 7 sync passes."""
    rows = [access(v, v % 2, v) for v in range(4)] + [migrate_pages(100, 0, [0, 1, 2, 3], 1, req=1)][0]
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, profile=hand_profile("migrate.fail_probability=0.999999"))
    batched = _table(out, "batched", "migrations")
    assert {(m["status"], m["attempts"]) for m in batched} == {("failed", 10)}
    kinds = [b["kind"] for b in _table(out, "batched", "batches")]
    assert kinds == ["batch", "sync_retry", "sync_retry", "sync_retry", "sync_retry"]
    serial = _table(out, "serial", "migrations")
    assert {(m["status"], m["attempts"]) for m in serial} == {("failed", 10)}
    assert _table(out, "batched", "flushes") == []
