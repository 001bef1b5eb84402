"""The compiled kernel agrees exactly with the plain-Python reference model."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replay_helpers import (
    access,
    all_ops,
    kernel_setup,
    map_folio,
    migrate_node,
    migrate_pages,
    new_state,
    run_kernel,
    write_trace,
)

from tracereplay.config import load_profile
from tracereplay.kernel import NO_ACCESSES, NO_LIMIT, OP_ROUND, STAMP_MAX, STAT_NAMES, Accesses
from tracereplay.machine import Machine
from tracereplay.migrate import Planner


@st.composite
def workloads(draw: st.DrawFn, span: int = 20_000, max_nodes: int = 2) -> tuple[Machine, list[dict], list[str]]:
    """Small machines and traces, with tiny TLBs so evictions, full flushes and stalls abound
    (times in 0..span ns: a short span packs accesses into the calls' windows; nodes in
    1..max_nodes)."""
    cpus = draw(st.integers(2, 6))
    nodes = draw(st.integers(1, max_nodes))
    machine = Machine.spread(cpus, nodes)
    pids = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True))
    n = draw(st.integers(1, 150))
    rows = []
    # Large folios, each in a region of its own (vpn 1024 r ..): PTE-mapped (orders 1-3) and
    # PMD-mapped (order 9), mapped at the start; accesses and explicit rows name their pages.
    folios = [(pid, 1024 * r, draw(st.sampled_from([1, 2, 3, 9])))
              for r, pid in enumerate(draw(st.lists(st.sampled_from(pids), max_size=3)), 1)]
    rows += [map_folio(0, v, order, draw(st.integers(0, nodes - 1)), pid=pid)
             for pid, v, order in folios]

    def some_page(pid: int) -> int:
        mine = [(v, order) for p, v, order in folios if p == pid]
        if mine and draw(st.booleans()):
            v, order = draw(st.sampled_from(mine))
            return v + draw(st.integers(0, (1 << order) - 1))
        return draw(st.integers(0, 24))

    for _ in range(n):
        pid = draw(st.sampled_from(pids))
        rows.append(access(draw(st.integers(0, span)), draw(st.integers(0, cpus - 1)),
                           some_page(pid), pid=pid, write=draw(st.booleans())))
    for req in range(draw(st.integers(0, 4))):
        ts = draw(st.integers(0, span))
        cpu = draw(st.integers(0, cpus - 1))
        pid = draw(st.sampled_from(pids))
        dst = draw(st.integers(0, nodes - 1))
        mode = draw(st.sampled_from(["sync", "async"]))
        if draw(st.booleans()):
            rows.append(migrate_node(ts, cpu, draw(st.integers(0, nodes - 1)), dst, req, pid=pid, mode=mode))
        else:
            vpns = [some_page(pid) for _ in range(draw(st.integers(1, 12)))]
            # Pages mapped several times (shared): each mapping unmapped and remapped.
            maps = draw(st.none() | st.lists(st.none() | st.integers(0, 4), min_size=len(vpns),
                                             max_size=len(vpns)))
            # The migrating task off its CPU before a page's unmap and before its move.
            pause = st.none() | st.integers(0, 3000)
            off = draw(st.none() | st.lists(st.tuples(pause, pause), min_size=len(vpns),
                                            max_size=len(vpns)))
            rows += migrate_pages(ts, cpu, vpns, dst, req, pid=pid, mode=mode, mappings=maps,
                                  off_cpu=off)
    overrides = [
        f"tlb.l1_entries={draw(st.sampled_from([2, 4]))}", "tlb.l1_ways=2",
        f"tlb.l2_entries={draw(st.sampled_from([4, 6, 8]))}", "tlb.l2_ways=2",
        f"flush.ceiling_pages={draw(st.integers(0, 4))}",
        f"policy.batched.batch_pages={draw(st.integers(1, 8))}",
        f"migrate.fail_probability={draw(st.sampled_from([0.0, 0.3]))}",
        f"migrate.seed={draw(st.integers(0, 5))}",
        f"flush.mm_cpumask={draw(st.sampled_from(['sticky', 'window']))}",
        "flush.mm_cpumask_window_ns=3000",
        f"migrate.copy_ns={draw(st.sampled_from([50, 350, 2000]))}",
        # Calls queued behind their CPU's previous one, or each at its trace time (overlapping).
        f"migrate.call_start={draw(st.sampled_from(['queued', 'trace']))}",
        # 2 MiB translations: arrays of their own, or shared with the 4 KiB ones.
        *draw(st.sampled_from([[], ["tlb.l1_2m_entries=0", "tlb.l1_2m_ways=0"]])),
        *draw(st.sampled_from([[], ["tlb.l2_2m_entries=4", "tlb.l2_2m_ways=2"]])),
    ]
    mechanism = draw(st.sampled_from(["ipi", "invlpgb", "tlbi"]))
    overrides += [f"flush.mechanism={mechanism}", f"flush.invlpgb.min_cpus={draw(st.integers(1, 4))}"]
    if mechanism == "tlbi":
        overrides.append("machine.arch=arm64")
    return machine, rows, overrides


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(), st.sampled_from(["serial", "batched", "transactional"]), st.integers(1, 64),
       st.booleans())
def test_kernel_matches_reference_model(w: tuple[Machine, list[dict], list[str]], policy: str,
                                        chunk: int, closed_loop: bool) -> None:
    _kernel_equals_reference(w, policy, chunk, closed_loop)


def _kernel_equals_reference(w: tuple[Machine, list[dict], list[str]], policy: str, chunk: int,
                             closed_loop: bool) -> None:
    machine, rows, overrides = w
    profile = load_profile(overrides=overrides)
    with tempfile.TemporaryDirectory() as d:
        path = write_trace(Path(d) / "t.parquet", rows, machine)
        pre, planner, acc = kernel_setup(path, profile, policy)
    got = run_kernel(pre, profile, planner, acc, chunk, closed_loop=closed_loop)
    buffer, masks = all_ops(pre, profile, policy)
    want = reference.replay(pre, profile, buffer, masks, *acc, closed_loop=closed_loop)
    assert got["stalls_at"] == want.stalls_at
    if not closed_loop:
        assert want.stalls_at == [int(acc[0][i]) for i, *_ in want.stalls]
    for c in range(machine.cpus):
        assert {k: int(got["stats"][c, j]) for j, k in enumerate(STAT_NAMES)} == want.stats[c], f"cpu {c}"
    assert got["holding"] == want.holding
    assert got["stalls"] == want.stalls
    assert got["outcomes"] == want.outcomes


@st.composite
def crowded_calls(draw: st.DrawFn) -> tuple[Machine, list[dict], list[str]]:
    """Few pages, calls that overlap and accesses packed into their windows: closed loop, a
    stalled CPU's later accesses land in windows opened after their trace time."""
    cpus = draw(st.integers(2, 4))
    nodes = draw(st.integers(1, 2))
    rows = [access(v, draw(st.integers(0, cpus - 1)), v) for v in range(12)]
    for req in range(draw(st.integers(1, 3))):
        vpns = draw(st.lists(st.integers(0, 11), min_size=1, max_size=8, unique=True))
        rows += migrate_pages(draw(st.integers(100, 3000)), draw(st.integers(0, cpus - 1)), vpns,
                              draw(st.integers(0, nodes - 1)), req,
                              mode=draw(st.sampled_from(["sync", "async"])))
    rows += [access(draw(st.integers(100, 8000)), draw(st.integers(0, cpus - 1)),
                    draw(st.integers(0, 11)), write=draw(st.booleans()))
             for _ in range(draw(st.integers(1, 80)))]
    overrides = [
        "tlb.l1_entries=2", "tlb.l1_ways=2", "tlb.l2_entries=4", "tlb.l2_ways=2",
        f"flush.ceiling_pages={draw(st.integers(0, 4))}",
        f"policy.batched.batch_pages={draw(st.integers(1, 8))}",
        f"migrate.fail_probability={draw(st.sampled_from([0.0, 0.3]))}",
        f"migrate.copy_ns={draw(st.sampled_from([350, 2000]))}",
    ]
    return Machine.spread(cpus, nodes), rows, overrides


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crowded_calls(), st.sampled_from(["serial", "batched", "transactional"]), st.integers(1, 16))
def test_kernel_matches_reference_model_closed_loop(w: tuple[Machine, list[dict], list[str]],
                                                    policy: str, chunk: int) -> None:
    _kernel_equals_reference(w, policy, chunk, True)


