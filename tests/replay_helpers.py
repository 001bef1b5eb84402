"""Build small traces and run the replay kernel directly, for the replay tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tracereplay import trace as tr
from tracereplay.config import Profile, load_profile
from tracereplay.kernel import NO_ACCESSES, NO_LIMIT, Accesses, KernelState, OpBuffer
from tracereplay.machine import Machine
from tracereplay.migrate import Planner
from tracereplay.prepass import KIND_ACCESS, PrePass, prepass

# Round numbers that make timelines easy to check by hand.
HAND_COSTS = [
    "migrate.other_ns=0", "migrate.unmap_ns=100", "migrate.copy_ns=1000", "migrate.remap_ns=100",
    "flush.invlpg_ns=10", "flush.full_flush_ns=10", "flush.ipi_initiator_ns=500",
    "flush.ipi_extra_target_ns=0", "flush.ipi_responder_ns=300",
]


def hand_profile(*extra: str) -> Profile:
    return load_profile(overrides=[*HAND_COSTS, *extra])


def access(ts: int, cpu: int, vpn: int, *, pid: int = 1, write: bool = False) -> dict[str, Any]:
    return {"ts_ns": ts, "kind": "access", "cpu": cpu, "pid": pid, "vaddr": vpn * 4096 + 8,
            "write": write}


def migrate_pages(ts: int, cpu: int, vpns: list[int], dst: int, req: int, *, pid: int = 1,
                  mode: str = "sync", mappings: list[int | None] | None = None,
                  off_cpu: list[tuple[int | None, int | None]] | None = None
                  ) -> list[dict[str, Any]]:
    """The rows of one explicit-page call; ``mappings``: the PTEs of each page, ``off_cpu``:
    each page's (off_cpu_unmap_ns, off_cpu_move_ns) (columns only when given)."""
    rows = [{"ts_ns": ts, "kind": "migrate", "cpu": cpu, "pid": pid, "vaddr": v * 4096,
             "dst_node": dst, "req_id": req, "mode": mode} for v in vpns]
    if mappings is not None:
        for r, k in zip(rows, mappings, strict=True):
            r["mappings"] = k
    if off_cpu is not None:
        for r, (u, m) in zip(rows, off_cpu, strict=True):
            r["off_cpu_unmap_ns"], r["off_cpu_move_ns"] = u, m
    return rows


def map_folio(ts: int, vpn: int, order: int, node: int, *, pid: int = 1) -> dict[str, Any]:
    """A map row of the folio of 2^order pages from ``vpn`` (aligned to its size)."""
    return {"ts_ns": ts, "kind": "map", "pid": pid, "vaddr": vpn * 4096, "dst_node": node,
            "order": order}


def migrate_node(ts: int, cpu: int, src: int, dst: int, req: int, *, pid: int = 1,
                 mode: str = "sync") -> dict[str, Any]:
    return {"ts_ns": ts, "kind": "migrate", "cpu": cpu, "pid": pid, "src_node": src,
            "dst_node": dst, "req_id": req, "mode": mode}


def write_trace(path: Path, rows: list[dict[str, Any]], machine: Machine, *,
                row_group_rows: int = 1 << 20) -> Path:
    """Write ``rows`` (sorted stably by ts_ns) as a trace v1 file."""
    rows = sorted(rows, key=lambda r: r["ts_ns"])
    schema = tr.arrow_schema(optional=any(
        "order" in r or "mappings" in r or "off_cpu_move_ns" in r for r in rows))
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    tr.write(pa.table(cols, schema=schema), path, machine=machine, row_group_rows=row_group_rows)
    return path


