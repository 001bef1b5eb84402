"""Replay a trace under migration policies and write their event tables.

``run(trace_path, out_dir)`` loads and validates the trace, makes the pre-pass, asks each
policy for its schedule, then streams the accesses through the compiled kernel once, all
policies side by side, and writes ``out_dir/policy=<name>/`` for each.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay import __version__
from tracereplay import events as ev
from tracereplay import migrate as mig
from tracereplay import trace as tr
from tracereplay._kernel import N_PARAMS, OP_ROUND, OP_UNMAP, STAT_NAMES, replay_chunk
from tracereplay.config import Profile, load_profile
from tracereplay.errors import OutputExistsError
from tracereplay.schedule import KIND_ACCESS, PrePass, kind_codes, prepass

DEFAULT_POLICIES = ("serial", "batched")

_REASON_NAMES = {3: "local_mm_shootdown", 4: "remote_ipi_send"}

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Ops:
    """A schedule as the kernel reads it: operations in time order, and the flush rounds."""

    ts: np.ndarray
    kind: np.ndarray
    arg: np.ndarray
    round: np.ndarray
    until: np.ndarray
    dst: np.ndarray
    batch: np.ndarray
    req: np.ndarray
    r_cpu: np.ndarray
    r_pid: np.ndarray
    r_full: np.ndarray
    r_mask_id: np.ndarray
    masks: np.ndarray
    r_ptr: np.ndarray
    r_pages: np.ndarray

    @classmethod
    def from_schedule(cls, s: mig.Schedule) -> Ops:
        pg, rd = s.pages, s.rounds
        ok = pg["status"] == mig._engine.STATUS_MIGRATED
        n_u = int(ok.sum())
        n_r = len(rd["ts_ns"])
        ts = np.concatenate([pg["unmap_ns"][ok], rd["end_ns"]])
        kind = np.concatenate([np.full(n_u, OP_UNMAP, np.int8), np.full(n_r, OP_ROUND, np.int8)])
        arg = np.concatenate([pg["page"][ok], np.arange(n_r, dtype=np.int64)])
        # Time first; at equal times unmaps before rounds; then schedule order.
        order = np.lexsort((np.arange(len(ts)), kind, ts))
        pad = np.zeros(n_r, np.int64)

        def col(values: np.ndarray, dtype: Any) -> np.ndarray:
            return np.concatenate([values[ok].astype(dtype), pad.astype(dtype)])[order]

        r_ptr = np.zeros(n_r + 1, np.int64)
        r_ptr[1:] = np.cumsum(rd["n_pages"])
        return cls(
            ts=ts[order], kind=kind[order], arg=arg[order],
            round=col(pg["round"], np.int64), until=col(pg["remap_ns"], np.int64),
            dst=col(pg["dst_node"], np.int32), batch=col(pg["batch_id"], np.int64),
            req=col(pg["req_id"], np.int64),
            r_cpu=rd["cpu"], r_pid=rd["pid_index"], r_full=rd["full"],
            r_mask_id=rd["mask_id"], masks=s.masks, r_ptr=r_ptr, r_pages=rd["page_list"],
        )


class KernelState:
    """Everything the kernel carries from one chunk to the next for one policy."""

    def __init__(self, pre: PrePass, profile: Profile, ops: Ops) -> None:
        t = profile.tlb
        cpus = pre.machine.cpus
        n = pre.n_pages
        self.ops = ops
        self.cursor = 0
        self.r_holding = np.zeros(len(ops.r_cpu), np.int32)
        self.page_pid = pre.page_pid
        # First slot of each page's set in the L1 dTLB and STLB (set = vpn mod sets).
        self.page_b1 = (pre.page_vpn % t.l1_sets) * t.l1_ways
        self.page_b2 = (pre.page_vpn % t.l2_sets) * t.l2_ways
        self.page_node = pre.page_node.copy()
        self.page_pending = np.full(n, -1, np.int32)
        self.page_until = np.zeros(n, np.int64)
        self.page_batch = np.full(n, -1, np.int64)
        self.page_req = np.full(n, -1, np.int64)
        self.page_round = np.full(n, -1, np.int64)
        self.cpu_node = np.asarray(pre.machine.cpu_node, np.int32)
        self.l1_tag = np.full((cpus, t.l1_entries), -1, np.int64)
        self.l1_lru = np.zeros((cpus, t.l1_entries), np.int64)
        self.l2_tag = np.full((cpus, t.l2_entries), -1, np.int64)
        self.l2_lru = np.zeros((cpus, t.l2_entries), np.int64)
        self.clock = np.zeros(1, np.int64)
        f, m = profile.flush, profile.memory
        self.params = np.array(
            [t.l1_sets, t.l1_ways, t.l2_sets, t.l2_ways, t.l1_hit_ns, t.l2_hit_ns, t.walk_ns,
             m.local_ns, m.remote_ns, f.invlpg_ns, f.full_flush_ns, f.ipi_responder_ns],
            np.int64,
        )
        assert len(self.params) == N_PARAMS
        self.stats = np.zeros((cpus, len(STAT_NAMES)), np.int64)

    def step(
        self, ts: np.ndarray, cpu: np.ndarray, page: np.ndarray, write: np.ndarray, *,
        final: bool = False, emit: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...] | None]:
        """Replay one chunk of accesses; returns stall rows (index, ns, batch, req) and,
        with ``emit``, per-access (outcome, remote, latency)."""
        n = len(ts)
        st = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64),
              np.empty(n, np.int64))
        out = (np.empty(n if emit else 0, np.int8), np.empty(n if emit else 0, np.bool_),
               np.empty(n if emit else 0, np.int64))
        o = self.ops
        self.cursor, n_st = replay_chunk(
            ts, cpu, page, write, final,
            o.ts, o.kind, o.arg, o.round, o.until, o.dst, o.batch, o.req, self.cursor,
            o.r_cpu, o.r_pid, o.r_full, o.r_mask_id, o.masks, o.r_ptr, o.r_pages, self.r_holding,
            self.page_pid, self.page_b1, self.page_b2, self.page_node, self.page_pending, self.page_until,
            self.page_batch, self.page_req, self.page_round, self.cpu_node,
            self.l1_tag, self.l1_lru, self.l2_tag, self.l2_lru, self.clock, self.params,
            self.stats, st[0], st[1], st[2], st[3], emit, out[0], out[1], out[2],
        )
        return st[0][:n_st], st[1][:n_st], st[2][:n_st], st[3][:n_st], (out if emit else None)


@dataclass
class PolicyResult:
    """What one policy's replay produced: summary metrics and where its tables are."""

    policy: str
    path: Path
    metrics: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)


