"""Migration policies: turn a trace's migration requests into a schedule.

Each policy is a module of this package that registers its
``migrate_call(engine, call, pages, start_ns) -> end_ns`` with its name, description and config
(``registry``); every public module here is imported, so the registry knows them all.
:class:`Planner` runs the calls of a trace through one policy. Calls on one CPU queue behind
each other (``migrate.call_start = "queued"``), or each starts at its trace time
(``"trace"``); a whole-node call collects the pid's pages on ``src_node`` in address order when
it starts. An explicit page costs its unmap and remap once per mapping (the trace's
``mappings`` column).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections import deque
from collections.abc import Iterator

import numpy as np

from tracereplay.config import Profile
from tracereplay.errors import ConfigError
from tracereplay.migrate._engine import (
    BATCH_KINDS,
    STATUS_ABORTED,
    STATUS_FAILED,
    STATUS_MIGRATED,
    STATUS_NAMES,
    Call,
    CallPlan,
    Engine,
)
from tracereplay.migrate.registry import Policy, registered
from tracereplay.prepass import PrePass


def _import_policies() -> None:
    """Import every public module of the package: each policy registers itself."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_") and module.name != "registry":
            importlib.import_module(f"{__name__}.{module.name}")


_import_policies()
POLICIES: dict[str, Policy] = registered()
# The policies replayed when none is named, as they declare themselves.
DEFAULT_POLICIES: tuple[str, ...] = tuple(name for name, p in POLICIES.items() if p.default)

__all__ = ["BATCH_KINDS", "DEFAULT_POLICIES", "POLICIES", "STATUS_ABORTED", "STATUS_FAILED",
           "STATUS_MIGRATED", "STATUS_NAMES",
           "CallPlan", "Planner", "Policy", "policy"]


def policy(name: str) -> Policy:
    """The registered policy ``name``."""
    if name not in POLICIES:
        raise ConfigError(f"unknown policy '{name}'; known: {', '.join(POLICIES)}")
    return POLICIES[name]


