"""The migration engine shared by the policies: call queueing, page lists, costs, records.

A policy turns one migration call (a page list on one CPU at a start time) into per-page
windows, flush rounds and batch records by calling the engine's few verbs: ``mask``,
``draw_busy``, ``round_cost``, ``add_rounds``, ``add_pages``, ``add_batch``. It knows nothing of
the replay kernel, the event tables or the queries.

Simplifications (see docs/model.md): a page attempt fails only at unmap (busy, -EAGAIN) with
``fail_probability``; mm_cpumask is sampled at the start of each segment of at most
``batch_size`` pages (serial) or each batch (batched); a call is expanded at its start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.config import Profile
from tracereplay.schedule import PrePass

STATUS_MIGRATED = 0
STATUS_FAILED = 1
STATUS_NAMES = ("migrated", "failed")

BATCH_KINDS = ("serial", "batch", "sync_retry")


@dataclass(frozen=True, slots=True)
class Call:
    """One migration call as the engine hands it to a policy."""

    index: int
    req_id: int
    cpu: int
    pid_index: int
    dst_node: int
    is_async: bool


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What a policy made of one call: its flush rounds, page windows and batches."""

    start_ns: int
    end_ns: int
    rounds: dict[str, np.ndarray]  # one entry per flush round; "gid" numbers them in the run
    pages: dict[str, np.ndarray]  # one entry per page that migrated or was given up on
    batches: list[dict[str, int | str]]


