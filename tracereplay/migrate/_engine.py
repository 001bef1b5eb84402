"""The migration engine shared by the policies: call queueing, page lists, costs, records.

A policy turns one migration call (a page list on one CPU at a start time) into per-page
windows, flush rounds and batch records by calling the engine's few verbs: ``mask``,
``draw_busy``, ``round_cost``, ``add_rounds``, ``add_pages``, ``add_batch`` (or, for a whole call
planned at once, ``mask_id``, ``flush_cost``, ``add_round_rows`` and ``add_page_rows``). It knows
nothing of the replay kernel, the event tables or the queries.

Simplifications (see docs/model.md): a page attempt fails only at unmap (busy, -EAGAIN) with
``fail_probability``; mm_cpumask is sampled at the start of each segment of at most
``batch_size`` pages (serial) or each batch (batched); a call is expanded at its start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tracereplay.config import Profile
from tracereplay.prepass import PrePass

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
        self._n = 0  # pages taken from the pre-pass
        self.node_now = np.zeros(0, np.int32)
        self.busy_until = np.zeros(0, np.int64)
        self.grow()
        self.cpu_node = np.asarray(pre.machine.cpu_node, np.int32)
        self._masks: dict[bytes, int] = {}
        self.mask_table: list[np.ndarray] = []
        self._rounds: list[tuple[Any, ...]] = []
        self._pages: list[tuple[Any, ...]] = []
        self._batches: list[dict[str, int | str]] = []
        self.n_rounds = 0
        self.n_batches = 0
        self.skipped_busy = 0
        self.skipped_on_dst = 0

    def grow(self) -> None:
        """Take the pages that appeared in the pre-pass since the last call, on their
        initial nodes (room grows by doubling)."""
        n, have = self.pre.n_pages, len(self.node_now)
        if n <= self._n:
            return
        if n > have:
            cap = max(n, 2 * have)
            node = np.zeros(cap, np.int32)
            node[:have] = self.node_now
            busy = np.zeros(cap, np.int64)
            busy[:have] = self.busy_until
            self.node_now, self.busy_until = node, busy
        self.node_now[self._n:n] = self.pre.page_node[self._n:n]
        self._n = n

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
        targets = int(mask.sum()) - int(mask[cpu])
        cost, full = self.flush_cost(bool(mask[cpu]), targets, pages)
        return cost, targets, full

    def flush_cost(self, local: bool, targets: int, pages: int) -> tuple[int, bool]:
        """(initiator ns, full) of a round of ``pages`` pages: ``local`` when the initiator is
        in the mask, ``targets`` other CPUs in it."""
        f = self.flush
        full = pages > f.ceiling_pages
        cost = 0
        if local:
            cost += f.full_flush_ns if full else f.invlpg_ns * pages
        if targets:
            cost += f.ipi_initiator_ns + f.ipi_extra_target_ns * (targets - 1)
        return cost, full

    def mask_id(self, mask: np.ndarray) -> int:
        """The number of ``mask`` in the run's mask table (added on first use)."""
        key = mask.tobytes()
        if key not in self._masks:
            self._masks[key] = len(self.mask_table)
            self.mask_table.append(mask.astype(np.uint8))
        return self._masks[key]

    def add_rounds(
        self, *, start_ns: np.ndarray, cost_ns: int, targets: int, full: bool, mask: np.ndarray,
        call: Call, batch_id: int, page_ptr: np.ndarray, pages: np.ndarray,
    ) -> np.ndarray:
        """Record flush rounds sharing one mask and cost; returns their ids (gid)."""
        n = len(start_ns)
        # Per-call constants are filled in by take(); per-chunk scalars are repeated there.
        self._rounds.append((start_ns, cost_ns, targets, full, self.mask_id(mask), batch_id,
                             np.diff(page_ptr), pages, False))
        first = self.n_rounds
        self.n_rounds += n
        return np.arange(first, first + n, dtype=np.int64)

    def add_round_rows(
        self, *, start_ns: np.ndarray, cost_ns: np.ndarray, targets: np.ndarray,
        full: np.ndarray, mask_id: np.ndarray, batch_id: np.ndarray | int, n_pages: np.ndarray,
        pages: np.ndarray,
    ) -> int:
        """Record flush rounds given one value per round (masks already numbered by
        ``mask_id``); returns the gid of the first. The arrays become the plan's columns as
        they are: pass fresh ones, none shared with another column."""
        self._rounds.append((start_ns, cost_ns, targets, full, mask_id, batch_id, n_pages,
                             pages, True))
        first = self.n_rounds
        self.n_rounds += len(start_ns)
        return first

    def add_pages(
        self, *, pages: np.ndarray, call: Call, batch_id: int, pos: np.ndarray,
        unmap_ns: np.ndarray, flush_ns: np.ndarray, copy_start_ns: np.ndarray,
        remap_ns: np.ndarray, round_index: np.ndarray, attempts: np.ndarray,
    ) -> None:
        """Record migrated pages and move them to the call's node at their remap."""
        self._pages.append((pages, batch_id, pos, self.node_now[pages], unmap_ns, flush_ns,
                            copy_start_ns, remap_ns, round_index, STATUS_MIGRATED, attempts,
                            False))
        self.node_now[pages] = call.dst_node
        self.busy_until[pages] = remap_ns

    def add_page_rows(
        self, *, pages: np.ndarray, call: Call, batch_id: np.ndarray | int, pos: np.ndarray,
        unmap_ns: np.ndarray, flush_ns: np.ndarray, copy_start_ns: np.ndarray,
        remap_ns: np.ndarray, round_index: np.ndarray, attempts: np.ndarray | int,
    ) -> None:
        """:meth:`add_pages` for a whole call at once: ``batch_id`` and ``attempts`` may be
        one value per page. The arrays become the plan's columns as they are (pass fresh
        ones, none shared with another column)."""
        self._pages.append((pages, batch_id, pos, self.node_now[pages], unmap_ns, flush_ns,
                            copy_start_ns, remap_ns, round_index, STATUS_MIGRATED, attempts,
                            True))
        self.node_now[pages] = call.dst_node
        self.busy_until[pages] = remap_ns

    def add_failed(self, *, pages: np.ndarray, call: Call, batch_id: int, attempts: int) -> None:
        """Record pages given up on after the pass budget (they stay where they are)."""
        n = len(pages)
        if not n:
            return
        none = np.full(n, -1, np.int64)
        self._pages.append((pages, batch_id, none, self.node_now[pages], none, none, none, none,
                            none, STATUS_FAILED, np.full(n, attempts, np.int32), False))

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

    def take(self, call: Call, start_ns: int, end_ns: int) -> CallPlan:
        """The plan of the call just scheduled (and forget it)."""
        plan = CallPlan(start_ns=start_ns, end_ns=end_ns, rounds=self._round_columns(call),
                        pages=self._page_columns(call), batches=self._batches)
        self._rounds, self._pages, self._batches = [], [], []
        return plan

    def _round_columns(self, call: Call) -> dict[str, np.ndarray]:
        parts = self._rounds
        if not parts:
            return {k: np.zeros(0, t) for k, t in _ROUND_DTYPES.items()}
        per = np.array([len(p[0]) for p in parts], np.int64)
        n = int(per.sum())

        def scalar(i: int, dtype: type) -> np.ndarray:
            return _column(parts, i, per, dtype)

        ts = scalar(0, np.int64)
        cost = scalar(1, np.int64)
        counts = scalar(6, np.int64)
        first = self.n_rounds - n
        return {
            "ts_ns": ts, "end_ns": ts + cost, "cost_ns": cost,
            "cpu": np.full(n, call.cpu, np.int32),
            "pid_index": np.full(n, call.pid_index, np.int32),
            "req_id": np.full(n, call.req_id, np.int64),
            "batch_id": scalar(5, np.int64),
            "pages": np.where(counts > self.flush.ceiling_pages, -1, counts).astype(np.int32),
            "n_pages": counts,
            "gid": np.arange(first, first + n, dtype=np.int64),
            "targets": scalar(2, np.int32),
            "full": scalar(3, bool),
            "mask_id": scalar(4, np.int32),
            "page_list": _column(parts, 7, np.array([len(p[7]) for p in parts]), np.int64),
        }

    def _page_columns(self, call: Call) -> dict[str, np.ndarray]:
        parts = self._pages
        if not parts:
            return {k: np.zeros(0, t) for k, t in _PAGE_DTYPES.items()}
        per = np.array([len(p[0]) for p in parts], np.int64)
        n = int(per.sum())

        def cat(i: int, dtype: type) -> np.ndarray:
            return _column(parts, i, per, dtype)

        copy_start = cat(6, np.int64)
        status = cat(9, np.int8)
        if all(p[9] == STATUS_MIGRATED for p in parts):
            copy_end = copy_start + self.costs.copy_ns
        else:
            copy_end = np.where(status == STATUS_MIGRATED, copy_start + self.costs.copy_ns, -1)
        return {
            "page": cat(0, np.int64),
            "req_id": np.full(n, call.req_id, np.int64),
            "batch_id": cat(1, np.int64),
            "cpu": np.full(n, call.cpu, np.int32),
            "pos": cat(2, np.int32),
            "src_node": cat(3, np.int32),
            "dst_node": np.full(n, call.dst_node, np.int32),
            "unmap_ns": cat(4, np.int64),
            "flush_ns": cat(5, np.int64),
            "copy_start_ns": copy_start,
            "copy_end_ns": copy_end,
            "remap_ns": cat(7, np.int64),
            "round": cat(8, np.int64),
            "status": status,
            "attempts": cat(10, np.int32),
        }

    def masks(self) -> np.ndarray:
        if not self.mask_table:
            return np.zeros((1, self.pre.machine.cpus), np.uint8)
        return np.stack(self.mask_table)


def _column(parts: list[tuple[Any, ...]], i: int, per: np.ndarray, dtype: type) -> np.ndarray:
    """Field ``i`` of the recorded parts as one column: each part gives an array (a value per
    row) or a scalar (one value for its ``per`` rows). The last field of a part says whether
    its arrays may be handed out without a copy."""
    vals = [p[i] for p in parts]
    if len(parts) == 1 and parts[0][-1]:
        v = vals[0]
        return np.full(int(per[0]), v, dtype) if np.ndim(v) == 0 else v.astype(dtype, copy=False)
    if all(np.ndim(v) == 0 for v in vals):
        return np.repeat(np.array(vals, dtype), per)
    if all(np.ndim(v) for v in vals):
        return np.concatenate(vals).astype(dtype, copy=False)
    return np.concatenate([np.broadcast_to(np.asarray(v, dtype), (int(k),))
                           for v, k in zip(vals, per, strict=True)])


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