class Planner:
    """Runs the migration calls of a trace through one policy, one call at a time, as the
    pre-pass advances.

    :meth:`plan_until` gives the :class:`CallPlan` of each call that starts by a time the
    pre-pass has got past, in order of start time, so a replay can consume them as it goes
    and memory stays bounded by the calls in flight. Iterating plans every call (for a
    pre-pass that has seen the whole trace).
    """

    def __init__(self, pre: PrePass, profile: Profile, policy_name: str) -> None:
        self.policy = policy_name
        self._migrate_call = policy(policy_name).migrate_call
        self._horizon = policy(policy_name).horizon
        if self._horizon is not None and pre.writes is None:
            raise ValueError(f"policy '{policy_name}' reads the stores: the pre-pass must keep them")
        # The start of the first call that waits for the pre-pass to read further (its policy
        # reads the stores up to its horizon), or None.
        self.blocked_ns: int | None = None
        self._stores_from = 0
        self.pre = pre
        self.engine = Engine(pre, profile, profile.policy[policy(policy_name).section])
        self.calls = 0
        self.absent_pages = 0
        self.empty_calls = 0  # calls that found no page to move
        self._queued = 0  # calls of pre.calls put in a CPU's queue
        self._queues: dict[int, deque[int]] = {}
        self._free: dict[int, int] = {}  # when each CPU's last call ends
        # "trace": a call starts at its trace time even if the CPU's previous call has not
        # ended in the model (a capture's call times are measured, not to be queued again).
        self._queue_on_cpu = profile.migrate.call_start == "queued"

    @property
    def skipped_busy(self) -> int:
        """Pages already under migration by another call when a call started."""
        return self.engine.skipped_busy

    @property
    def skipped_on_dst(self) -> int:
        """Explicit pages already on the destination node."""
        return self.engine.skipped_on_dst

    def masks(self) -> np.ndarray:
        """uint8 [n_masks, cpus]: the distinct mm_cpumasks used so far (targets exclude the
        initiator)."""
        return self.engine.masks()

    def next_start(self) -> int | None:
        """When the next call read so far would start (None if there is none)."""
        best = self._next()
        return None if best is None else best[0]

    def _next(self) -> tuple[int, int, int] | None:
        calls = self.pre.calls
        for i in range(self._queued, len(calls)):
            self._queues.setdefault(calls.cpu[i], deque()).append(i)
        self._queued = len(calls)
        best = None
        for cpu, q in self._queues.items():
            if q:
                # Calls on one CPU queue behind each other; the earliest possible start goes next.
                i = q[0]
                free = self._free.get(cpu, 0) if self._queue_on_cpu else 0
                key = (max(calls.ts_ns[i], free), calls.ts_ns[i], i)
                if best is None or key < best:
                    best = key
        return best

    def plan_until(self, t_ns: int) -> list[CallPlan]:
        """The plans of the calls not yet planned that start at or before ``t_ns``; the
        pre-pass must know every row up to it (``pre.known_ns >= t_ns``)."""
        if t_ns > self.pre.known_ns:
            raise ValueError(f"planning up to {t_ns} ns needs the trace up to it; the pre-pass "
                             f"knows it up to {self.pre.known_ns} ns")
        plans = []
        calls = self.pre.calls
        self.blocked_ns = None
        while (best := self._next()) is not None and best[0] <= t_ns:
            start, _, i = best
            cpu = calls.cpu[i]
            self.engine.grow()
            if self._horizon is not None:
                need = start + self._horizon(self.engine, len(self._call_pages(i, start, count=False)))
                if need > self.pre.known_ns:
                    self.blocked_ns = start
                    break
            self._queues[cpu].popleft()
            pages = self._call_pages(i, start)
            if not len(pages):
                self.empty_calls += 1
                continue
            call = Call(index=i, req_id=calls.req_id[i], cpu=cpu,
                        pid_index=calls.pid_index[i], dst_node=calls.dst_node[i],
                        is_async=calls.is_async[i])
            self._free[cpu] = self._migrate_call(self.engine, call, pages, start)
            self.calls += 1
            plans.append(self.engine.take(call, start, self._free[cpu]))
        if self._horizon is not None:
            self._stores_from = t_ns + 1 if self.blocked_ns is None else self.blocked_ns
        return plans

    def stores_from(self) -> int | None:
        """The earliest store a call still to plan may read (no call still to plan starts
        before it); None if the policy reads no stores."""
        return None if self._horizon is None else self._stores_from

    def __iter__(self) -> Iterator[CallPlan]:
        yield from self.plan_until(self.pre.known_ns)

    def _call_pages(self, i: int, start: int, *, count: bool = True) -> np.ndarray:
        """The folios call ``i`` migrates (by head page), in order, as they are when it
        starts. A folio moves whole: an explicit row naming any of its pages moves it.
        ``count``: add the pages it skips to the planner's counters. Sets the engine's
        mappings of each folio (the ``mappings`` of the row that named it first; 1 for a
        whole-node call) and its time off the CPU (that row's ``off_cpu_*_ns``; 0 for a
        whole-node call)."""
        pre, eng, calls = self.pre, self.engine, self.pre.calls
        pidx, dst, src = calls.pid_index[i], calls.dst_node[i], calls.src_node[i]
        exists = pre.page_first_ns <= start
        if src >= 0:
            # migrate_pages(2): every folio of the pid on src_node, walking the address space.
            sel = (pre.page_pid == pidx) & exists & (eng.node_now[: pre.n_pages] == src)
            order = pre.address_order()
            pages = order[sel[order]]
            pages = pages[eng.folio_offsets(pages) == 0]  # each folio by its head
            maps = np.ones(len(pages), np.int64)
            off = np.zeros((len(pages), 2), np.int64)
        else:
            vpns, maps, off = calls.pages_vpn(i), calls.pages_mappings(i), calls.pages_off_cpu(i)
            _, first = np.unique(vpns, return_index=True)
            keep = np.sort(first)  # a page listed twice moves once
            vpns, maps, off = vpns[keep], maps[keep], off.take(keep, axis=0)
            # (by vpn: pages not seen yet all have id -1, and each is one absent page)
            pages = pre.page_ids(np.full(len(vpns), calls.pid[i]), vpns)
            present = pages >= 0
            present[present] = exists[pages[present]]
            # Pages that do not exist when the call starts are skipped, as the kernel does.
            pages, maps, off = pages[present], maps[present], off.compress(present, axis=0)
            pages = pages - eng.folio_offsets(pages)  # the folio's head
            _, first = np.unique(pages, return_index=True)
            keep = np.sort(first)  # two pages of one folio move it once
            pages, maps, off = pages[keep], maps[keep], off.take(keep, axis=0)
            on_dst = eng.node_now[pages] == dst
            pages, maps, off = pages[~on_dst], maps[~on_dst], off.compress(~on_dst, axis=0)
            if count:
                self.absent_pages += int((~present).sum())
                eng.skipped_on_dst += int(on_dst.sum())
        if src == dst:
            return pages[:0]
        busy = eng.busy_until[pages] > start
        if busy.any():
            if count:
                eng.skipped_busy += int(busy.sum())
            pages, maps, off = pages[~busy], maps[~busy], off.compress(~busy, axis=0)
        eng.mappings[pages] = maps
        _rows(eng.off_cpu)[pages] = _rows(off)
        return pages


def _rows(a: np.ndarray) -> np.ndarray:
    """A C-contiguous int64 [n, 2] array as n records of two: numpy moves the rows of a 2-D
    array by fancy indexing one element at a time, a record in one copy."""
    return a.view(np.dtype([("unmap", np.int64), ("move", np.int64)])).reshape(-1)
