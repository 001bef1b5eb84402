"""Flush mechanisms: IPI rounds, AMD INVLPGB and arm64 TLBI broadcasts, on hand-checked traces."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from replay_helpers import access, hand_profile, migrate_node, write_trace

from tracereplay.config import load_profile
from tracereplay.errors import ConfigError
from tracereplay.flush import MECHANISMS
from tracereplay.machine import Machine
from tracereplay.query import run_query
from tracereplay.replay import run

TWO_NODES = Machine.spread(8, 2)  # CPUs 0-3 on node 0, 4-7 on node 1
BROADCAST_COSTS = ["flush.invlpgb.page_ns=20", "flush.invlpgb.tlbsync_ns=200",
                   "flush.tlbi.page_ns=20", "flush.tlbi.dsb_ns=300"]
MECHANISM_SETS = {
    "ipi": [],
    "invlpgb": ["flush.mechanism=invlpgb"],
    "tlbi": ["flush.mechanism=tlbi", "machine.arch=arm64"],
}


def _table(out: Path, policy: str, name: str) -> list[dict]:
    return pq.read_table(out / f"policy={policy}" / f"{name}.parquet").to_pylist()


def _migrate_1000_pages(tmp_path: Path, cpus: int, mechanism: str) -> Path:
    """A pid that ran on CPUs 0 .. cpus-1; CPU 0 migrates its 1000 pages from node 0 to 1."""
    rows = [access(v, v % cpus, v) for v in range(1000)]
    rows.append(migrate_node(10_000, 0, 0, 1, req=1))
    trace = write_trace(tmp_path / "t.parquet", rows, TWO_NODES)
    out = tmp_path / mechanism
    run(trace, out, profile=hand_profile(*BROADCAST_COSTS, *MECHANISM_SETS[mechanism]))
    return out


def test_the_mechanisms_are_registered_with_their_architectures() -> None:
    assert {n: m.arches for n, m in MECHANISMS.items()} == {
        "ipi": ("x86_64", "arm64"), "invlpgb": ("x86_64",), "tlbi": ("arm64",)}
    assert load_profile().flush.mechanism == "ipi"
    assert load_profile("arm64-2s").flush.mechanism == "tlbi"


@pytest.mark.parametrize(("mechanism", "serial_cost", "batch_costs"), [
    # INVLPGB: 20 ns a page + 200 ns TLBSYNC. TLBI: 20 ns a page + 300 ns DSB.
    ("invlpgb", 220, [20 * 512 + 200, 20 * 488 + 200]),
    ("tlbi", 320, [20 * 512 + 300, 20 * 488 + 300]),
])
def test_a_broadcast_sends_no_ipi_yet_its_rounds_are_in_flushes(
        tmp_path: Path, mechanism: str, serial_cost: int, batch_costs: list[int]) -> None:
    out = _migrate_1000_pages(tmp_path, 4, mechanism)
    serial, batched = _table(out, "serial", "flushes"), _table(out, "batched", "flushes")
    assert len(serial) == 1000
    # Every other CPU of the machine is reached (7), none by an IPI; pages are invalidated one
    # by one, never by a full flush.
    assert {(f["pages"], f["targets"], f["cpus_reached"], f["mechanism"], f["cost_ns"],
             f["target_full_flush"]) for f in serial} == {(1, 0, 7, mechanism, serial_cost, False)}
    assert [(f["pages"], f["targets"], f["cpus_reached"], f["mechanism"], f["cost_ns"])
            for f in batched] == [(512, 0, 7, mechanism, batch_costs[0]),
                                  (488, 0, 7, mechanism, batch_costs[1])]
    for policy in ("serial", "batched"):
        stats = _table(out, policy, "cpu_stats")
        assert sum(s["ipis_received"] for s in stats) == 0
        assert sum(s["irq_ns"] for s in stats) == 0
        counts = run_query("flush_counts", [out / f"policy={policy}"]).to_pylist()[0]
        assert (counts["ipis_sent"], counts["ipi_rounds"]) == (0, 0)
        assert counts["flush_rounds"] == len(_table(out, policy, "flushes"))


def test_serial_with_invlpgb_migrates_faster_than_with_ipis(tmp_path: Path) -> None:
    """Per page: unmap 100 + flush + copy 1000 + remap 100; the flush is 10 (invlpg) + 500 (one
    IPI round) with IPIs, 20 + 200 with INVLPGB."""
    took = {}
    for mechanism in ("ipi", "invlpgb"):
        (batch,) = _table(_migrate_1000_pages(tmp_path, 4, mechanism), "serial", "batches")
        took[mechanism] = batch["end_ns"] - batch["start_ns"]
    assert took == {"ipi": 1000 * 1710, "invlpgb": 1000 * 1420}


def test_a_process_on_two_cpus_still_gets_ipis_under_invlpgb(tmp_path: Path) -> None:
    """Fewer than 3 CPUs: no global ASID, so Linux flushes it by IPIs as before."""
    out = _migrate_1000_pages(tmp_path, 2, "invlpgb")
    serial, batched = _table(out, "serial", "flushes"), _table(out, "batched", "flushes")
    assert {(f["targets"], f["cpus_reached"], f["mechanism"], f["cost_ns"]) for f in serial} == {
        (1, 1, "ipi", 510)}
    assert [(f["pages"], f["targets"], f["mechanism"]) for f in batched] == [
        (-1, 1, "ipi"), (-1, 1, "ipi")]
    assert sum(s["ipis_received"] for s in _table(out, "serial", "cpu_stats")) == 1000


def test_a_broadcast_counts_the_cpus_reached_that_held_a_translation(tmp_path: Path) -> None:
    """CPUs 1-3 each touched a quarter of the pages. Under ipi the first batch's round is a
    full flush (512 pages > 33) that also empties CPUs 1-3 of the second batch's pages, so the
    second round's IPIs find nothing; INVLPGB invalidates page by page, so each round reaches
    three CPUs that still hold one of its pages, and sends no IPI."""
    by = {}
    for mechanism in ("ipi", "invlpgb"):
        rows = _table(_migrate_1000_pages(tmp_path, 4, mechanism), "batched", "flushes")
        by[mechanism] = [(f["targets_holding"], f["reached_holding"]) for f in rows]
    assert by == {"ipi": [(3, 3), (0, 0)], "invlpgb": [(0, 3), (0, 3)]}


@pytest.mark.parametrize(("sets", "message"), [
    (["flush.mechanism=rar"], r"config 'flush.mechanism' must be one of ipi, invlpgb, tlbi"),
    (["flush.mechanism=tlbi"],
     r"config 'flush.mechanism' does not exist on machine.arch 'x86_64' \(only on arm64\)"),
    (["flush.mechanism=invlpgb", "machine.arch=arm64"],
     r"config 'flush.mechanism' does not exist on machine.arch 'arm64' \(only on x86_64\)"),
    (["flush.tlbi.dsb_ns=-5"], r"config 'flush.tlbi.dsb_ns' must be a non-negative integer"),
    (["flush.invlpgb.min_cpus=0"], r"config 'flush.invlpgb.min_cpus' must be at least 1"),
    (["machine.arch=riscv"], r"config 'machine.arch' must be one of x86_64, arm64"),
])
def test_a_mechanism_the_profile_cannot_have_is_refused_naming_the_key(
        sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_profile(overrides=sets)


def test_an_unknown_mechanism_section_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[flush.rar]\npage_ns = 5\n")
    with pytest.raises(ConfigError, match=r"unknown flush mechanism section '\[flush.rar\]'"):
        load_profile(config_file=bad)


def test_config_lists_each_mechanisms_costs_with_a_source() -> None:
    for name in ("intel-2s", "arm64-2s"):
        rows = {key: source for key, _, _, source in load_profile(name).rows()}
        for key in ("flush.mechanism", "flush.invlpgb.page_ns", "flush.invlpgb.tlbsync_ns",
                    "flush.invlpgb.min_cpus", "flush.tlbi.page_ns", "flush.tlbi.dsb_ns",
                    "machine.arch"):
            assert rows[key], f"{name}: {key} has no source"