def _empty(dtype: Any) -> np.ndarray:
    return np.zeros(0, dtype)


def run(
    trace_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    policies: Sequence[str] = DEFAULT_POLICIES,
    profile: Profile | None = None,
    force: bool = False,
    emit_accesses: bool = False,
    progress: Progress | None = None,
) -> list[PolicyResult]:
    """Replay ``trace_path`` under each policy; write ``out_dir/policy=<name>/``."""
    t0 = time.perf_counter()
    profile = profile or load_profile()
    policies = list(dict.fromkeys(policies))
    for name in policies:
        mig.policy(name)  # unknown names fail before any work
    out = Path(out_dir)
    if not force:
        for name in policies:
            if (out / f"policy={name}").exists():
                raise OutputExistsError(f"{out / f'policy={name}'} already exists; use --force to replace it")
    trace = tr.load(trace_path, machine=profile.machine.machine())
    machine = trace.machine
    pre = prepass(trace.batches(["ts_ns", "kind", "cpu", "pid", "vaddr", "dst_node", "src_node",
                                 "req_id", "mode"]), machine)
    schedules = [mig.schedule(pre, profile, name) for name in policies]
    states = [KernelState(pre, profile, Ops.from_schedule(s)) for s in schedules]
    writers = [ev.PolicyRunWriter(out, name, force=force) for name in policies]
    for w in writers:
        w.__enter__()
    try:
        stall_ns: list[list[np.ndarray]] = [[] for _ in policies]
        done = 0
        shift = machine.page_shift
        for batch in trace.batches(["ts_ns", "kind", "cpu", "pid", "vaddr", "write"]):
            acc = kind_codes(batch.column("kind")) == KIND_ACCESS
            ts = _values(batch, "ts_ns", acc, np.int64)
            cpu = _values(batch, "cpu", acc, np.int32)
            pid = _values(batch, "pid", acc, np.int32)
            vpn = (_values(batch, "vaddr", acc, np.uint64) >> np.uint64(shift)).astype(np.int64)
            write = _values(batch, "write", acc, np.bool_)
            page = pre.page_ids(pid, vpn)
            for k, state in enumerate(states):
                idx, sns, sb, sr, per = state.step(ts, cpu, page, write, emit=emit_accesses)
                stall_ns[k].append(sns)
                writers[k].write("stalls", _stalls_table(ts, cpu, pid, vpn, idx, sns, sb, sr))
                if per is not None:
                    writers[k].write("accesses", ev.to_table("accesses", {
                        "ts_ns": ts, "cpu": cpu, "pid": pid, "vpn": vpn, "write": write,
                        "outcome": per[0], "remote": per[1], "latency_ns": per[2]}))
            done += batch.num_rows
            if progress is not None:
                progress(done, trace.num_rows)
        results = []
        sha = trace.sha256()
        for k, (name, sched, state, w) in enumerate(zip(policies, schedules, states, writers, strict=True)):
            state.step(_empty(np.int64), _empty(np.int32), _empty(np.int64), _empty(np.bool_), final=True)
            flushes = _flushes_table(pre, sched, state)
            migrations = _migrations_table(pre, sched)
            batches = _batches_table(pre, sched)
            cpu_stats = _cpu_stats_table(state)
            for tname, table in (("flushes", flushes), ("migrations", migrations),
                                 ("batches", batches), ("cpu_stats", cpu_stats)):
                w.write(tname, table)
            stalls = np.concatenate(stall_ns[k]) if stall_ns[k] else _empty(np.int64)
            metrics = summarise(flushes, migrations, batches, cpu_stats, stalls)
            metrics["migrate_calls"] = sched.calls
            manifest = {
                "tool": "tracereplay", "tool_version": __version__,
                "trace": {"path": str(Path(trace_path).resolve()), "sha256": sha,
                          "rows": trace.num_rows, "machine": machine.to_dict(),
                          "machine_from_file": trace.machine_from_file},
                "config": profile.to_dict(),
                "policy": name,
                "summary": metrics,
                "skipped": {"absent_pages": pre.requests.absent_pages,
                            "busy_pages": sched.skipped_busy, "pages_on_dst": sched.skipped_on_dst},
                "wall_s": round(time.perf_counter() - t0, 3),
            }
            path = w.commit(manifest)
            results.append(PolicyResult(policy=name, path=path, metrics=metrics, counts=w.counts))
        return results
    except BaseException as e:
        for w in writers:
            w.__exit__(type(e), e, None)
        raise