@st.composite
def with_distances(draw: st.DrawFn) -> tuple[Machine, list[dict], list[str]]:
    """A workload on up to 4 nodes under a random node-distance matrix (SLIT rules: 10 on the
    diagonal, 11..254 elsewhere, either direction its own), remote_ns measured at one of its
    distances."""
    machine, rows, overrides = draw(workloads(max_nodes=4))
    n = machine.nodes
    d = [[10 if i == j else draw(st.integers(11, 254)) for j in range(n)] for i in range(n)]
    off = sorted({x for i, r in enumerate(d) for j, x in enumerate(r) if i != j}) or [0]
    local = draw(st.integers(0, 200))
    overrides += [f"machine.nodes={n}", f"memory.distances={d}",
                  f"memory.remote_distance={draw(st.sampled_from(off))}",
                  f"memory.local_ns={local}", f"memory.remote_ns={local + draw(st.integers(0, 300))}"]
    return machine, rows, overrides


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_distances(), st.sampled_from(["serial", "batched"]), st.integers(1, 64),
       st.booleans())
def test_kernel_matches_reference_model_with_node_distances(
        w: tuple[Machine, list[dict], list[str]], policy: str, chunk: int, closed_loop: bool) -> None:
    _kernel_equals_reference(w, policy, chunk, closed_loop)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_counters_add_up_and_batched_never_sends_more_ipis(w: tuple[Machine, list[dict], list[str]]) -> None:
    machine, rows, overrides = w
    # One CPU issues every call, and mm_cpumask only grows (sticky): with calls racing on
    # several CPUs, which call reaches a page first (and so whose mm_cpumask its flush reads)
    # depends on each policy's timing, and a window mask can shrink between batched's earlier
    # round and serial's later ones; either lets batched send an IPI that serial does not.
    first = next((r["cpu"] for r in rows if r["kind"] == "migrate"), 0)
    rows = [{**r, "cpu": first} if r["kind"] == "migrate" else r for r in rows]
    # Both policies read mm_cpumask at the same resolution (serial every batch_pages pages, as
    # batched does once per batch): the property is about batching, not about when a CPU that
    # starts running the process mid-call is noticed.
    batch = next(o.split("=")[1] for o in overrides if o.startswith("policy.batched.batch_pages="))
    # And both flush by IPIs: under invlpgb a call that starts earlier (batched's calls queue
    # less) may see fewer than min_cpus CPUs and send IPIs where serial's later call broadcasts.
    profile = load_profile(overrides=[*overrides, "migrate.fail_probability=0.0",
                                      f"policy.serial.mm_cpumask_sample_pages={batch}",
                                      "flush.mechanism=ipi", "machine.arch=x86_64",
                                      "flush.mm_cpumask=sticky"])
    ipis = {}
    with tempfile.TemporaryDirectory() as d:
        path = write_trace(Path(d) / "t.parquet", rows, machine)
        for policy in ("serial", "batched"):
            pre, planner, acc = kernel_setup(path, profile, policy)
            s = run_kernel(pre, profile, planner, acc, 1000)["stats"]
            col = {k: s[:, j] for j, k in enumerate(STAT_NAMES)}
            assert (col["l1_hits"] + col["l2_hits"] + col["walks"] == col["accesses"]).all()
            assert (col["stalls"] <= col["walks"]).all()
            assert (col["ipis_useful"] <= col["ipis_received"]).all()
            assert col["accesses"].sum() == len(acc[0])
            ipis[policy] = int(col["ipis_received"].sum())
    assert ipis["batched"] <= ipis["serial"]