def accesses(trace: tr.Trace, pre: PrePass) -> tuple[np.ndarray, ...]:
    """All accesses of a trace as (ts, cpu, page, write) arrays."""
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for b in trace.batches(["ts_ns", "kind", "cpu", "pid", "vaddr", "write"]):
        acc = b.column("kind").indices.to_numpy() == KIND_ACCESS
        t = b.filter(pa.array(acc))
        vpn = (t.column("vaddr").to_numpy() >> np.uint64(trace.machine.page_shift)).astype(np.int64)
        parts[0].append(t.column("ts_ns").to_numpy())
        parts[1].append(t.column("cpu").to_numpy().astype(np.int32))
        parts[2].append(pre.page_ids(t.column("pid").to_numpy(), vpn).astype(np.int32))
        parts[3].append(t.column("write").to_numpy(zero_copy_only=False).astype(np.bool_))
    return tuple(np.concatenate(p) for p in parts)


def load_prepass(path: Path, profile: Profile) -> tuple[tr.Trace, PrePass]:
    """A trace and its pre-pass over every row."""
    window = profile.flush.mm_cpumask == "window"
    reader = tr.TraceReader(path)
    pre = prepass(reader, active_bin_ns=max(1, profile.flush.mm_cpumask_window_ns // 16) if window else 0,
                  writes=True)
    return reader.trace(), pre


def kernel_setup(path: Path, profile: Profile, policy: str) -> tuple[PrePass, Planner, tuple[np.ndarray, ...]]:
    trace, pre = load_prepass(path, profile)
    return pre, Planner(pre, profile, policy), accesses(trace, pre)


def all_ops(pre: PrePass, profile: Profile, policy: str) -> tuple[OpBuffer, np.ndarray]:
    """Every operation of a schedule at once (rounds numbered by gid), and the mask table."""
    planner = Planner(pre, profile, policy)
    buffer = OpBuffer()
    buffer.add(list(planner))
    return buffer, planner.masks()


def new_state(pre: PrePass, profile: Profile, *, closed_loop: bool = False) -> KernelState:
    """A kernel state holding every page of a finished pre-pass."""
    state = KernelState(pre.machine, profile, closed_loop=closed_loop)
    state.grow(pre.page_pid, pre.page_vpn, pre.page_node, pre.page_order)
    return state


def run_kernel(pre: PrePass, profile: Profile, planner: Planner, acc: tuple[np.ndarray, ...],
               chunk: int, *, closed_loop: bool = False) -> dict[str, Any]:
    """Run the compiled kernel over the accesses in chunks of ``chunk``, as a replay does: the
    plans of the calls that start by a chunk's last access first, and after the last chunk the
    operations left, a call's plan at a time."""
    state = new_state(pre, profile, closed_loop=closed_loop)
    ts, cpu, page, write = acc
    stalls: list[tuple[int, int, int, int]] = []
    stalls_at: list[int] = []
    outcomes: list[tuple[int, bool, int]] = []
    holding: dict[int, int] = {}

    def rounds(rd: dict[str, np.ndarray]) -> None:
        holding.update(zip(rd["gid"].tolist(), rd["holding"].tolist(), strict=True))

    for s in range(0, len(ts), chunk):
        sl = slice(s, s + chunk)
        state.add(planner.plan_until(int(ts[sl][-1])), planner.masks(), pre.cpu_first_ns)
        out = state.step(Accesses(ts[sl], cpu[sl], page[sl], write[sl]), emit=True, on_rounds=rounds)
        stalls += [(int(i) + s, int(n), int(bb), int(rr))
                   for i, n, bb, rr in zip(out.index, out.stall_ns, out.batch_id, out.req_id, strict=True)]
        assert out.at_ns is not None
        stalls_at += out.at_ns.tolist()
        assert out.outcome is not None and out.remote is not None and out.latency_ns is not None
        outcomes += [(int(o), bool(m), int(lat))
                     for o, m, lat in zip(out.outcome, out.remote, out.latency_ns, strict=True)]
    while True:
        nxt = planner.next_start()
        state.step(NO_ACCESSES, limit=NO_LIMIT if nxt is None else nxt - 1, on_rounds=rounds)
        if nxt is None:
            break
        state.add(planner.plan_until(nxt), planner.masks(), pre.cpu_first_ns)
    return {"stats": state.stats, "holding": [holding[g] for g in sorted(holding)],
            "stalls": stalls, "outcomes": outcomes, "stalls_at": stalls_at}