def _values(batch: pa.RecordBatch, name: str, rows: np.ndarray, dtype: Any) -> np.ndarray:
    """Column ``name`` of the selected rows (which are never null there) as ``dtype``."""
    col = pc.fill_null(batch.column(name), False if dtype is np.bool_ else 0)
    return np.asarray(col.to_numpy(zero_copy_only=False)[rows], dtype)


def _stalls_table(ts, cpu, pid, vpn, idx, sns, sb, sr) -> pa.Table:  # type: ignore[no-untyped-def]
    return ev.to_table("stalls", {
        "ts_ns": ts[idx], "cpu": cpu[idx], "pid": pid[idx], "vpn": vpn[idx], "stall_ns": sns,
        "batch_id": sb, "req_id": sr,
    })


def _nullable(values: np.ndarray) -> pa.Array:
    """int64 array with -1 as null."""
    return pa.array(values, mask=values < 0)


def _flushes_table(pre: PrePass, s: mig.Schedule, state: KernelState) -> pa.Table:
    rd = s.rounds
    reason = np.where(rd["targets"] > 0, 4, 3).astype(np.int8)
    return ev.to_table("flushes", {
        "flush_id": np.arange(len(rd["ts_ns"]), dtype=np.int64),
        "ts_ns": rd["ts_ns"], "end_ns": rd["end_ns"], "cpu": rd["cpu"],
        "pid": pre.pids[rd["pid_index"]], "req_id": rd["req_id"], "batch_id": rd["batch_id"],
        "pages": rd["pages"], "targets": rd["targets"], "targets_holding": state.r_holding,
        "target_full_flush": rd["full"], "cost_ns": rd["cost_ns"], "reason": reason,
        "reason_name": [_REASON_NAMES[int(r)] for r in reason] if len(reason) else pa.array([], pa.string()),
    })


