"""Migration policies: turn a trace's migration requests into a schedule.

Each policy is a module with ``NAME``, ``DESCRIPTION`` and
``migrate_call(engine, call, pages, start_ns) -> end_ns``; :class:`Planner` runs the calls of a
trace through one policy. Calls on one CPU queue behind each other; a whole-node call collects
the pid's pages on ``src_node`` in address order when it starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import numpy as np

from tracereplay.config import Profile
from tracereplay.errors import ConfigError
from tracereplay.migrate import batched, serial
from tracereplay.migrate._engine import (
    BATCH_KINDS,
    STATUS_MIGRATED,
    STATUS_NAMES,
    Call,
    CallPlan,
    Engine,
)
from tracereplay.schedule import PrePass

POLICIES: dict[str, ModuleType] = {m.NAME: m for m in (serial, batched)}

__all__ = ["BATCH_KINDS", "POLICIES", "STATUS_MIGRATED", "STATUS_NAMES", "CallPlan", "Planner", "policy"]


def policy(name: str) -> Callable[[Engine, Call, np.ndarray, int], int]:
    """The ``migrate_call`` of policy ``name``."""
    if name not in POLICIES:
        raise ConfigError(f"unknown policy '{name}'; known: {', '.join(POLICIES)}")
    fn: Callable[[Engine, Call, np.ndarray, int], int] = POLICIES[name].migrate_call
    return fn


class Planner:
    """Runs the migration requests of a trace through one policy, one call at a time.

    Iterating yields a :class:`CallPlan` per call in order of start time, so a replay can
    consume them as it goes and memory stays bounded by the calls in flight.
    """

    def __init__(self, pre: PrePass, profile: Profile, policy_name: str) -> None:
        self.policy = policy_name
        self._migrate_call = policy(policy_name)
        self.pre = pre
        self.engine = Engine(pre, profile)
        self.calls = 0

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

    def __iter__(self) -> Iterator[CallPlan]:
        req = self.pre.requests
        eng = self.engine
        free: dict[int, int] = {}
        queues: dict[int, list[int]] = {}
        for i in range(len(req)):
            queues.setdefault(int(req.cpu[i]), []).append(i)
        heads = dict.fromkeys(queues, 0)
        while True:
            # Calls on one CPU queue behind each other; the earliest possible start goes next.
            best = None
            for cpu, q in queues.items():
                if heads[cpu] == len(q):
                    continue
                i = q[heads[cpu]]
                key = (max(int(req.ts_ns[i]), free.get(cpu, 0)), int(req.ts_ns[i]), i)
                if best is None or key < best:
                    best = key
            if best is None:
                return
            start, _, i = best
            cpu = int(req.cpu[i])
            heads[cpu] += 1
            pages = _call_pages(eng, self.pre, i, start)
            if not len(pages):
                continue
            call = Call(index=i, req_id=int(req.req_id[i]), cpu=cpu,
                        pid_index=int(req.pid_index[i]), dst_node=int(req.dst_node[i]),
                        is_async=bool(req.is_async[i]))
            free[cpu] = self._migrate_call(eng, call, pages, start)
            self.calls += 1
            yield eng.take(call, start, free[cpu])


def _call_pages(eng: Engine, pre: PrePass, i: int, start: int) -> np.ndarray:
    """The pages call ``i`` migrates, in order, as seen when it starts."""
    req = pre.requests
    pidx = int(req.pid_index[i])
    dst = int(req.dst_node[i])
    exists = pre.page_first_ns <= start
    if req.src_node[i] >= 0:
        # migrate_pages(2): every page of the pid on src_node, walking the address space.
        sel = (pre.page_pid == pidx) & exists & (eng.node_now == req.src_node[i])
        pages = pre.addr_order[sel[pre.addr_order]]
    else:
        pages = req.pages[req.page_ptr[i]:req.page_ptr[i + 1]]
        _, first = np.unique(pages, return_index=True)
        pages = pages[np.sort(first)]  # a page listed twice moves once
        pages = pages[exists[pages]]
        on_dst = eng.node_now[pages] == dst
        eng.skipped_on_dst += int(on_dst.sum())
        pages = pages[~on_dst]
    if req.src_node[i] == dst:
        return pages[:0]
    busy = eng.busy_until[pages] > start
    eng.skipped_busy += int(busy.sum())
    return pages[~busy]