def test_no_translation_of_a_migrated_page_survives_its_completed_flush(tmp_path: Path) -> None:
    """After every round, no CPU holds a translation of a page the round covered."""
    machine = Machine.spread(4, 2)
    rows = [access(t, t % 4, t % 30) for t in range(0, 3000, 7)]
    rows += migrate_pages(1500, 0, list(range(0, 30, 2)), 1, req=1)
    rows.append(migrate_node(2500, 3, 0, 1, req=2))
    path = write_trace(tmp_path / "t.parquet", rows, machine)
    for policy in ("serial", "batched"):
        profile = load_profile(overrides=["flush.ceiling_pages=4", "policy.batched.batch_pages=8"])
        pre, _, acc = kernel_setup(path, profile, policy)
        buffer, masks = all_ops(pre, profile, policy)
        model = reference.replay(pre, profile, buffer, masks, *acc)
        assert sum(s["stalls"] + s["stale_hits"] for s in model.stats) > 0
        # Replay up to each round's completion and look into every TLB.
        ts = acc[0]
        ops = buffer.ops
        for k in np.flatnonzero(ops["kind"] == OP_ROUND)[:50]:
            r = int(ops["arg"][k])
            covered = set(buffer.r_pages[buffer.r_ptr[r]:buffer.r_ptr[r + 1]].tolist())
            state = new_state(pre, profile)
            planner = Planner(pre, profile, policy)
            state.add(list(planner), planner.masks(), pre.cpu_first_ns)
            cut = int(np.searchsorted(ts, ops["ts"][k], side="right"))
            state.step(Accesses(*(a[:cut] for a in acc)))
            state.step(NO_ACCESSES, limit=int(ops["ts"][k]))
            for c in range(machine.cpus):
                held = set(state.tlbs.l1_tag[c].tolist()) | set(state.tlbs.l2_tag[c].tolist())
                assert not covered & held, f"{policy}: cpu {c} holds {covered & held} after round {r}"