def _migrations_table(pre: PrePass, s: mig.Schedule) -> pa.Table:
    pg = s.pages
    page = pg["page"]
    return ev.to_table("migrations", {
        "req_id": pg["req_id"], "batch_id": pg["batch_id"], "cpu": pg["cpu"],
        "pid": pre.pids[pre.page_pid[page]], "vpn": pre.page_vpn[page],
        "pos_in_batch": pa.array(pg["pos"], mask=pg["pos"] < 0),
        "src_node": pg["src_node"], "dst_node": pg["dst_node"],
        "unmap_ns": _nullable(pg["unmap_ns"]), "flush_ns": _nullable(pg["flush_ns"]),
        "copy_start_ns": _nullable(pg["copy_start_ns"]), "copy_end_ns": _nullable(pg["copy_end_ns"]),
        "remap_ns": _nullable(pg["remap_ns"]),
        "status": np.asarray(mig.STATUS_NAMES, dtype=object)[pg["status"]],
        "attempts": pg["attempts"],
    })


def _batches_table(pre: PrePass, s: mig.Schedule) -> pa.Table:
    if not s.batches:
        return ev.empty_table("batches")
    cols = {k: [b[k] for b in s.batches] for k in s.batches[0]}
    cols["pid"] = pre.pids[np.asarray(cols.pop("pid_index"), np.int64)]
    return ev.to_table("batches", cols)


def _cpu_stats_table(state: KernelState) -> pa.Table:
    cols: dict[str, Any] = {"cpu": np.arange(len(state.cpu_node), dtype=np.int32),
                            "node": state.cpu_node}
    for j, name in enumerate(STAT_NAMES):
        cols[name] = state.stats[:, j]
    return ev.to_table("cpu_stats", cols)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def summarise(flushes: pa.Table, migrations: pa.Table, batches: pa.Table, cpu_stats: pa.Table,
              stall_ns: np.ndarray) -> dict[str, Any]:
    """The headline numbers of one policy's run (what ``tracereplay replay`` prints)."""
    def total(table: pa.Table, col: str) -> int:
        return int(np.asarray(table.column(col).to_numpy(zero_copy_only=False), np.int64).sum()) if table.num_rows else 0

    migrated = int(np.sum(migrations.column("status").to_numpy(zero_copy_only=False) == "migrated")) if migrations.num_rows else 0
    failed = migrations.num_rows - migrated
    ipis = total(flushes, "targets")
    holding = total(flushes, "targets_holding")
    phases = {p: total(batches, f"{p}_ns") for p in ("unmap", "flush", "copy", "remap", "other")}
    busy = sum(phases.values())
    accesses = total(cpu_stats, "accesses")
    l1, l2 = total(cpu_stats, "l1_hits"), total(cpu_stats, "l2_hits")
    windows = []
    if migrated:
        ok = migrations.filter(pc.equal(migrations.column("status"), "migrated"))
        windows = (ok.column("remap_ns").to_numpy() - ok.column("unmap_ns").to_numpy())

    def pct(a: np.ndarray, q: float) -> int | None:
        return int(np.percentile(a, q, method="lower")) if len(a) else None

    return {
        "pages_migrated": migrated,
        "pages_failed": failed,
        "batches": batches.num_rows,
        "flush_rounds": flushes.num_rows,
        "ipis_sent": ipis,
        "ipis_holding": holding,
        "ipis_per_1000_pages": (1000 * ipis / migrated) if migrated else None,
        "migration_ns": busy,
        "pages_per_s": (migrated * 1e9 / busy) if busy else None,
        **{f"{p}_share": _share(v, busy) for p, v in phases.items()},
        "window_p50_ns": pct(np.asarray(windows), 50),
        "window_max_ns": int(np.max(windows)) if len(windows) else None,
        "stalled_accesses": len(stall_ns),
        "stall_p50_ns": pct(stall_ns, 50),
        "stall_p99_ns": pct(stall_ns, 99),
        "stall_max_ns": int(stall_ns.max()) if len(stall_ns) else None,
        "accesses": accesses,
        "l1_hit_rate": _share(l1, accesses),
        "l2_hit_rate": _share(l2, accesses),
        "stale_hits": total(cpu_stats, "stale_hits"),
        "remote_accesses": total(cpu_stats, "remote_accesses"),
    }
