"""Node distances (memory.distances): each access's memory latency by its (CPU node, page node)
pair, worked out by hand; bad matrices refused with the key named."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from replay_helpers import access, hand_profile, map_folio, write_trace

from tracereplay.cli import main
from tracereplay.config import load_profile
from tracereplay.distances import node_latency_ns
from tracereplay.errors import ConfigError, ConfigNote
from tracereplay.kernel import OUT_WALK
from tracereplay.machine import Machine
from tracereplay.replay import run

# The 4-node "segmented bus" 0 - 1 - 2 - 3 of Linux's kernel/sched/topology.c comment
# (Valentin Schneider, "[RFC] sched/topology: NUMA topology limitations", LKML, 14 Aug 2020).
SEGMENTED = [[10, 20, 30, 40], [20, 10, 20, 30], [30, 20, 10, 20], [40, 30, 20, 10]]
FOUR_NODES = Machine.spread(4, 4)  # CPU i on node i


def _matrix(m: list[list[int]]) -> str:
    return "[" + ", ".join("[" + ", ".join(map(str, r)) + "]" for r in m) + "]"


def _profile(distances: list[list[int]], remote_distance: int, nodes: int = 4) -> list[str]:
    return [f"machine.nodes={nodes}", "memory.local_ns=100", "memory.remote_ns=165",
            f"memory.distances={_matrix(distances)}", f"memory.remote_distance={remote_distance}",
            "tlb.walk_ns=90"]


def _replay(tmp_path: Path, machine: Machine, rows: list[dict], overrides: list[str]
            ) -> tuple[list[dict], list[dict]]:
    trace = write_trace(tmp_path / "t.parquet", rows, machine)
    out = tmp_path / "run"
    run(trace, out, policies=["serial"], profile=hand_profile(*overrides), emit_accesses=True)
    acc = pq.read_table(out / "policy=serial" / "accesses.parquet").to_pylist()
    cpus = pq.read_table(out / "policy=serial" / "cpu_stats.parquet").to_pylist()
    return acc, cpus


def test_four_nodes_each_remote_node_costs_its_distance(tmp_path: Path) -> None:
    """CPU 0 (node 0) walks to one page on each node, CPU 3 (node 3) to the node-0 page.

    remote_ns = 165 was measured at distance 30 (0 -> 2), local_ns = 100; by the rule
    100 + (165 - 100) * (d - 10) // (30 - 10):
      d 10 -> 100; d 20 -> 100 + 650 // 20 = 132; d 30 -> 165; d 40 -> 100 + 1950 // 20 = 197.
    Each access is a walk (90 ns) to a page seen for the first time.
    """
    rows = [map_folio(0, v, 0, v) for v in range(4)]  # page v on node v
    rows += [access(10 + v, 0, v) for v in range(4)] + [access(20, 3, 0)]
    acc, cpus = _replay(tmp_path, FOUR_NODES, rows, _profile(SEGMENTED, 30))
    got = [(a["cpu"], a["vpn"], a["outcome"], a["remote"], a["latency_ns"]) for a in acc]
    assert got == [(0, 0, OUT_WALK, False, 90 + 100), (0, 1, OUT_WALK, True, 90 + 132),
                   (0, 2, OUT_WALK, True, 90 + 165), (0, 3, OUT_WALK, True, 90 + 197),
                   (3, 0, OUT_WALK, True, 90 + 197)]
    by_cpu = {c["cpu"]: c for c in cpus}
    assert (by_cpu[0]["remote_accesses"], by_cpu[0]["mem_ns"]) == (3, 4 * 90 + 100 + 132 + 165 + 197)
    assert (by_cpu[3]["remote_accesses"], by_cpu[3]["mem_ns"]) == (1, 90 + 197)


def test_an_asymmetric_matrix_costs_each_direction_its_own(tmp_path: Path) -> None:
    """SLIT stores both directions: 0 -> 1 at 20 (remote_ns, measured), 1 -> 0 at 30:
    100 + 65 * 20 // 10 = 230."""
    machine = Machine.spread(2, 2)
    rows = [map_folio(0, 0, 0, 0), map_folio(0, 1, 0, 1), access(10, 0, 1), access(11, 1, 0)]
    acc, _ = _replay(tmp_path, machine, rows, _profile([[10, 20], [30, 10]], 20, nodes=2))
    assert [a["latency_ns"] for a in acc] == [90 + 165, 90 + 230]


def test_without_a_matrix_every_remote_pair_costs_remote_ns() -> None:
    table = node_latency_ns(100, 165, (), 0, 4)
    assert table.tolist() == [[100 if i == j else 165 for j in range(4)] for i in range(4)]


def test_a_pair_at_the_measured_distance_costs_remote_ns_exactly() -> None:
    table = node_latency_ns(90, 144, SEGMENTED, 20, 4)
    assert (table[np.asarray(SEGMENTED) == 20] == 144).all()
    assert table[0].tolist() == [90, 144, 90 + 54 * 2, 90 + 54 * 3]