def test_lru_clock_restart_keeps_every_outcome(tmp_path: Path) -> None:
    """32-bit LRU stamps are renumbered when the clock reaches STAMP_MAX: a replay whose clock
    starts just below it has the outcomes and counters of one that starts at zero."""
    machine = Machine.spread(4, 2)
    rows = [access(t, t % 4, (t * 7) % 40) for t in range(0, 4000, 3)]
    rows.append(migrate_node(2000, 1, 0, 1, req=1))
    path = write_trace(tmp_path / "t.parquet", rows, machine)
    profile = load_profile(overrides=["tlb.l1_entries=4", "tlb.l1_ways=2", "tlb.l2_entries=8",
                                      "tlb.l2_ways=4", "flush.ceiling_pages=2"])
    pre, _, acc = kernel_setup(path, profile, "batched")
    runs = []
    for start in (0, STAMP_MAX - 500):
        state = new_state(pre, profile)
        planner = Planner(pre, profile, "batched")
        state.add(list(planner), planner.masks(), pre.cpu_first_ns)
        state.tlbs.clock[0] = start
        steps = [state.step(Accesses(*(a[s:s + 300] for a in acc)), emit=True)
                 for s in range(0, len(acc[0]), 300)]
        outs = [(o.outcome, o.remote, o.latency_ns) for o in steps]
        state.step(NO_ACCESSES, limit=NO_LIMIT)
        runs.append((state.stats, [np.concatenate(col) for col in zip(*outs, strict=True)]))
    assert state.tlbs.clock[0] < 1000  # the clock restarted
    assert (runs[0][0] == runs[1][0]).all()
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert (a == b).all()
