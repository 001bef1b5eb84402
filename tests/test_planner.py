"""The planner's plans are exactly those of the reference model (planner_reference.py, written
from KERNEL.md and docs/model.md): every round, page and batch, in the same order, with the same
dtypes, gids and batch ids, and the same pages skipped."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_reference import ReferencePlanner
from replay_helpers import access, load_prepass, migrate_node, migrate_pages, write_trace
from test_kernel_reference import workloads

from tracereplay.config import Profile, load_profile
from tracereplay.machine import Machine
from tracereplay.migrate import POLICIES, CallPlan, Planner
from tracereplay.prepass import PrePass


def _prepass(path: Path, profile: Profile) -> PrePass:
    return load_prepass(path, profile)[1]


def _same_columns(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    assert list(got) == list(want), what
    for k, w in want.items():
        g = got[k]
        assert g.dtype == w.dtype, f"{what}.{k}: {g.dtype} != {w.dtype}"
        assert g.shape == w.shape, f"{what}.{k}: {g.shape} != {w.shape}"
        assert np.array_equal(g, w), f"{what}.{k}: {g} != {w}"


def stores(pre: PrePass, rows: list[dict]) -> list[tuple[int, int]]:
    """(ts_ns, page id) of every store among the trace's rows."""
    return [(r["ts_ns"], int(pre.page_ids(np.array([r["pid"]]), np.array([r["vaddr"] >> 12]))[0]))
            for r in rows if r["kind"] == "access" and r["write"]]


def assert_same_plans(pre: PrePass, profile: Profile, policy: str,
                      rows: list[dict] | None = None) -> int:
    """Plan with the planner and the reference; fail on any difference. Returns the calls."""
    planner = Planner(pre, profile, policy)
    ref = ReferencePlanner(pre, profile, policy, stores(pre, rows or []))
    got: list[CallPlan] = list(planner)
    want = ref.plans()
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert (g.start_ns, g.end_ns) == (w.start_ns, w.end_ns), f"call {i}"
        _same_columns(g.rounds, w.rounds, f"call {i} rounds")
        _same_columns(g.pages, w.pages, f"call {i} pages")
        assert g.batches == w.batches, f"call {i} batches"
        assert [type(v) for b in g.batches for v in b.values()] == \
            [type(v) for b in w.batches for v in b.values()], f"call {i} batch value types"
    assert (planner.calls, planner.skipped_busy, planner.skipped_on_dst, planner.absent_pages) == \
        (ref.calls, ref.skipped_busy, ref.skipped_on_dst, ref.absent_pages)
    gm, wm = planner.masks(), ref.masks()
    assert gm.dtype == wm.dtype and np.array_equal(gm, wm)
    e, n = planner.engine, pre.n_pages
    assert (e.n_rounds, e.n_batches) == (ref.n_rounds, ref.n_batches)
    assert e.node_now[:n].tolist() == ref.node
    assert e.busy_until[:n].tolist() == ref.busy_until
    return len(got)


@st.composite
def planning_overrides(draw: st.DrawFn) -> list[str]:
    """Costs and resolutions that make every branch of the policies reachable."""
    return [
        f"policy.serial.mm_cpumask_sample_pages={draw(st.integers(1, 6))}",
        f"migrate.other_ns={draw(st.sampled_from([0, 150]))}",
        f"flush.invlpg_ns={draw(st.sampled_from([0, 100]))}",
        f"flush.ipi_extra_target_ns={draw(st.sampled_from([0, 40]))}",
        f"flush.ceiling_pages={draw(st.integers(0, 4))}",
        f"policy.batched.batch_pages={draw(st.integers(1, 8))}",
        f"policy.serial.passes={draw(st.integers(1, 3))}",
        f"policy.batched.passes={draw(st.integers(1, 3))}",
        f"policy.batched.async_passes={draw(st.integers(1, 3))}",
        f"policy.batched.sync_passes={draw(st.integers(1, 3))}",
        f"policy.transactional.retries={draw(st.integers(0, 2))}",
        f"copy.engine={draw(st.sampled_from(['cpu', 'mt', 'dma']))}",
        f"copy.threads={draw(st.integers(1, 4))}",
        f"copy.channels={draw(st.integers(1, 4))}",
        f"copy.cpu.folio_ns={draw(st.sampled_from([0, 30]))}",
        f"copy.mt.link_page_ns={draw(st.sampled_from([10, 200]))}",
        f"copy.dma.descriptor_bytes={draw(st.sampled_from([1000, 4096]))}",
        f"copy.dma.device_page_ns={draw(st.sampled_from([10, 900]))}",
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(), planning_overrides(), st.sampled_from([0.0, 0.0, 0.0, 0.3]))
def test_plans_match_reference(w: tuple[Machine, list[dict], list[str]], extra: list[str],
                               fail: float) -> None:
    machine, rows, overrides = w
    profile = load_profile(overrides=[*overrides, *extra, f"migrate.fail_probability={fail}"])
    with tempfile.TemporaryDirectory() as d:
        pre = _prepass(write_trace(Path(d) / "t.parquet", rows, machine), profile)
    for policy in POLICIES:
        assert_same_plans(pre, profile, policy, rows)


