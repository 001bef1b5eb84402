"""Transactional migration (Nomad): copies while mapped, aborts when the page was written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from replay_helpers import access, hand_profile, migrate_pages, write_trace

from tracereplay.machine import Machine
from tracereplay.replay import run

TWO_NODES = Machine.spread(8, 2)  # CPUs 0-3 on node 0, 4-7 on node 1
SEED = Path(__file__).parent.parent / "sample_traces" / "seed.parquet"


def _table(out: Path, policy: str, name: str) -> list[dict]:
    return pq.read_table(out / f"policy={policy}" / f"{name}.parquet").to_pylist()


def test_a_write_during_the_copy_aborts_and_a_page_written_throughout_is_left(tmp_path: Path) -> None:
    """CPU 0 moves pages 10, 11, 12 of a process that ran on CPU 1; retries = 1. Per attempt:
    copy 1000, unmap 100, one IPI round to CPU 1 (500, CPU 0 is not in the mask), remap 100.

        page 10  copy 1000-2000 (read at 1500: free)  unmap 2100  flush -2600  remap 2700
        page 11  copy 2700-3700 (stored at 3000)      unmap 3800  flush -4300  restore 4400
                 copy 4400-5400                       unmap 5500  flush -6000  remap 6100
        page 12  stored every 100 ns from 6000 to 9000: both attempts abort, the page stays
                 copy 6100-7100 unmap 7200 restore 7800; copy 7800-8800 unmap 8900 restore 9500
    CPU 2 reads page 11 at 4350, inside its first unmap window: it stalls until the restore.
    """
    rows = [access(0, 1, 10), access(1, 1, 11), access(2, 1, 12), access(1500, 1, 10),
            access(3000, 1, 11, write=True), access(4350, 2, 11)]
    rows += [access(t, 1, 12, write=True) for t in range(6000, 9001, 100)]
    rows += migrate_pages(1000, 0, [10, 11, 12], 1, 1)
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / "run"
    run(trace, out, policies=["transactional"], profile=hand_profile("policy.transactional.retries=1"))
    got = [(m["vpn"], m["status"], m["attempts"], m["copy_start_ns"], m["unmap_ns"], m["flush_ns"],
            m["remap_ns"], m["dst_node"] if m["status"] == "migrated" else m["src_node"])
           for m in _table(out, "transactional", "migrations")]
    assert got == [
        (10, "migrated", 1, 1000, 2100, 2600, 2700, 1),
        (11, "aborted", 1, 2700, 3800, 4300, 4400, 0),
        (11, "migrated", 2, 4400, 5500, 6000, 6100, 1),
        (12, "aborted", 1, 6100, 7200, 7700, 7800, 0),
        (12, "aborted", 2, 7800, 8900, 9400, 9500, 0),
    ]
    (batch,) = _table(out, "transactional", "batches")
    assert (batch["kind"], batch["pages"], batch["nr_succeeded"], batch["end_ns"]) == (
        "transactional", 3, 2, 9500)
    assert (batch["copy_ns"], batch["flush_ns"]) == (5 * 1000, 5 * 500)
    stalls = [(s["cpu"], s["vpn"], s["stall_ns"]) for s in _table(out, "transactional", "stalls")]
    assert (2, 11, 50) in stalls
    assert len(_table(out, "transactional", "flushes")) == 5


def test_the_streamed_replay_waits_for_the_stores_and_equals_one_read(tmp_path: Path) -> None:
    """Row groups of 7 rows: the planner waits until the pre-pass has read past each call's
    horizon; the tables equal those of a read in one group."""
    rng = np.random.default_rng(3)
    rows = [access(int(t), int(rng.integers(0, 8)), int(rng.integers(0, 40)),
                   write=bool(rng.random() < 0.5)) for t in np.sort(rng.integers(0, 60_000, 600))]
    for req, ts in enumerate(range(2_000, 60_000, 9_000)):
        rows += migrate_pages(ts, req % 3, [int(v) for v in rng.integers(0, 40, 12)], req % 2, req)
    tables = {}
    for rg in (7, 1 << 20):
        trace = write_trace(tmp_path / f"t{rg}.parquet", rows, TWO_NODES, row_group_rows=rg)
        out = tmp_path / f"run{rg}"
        run(trace, out, policies=["transactional"], profile=hand_profile())
        tables[rg] = {name: pq.read_table(out / "policy=transactional" / f"{name}.parquet")
                      for name in ("migrations", "flushes", "stalls", "cpu_stats", "batches")}
    for name, table in tables[7].items():
        assert table.equals(tables[1 << 20][name]), name
    statuses = set(tables[7]["migrations"].column("status").to_pylist())
    assert statuses == {"migrated", "aborted"}


def test_on_the_seed_nearly_every_page_moves_with_far_fewer_stalls_than_batched(tmp_path: Path) -> None:
    out = tmp_path / "run"
    results = {r.policy: r.metrics for r in run(SEED, out, policies=["batched", "transactional"])}
    tx, batched = results["transactional"], results["batched"]
    assert tx["pages_migrated"] >= 0.99 * batched["pages_migrated"]
    assert tx["stalled_accesses"] * 100 < batched["stalled_accesses"]
    migrations = pq.read_table(out / "policy=transactional" / "migrations.parquet").to_pylist()
    stores: dict[int, list[int]] = {}
    seed = pq.read_table(SEED, columns=["ts_ns", "kind", "pid", "vaddr", "write"]).to_pylist()
    for r in seed:
        if r["kind"] == "access" and r["write"]:
            stores.setdefault((r["pid"] << 40) | (r["vaddr"] >> 12), []).append(r["ts_ns"])
    for m in migrations:
        written = [t for t in stores.get((m["pid"] << 40) | m["vpn"], [])
                   if m["copy_start_ns"] <= t < m["unmap_ns"]]
        # Never remapped to a stale copy; an attempt aborts only when the page was stored to.
        assert (m["status"] == "aborted") == bool(written), m
