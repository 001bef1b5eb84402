"""Replay a trace under migration policies and write their event tables.

``run(trace_path, out_dir)`` loads and validates the trace, makes the pre-pass, then streams
the accesses through the compiled kernel once, all policies side by side. Each policy plans a
migration call when the replay reaches its start, so memory holds the calls in flight, not the
whole schedule; event tables are written as they are produced, into
``out_dir/policy=<name>/``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay import __version__
from tracereplay import events as ev
from tracereplay import migrate as mig
from tracereplay import trace as tr
from tracereplay._frozen import frozen
from tracereplay._kernel import (
    N_PAGE_COLS,
    N_PARAMS,
    OP_ROUND,
    OP_UNMAP,
    PG_B1,
    PG_B2,
    PG_NODE,
    PG_PENDING,
    STAT_NAMES,
    replay_chunk,
)
from tracereplay.config import Profile, load_profile
from tracereplay.errors import ConfigError, OutputExistsError
from tracereplay.machine import Machine
from tracereplay.schedule import KIND_ACCESS, KIND_MIGRATE, PrePass, PrePassBuilder

DEFAULT_POLICIES = ("serial", "batched")

_REASON_NAMES = {3: "local_mm_shootdown", 4: "remote_ipi_send"}

Progress = Callable[[int, int], None]


_OP_COLS = {"ts": np.int64, "kind": np.int8, "arg": np.int64, "round": np.int64,
            "until": np.int64, "dst": np.int32, "batch": np.int64, "req": np.int64}
_ROUND_COLS = ("gid", "ts_ns", "end_ns", "cost_ns", "cpu", "pid_index", "req_id", "batch_id",
               "pages", "n_pages", "targets", "full", "mask_id")
NO_LIMIT = np.iinfo(np.int64).max


class OpBuffer:
    """Scheduled operations not yet replayed, in time order, with the rounds they name.

    Plans are added as the replay reaches their start; replayed operations are dropped, and
    the rounds they completed are handed back as rows of the ``flushes`` table.
    """

    def __init__(self) -> None:
        self.ops = {k: np.zeros(0, t) for k, t in _OP_COLS.items()}
        self.rounds: dict[str, np.ndarray] = {k: np.zeros(0, np.int64) for k in _ROUND_COLS}
        self.r_ptr = np.zeros(1, np.int64)
        self.r_pages = np.zeros(0, np.int64)
        self.holding = np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.ops["ts"])

    def add(self, plans: Sequence[mig.CallPlan]) -> None:
        if not plans:
            return
        n0 = len(self.rounds["gid"])
        parts = [self.ops]
        rounds = [self.rounds]
        pages = [self.r_pages]
        offset = n0
        for plan in plans:
            pg, rd = plan.pages, plan.rounds
            ok = pg["status"] == mig.STATUS_MIGRATED
            n_u, n_r = int(ok.sum()), len(rd["gid"])
            none = np.full(n_r, -1, np.int64)
            parts.append({
                "ts": np.concatenate([pg["unmap_ns"][ok], rd["end_ns"]]),
                "kind": np.concatenate([np.full(n_u, OP_UNMAP, np.int8), np.full(n_r, OP_ROUND, np.int8)]),
                "arg": np.concatenate([pg["page"][ok], np.arange(offset, offset + n_r, dtype=np.int64)]),
                "round": np.concatenate([pg["round"][ok], none]),
                "until": np.concatenate([pg["remap_ns"][ok], none]),
                "dst": np.concatenate([pg["dst_node"][ok], none.astype(np.int32)]),
                "batch": np.concatenate([pg["batch_id"][ok], none]),
                "req": np.concatenate([pg["req_id"][ok], none]),
            })
            rounds.append({k: rd[k] for k in _ROUND_COLS})
            pages.append(rd["page_list"])
            offset += n_r
        ops = {k: np.concatenate([p[k] for p in parts]).astype(t, copy=False) for k, t in _OP_COLS.items()}
        # Time first; at equal times unmaps before rounds; then the order they were planned.
        order = np.lexsort((np.arange(len(ops["ts"])), ops["kind"], ops["ts"]))
        self.ops = {k: v[order] for k, v in ops.items()}
        self.rounds = {k: np.concatenate([r[k] for r in rounds]) for k in _ROUND_COLS}
        self.r_pages = np.concatenate(pages)
        self.r_ptr = np.zeros(len(self.rounds["gid"]) + 1, np.int64)
        self.r_ptr[1:] = np.cumsum(self.rounds["n_pages"])
        self.holding = np.concatenate([self.holding, np.zeros(offset - n0, np.int32)])

    def consume(self, n: int) -> dict[str, np.ndarray]:
        """Drop the first ``n`` operations; return the rounds they completed (with holding)."""
        kind, arg = self.ops["kind"], self.ops["arg"]
        done = arg[:n][kind[:n] == OP_ROUND]
        out = {k: v[done] for k, v in self.rounds.items()}
        out["holding"] = self.holding[done]
        left = arg[n:][kind[n:] == OP_ROUND]
        if len(done):
            # Renumber the rounds still pending and rebuild their page lists.
            keep = np.sort(left)
            new_index = np.full(len(self.rounds["gid"]), -1, np.int64)
            new_index[keep] = np.arange(len(keep))
            counts = self.rounds["n_pages"][keep]
            take = np.repeat(self.r_ptr[keep] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            self.r_pages = self.r_pages[take]
            self.rounds = {k: v[keep] for k, v in self.rounds.items()}
            self.holding = self.holding[keep]
            self.r_ptr = np.zeros(len(keep) + 1, np.int64)
            self.r_ptr[1:] = np.cumsum(counts)
            rest_kind = kind[n:]
            arg = arg.copy()
            arg[n:][rest_kind == OP_ROUND] = new_index[arg[n:][rest_kind == OP_ROUND]]
            self.ops["arg"] = arg
        self.ops = {k: v[n:] for k, v in self.ops.items()}
        return out


class KernelState:
    """Everything the kernel carries from one chunk to the next for one policy: TLBs, page
    states, counters, and the operations of the plans reached so far."""

    def __init__(self, pre: PrePass, profile: Profile, planner: mig.Planner) -> None:
        self._setup(pre.machine, profile, planner, pre.cpu_first_ns)
        self.grow(pre.page_pid, pre.page_vpn, pre.page_node, spare=False)

    @classmethod
    def without_plans(cls, machine: Machine, profile: Profile) -> KernelState:
        """A replay that no migration call reaches, with no pages yet: :meth:`grow` adds them
        as they appear (such a replay reads neither the pages' processes nor ``cpu_first_ns``,
        which only flush rounds need)."""
        self = cls.__new__(cls)
        self._setup(machine, profile, None, np.zeros((0, machine.cpus), np.int64))
        return self

    def _setup(self, machine: Machine, profile: Profile, planner: mig.Planner | None,
               cpu_first_ns: np.ndarray) -> None:
        t = profile.tlb
        cpus = machine.cpus
        self.tlb_sets = (t.l1_sets, t.l1_ways, t.l2_sets, t.l2_ways)
        self._follow(planner)
        self.buffer = OpBuffer()
        self.n_pages = 0
        self.page_pid = np.zeros(0, np.int32)
        self.page = np.empty((0, N_PAGE_COLS), np.int32)
        self.page_until = self.page_batch = self.page_req = self.page_round = np.zeros(0, np.int64)
        self.cpu_node = np.asarray(machine.cpu_node, np.int32)
        self.cpu_first_ns = cpu_first_ns
        self._no_masks = np.zeros((1, cpus), np.uint8)
        # Tags are page ids (-1: empty) and LRU stamps the kernel's clock (renumbered before it
        # overflows), both 32 bits so that a set of the STLB spans fewer cache lines.
        self.l1_tag = np.full((cpus, t.l1_entries), -1, np.int32)
        self.l1_lru = np.zeros((cpus, t.l1_entries), np.int32)
        self.l2_tag = np.full((cpus, t.l2_entries), -1, np.int32)
        self.l2_lru = np.zeros((cpus, t.l2_entries), np.int32)
        self.clock = np.zeros(1, np.int64)
        f, m = profile.flush, profile.memory
        self.params = np.array(
            [t.l1_sets, t.l1_ways, t.l2_sets, t.l2_ways, t.l1_hit_ns, t.l2_hit_ns, t.walk_ns,
             m.local_ns, m.remote_ns, f.invlpg_ns, f.full_flush_ns, f.ipi_responder_ns],
            np.int64,
        )
        if len(self.params) != N_PARAMS:
            raise AssertionError("kernel parameters out of step with _kernel.py")
        self.stats = np.zeros((cpus, len(STAT_NAMES)), np.int64)
        self.kernel_s = 0.0  # time spent in the compiled kernel (benchmarks report it)

    def attach(self, pre: PrePass, planner: mig.Planner) -> KernelState:
        """Go on as the replay of ``planner``'s policy over the finished pre-pass ``pre``: a
        state made by :meth:`without_plans` whose pages have ``pre``'s initial nodes."""
        self._follow(planner)
        self.cpu_first_ns = pre.cpu_first_ns
        self.grow(pre.page_pid, pre.page_vpn, pre.page_node[self.n_pages:], spare=False)
        return self

    def _follow(self, planner: mig.Planner | None) -> None:
        """Take the plans of ``planner`` (none if None) as the replay reaches them."""
        self.planner = planner
        self._plans = iter(planner) if planner is not None else iter(())
        self._next: mig.CallPlan | None = next(self._plans, None)

    def grow(self, page_pid: np.ndarray, page_vpn: np.ndarray, new_node: np.ndarray, *,
             spare: bool = True) -> None:
        """Take the pages numbered from :attr:`n_pages` up to ``len(page_pid)``: ``page_pid``
        and ``page_vpn`` describe every page so far, in page-id order, ``new_node`` the initial
        node of each new one. The pages already taken keep their state. With ``spare``, room
        grows by doubling (for pages still to come)."""
        n, n0 = len(page_pid), self.n_pages
        if n < n0:
            raise ValueError("pages are only ever added")
        if n > np.iinfo(np.int32).max:
            raise AssertionError("more pages than 32-bit TLB tags can name")
        self.page_pid = page_pid
        if n > len(self.page) or (not spare and len(self.page) > n):
            cap = max(n, 2 * len(self.page)) if spare else n
            self.page = _grown(self.page, cap)
            self.page_until = _grown(self.page_until, cap)
            self.page_batch = _grown(self.page_batch, cap, -1)
            self.page_req = _grown(self.page_req, cap, -1)
            self.page_round = _grown(self.page_round, cap, -1)
        # What every access reads of a page, one row per page: the first slot of its set in
        # the L1 dTLB and STLB (set = vpn mod sets), its node, the node it is migrating to.
        l1_sets, l1_ways, l2_sets, l2_ways = self.tlb_sets
        new = self.page[n0:n]
        new[:, PG_B1] = (page_vpn[n0:n] % l1_sets) * l1_ways
        new[:, PG_B2] = (page_vpn[n0:n] % l2_sets) * l2_ways
        new[:, PG_NODE] = new_node
        new[:, PG_PENDING] = -1
        self.n_pages = n

    @property
    def page_node(self) -> np.ndarray:
        """Each page's node (as the replay has got)."""
        return self.page[: self.n_pages, PG_NODE]

    def adopt(self, other: KernelState) -> None:
        """Take the TLBs, clock, counters and kernel time of ``other``, a replay of the same
        accesses that no migration call reached (so its pages are as they started)."""
        for name in ("l1_tag", "l1_lru", "l2_tag", "l2_lru", "clock", "stats"):
            getattr(self, name)[...] = getattr(other, name)
        self.kernel_s += other.kernel_s  # so each policy's kernel time covers all its rows

    def _reach(self, t_ns: int) -> list[mig.CallPlan]:
        """Plans of the calls that start at or before ``t_ns``, added to the buffer."""
        new = []
        while self._next is not None and self._next.start_ns <= t_ns:
            new.append(self._next)
            self._next = next(self._plans, None)
        self.buffer.add(new)
        return new

    def step(
        self, ts: np.ndarray, cpu: np.ndarray, page: np.ndarray, write: np.ndarray, *,
        emit: bool = False, on_plans: Callable[[list[mig.CallPlan]], None] | None = None,
        on_rounds: Callable[[dict[str, np.ndarray]], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...] | None]:
        """Replay one chunk of accesses (in time order, after those of earlier chunks).

        Returns stall rows (access index, ns, batch, req) and, with ``emit``, per-access
        (outcome, remote, latency). ``on_plans`` receives the plans reached, ``on_rounds`` the
        completed flush rounds.
        """
        n = len(ts)
        page = np.asarray(page, np.int32)  # page ids fit: KernelState checked the page count
        if n:
            plans = self._reach(int(ts[-1]))
            if on_plans is not None and plans:
                on_plans(plans)
        st = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64),
              np.empty(n, np.int64))
        out = (np.empty(n if emit else 0, np.int8), np.empty(n if emit else 0, np.bool_),
               np.empty(n if emit else 0, np.int64))
        n_st = self._run(ts, cpu, page, write, int(ts[-1]) if n else -1, st, emit, out, on_rounds)
        # Copies: a view would keep the whole chunk-sized buffer alive in the pending table.
        return (st[0][:n_st].copy(), st[1][:n_st].copy(), st[2][:n_st].copy(),
                st[3][:n_st].copy(), (out if emit else None))

    def finish(self, *, on_plans: Callable[[list[mig.CallPlan]], None] | None = None,
               on_rounds: Callable[[dict[str, np.ndarray]], None] | None = None) -> None:
        """Replay the operations left after the last access, one call's plan at a time."""
        z64 = np.zeros(0, np.int64)
        st = (z64, z64, z64, z64)
        out = (np.zeros(0, np.int8), np.zeros(0, np.bool_), z64)
        args = (z64, z64.astype(np.int32), z64.astype(np.int32), z64.astype(np.bool_))
        while True:
            nxt = self._next
            limit = NO_LIMIT if nxt is None else nxt.start_ns - 1
            self._run(*args, limit, st, False, out, on_rounds)
            if nxt is None:
                return
            plans = self._reach(nxt.start_ns)
            if on_plans is not None:
                on_plans(plans)

    def _run(self, ts, cpu, page, write, limit, st, emit, out, on_rounds) -> int:  # type: ignore[no-untyped-def]
        b = self.buffer
        o, r = b.ops, b.rounds
        masks = self.planner.masks() if self.planner is not None else self._no_masks
        t0 = time.perf_counter()
        cursor, n_st = replay_chunk(
            frozen(ts), frozen(cpu), frozen(page), frozen(write), limit,
            o["ts"], o["kind"], o["arg"], o["round"], o["until"], o["dst"], o["batch"], o["req"], 0,
            r["gid"], r["cpu"], r["pid_index"], r["full"], r["mask_id"], masks, b.r_ptr, b.r_pages,
            b.holding, self.page_pid, self.page, self.page_until, self.page_batch, self.page_req,
            self.page_round,
            self.cpu_node, self.cpu_first_ns, self.l1_tag, self.l1_lru, self.l2_tag, self.l2_lru, self.clock,
            self.params, self.stats, st[0], st[1], st[2], st[3], emit, out[0], out[1], out[2],
        )
        self.kernel_s += time.perf_counter() - t0
        done = b.consume(cursor)
        if on_rounds is not None and len(done["gid"]):
            on_rounds(done)
        return int(n_st)


