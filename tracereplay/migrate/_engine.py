"""The migration engine shared by the policies: page state, costs, failure draws, records.

A policy turns one migration call (a page list on one CPU at a start time) into per-page
windows, flush rounds and batch records through the engine's few verbs: ``mask`` (and
``mask_until``), ``draws``, ``defers``, ``flush_round``, ``flush_cost``, ``mask_id``,
``add_rounds``, ``add_pages``, ``add_failed``, ``new_batch_id``, ``add_batch`` (and
``add_batches``). It knows nothing of the replay kernel, the event tables or the queries.

The unit of migration is the folio: a policy's list holds folio heads (a base page is a folio
of one page), each with its base pages (:meth:`Engine.folio_pages`), the TLB entries a flush
of it covers (:meth:`Engine.flush_entries`: one for a PMD-mapped folio) and its copy time
(:meth:`Engine.copy_times`, from its size in bytes). A folio's migration state (node now,
busy until) is kept on its head.

Simplifications (see docs/model.md): a page attempt fails only at unmap (busy, -EAGAIN) with
``fail_probability``; a policy reads mm_cpumask at a resolution of its own, not at every
flush; a call is expanded at its start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from tracereplay import flush as fl
from tracereplay.config import Profile
from tracereplay.copy import Copier
from tracereplay.prepass import PrePass
from tracereplay.trace.schema import pmd_order

STATUS_MIGRATED = 0
STATUS_FAILED = 1
STATUS_ABORTED = 2  # an attempt undone after its copy (transactional): the page stays
STATUS_NAMES = ("migrated", "failed", "aborted")

BATCH_KINDS = ("serial", "batch", "sync_retry", "transactional")


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
    batches: list[dict[str, int | str | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundRows:
    """Flush rounds as a policy records them, one value per round, in the order they happen.

    The arrays become the plan's columns as they are when a call records one part: pass
    fresh ones, none shared with another column."""

    ts_ns: np.ndarray  # when the round starts
    cost_ns: np.ndarray  # the initiator's time (local flush and IPIs, waiting included)
    targets: np.ndarray  # IPIs sent (CPUs of mm_cpumask but the initiator; 0 if broadcast)
    full: np.ndarray  # the round flushes the whole address space (more than ceiling_pages)
    mask_id: np.ndarray  # the mm_cpumask read, numbered by Engine.mask_id
    batch_id: np.ndarray
    n_pages: np.ndarray  # translations the round drops (a PMD-mapped folio's is one)
    page_list: np.ndarray  # those translations (page ids), round after round
    broadcast: np.ndarray  # the hardware invalidated every CPU (no IPI, nobody interrupted)


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRows:
    """Page attempts as a policy records them, one value per page (same rule as RoundRows).
    A page given up on has status STATUS_FAILED and -1 for what never happened; an attempt
    undone after its copy has STATUS_ABORTED and the times of what it did (its remap restores
    the old PTE)."""

    page: np.ndarray
    batch_id: np.ndarray
    pos: np.ndarray  # position in its batch's moves (-1 if failed)
    unmap_ns: np.ndarray
    flush_ns: np.ndarray  # when the flush covering its PTE ends
    copy_start_ns: np.ndarray
    remap_ns: np.ndarray
    round: np.ndarray  # gid of the round that flushed it
    status: np.ndarray
    attempts: np.ndarray
    copy_end_ns: np.ndarray  # when the migrating CPU knows the copy is done (the copy engine's)


class Draws:
    """Whether each page attempt finds the page busy (-EAGAIN): one uniform draw of a seeded
    ``numpy.random.default_rng`` per attempt, in the order the attempts are made, none when
    ``fail_probability`` is 0. :meth:`first_busy` looks ahead without consuming, so that a
    policy can lay out at once the attempts up to the next busy one; the draws are the same
    however they are looked at (successive draws continue one stream)."""

    def __init__(self, probability: float, seed: int) -> None:
        self.probability = probability
        self._rng = np.random.default_rng(seed)
        self._at = 0  # attempts consumed
        self._drawn = 0  # draws made (at least _at)
        self._busy = np.zeros(0, np.int64)  # which draws are busy, from the first not consumed
        self._next = 0  # the first of _busy at or after _at

    def _draw_to(self, end: int) -> None:
        short = end - self._drawn
        if short > 0:
            n = max(short, 4096, self._drawn - self._at)
            new = np.flatnonzero(self._rng.random(n) < self.probability) + self._drawn
            self._busy = np.concatenate([self._busy[self._next:], new])
            self._next = 0
            self._drawn += n

    def first_busy(self, n: int) -> int | None:
        """Which of the next ``n`` attempts is the first to find its page busy (None: none
        of them), without consuming them."""
        if self.probability <= 0.0 or not n:
            return None
        self._draw_to(self._at + n)
        if self._next < len(self._busy) and self._busy[self._next] < self._at + n:
            return int(self._busy[self._next]) - self._at
        return None

    def take(self, n: int) -> np.ndarray:
        """bool [n]: the outcomes of the next ``n`` attempts (True: busy)."""
        busy = np.zeros(n, bool)
        if self.probability <= 0.0:
            return busy
        self._draw_to(self._at + n)
        end = int(np.searchsorted(self._busy, self._at + n))
        busy[self._busy[self._next:end] - self._at] = True
        self._at += n
        self._next = end
        return busy


class Engine:
    """The state of one policy across the calls of a trace; hands out one plan per call."""

    def __init__(self, pre: PrePass, profile: Profile, config: Any) -> None:
        self.pre = pre
        self.profile = profile
        self.flush = profile.flush
        self.mechanism = fl.mechanism(profile.flush.mechanism)
        self._mechanism_config = profile.mechanisms[self.mechanism.name]
        self.costs = profile.migrate
        self.config = config  # the policy's own section, [policy.<name>]
        self.draws = Draws(profile.migrate.fail_probability, profile.migrate.seed)
        # The copy engine, and what it takes to copy one base page by itself.
        self.copier = Copier(profile, pre.machine.page_size)
        self.page_bytes = pre.machine.page_size
        self.copy_ns = self.copier.alone(self.page_bytes)
        self.pmd_order = pmd_order(pre.machine.page_shift)
        self._n = 0  # pages taken from the pre-pass
        self.node_now = np.zeros(0, np.int32)
        self.busy_until = np.zeros(0, np.int64)
        # PTEs mapping each folio (by head) in the call being planned: its unmap and remap
        # walk every mapping (rmap_walk()), so each costs unmap_ns and remap_ns that many times.
        self.mappings = np.ones(0, np.int64)
        # The migrating task's measured time off its CPU before each folio's unmap and before
        # its move, [folio, 2] (a capture's, from the trace; every policy waits it out).
        self.off_cpu = np.zeros((0, 2), np.int64)
        self._folio_pages = np.ones(0, np.int64)  # base pages of the folio of each page, 2^order
        self._base_pages_only = True  # no page so far belongs to a large folio
        self.grow()
        self._masks: dict[bytes, int] = {}
        # Flush rounds by (local, targets, pages): a mechanism's round depends on nothing else.
        self._round_of: dict[tuple[bool, int, int], fl.Round] = {}
        self.mask_table: list[np.ndarray] = []
        self._rounds: list[RoundRows] = []
        self._pages: list[PageRows] = []
        self._src: list[np.ndarray] = []  # node of each recorded page before its call
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
            maps = np.ones(cap, np.int64)
            maps[:have] = self.mappings
            off = np.zeros((cap, 2), np.int64)
            off[:have] = self.off_cpu
            size = np.ones(cap, np.int64)
            size[:have] = self._folio_pages
            self.node_now, self.busy_until, self.mappings, self.off_cpu = node, busy, maps, off
            self._folio_pages = size
        self.node_now[self._n:n] = self.pre.page_node[self._n:n]
        # A page's folio is fixed when the page appears (a map row after it changes nothing).
        order = self.pre.page_order[self._n:n]
        self._folio_pages[self._n:n] = np.left_shift(1, order.astype(np.int64))
        self._base_pages_only = self._base_pages_only and not order.any()
        self._n = n

    # -- folios ------------------------------------------------------------------------

    def folio_pages(self, folios: np.ndarray) -> np.ndarray:
        """int64: the base pages of each folio (heads), 2^order."""
        if self._base_pages_only:
            return np.ones(len(folios), np.int64)
        return self._folio_pages[folios]

    def folio_offsets(self, pages: np.ndarray) -> np.ndarray:
        """int64: how far each page is from its folio's head (the pages of a folio have
        consecutive ids, the head first, and a folio is aligned to its size)."""
        if self._base_pages_only:
            return np.zeros(len(pages), np.int64)
        return self.pre.page_vpn[pages] & (self._folio_pages[pages] - 1)

    def flush_entries(self, folios: np.ndarray) -> np.ndarray:
        """int64: the TLB entries a flush of each folio drops: one for a PMD-mapped folio
        (one 2 MiB translation), one per base page for a PTE-mapped one."""
        pages = self.folio_pages(folios)
        return pages if self._base_pages_only else np.where(pages == 1 << self.pmd_order, 1, pages)

    def flush_span(self, folios: np.ndarray) -> np.ndarray:
        """int64: what a flush of each folio counts against ``ceiling_pages`` and pays
        ``invlpg_ns`` for: its base pages. x86 has no flush_pmd_tlb_range() of its own: the
        generic one is flush_tlb_range() over the folio's 2 MiB in 4 KiB strides (stride
        PMD_SHIFT is for hugetlb VMAs only), 512 pages, above the ceiling: a full flush, as
        include/linux/pgtable.h says it "will likely be" for a single huge page."""
        return self.folio_pages(folios)

    def translations(self, folios: np.ndarray) -> np.ndarray:
        """int64: the translations of the folios, folio after folio, as the replay kernel names
        them: a PMD-mapped folio's head, every page of a PTE-mapped one."""
        n = self.flush_entries(folios)
        if len(n) and n.max() == 1:
            return folios.astype(np.int64, copy=True)
        return np.repeat(folios.astype(np.int64), n) + within(n)

    def unmap_remap(self, folios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """int64 ns: the unmap and the remap of each folio of the call being planned,
        ``unmap_ns`` and ``remap_ns`` once per mapping (try_to_migrate() and
        remove_migration_ptes() visit every PTE of the folio through rmap_walk())."""
        maps = self.mappings[folios]
        return maps * self.costs.unmap_ns, maps * self.costs.remap_ns

    def pauses(self, folios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """int64 ns: how long the migrating task was off its CPU just before each folio's unmap,
        and just before its move (copy and remap), as the trace measured them (0 elsewhere).
        A policy waits them out on the attempt that unmaps (moves) the folio and counts them
        as ``other`` time."""
        # (take: numpy gathers the rows of a 2-D array by fancy indexing element by element)
        unmap, move = self.off_cpu.take(folios, axis=0).T.copy()
        return unmap, move

    def folio_bytes(self, folios: np.ndarray) -> np.ndarray:
        """int64: the size of each folio in bytes, what the copy engine is asked about."""
        return self.folio_pages(folios) * self.page_bytes

    def copy_times(self, folios: np.ndarray) -> np.ndarray:
        """int64 ns: the copy engine's time for each folio copied by itself."""
        sizes = self.folio_bytes(folios)
        if not len(sizes) or sizes.min() == sizes.max():  # folios of one size (base pages)
            return np.full(len(sizes), self.copier.alone(int(sizes[0])) if len(sizes) else 0,
                           np.int64)
        values, at = np.unique(sizes, return_inverse=True)
        return np.array([self.copier.alone(int(v)) for v in values], np.int64)[at]

    # -- verbs for policies -------------------------------------------------------------

    def mask(self, pid_index: int, t_ns: int) -> np.ndarray:
        """mm_cpumask of the pid at ``t_ns`` (bool over CPUs)."""
        return self.pre.mask(pid_index, t_ns, self.flush.mm_cpumask, self.flush.mm_cpumask_window_ns)

    def mask_until(self, pid_index: int, t_ns: int) -> int:
        """Until when (exclusive) :meth:`mask` reads as it does at ``t_ns``."""
        return self.pre.mask_until(pid_index, t_ns, self.flush.mm_cpumask,
                                   self.flush.mm_cpumask_window_ns)

    def flush_costs(self, local: bool, targets: int, entries: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(initiator ns, full) of rounds of ``entries`` TLB entries each, by
        :meth:`flush_cost`."""
        if len(entries) and entries.min() == entries.max():  # rounds of one size (base pages)
            one_cost, one_full = self.flush_cost(local, targets, int(entries[0]))
            return np.full(len(entries), one_cost, np.int64), np.full(len(entries), one_full, bool)
        values, at = np.unique(entries, return_inverse=True)
        got = [self.flush_cost(local, targets, int(v)) for v in values]
        cost = np.array([g[0] for g in got], np.int64)[at]
        full = np.array([g[1] for g in got], bool)[at]
        return cost, full

    def flush_cost(self, local: bool, targets: int, pages: int) -> tuple[int, bool]:
        """(initiator ns, full) of :meth:`flush_round`."""
        rnd = self.flush_round(local, targets, pages)
        return rnd.cost_ns, rnd.full

    def _scope(self, local: bool, targets: int, pages: int) -> fl.Scope:
        return fl.Scope(local=local, targets=targets, pages=pages, cpus=self.pre.machine.cpus)

    def flush_round(self, local: bool, targets: int, pages: int) -> fl.Round:
        """A flush round of ``pages`` pages as the profile's mechanism does it: ``local`` when
        the initiator is in the mask (it ran the process), ``targets`` other CPUs in it. Whom it
        interrupts (IPIs) and whether it is a broadcast depend on the mask alone."""
        key = (local, targets, pages)
        got = self._round_of.get(key)
        if got is None:
            got = self._round_of[key] = self.mechanism.round(
                self.flush, self._mechanism_config, self._scope(local, targets, pages))
        return got

    def defers(self, local: bool, targets: int) -> bool:
        """Whether a batched unmap defers its flush to one round (else each PTE is flushed
        at once)."""
        return self.mechanism.defers(self.flush, self._mechanism_config,
                                     self._scope(local, targets, 1))

    def mask_id(self, mask: np.ndarray) -> int:
        """The number of ``mask`` in the run's mask table (added on first use)."""
        key = mask.tobytes()
        if key not in self._masks:
            self._masks[key] = len(self.mask_table)
            self.mask_table.append(mask.astype(np.uint8))
        return self._masks[key]

    def add_rounds(self, rows: RoundRows) -> int:
        """Record flush rounds; returns the gid of the first (they are numbered in order)."""
        self._rounds.append(rows)
        first = self.n_rounds
        self.n_rounds += len(rows.ts_ns)
        return first

    def add_pages(self, rows: PageRows, call: Call) -> None:
        """Record page attempts; the migrated pages move to the call's node at their remap."""
        self._pages.append(rows)
        self._src.append(self.node_now[rows.page])
        done = rows.status == STATUS_MIGRATED
        pages, remap = (rows.page, rows.remap_ns) if done.all() else (rows.page[done], rows.remap_ns[done])
        self.node_now[pages] = call.dst_node
        self.busy_until[pages] = remap
        undone = rows.status == STATUS_ABORTED
        if undone.any():
            # An aborted attempt keeps its page busy until its old PTE is restored.
            np.maximum.at(self.busy_until, rows.page[undone], rows.remap_ns[undone])

    def add_failed(self, *, pages: np.ndarray, call: Call, batch_id: int, attempts: int) -> None:
        """Record pages given up on after their pass budget (they stay where they are)."""
        n = len(pages)
        if n:
            none = np.full(n, -1, np.int64)
            self.add_pages(PageRows(
                page=pages, batch_id=np.full(n, batch_id, np.int64), pos=none, unmap_ns=none,
                flush_ns=none, copy_start_ns=none, remap_ns=none, round=none,
                status=np.full(n, STATUS_FAILED, np.int8), attempts=np.full(n, attempts, np.int32),
                copy_end_ns=none,
            ), call)

    def new_batch_id(self) -> int:
        self.n_batches += 1
        return self.n_batches - 1

    def add_batch(
        self, *, call: Call, kind: str, pages: int, nr_succeeded: int, start_ns: int,
        end_ns: int, unmap_ns: int, flush_ns: int, copy_ns: int, remap_ns: int, other_ns: int,
        folios: int | None = None,
    ) -> None:
        """Record the batch last numbered by :meth:`new_batch_id`; its phase durations must
        add up to its length. ``pages`` and ``nr_succeeded`` count base pages, as the
        kernel's ``nr_succeeded`` does; ``folios`` the folios submitted (None: as many as
        pages)."""
        self._batches.append(_batch_record(
            self.n_batches - 1, call, kind, pages, nr_succeeded, start_ns, end_ns, unmap_ns,
            flush_ns, copy_ns, remap_ns, other_ns, pages if folios is None else folios))

    def add_batches(
        self, *, call: Call, kind: str, batch_id: np.ndarray, pages: np.ndarray,
        nr_succeeded: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray,
        unmap_ns: np.ndarray, flush_ns: np.ndarray, copy_ns: np.ndarray, remap_ns: np.ndarray,
        other_ns: np.ndarray, folios: np.ndarray,
    ) -> None:
        """Record batches as :meth:`add_batch` records each, from arrays of one value per
        batch, ``batch_id`` their numbers."""
        columns = (batch_id, pages, nr_succeeded, start_ns, end_ns, unmap_ns, flush_ns, copy_ns,
                   remap_ns, other_ns, folios)
        for row in zip(*(c.tolist() for c in columns), strict=True):
            self._batches.append(_batch_record(row[0], call, kind, *row[1:]))

    # -- results ----------------------------------------------------------------------------

    def take(self, call: Call, start_ns: int, end_ns: int) -> CallPlan:
        """The plan of the call just scheduled (and forget it)."""
        pages = self._page_columns(call)
        plan = CallPlan(start_ns=start_ns, end_ns=end_ns, rounds=self._round_columns(call),
                        pages=pages, batches=_with_first_remap(self._batches, pages))
        self._rounds, self._pages, self._src, self._batches = [], [], [], []
        return plan

    def _round_columns(self, call: Call) -> dict[str, np.ndarray]:
        got = _joined(self._rounds, RoundRows, _ROUND_DTYPES)
        n = len(got["ts_ns"])
        ts, cost, counts = got["ts_ns"], got["cost_ns"], got["n_pages"]
        first = self.n_rounds - n
        return {
            "ts_ns": ts, "end_ns": ts + cost, "cost_ns": cost,
            "cpu": np.full(n, call.cpu, np.int32),
            "pid_index": np.full(n, call.pid_index, np.int32),
            "req_id": np.full(n, call.req_id, np.int64),
            "batch_id": got["batch_id"],
            "pages": np.where(got["full"], -1, counts).astype(np.int32),
            "n_pages": counts,
            "gid": np.arange(first, first + n, dtype=np.int64),
            "targets": got["targets"], "full": got["full"], "mask_id": got["mask_id"],
            "page_list": got["page_list"], "broadcast": got["broadcast"],
        }

    def _page_columns(self, call: Call) -> dict[str, np.ndarray]:
        got = _joined(self._pages, PageRows, _PAGE_DTYPES)
        n = len(got["page"])
        folio = got["page"]
        src = self._src[0] if len(self._src) == 1 else np.concatenate(self._src or [np.zeros(0, np.int32)])
        return {
            "page": got["page"],
            "req_id": np.full(n, call.req_id, np.int64),
            "batch_id": got["batch_id"],
            "cpu": np.full(n, call.cpu, np.int32),
            "pos": got["pos"],
            "src_node": src,
            "dst_node": np.full(n, call.dst_node, np.int32),
            "unmap_ns": got["unmap_ns"],
            "flush_ns": got["flush_ns"],
            "copy_start_ns": got["copy_start_ns"],
            "copy_end_ns": got["copy_end_ns"],
            "remap_ns": got["remap_ns"],
            "round": got["round"],
            "status": got["status"],
            "attempts": got["attempts"],
            "pages": self.folio_pages(folio),  # base pages of the folio
            "span": self.flush_entries(folio),  # translations its unmap covers in the kernel
        }

    def masks(self) -> np.ndarray:
        if not self.mask_table:
            return np.zeros((1, self.pre.machine.cpus), np.uint8)
        return np.stack(self.mask_table)


def _batch_record(batch_id: int, call: Call, kind: str, pages: int, nr_succeeded: int,
                  start_ns: int, end_ns: int, unmap_ns: int, flush_ns: int, copy_ns: int,
                  remap_ns: int, other_ns: int, folios: int) -> dict[str, int | str]:
    if unmap_ns + flush_ns + copy_ns + remap_ns + other_ns != end_ns - start_ns:
        raise AssertionError("batch phases do not add up to the batch length")
    return {
        "batch_id": batch_id, "req_id": call.req_id, "cpu": call.cpu,
        "pid_index": call.pid_index, "kind": kind,
        "mode": "async" if call.is_async else "sync", "pages": pages,
        "nr_succeeded": nr_succeeded, "nr_failed": pages - nr_succeeded,
        "start_ns": start_ns, "end_ns": end_ns, "unmap_ns": unmap_ns, "flush_ns": flush_ns,
        "copy_ns": copy_ns, "remap_ns": remap_ns, "other_ns": other_ns, "folios": folios,
    }


def within(counts: np.ndarray) -> np.ndarray:
    """int64: the index of each row within its group, the groups of ``counts`` rows one after
    another."""
    n = int(counts.sum())
    return np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def _with_first_remap(batches: list[dict[str, Any]], pages: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """The batch records, each given ``first_remap_ns``: the earliest remap of its migrated
    pages (None when none was migrated). Taken from the page windows whatever the policy, so
    it is right for any order of the steps a policy chooses."""
    ids, remap = pages["batch_id"], pages["remap_ns"]
    done = pages["status"] == STATUS_MIGRATED
    if not done.all():
        ids, remap = ids[done], remap[done]
    if len(ids) > 1 and (ids[1:] < ids[:-1]).any():  # the pages of a batch together
        order = np.argsort(ids, kind="stable")
        ids, remap = ids[order], remap[order]
    first = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]])) if len(ids) else ids
    earliest = dict(zip(ids[first].tolist(), np.minimum.reduceat(remap, first).tolist(),
                        strict=True)) if len(ids) else {}
    for b in batches:
        b["first_remap_ns"] = earliest.get(b["batch_id"])
    return batches


def _joined(parts: list[Any], record: type, dtypes: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each field of the recorded ``parts`` (named records of one type) as one column of its
    plan dtype; a single part's arrays are handed out without a copy."""
    out = {}
    for f in fields(record):
        dtype = dtypes[f.name]
        if len(parts) == 1:
            out[f.name] = getattr(parts[0], f.name).astype(dtype, copy=False)
        elif parts:
            out[f.name] = np.concatenate([getattr(p, f.name) for p in parts]).astype(dtype, copy=False)
        else:
            out[f.name] = np.zeros(0, dtype)
    return out


_ROUND_DTYPES = {
    "ts_ns": np.int64, "cost_ns": np.int64, "targets": np.int32, "full": bool,
    "mask_id": np.int32, "batch_id": np.int64, "n_pages": np.int64, "page_list": np.int64,
    "broadcast": bool,
}
_PAGE_DTYPES = {
    "page": np.int64, "batch_id": np.int64, "pos": np.int32, "unmap_ns": np.int64,
    "flush_ns": np.int64, "copy_start_ns": np.int64, "remap_ns": np.int64, "round": np.int64,
    "status": np.int8, "attempts": np.int32, "copy_end_ns": np.int64,
}