class Engine:
    """The state of one policy across the calls of a trace; hands out one plan per call."""

    def __init__(self, pre: PrePass, profile: Profile) -> None:
        self.pre = pre
        self.profile = profile
        self.flush = profile.flush
        self.costs = profile.migrate
        self.rng = np.random.default_rng(profile.migrate.seed)
        self.node_now = pre.page_node.copy()
        self.busy_until = np.zeros(pre.n_pages, np.int64)
        self.cpu_node = np.asarray(pre.machine.cpu_node, np.int32)
        self._masks: dict[bytes, int] = {}
        self.mask_table: list[np.ndarray] = []
        self._rounds: list[dict[str, np.ndarray]] = []
        self._pages: list[dict[str, np.ndarray]] = []
        self._batches: list[dict[str, int | str]] = []
        self.n_rounds = 0
        self.n_batches = 0
        self.skipped_busy = 0
        self.skipped_on_dst = 0

    # -- verbs for policies -------------------------------------------------------------

    def mask(self, pid_index: int, t_ns: int) -> np.ndarray:
        """mm_cpumask of the pid at ``t_ns`` (bool over CPUs)."""
        return self.pre.mask(pid_index, t_ns, self.flush.mm_cpumask, self.flush.mm_cpumask_window_ns)

    def draw_busy(self, n: int) -> np.ndarray:
        """Which of ``n`` page attempts find the page busy (-EAGAIN)."""
        p = self.costs.fail_probability
        if p <= 0.0:
            return np.zeros(n, bool)
        return self.rng.random(n) < p

    def round_cost(self, mask: np.ndarray, cpu: int, pages: int) -> tuple[int, int, bool]:
        """(initiator ns, targets, full) of a flush round of ``pages`` pages from ``cpu``.

        The initiator flushes locally only when it is itself in mm_cpumask (it ran the
        process); every other CPU in the mask gets an IPI and the initiator waits for all.
        """
        f = self.flush
        full = pages > f.ceiling_pages
        targets = int(mask.sum()) - int(mask[cpu])
        cost = 0
        if mask[cpu]:
            cost += f.full_flush_ns if full else f.invlpg_ns * pages
        if targets:
            cost += f.ipi_initiator_ns + f.ipi_extra_target_ns * (targets - 1)
        return cost, targets, full

    def add_rounds(
        self, *, start_ns: np.ndarray, cost_ns: int, targets: int, full: bool, mask: np.ndarray,
        call: Call, batch_id: int, page_ptr: np.ndarray, pages: np.ndarray,
    ) -> np.ndarray:
        """Record flush rounds sharing one mask and cost; returns their round indices."""
        n = len(start_ns)
        key = mask.tobytes()
        if key not in self._masks:
            self._masks[key] = len(self.mask_table)
            self.mask_table.append(mask.astype(np.uint8))
        counts = np.diff(page_ptr)
        self._rounds.append({
            "ts_ns": start_ns.astype(np.int64),
            "end_ns": start_ns.astype(np.int64) + cost_ns,
            "cost_ns": np.full(n, cost_ns, np.int64),
            "cpu": np.full(n, call.cpu, np.int32),
            "pid_index": np.full(n, call.pid_index, np.int32),
            "req_id": np.full(n, call.req_id, np.int64),
            "batch_id": np.full(n, batch_id, np.int64),
            "pages": np.where(counts > self.flush.ceiling_pages, -1, counts).astype(np.int32),
            "n_pages": counts.astype(np.int64),
            "gid": np.arange(self.n_rounds, self.n_rounds + n, dtype=np.int64),
            "targets": np.full(n, targets, np.int32),
            "full": np.full(n, full, bool),
            "mask_id": np.full(n, self._masks[key], np.int32),
            "page_list": pages.astype(np.int64),
        })
        first = self.n_rounds
        self.n_rounds += n
        return np.arange(first, first + n, dtype=np.int64)

    def add_pages(
        self, *, pages: np.ndarray, call: Call, batch_id: int, pos: np.ndarray,
        unmap_ns: np.ndarray, flush_ns: np.ndarray, copy_start_ns: np.ndarray,
        remap_ns: np.ndarray, round_index: np.ndarray, attempts: np.ndarray,
    ) -> None:
        """Record migrated pages and move them to the call's node at their remap."""
        self._pages.append({
            "page": pages.astype(np.int64),
            "req_id": np.full(len(pages), call.req_id, np.int64),
            "batch_id": np.full(len(pages), batch_id, np.int64),
            "cpu": np.full(len(pages), call.cpu, np.int32),
            "pos": pos.astype(np.int32),
            "src_node": self.node_now[pages].astype(np.int32),
            "dst_node": np.full(len(pages), call.dst_node, np.int32),
            "unmap_ns": unmap_ns.astype(np.int64),
            "flush_ns": flush_ns.astype(np.int64),
            "copy_start_ns": copy_start_ns.astype(np.int64),
            "copy_end_ns": copy_start_ns.astype(np.int64) + self.costs.copy_ns,
            "remap_ns": remap_ns.astype(np.int64),
            "round": round_index.astype(np.int64),
            "status": np.full(len(pages), STATUS_MIGRATED, np.int8),
            "attempts": attempts.astype(np.int32),
        })
        self.node_now[pages] = call.dst_node
        self.busy_until[pages] = remap_ns

    def add_failed(self, *, pages: np.ndarray, call: Call, batch_id: int, attempts: int) -> None:
        """Record pages given up on after the pass budget (they stay where they are)."""
        n = len(pages)
        if not n:
            return
        none = np.full(n, -1, np.int64)
        self._pages.append({
            "page": pages.astype(np.int64),
            "req_id": np.full(n, call.req_id, np.int64),
            "batch_id": np.full(n, batch_id, np.int64),
            "cpu": np.full(n, call.cpu, np.int32),
            "pos": np.full(n, -1, np.int32),
            "src_node": self.node_now[pages].astype(np.int32),
            "dst_node": np.full(n, call.dst_node, np.int32),
            "unmap_ns": none, "flush_ns": none, "copy_start_ns": none, "copy_end_ns": none,
            "remap_ns": none, "round": none,
            "status": np.full(n, STATUS_FAILED, np.int8),
            "attempts": np.full(n, attempts, np.int32),
        })

    def new_batch_id(self) -> int:
        self.n_batches += 1
        return self.n_batches - 1

    def add_batch(
        self, *, call: Call, kind: str, pages: int, nr_succeeded: int, start_ns: int,
        end_ns: int, unmap_ns: int, flush_ns: int, copy_ns: int, remap_ns: int, other_ns: int,
    ) -> None:
        """Record a batch; its phase durations must add up to its length."""
        if unmap_ns + flush_ns + copy_ns + remap_ns + other_ns != end_ns - start_ns:
            raise AssertionError("batch phases do not add up to the batch length")
        self._batches.append({
            "batch_id": self.n_batches - 1, "req_id": call.req_id, "cpu": call.cpu,
            "pid_index": call.pid_index, "kind": kind,
            "mode": "async" if call.is_async else "sync", "pages": pages,
            "nr_succeeded": nr_succeeded, "nr_failed": pages - nr_succeeded,
            "start_ns": start_ns, "end_ns": end_ns, "unmap_ns": unmap_ns, "flush_ns": flush_ns,
            "copy_ns": copy_ns, "remap_ns": remap_ns, "other_ns": other_ns,
        })

    # -- results ----------------------------------------------------------------------------

    def take(self, start_ns: int, end_ns: int) -> CallPlan:
        """The plan of the call just scheduled (and forget it)."""
        plan = CallPlan(start_ns=start_ns, end_ns=end_ns,
                        rounds=_concat(self._rounds, _ROUND_DTYPES),
                        pages=_concat(self._pages, _PAGE_DTYPES), batches=self._batches)
        self._rounds, self._pages, self._batches = [], [], []
        return plan

    def masks(self) -> np.ndarray:
        if not self.mask_table:
            return np.zeros((1, self.pre.machine.cpus), np.uint8)
        return np.stack(self.mask_table)


_ROUND_DTYPES = {
    "ts_ns": np.int64, "end_ns": np.int64, "cost_ns": np.int64, "cpu": np.int32,
    "pid_index": np.int32, "req_id": np.int64, "batch_id": np.int64, "pages": np.int32,
    "n_pages": np.int64, "gid": np.int64, "targets": np.int32, "full": bool, "mask_id": np.int32,
    "page_list": np.int64,
}
_PAGE_DTYPES = {
    "page": np.int64, "req_id": np.int64, "batch_id": np.int64, "cpu": np.int32, "pos": np.int32,
    "src_node": np.int32, "dst_node": np.int32, "unmap_ns": np.int64, "flush_ns": np.int64,
    "copy_start_ns": np.int64, "copy_end_ns": np.int64, "remap_ns": np.int64, "round": np.int64,
    "status": np.int8, "attempts": np.int32,
}


def _concat(parts: list[dict[str, np.ndarray]], dtypes: dict[str, type]) -> dict[str, np.ndarray]:
    if not parts:
        return {k: np.zeros(0, t) for k, t in dtypes.items()}
    return {k: np.concatenate([p[k] for p in parts]).astype(t, copy=False) for k, t in dtypes.items()}
