"""The replay kernel: per-CPU TLBs and page states driven by accesses and migration operations.

:class:`KernelState` is the only class to talk to: it owns the state of one policy's replay
(TLBs, pages, counters, the operations of the plans reached so far) and hands the compiled
core (``_core.replay_chunk``) named records of arrays, never positions to count.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tracereplay import migrate as mig
from tracereplay._frozen import frozen
from tracereplay.config import Profile
from tracereplay.distances import node_latency_ns
from tracereplay.kernel._core import (
    N_PAGE_COLS,
    OP_ROUND,
    OP_UNMAP,
    OUT_L1,
    OUT_L2,
    OUT_STALE,
    OUT_STALL,
    OUT_WALK,
    PG_B1,
    PG_B2,
    PG_NODE,
    PG_PENDING,
    STAMP_MAX,
    STAT_NAMES,
    Accesses,
    Costs,
    Cpus,
    Out,
    Pages,
    Rounds,
    Tlbs,
    replay_chunk,
)
from tracereplay.kernel.ops import OpBuffer, PlanOps, plan_ops
from tracereplay.machine import Machine
from tracereplay.trace.schema import pmd_order

NO_LIMIT = np.iinfo(np.int64).max

# Receives the flush rounds a step completed, as columns.
RoundSink = Callable[[dict[str, np.ndarray]], None]

__all__ = [
    "NO_LIMIT", "OP_ROUND", "OP_UNMAP", "OUT_L1", "OUT_L2", "OUT_STALE", "OUT_STALL", "OUT_WALK",
    "STAMP_MAX", "STAT_NAMES", "Accesses", "KernelState", "OpBuffer", "PlanOps", "Stalls",
    "plan_ops",
]


@dataclass(frozen=True, slots=True)
class Stalls:
    """Accesses of a chunk that faulted on a migration entry, and (with ``emit``) what every
    access of the chunk did."""

    index: np.ndarray  # int64: access index in the chunk
    stall_ns: np.ndarray  # int64
    batch_id: np.ndarray  # int64
    req_id: np.ndarray  # int64
    outcome: np.ndarray | None = None  # int8 OUT_* per access
    remote: np.ndarray | None = None  # bool per access
    latency_ns: np.ndarray | None = None  # int64 per access
    at_ns: np.ndarray | None = None  # int64: each stalled access's effective time (closed loop)


class KernelState:
    """Everything the kernel carries from one chunk of accesses to the next for one policy.

    Few verbs: :meth:`grow` (pages that appeared), :meth:`add` (plans reached),
    :meth:`step` (a chunk of accesses, then the operations up to a time), and the state as
    named records (:attr:`tlbs`, :attr:`stats`).
    """

    def __init__(self, machine: Machine, profile: Profile, *, closed_loop: bool = False) -> None:
        t, f, m = profile.tlb, profile.flush, profile.memory
        cpus = machine.cpus
        self.costs = Costs(
            l1_sets=t.l1_sets, l1_ways=t.l1_ways, l2_sets=t.l2_sets, l2_ways=t.l2_ways,
            l1_hit_ns=t.l1_hit_ns, l2_hit_ns=t.l2_hit_ns, walk_ns=t.walk_ns,
            local_ns=m.local_ns, remote_ns=m.remote_ns, invlpg_ns=f.invlpg_ns,
            full_flush_ns=f.full_flush_ns, responder_ns=f.ipi_responder_ns,
            l1h_ways=t.l1_2m_ways or t.l1_ways, l2h_ways=t.l2_2m_ways or t.l2_ways,
            node_ns=node_latency_ns(m.local_ns, m.remote_ns, m.distances, m.remote_distance,
                                    machine.nodes))
        # 2 MiB translations: an array of their own after the 4 KiB sets, or the 4 KiB sets.
        self._l1h = (t.l1_entries, t.l1_2m_entries // t.l1_2m_ways) if t.l1_2m_entries else (
            0, t.l1_sets)
        self._l2h = (t.l2_entries, t.l2_2m_entries // t.l2_2m_ways) if t.l2_2m_entries else (
            0, t.l2_sets)
        self.pmd_order = pmd_order(machine.page_shift)
        # Each page's translation: itself, or the head of the PMD-mapped folio it is in (None
        # while there is none: accesses then go to the kernel as they are).
        self._key: np.ndarray | None = None
        self.buffer = OpBuffer()
        self.n_pages = 0
        self._page = Pages(pid=np.zeros(0, np.int32), row=np.empty((0, N_PAGE_COLS), np.int32),
                           until=np.zeros(0, np.int64), batch=np.zeros(0, np.int64),
                           req=np.zeros(0, np.int64), round=np.zeros(0, np.int64))
        self.cpu_node = np.asarray(machine.cpu_node, np.int32)
        self.cpu_first_ns = np.zeros((0, cpus), np.int64)
        # Closed loop: each CPU's stalls so far, ns; None open loop (the kernel's other
        # specialization, without the closed-loop path).
        self.delay = np.zeros(cpus, np.int64) if closed_loop else None
        self.masks = np.zeros((1, cpus), np.uint8)
        # Tags are page ids (-1: empty) and LRU stamps the kernel's clock (renumbered before it
        # overflows), both 32 bits so that a set of the STLB spans fewer cache lines.
        self.tlbs = Tlbs(
            l1_tag=np.full((cpus, t.l1_entries + t.l1_2m_entries), -1, np.int32),
            l1_lru=np.zeros((cpus, t.l1_entries + t.l1_2m_entries), np.int32),
            l2_tag=np.full((cpus, t.l2_entries + t.l2_2m_entries), -1, np.int32),
            l2_lru=np.zeros((cpus, t.l2_entries + t.l2_2m_entries), np.int32),
            clock=np.zeros(1, np.int64),
            stats=np.zeros((cpus, len(STAT_NAMES)), np.int64))
        self.kernel_s = 0.0  # time spent in the compiled kernel (benchmarks report it)

    @property
    def stats(self) -> np.ndarray:
        """int64 [cpus, len(STAT_NAMES)]: the per-CPU counters so far."""
        return self.tlbs.stats

    def grow(self, page_pid: np.ndarray, page_vpn: np.ndarray, page_node: np.ndarray,
             page_order: np.ndarray | None = None) -> None:
        """Take the pages numbered from :attr:`n_pages` up to ``len(page_pid)``: the arrays
        describe every page so far in page-id order (only the new ones are read; ``page_order``
        None: base pages). The pages already taken keep their state; room grows by doubling.

        A PMD-mapped folio (order :attr:`pmd_order`) is one translation, its head page's: the
        head's row names a set of the 2 MiB array (vpn >> pmd_order), and an access to any of
        its pages is replayed as an access to the head."""
        n, n0 = len(page_pid), self.n_pages
        if n <= n0:
            return
        if n > np.iinfo(np.int32).max:
            raise AssertionError("more pages than 32-bit TLB tags can name")
        if n > len(self._page.pid):
            cap = max(n, 2 * len(self._page.pid))
            self._page = Pages(*(_grown(a, cap, fill) for a, fill in
                                 zip(self._page, (0, 0, 0, -1, -1, -1), strict=True)))
        # What every access reads of a page, one row per page: the first slot of its set in
        # the L1 dTLB and STLB (set = vpn mod sets), its node, the node it is migrating to.
        c = self.costs
        self._page.pid[n0:n] = page_pid[n0:n]
        new = self._page.row[n0:n]
        new[:, PG_B1] = (page_vpn[n0:n] % c.l1_sets) * c.l1_ways
        new[:, PG_B2] = (page_vpn[n0:n] % c.l2_sets) * c.l2_ways
        new[:, PG_NODE] = page_node[n0:n]
        new[:, PG_PENDING] = -1
        if page_order is not None:
            self._pmd_folios(page_vpn, page_order, n0, n)
        elif self._key is not None:
            self._key = self._key if n <= len(self._key) else _grown(self._key, 2 * n)
            self._key[n0:n] = np.arange(n0, n, dtype=np.int32)
        self.n_pages = n

    def _pmd_folios(self, page_vpn: np.ndarray, page_order: np.ndarray, n0: int, n: int) -> None:
        """The translation key and 2 MiB sets of the new pages of PMD-mapped folios."""
        pmd = page_order[n0:n] == self.pmd_order
        if self._key is None and not pmd.any():
            return
        ids = np.arange(n0, n, dtype=np.int32)
        key = self._key if self._key is not None else np.arange(n0, dtype=np.int32)
        self._key = key if n <= len(key) else _grown(key, 2 * n)
        within = (page_vpn[n0:n] & ((1 << self.pmd_order) - 1)).astype(np.int32)
        self._key[n0:n] = np.where(pmd, ids - within, ids)
        head = ids[pmd & (within == 0)]
        if len(head):
            huge_vpn = page_vpn[head] >> self.pmd_order
            row = self._page.row
            (base1, sets1), (base2, sets2) = self._l1h, self._l2h
            c = self.costs
            row[head, PG_B1] = base1 + (huge_vpn % sets1) * c.l1h_ways
            row[head, PG_B2] = base2 + (huge_vpn % sets2) * c.l2h_ways

    def add(self, plans: Sequence[mig.CallPlan] | PlanOps, masks: np.ndarray,
            cpu_first_ns: np.ndarray) -> None:
        """Take the plans of calls reached (or their operations, as :func:`ops.plan_ops` lays
        them out), with the mm_cpumask table they index and the first access of each process on
        each CPU as known by then."""
        self.buffer.add(plans)
        self.masks = masks
        self.cpu_first_ns = cpu_first_ns

    def step(self, acc: Accesses, *, limit: int | None = None, emit: bool = False,
             on_rounds: RoundSink | None = None) -> Stalls:
        """Replay one chunk of accesses (in time order, after those of earlier chunks), then
        the operations up to ``limit`` (default: the chunk's last access). ``on_rounds``
        receives the flush rounds completed."""
        n = len(acc.ts)
        if limit is None:
            limit = int(acc.ts[-1]) if n else -1
        k = n if emit else 0
        out = Out(st_idx=np.empty(n, np.int64), st_ns=np.empty(n, np.int64),
                  st_batch=np.empty(n, np.int64), st_req=np.empty(n, np.int64), emit=emit,
                  outcome=np.empty(k, np.int8), remote=np.empty(k, np.bool_),
                  latency=np.empty(k, np.int64), st_at=np.empty(n, np.int64))
        page = np.asarray(acc.page, np.int32)
        if self._key is not None:
            page = self._key[page]  # a PMD-mapped folio's pages share its head's translation
        acc = Accesses(frozen(acc.ts), frozen(acc.cpu), frozen(page), frozen(acc.write))
        b = self.buffer
        r = b.rounds
        rounds = Rounds(gid=r["gid"], cpu=r["cpu"], pid=r["pid_index"], full=r["full"],
                        mask_id=r["mask_id"], masks=self.masks, ptr=b.r_ptr, pages=b.r_pages,
                        holding=b.holding, broadcast=r["broadcast"])
        t0 = time.perf_counter()
        cursor, n_st = replay_chunk(acc, limit, b.op_record(), 0, rounds, self._page,
                                    Cpus(self.cpu_node, self.cpu_first_ns), self.tlbs,
                                    self.costs, out, self.delay)
        self.kernel_s += time.perf_counter() - t0
        done = b.consume(cursor)
        if on_rounds is not None and len(done["gid"]):
            on_rounds(done)
        # Copies: a view would keep the whole chunk-sized buffer alive in a pending table.
        st = Stalls(out.st_idx[:n_st].copy(), out.st_ns[:n_st].copy(),
                    out.st_batch[:n_st].copy(), out.st_req[:n_st].copy(),
                    *((out.outcome, out.remote, out.latency) if emit else ()))
        return dataclasses.replace(st, at_ns=out.st_at[:n_st].copy())


NO_ACCESSES = Accesses(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32),
                       np.zeros(0, np.bool_))


def _grown(a: np.ndarray, n: int, fill: int = 0) -> np.ndarray:
    """``a`` with room for ``n`` rows: its first rows, then ``fill``."""
    out = np.full((n, *a.shape[1:]), fill, a.dtype)
    out[: len(a)] = a[:n]
    return out