def _access_rows(kind: np.ndarray, n_access: int, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """``columns`` at a group's access rows (``n_access`` of them; no copy when all are)."""
    if n_access == len(kind):
        return columns
    acc = kind == KIND_ACCESS
    return tuple(c[acc] for c in columns)


def _grown(a: np.ndarray, n: int, fill: int = 0) -> np.ndarray:
    """``a`` with room for ``n`` rows: its first rows, then ``fill``."""
    out = np.full((n, *a.shape[1:]), fill, a.dtype)
    out[: len(a)] = a[:n]
    return out


@dataclass
class PolicyResult:
    """What one policy's replay produced: summary metrics and where its tables are."""

    policy: str
    path: Path
    metrics: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    kernel_s: float = 0.0  # time in the compiled kernel


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
    reading: Progress | None = None,
) -> list[PolicyResult]:
    """Replay ``trace_path`` under each policy; write ``out_dir/policy=<name>/``.

    ``progress(done, total)`` is called as rows are replayed (``done`` of the file's ``total``
    rows, never falling; rows replayed during the validating read count from then on);
    ``reading(done, total)`` as the validating read (and pre-pass) goes through them."""
    t0 = time.perf_counter()
    profile = profile or load_profile()
    if isinstance(policies, str):
        policies = [policies]
    policies = list(dict.fromkeys(policies))
    for name in policies:
        mig.policy(name)  # unknown names fail before any work
    out = Path(out_dir)
    created = _check_out_dir(out, policies, force)
    try:
        return _run(trace_path, out, policies, profile, force, emit_accesses, progress, reading, t0)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # leave nothing behind where there was nothing
        raise