@pytest.mark.parametrize(("overrides", "message"), [
    (["memory.distances=[[10, 20], [20, 10]]"],
     "config 'memory.distances' must be a 4 x 4 matrix (machine.nodes = 4: one row and one "
     "column per node)"),
    (["memory.distances=[[10, 20, 30, 40], [20, 10, 20], [30, 20, 10, 20], [40, 30, 20, 10]]"],
     "config 'memory.distances' must be a 4 x 4 matrix"),
    (["memory.distances=[[10, 20, 30, 40], [20, 11, 20, 30], [30, 20, 10, 20], [40, 30, 20, 10]]"],
     "config 'memory.distances' must be 10 on the diagonal (row 1, column 1 is 11)"),
    (["memory.distances=[[10, 10, 30, 40], [20, 10, 20, 30], [30, 20, 10, 20], [40, 30, 20, 10]]"],
     "config 'memory.distances' must be above 10 and below 255 (unreachable) off the diagonal "
     "(row 0, column 1 is 10)"),
    (["memory.distances=[[10, 20, 30, 255], [20, 10, 20, 30], [30, 20, 10, 20], [40, 30, 20, 10]]"],
     "config 'memory.distances' must be above 10 and below 255 (unreachable) off the diagonal "
     "(row 0, column 3 is 255)"),
    (["memory.distances=[[10, 20, 30, 4.5], [20, 10, 20, 30], [30, 20, 10, 20], [40, 30, 20, 10]]"],
     "config 'memory.distances' must hold integers (row 0, column 3 is 4.5)"),
    (["memory.distances=21"], "config 'memory.distances' must be a matrix"),
    ([f"memory.distances={_matrix(SEGMENTED)}"],
     "config 'memory.remote_distance' must be the distance at which memory.remote_ns was "
     "measured, one of the off-diagonal distances of memory.distances (20, 30, 40)"),
    ([f"memory.distances={_matrix(SEGMENTED)}", "memory.remote_distance=25"],
     "config 'memory.remote_distance' must be the distance"),
    ([f"memory.distances={_matrix(SEGMENTED)}", "memory.remote_distance=20",
      "memory.remote_ns=80"],
     "config 'memory.remote_ns' must not be below memory.local_ns (90) with memory.distances"),
])
def test_bad_matrices_name_the_key_and_rule(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load_profile(overrides=["machine.nodes=4", *overrides])


def test_a_bad_matrix_exits_2_naming_the_key(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["tracereplay", "config", "show",
                                      "--set", "memory.distances=[[10, 21], [21, 12]]"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'memory.distances' must be 10 on the diagonal (row 1, column 1 is 12)" in err
    assert "Traceback" not in err


def test_a_matrix_for_another_node_count_than_the_traces_is_refused(tmp_path: Path) -> None:
    """A 2-node matrix (and machine.nodes = 2 from a profile file) on a trace that records 4
    nodes: refused before anything is written."""
    own = tmp_path / "two-node.toml"
    own.write_text("[machine]\nnodes = 2\n[memory]\ndistances = [[10, 21], [21, 10]]\n"
                   "remote_distance = 21\n")
    trace = write_trace(tmp_path / "t.parquet", [access(0, 0, 1)], FOUR_NODES)
    out = tmp_path / "run"
    with pytest.warns(ConfigNote, match="machine.nodes = 4"), \
            pytest.raises(ConfigError, match=re.escape("the trace records a machine of 4 nodes; "
                                                       "'memory.distances' is a 2 x 2 matrix")):
        run(trace, out, policies=["serial"], profile=load_profile(str(own)))
    assert not out.exists()


def test_distances_are_plain_lists_in_the_profiles_dictionary() -> None:
    """A profile's matrix is plain lists in its dictionary (as run.json and TOML hold it)."""
    p = load_profile(overrides=_profile(SEGMENTED, 30))
    assert p.to_dict()["memory"]["distances"] == SEGMENTED
    assert p.memory.distances == tuple(map(tuple, SEGMENTED))
    assert load_profile().to_dict()["memory"]["distances"] == []


def test_the_calibration_docs_four_node_file_loads_and_gives_model_mds_latencies(
        tmp_path: Path) -> None:
    """docs/calibration.md's [memory] block with distances, as a profile file; its latencies
    from node 0 are the ones docs/model.md tabulates; a 4-node trace replays with it."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "calibration.md").read_text("utf-8")
    block = next(b for b in re.findall(r"```toml\n(.*?)```", doc, re.S) if "distances" in b)
    own = tmp_path / "four-node.toml"
    own.write_text(block)
    p = load_profile(str(own))
    table = node_latency_ns(p.memory.local_ns, p.memory.remote_ns, p.memory.distances,
                            p.memory.remote_distance, p.machine.nodes)
    assert table[0].tolist() == [100, 132, 165, 197]
    model = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text("utf-8")
    assert "latency     100    132    165    197 ns" in model
    rows = [map_folio(0, 3, 0, 3), access(10, 0, 3)]
    trace = write_trace(tmp_path / "t.parquet", rows, FOUR_NODES)
    run(trace, tmp_path / "run", policies=["serial"], profile=p, emit_accesses=True)
    acc = pq.read_table(tmp_path / "run" / "policy=serial" / "accesses.parquet").to_pylist()
    assert [a["latency_ns"] for a in acc] == [p.tlb.walk_ns + 197]