def test_plans_match_reference_on_long_queued_calls(tmp_path: Path) -> None:
    """Whole-node and explicit calls of hundreds of pages queued on a few CPUs, masks growing
    while the calls run, several chunk and segment sizes, both mask modes."""
    machine = Machine.spread(8, 2)
    rng = np.random.default_rng(7)
    rows = [access(int(t), int(rng.integers(0, 8)), int(rng.integers(0, 700)),
                   pid=int(rng.integers(1, 3)), write=bool(rng.random() < 0.3))
            for t in np.sort(rng.integers(0, 400_000, 4000))]
    rows += [access(200_000 + 1000 * c, c, 5, pid=1) for c in range(8)]  # late first touches
    for req, ts in enumerate(range(0, 400_000, 37_000)):
        cpu, pid = int(rng.integers(0, 3)), int(rng.integers(1, 3))
        mode = "async" if req % 3 == 0 else "sync"
        if req % 2:
            rows.append(migrate_node(ts, cpu, req % 2, 1 - req % 2, req, pid=pid, mode=mode))
        else:
            vpns = [int(v) for v in rng.integers(0, 700, 300)]
            rows += migrate_pages(ts, cpu, vpns, int(rng.integers(0, 2)), req, pid=pid, mode=mode)
    path = write_trace(tmp_path / "t.parquet", rows, machine)
    calls = 0
    for mode in ("sticky", "window"):
        for size, sample in ((512, 512), (64, 100), (7, 3), (1, 1)):
            profile = load_profile(overrides=[
                f"flush.mm_cpumask={mode}", "flush.mm_cpumask_window_ns=20000",
                f"policy.batched.batch_pages={size}",
                f"policy.serial.mm_cpumask_sample_pages={sample}",
                "flush.ceiling_pages=33", "migrate.copy_ns=700",
                f"copy.engine={('cpu', 'mt', 'dma')[size % 3]}", "copy.threads=3",
                "copy.channels=5"])
            pre = _prepass(path, profile)
            for policy in POLICIES:
                calls += assert_same_plans(pre, profile, policy, rows)
    assert calls > 100


def _first_overlap(plans: list) -> float:
    """The start of the first call that begins before an earlier one has ended (inf if none)."""
    end = -1
    for p in plans:
        if p.start_ns < end:
            return float(p.start_ns)
        end = max(end, p.end_ns)
    return float("inf")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(), planning_overrides(), st.sampled_from([0.0, 0.3]))
def test_batched_copy_with_the_cpu_engine_does_batched_work_but_remaps_no_earlier(
        w: tuple[Machine, list[dict], list[str]], extra: list[str], fail: float) -> None:
    """Same calls, same phases and ends as batched; every page remapped at or after its
    batched remap, and no page of a batch before the batch's whole copy is done."""
    machine, rows, overrides = w
    profile = load_profile(overrides=[*overrides, *extra, f"migrate.fail_probability={fail}",
                                      "copy.engine=cpu"])
    with tempfile.TemporaryDirectory() as d:
        pre = _prepass(write_trace(Path(d) / "t.parquet", rows, machine), profile)
    seq, bc = list(Planner(pre, profile, "batched")), list(Planner(pre, profile, "batched-copy"))
    # A call that starts while another runs finds pages that batched-copy still holds unmapped
    # (busy) where batched has remapped them: from the first such call on, the two policies may
    # move different pages. Compare the calls before it.
    cut = min(_first_overlap(seq), _first_overlap(bc))
    seq, bc = [p for p in seq if p.start_ns < cut], [p for p in bc if p.start_ns < cut]
    assert [(p.start_ns, p.end_ns) for p in seq] == [(p.start_ns, p.end_ns) for p in bc]
    for s, b in zip(seq, bc, strict=True):
        drop = [{k: v for k, v in x.items() if k != "first_remap_ns"} for x in s.batches]
        assert drop == [{k: v for k, v in x.items() if k != "first_remap_ns"} for x in b.batches]
        assert np.array_equal(s.pages["page"], b.pages["page"])
        assert (b.pages["remap_ns"] >= s.pages["remap_ns"]).all()
        moved = b.pages["status"] == 0
        for batch in b.batches:
            if batch["kind"] != "batch":
                continue
            mine = moved & (b.pages["batch_id"] == batch["batch_id"])
            if mine.any():
                # (at the copy's end only for a page no process maps: no PTE to remap)
                assert b.pages["remap_ns"][mine].min() >= b.pages["copy_end_ns"][mine].max()