def _run(trace_path: str | os.PathLike[str], out: Path, policies: list[str], profile: Profile,
         force: bool, emit_accesses: bool, progress: Progress | None, reading: Progress | None,
         t0: float) -> list[PolicyResult]:
    machine_keys = sorted(k for k in profile.overridden if k.startswith("machine."))
    if machine_keys and tr.file_machine(trace_path) is not None:
        raise ConfigError(
            f"{trace_path}: the trace describes its own machine, so {', '.join(machine_keys)} "
            "would be ignored; machine settings apply to traces without one (to replay on "
            "another machine, generate the trace for it, e.g. generate pmbench --cpus N)")
    window = profile.flush.mm_cpumask == "window"
    builder: PrePassBuilder | None = None
    early: _EarlyReplay | None = None
    stack = contextlib.ExitStack()

    @functools.cache
    def total_rows() -> int:
        return int(pq.read_metadata(trace_path).num_rows)

    def observe(group: tr.RowGroup) -> None:
        # The pre-pass shares the validating read; the machine is known by the first batch.
        nonlocal builder, early
        if builder is None:
            builder = PrePassBuilder(
                tr.machine_of(trace_path, profile.machine.machine()),
                active_bin_ns=max(1, profile.flush.mm_cpumask_window_ns // 16) if window else 0)
            if EARLY_REPLAY and not emit_accesses:
                early = stack.enter_context(_EarlyReplay(builder, profile))
        # The pre-pass numbers the pages of every access; the ids wait (in memory, or beyond a
        # bound in an unnamed scratch file) for the replay's read, which then needs neither
        # the addresses nor the page table.
        page = builder.add_rows(group)
        ids.put(page)
        if reading is not None:
            reading(group.row0 + group.num_rows, total_rows())
        if early is not None:
            early.add(group, page)
            replayed_early()

    def replayed_early() -> None:
        if early is not None and progress is not None and early.done_rows:
            progress(early.done_rows, total_rows())

    # The file's hash is computed alongside the validating read (a regular file only: anything
    # else is for load to refuse), and stops if the read fails.
    stop = threading.Event()
    with (stack, _PageIds(out) as ids,
          ThreadPoolExecutor(1, thread_name_prefix="tracereplay-hash") as hasher):
        digest = (hasher.submit(tr.file_sha256, trace_path, stop)
                  if Path(trace_path).is_file() else None)
        try:
            trace = tr.load(trace_path, machine=profile.machine.machine(), observe_rows=observe,
                            summarise=False)
            if early is not None:
                early.finish()
                replayed_early()
        except BaseException:
            stop.set()
            raise
        sha = digest.result() if digest is not None else trace.sha256()
        return _replay(trace, sha, out, policies, profile, force, emit_accesses, progress, t0,
                       builder, ids, early)


_NO_PAGES = np.zeros(0, np.int32)

# Replay row groups during the validating read when no migration call can have started (see
# _EarlyReplay); off, the replay waits for the whole pre-pass (the results are the same).
EARLY_REPLAY = True
# Row groups that may wait for the read to get past their last timestamp (one, unless many
# rows share a timestamp).
MAX_WAITING = 8


@dataclass
class _Waiting:
    """A row group that the pre-pass has taken and the early replay has not."""

    rows: int
    last_ns: int
    pages: int  # pages numbered by the pre-pass up to the end of the group
    ts: np.ndarray
    cpu: np.ndarray
    write: np.ndarray
    page: np.ndarray


class _EarlyReplay:
    """Replays the trace's row groups while the validating read goes on, on a thread of its
    own, as long as no migration call can have started.

    Until a call starts, no policy has anything to do: every policy's replay is the same, so
    one state serves all: after the read the first policy's replay goes on from it and the
    others start from a copy. A group is replayed once the read is past its last timestamp
    (the replay of a group reaches the calls that start by then) and no migrate row came at or
    before it. A ``map`` row may still declare the node of a page that an access touched
    before it; the nodes of the pages replayed are checked against the finished pre-pass, and
    on a difference the replay starts over from the first row instead (:meth:`take`).
    """

    def __init__(self, builder: PrePassBuilder, profile: Profile) -> None:
        self.builder = builder
        self._state: KernelState | None = KernelState.without_plans(builder.machine, profile)
        self.waiting: list[_Waiting] = []
        self.open = True  # no migrate row read yet
        self.rows = 0  # rows replayed or being replayed (the first of the file)
        self.groups = 0  # row groups replayed or being replayed
        self.done_rows = 0  # rows replayed
        self.settled = 0  # pages touched by the groups replayed or being replayed (the first)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="tracereplay-early")
        self.running: Future[None] | None = None

    def __enter__(self) -> _EarlyReplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def add(self, group: tr.RowGroup, page: np.ndarray) -> None:
        """After the pre-pass took ``group`` (whose access rows have page ids ``page``)."""
        if not self.open or not group.num_rows:
            return
        migrate = group.kind == KIND_MIGRATE
        if migrate.any():
            self._close(int(group.ts_ns[np.argmax(migrate)]))
            return
        if len(self.waiting) >= MAX_WAITING:
            # Time has stood still for that many groups: holding more would make memory grow
            # with the trace; the rest is left for the replay's own read.
            self._close(int(group.ts_ns[0]))
            return
        ts, cpu, write = _access_rows(group.kind, len(page), group.ts_ns, group.cpu, group.write)
        self.waiting.append(_Waiting(group.num_rows, int(group.ts_ns[-1]), self.builder.n_pages,
                                     ts, cpu, write, page))
        self._replay_until(int(group.ts_ns[-1]))

    def _close(self, t_ns: int) -> None:
        """Replay what the read is past of, before ``t_ns``, and no more."""
        self.open = False
        self._replay_until(t_ns)
        self.waiting = []

    def finish(self) -> None:
        """After the read: replay the groups still waiting, and wait for the replay."""
        if self.open:
            self._replay_until(NO_LIMIT)
        self._wait()

    def take(self, pre: PrePass) -> KernelState | None:
        """The state after the rows replayed (:attr:`rows`, :attr:`groups`) if the pages it
        replayed have the initial nodes of the finished pre-pass, else None (the replay starts
        over); either way this object lets go of it."""
        state, self._state = self.state, None
        n = self.settled
        if not self.groups or not np.array_equal(state.page_node[:n], pre.page_node[:n]):
            return None
        # Pages first seen in groups still waiting were given the nodes known then.
        state.page[n:state.n_pages, PG_NODE] = pre.page_node[n:state.n_pages]
        return state

    @property
    def state(self) -> KernelState:
        if self._state is None:
            raise RuntimeError("the early replay's state was taken")
        return self._state

    def _replay_until(self, t_ns: int) -> None:
        """Replay the waiting groups whose last timestamp is before ``t_ns``."""
        ready = 0
        while ready < len(self.waiting) and self.waiting[ready].last_ns < t_ns:
            ready += 1
        if not ready:
            return
        groups, self.waiting = self.waiting[:ready], self.waiting[ready:]
        self._wait()  # the state is the replay's until it is done
        b, st = self.builder, self.state
        st.grow(b.grow.pidx[: b.n_pages], b.grow.vpn[: b.n_pages], b.page_nodes(st.n_pages, b.n_pages))
        self.settled = groups[-1].pages
        self.rows += sum(g.rows for g in groups)
        self.groups += len(groups)
        self.running = self.pool.submit(self._step, groups)

    def _step(self, groups: list[_Waiting]) -> None:
        for g in groups:
            self.state.step(g.ts, g.cpu, g.page, g.write)

    def _wait(self) -> None:
        if self.running is not None:
            self.running.result()
            self.running = None
            self.done_rows = self.rows


class _PageIds:
    """The page ids of each row group's accesses, kept in order from the pre-pass to the
    replay's read: in memory up to ``limit`` bytes, then all in an unnamed scratch file in
    ``where`` (gone when closed, or when the process dies), so memory stays bounded."""

    def __init__(self, where: Path, limit: int = 256 << 20) -> None:
        self.where = where
        self.limit = limit
        self.held: list[np.ndarray] = []
        self.counts: list[int] = []
        self.bytes = 0
        self.file: Any = None

    def __enter__(self) -> _PageIds:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()

    def put(self, pages: np.ndarray) -> None:
        self.counts.append(len(pages))
        self.bytes += pages.nbytes
        if self.file is None and self.bytes <= self.limit:
            self.held.append(pages)
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile(dir=self.where, prefix=".pages-")  # noqa: SIM115 (closed by __exit__)
            for held in self.held:
                held.tofile(self.file)
            self.held = []
        pages.tofile(self.file)

    def groups(self, skip: int = 0) -> Iterator[np.ndarray]:
        """The ids of each group after the first ``skip``, in the order they were put."""
        if self.file is None:
            self.held[:skip] = [_NO_PAGES] * min(skip, len(self.held))
            for i in range(skip, len(self.held)):
                pages, self.held[i] = self.held[i], _NO_PAGES  # let each go once replayed
                yield pages
            return
        self.file.seek(4 * sum(self.counts[:skip]))
        for n in self.counts[skip:]:
            yield np.fromfile(self.file, np.int32, n)


def _replay(trace: tr.Trace, sha: str, out: Path, policies: list[str], profile: Profile,
            force: bool, emit_accesses: bool, progress: Progress | None, t0: float,
            builder: PrePassBuilder | None, ids: _PageIds,
            early: _EarlyReplay | None) -> list[PolicyResult]:
    machine = trace.machine
    _check_siblings(out, policies, sha, profile.to_dict(), force)
    assert builder is not None  # load refuses a file without rows
    pre = builder.finish()
    planners = [mig.Planner(pre, profile, name) for name in policies]
    replayed = early.take(pre) if early is not None else None
    first_row = first_group = 0
    if replayed is not None:
        assert early is not None
        # The first policy goes on from the rows replayed; the others start from a copy.
        states = [replayed.attach(pre, planners[0])]
        for p in planners[1:]:
            states.append(KernelState(pre, profile, p))
            states[-1].adopt(states[0])
        first_row, first_group = early.rows, early.groups
    else:
        states = [KernelState(pre, profile, p) for p in planners]
    del replayed
    # A policy's directory appears only at its commit; an error removes every uncommitted one.
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(ev.PolicyRunWriter(out, name, force=force))
                   for name in policies]
        sinks = [_Sinks(pre, w) for w in writers]
        done = first_row
        groups = trace.arrays(["ts_ns", "cpu", "write"], first_row=first_row)
        for group, page in zip(groups, ids.groups(skip=first_group), strict=True):
            ts, cpu, write = _access_rows(group["kind"], len(page), group["ts_ns"], group["cpu"],
                                          group["write"])
            for state, sink in zip(states, sinks, strict=True):
                idx, sns, sb, sr, per = state.step(ts, cpu, page, write, emit=emit_accesses,
                                                   on_plans=sink.plans, on_rounds=sink.rounds)
                sp = page[idx]
                sink.w.write("stalls", ev.to_table("stalls", {
                    "ts_ns": ts[idx], "cpu": cpu[idx], "pid": pre.pids[pre.page_pid[sp]],
                    "vpn": pre.page_vpn[sp], "stall_ns": sns, "batch_id": sb, "req_id": sr}))
                if per is not None:
                    sink.w.write("accesses", ev.to_table("accesses", {
                        "ts_ns": ts, "cpu": cpu, "pid": pre.pids[pre.page_pid[page]],
                        "vpn": pre.page_vpn[page], "write": write,
                        "outcome": per[0], "remote": per[1], "latency_ns": per[2]}))
            done += len(group["kind"])
            if progress is not None:
                # Rows reported during the read stay reported, even if replayed again.
                progress(max(done, early.done_rows if early is not None else 0), trace.num_rows)
        results = []
        for name, planner, state, sink in zip(policies, planners, states, sinks, strict=True):
            state.finish(on_plans=sink.plans, on_rounds=sink.rounds)
            sink.w.write("cpu_stats", _cpu_stats_table(state))
            sink.w.close_tables()
            metrics = summarise(sink.w.tmp)
            metrics["migrate_calls"] = planner.calls
            manifest = {
                "tool": "tracereplay", "tool_version": __version__,
                "trace": {"path": str(trace.path.resolve()), "sha256": sha,
                          "rows": trace.num_rows, "machine": machine.to_dict(),
                          "machine_from_file": trace.machine_from_file},
                "config": profile.to_dict(),
                "policy": name,
                "summary": metrics,
                "skipped": {"absent_pages": pre.requests.absent_pages,
                            "busy_pages": planner.skipped_busy,
                            "pages_on_dst": planner.skipped_on_dst},
                "wall_s": round(time.perf_counter() - t0, 3),
            }
            path = sink.w.commit(manifest)
            results.append(PolicyResult(policy=name, path=path, metrics=metrics,
                                        counts=sink.w.counts, kernel_s=state.kernel_s))
        return results


class _Sinks:
    """Turns plans and completed rounds of one policy into rows of its event tables."""

    def __init__(self, pre: PrePass, writer: ev.PolicyRunWriter) -> None:
        self.pre = pre
        self.w = writer

    def plans(self, plans: list[mig.CallPlan]) -> None:
        for plan in plans:
            self.w.write("migrations", _migrations_table(self.pre, plan.pages))
            self.w.write("batches", _batches_table(self.pre, plan.batches))

    def rounds(self, rd: dict[str, np.ndarray]) -> None:
        self.w.write("flushes", _flushes_table(self.pre, rd))


def _check_out_dir(out: Path, policies: list[str], force: bool) -> bool:
    """Fail early, before any work, if the results cannot go to ``out``; True if this call
    created ``out``."""
    created = not out.exists()
    if not created and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputExistsError(f"{out}: cannot create the run directory: {e.strerror}") from e
    if not os.access(out, os.W_OK):
        raise OutputExistsError(f"{out}: the run directory is not writable")
    for name in policies:
        existing = out / f"policy={name}"
        if existing.exists() and not force:
            raise OutputExistsError(f"{existing} already exists; use --force to replace it")
        # Left by a replay that was killed: nothing can be writing them now but a concurrent
        # replay of the same policy into the same directory, which is not supported.
        for stale in out.glob(f".policy={name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    return created


def _check_siblings(out: Path, policies: list[str], sha: str, config: dict[str, Any],
                    force: bool) -> None:
    """A run directory holds policies of one trace and one configuration, so that queries
    compare like with like: other policies' results that differ are refused, or removed with
    ``force``."""
    for other in sorted(out.glob("policy=*")):
        name = other.name.removeprefix("policy=")
        if name in policies or not (other / "run.json").exists():
            continue
        try:
            manifest = json.loads((other / "run.json").read_text())
        except (OSError, ValueError):
            continue
        theirs = manifest.get("config", {})
        if manifest.get("trace", {}).get("sha256") == sha and theirs == config:
            continue
        what = "another trace" if manifest.get("trace", {}).get("sha256") != sha else \
            "another configuration (" + _first_difference(theirs, config) + ")"
        if not force:
            raise OutputExistsError(
                f"{other} holds results of {what}; write to another directory, or use --force "
                "to replace the whole run")
        shutil.rmtree(other)


def _first_difference(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> str:
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            if x != y:
                return _first_difference(x, y, f"{prefix}{key}.")
        elif x != y:
            return f"{prefix}{key} is {x!r} there, {y!r} now"
    return "no difference"


def _words(codes: np.ndarray, words: Sequence[str]) -> pa.Array:
    """``words[code]`` for each code, as a string array."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(words)).cast(pa.string())


def _nullable(values: np.ndarray) -> pa.Array:
    """-1 as null."""
    return pa.array(values, mask=values < 0)


def _flushes_table(pre: PrePass, rd: dict[str, np.ndarray]) -> pa.Table:
    reason = np.where(rd["targets"] > 0, 4, 3).astype(np.int8)
    return ev.to_table("flushes", {
        "flush_id": rd["gid"], "ts_ns": rd["ts_ns"], "end_ns": rd["end_ns"], "cpu": rd["cpu"],
        "pid": pre.pids[rd["pid_index"]], "req_id": rd["req_id"], "batch_id": rd["batch_id"],
        "pages": rd["pages"], "targets": rd["targets"], "targets_holding": rd["holding"],
        "target_full_flush": rd["full"].astype(bool), "cost_ns": rd["cost_ns"], "reason": reason,
        "reason_name": _words(reason, ["", "", "", _REASON_NAMES[3], _REASON_NAMES[4]]),
    })


def _migrations_table(pre: PrePass, pg: dict[str, np.ndarray]) -> pa.Table:
    page = pg["page"]
    return ev.to_table("migrations", {
        "req_id": pg["req_id"], "batch_id": pg["batch_id"], "cpu": pg["cpu"],
        "pid": pre.pids[pre.page_pid[page]], "vpn": pre.page_vpn[page],
        "pos_in_batch": pa.array(pg["pos"], mask=pg["pos"] < 0),
        "src_node": pg["src_node"], "dst_node": pg["dst_node"],
        "unmap_ns": _nullable(pg["unmap_ns"]), "flush_ns": _nullable(pg["flush_ns"]),
        "copy_start_ns": _nullable(pg["copy_start_ns"]), "copy_end_ns": _nullable(pg["copy_end_ns"]),
        "remap_ns": _nullable(pg["remap_ns"]),
        "status": _words(pg["status"], mig.STATUS_NAMES),
        "attempts": pg["attempts"],
    })


def _batches_table(pre: PrePass, batches: list[dict[str, int | str]]) -> pa.Table:
    if not batches:
        return ev.empty_table("batches")
    cols: dict[str, Any] = {k: [b[k] for b in batches] for k in batches[0]}
    cols["pid"] = pre.pids[np.asarray(cols.pop("pid_index"), np.int64)]
    return ev.to_table("batches", cols)


def _cpu_stats_table(state: KernelState) -> pa.Table:
    cols: dict[str, Any] = {"cpu": np.arange(len(state.cpu_node), dtype=np.int32),
                            "node": state.cpu_node}
    for j, name in enumerate(STAT_NAMES):
        cols[name] = state.stats[:, j]
    return ev.to_table("cpu_stats", cols)


_SUMMARY_SQL = """
with m as (select * from read_parquet('{d}/migrations.parquet')),
     f as (select * from read_parquet('{d}/flushes.parquet')),
     b as (select * from read_parquet('{d}/batches.parquet')),
     s as (select * from read_parquet('{d}/stalls.parquet')),
     c as (select * from read_parquet('{d}/cpu_stats.parquet')),
     mm as (select count(*) filter (status = 'migrated') as migrated,
                   count(*) filter (status <> 'migrated') as failed,
                   quantile_disc(remap_ns - unmap_ns, 0.5) as window_p50,
                   max(remap_ns - unmap_ns) as window_max from m),
     ff as (select count(*) as rounds, coalesce(sum(targets), 0) as ipis,
                   coalesce(sum(targets_holding), 0) as holding from f),
     bb as (select count(*) as batches, coalesce(sum(unmap_ns), 0) as unmap,
                   coalesce(sum(flush_ns), 0) as flush, coalesce(sum(copy_ns), 0) as copy,
                   coalesce(sum(remap_ns), 0) as remap, coalesce(sum(other_ns), 0) as other from b),
     ss as (select count(*) as stalled, quantile_disc(stall_ns, 0.5) as p50,
                   quantile_disc(stall_ns, 0.99) as p99, max(stall_ns) as mx from s),
     cc as (select sum(accesses) as accesses, sum(l1_hits) as l1, sum(l2_hits) as l2,
                   sum(stale_hits) as stale, sum(remote_accesses) as remote from c)
select * from mm, ff, bb, ss, cc
"""


def summarise(policy_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The headline numbers of one policy's run directory (what ``tracereplay replay`` prints),
    computed by DuckDB over its event tables."""
    import duckdb

    con = duckdb.connect()
    try:
        cur = con.execute(_SUMMARY_SQL.format(d=str(policy_dir).replace("'", "''")))
        names = [d[0] for d in cur.description]
        row = dict(zip(names, cur.fetchone() or (), strict=True))
    finally:
        con.close()

    def num(key: str) -> int:
        return int(row[key] or 0)

    migrated = num("migrated")
    busy = sum(num(k) for k in ("unmap", "flush", "copy", "remap", "other"))
    accesses = num("accesses")
    opt = {k: (None if row[k] is None else int(row[k])) for k in ("window_p50", "window_max", "p50", "p99", "mx")}
    return {
        "pages_migrated": migrated,
        "pages_failed": num("failed"),
        "batches": num("batches"),
        "flush_rounds": num("rounds"),
        "ipis_sent": num("ipis"),
        "ipis_holding": num("holding"),
        "ipis_per_1000_pages": (1000 * num("ipis") / migrated) if migrated else None,
        "migration_ns": busy,
        "pages_per_s": (migrated * 1e9 / busy) if busy else None,
        **{f"{k}_share": (num(k) / busy if busy else None)
           for k in ("unmap", "flush", "copy", "remap", "other")},
        "window_p50_ns": opt["window_p50"],
        "window_max_ns": opt["window_max"],
        "stalled_accesses": num("stalled"),
        "stall_p50_ns": opt["p50"],
        "stall_p99_ns": opt["p99"],
        "stall_max_ns": opt["mx"],
        "accesses": accesses,
        "l1_hit_rate": num("l1") / accesses if accesses else None,
        "l2_hit_rate": num("l2") / accesses if accesses else None,
        "stale_hits": num("stale"),
        "remote_accesses": num("remote"),
    }
