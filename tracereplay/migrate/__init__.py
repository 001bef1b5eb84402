"""Migration policies: turn a trace's migration requests into a schedule.

Each policy is a module with ``NAME``, ``DESCRIPTION`` and
``migrate_call(engine, call, pages, start_ns) -> end_ns``; :func:`schedule` runs the calls of a
trace through one policy. Calls on one CPU queue behind each other; a whole-node call collects
the pid's pages on ``src_node`` in address order when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from tracereplay.config import Profile
from tracereplay.errors import ConfigError
from tracereplay.migrate import batched, serial
from tracereplay.migrate._engine import BATCH_KINDS, STATUS_NAMES, Call, Engine
from tracereplay.schedule import PrePass

POLICIES: dict[str, ModuleType] = {m.NAME: m for m in (serial, batched)}

__all__ = ["BATCH_KINDS", "POLICIES", "STATUS_NAMES", "Schedule", "policy", "schedule"]


def policy(name: str) -> Callable[[Engine, Call, np.ndarray, int], int]:
    """The ``migrate_call`` of policy ``name``."""
    if name not in POLICIES:
        raise ConfigError(f"unknown policy '{name}'; known: {', '.join(POLICIES)}")
    fn: Callable[[Engine, Call, np.ndarray, int], int] = POLICIES[name].migrate_call
    return fn


@dataclass(frozen=True, slots=True)
class Schedule:
    """A policy's plan for every migration call of a trace."""

    policy: str
    rounds: dict[str, np.ndarray]  # one entry per flush round
    pages: dict[str, np.ndarray]  # one entry per page attempt that ended (migrated or failed)
    batches: list[dict[str, int | str]]
    masks: np.ndarray  # uint8 [n_masks, cpus]: targets are mask minus the initiator
    calls: int
    skipped_busy: int  # pages already under migration by another call when a call started
    skipped_on_dst: int  # explicit pages already on the destination node


def schedule(pre: PrePass, profile: Profile, policy_name: str) -> Schedule:
    """Run every migration request of ``pre`` through policy ``policy_name``."""
    migrate_call = policy(policy_name)
    eng = Engine(pre, profile)
    req = pre.requests
    free: dict[int, int] = {}
    queues: dict[int, list[int]] = {}
    for i in range(len(req)):
        queues.setdefault(int(req.cpu[i]), []).append(i)
    heads = {cpu: 0 for cpu in queues}
    n_calls = 0
    while True:
        best = None
        for cpu, q in queues.items():
            h = heads[cpu]
            if h == len(q):
                continue
            i = q[h]
            start = max(int(req.ts_ns[i]), free.get(cpu, 0))
            key = (start, int(req.ts_ns[i]), i)
            if best is None or key < best:
                best = key
        if best is None:
            break
        start, _, i = best
        cpu = int(req.cpu[i])
        heads[cpu] += 1
        pages = _call_pages(eng, pre, i, start)
        if not len(pages):
            continue
        call = Call(index=i, req_id=int(req.req_id[i]), cpu=cpu,
                    pid_index=int(req.pid_index[i]), dst_node=int(req.dst_node[i]),
                    is_async=bool(req.is_async[i]))
        free[cpu] = migrate_call(eng, call, pages, start)
        n_calls += 1
    return Schedule(
        policy=policy_name, rounds=eng.rounds(), pages=eng.pages(), batches=eng.batches(),
        masks=eng.masks(), calls=n_calls, skipped_busy=eng.skipped_busy,
        skipped_on_dst=eng.skipped_on_dst,
    )


def _call_pages(eng: Engine, pre: PrePass, i: int, start: int) -> np.ndarray:
    """The pages call ``i`` migrates, in order, as seen when it starts."""
    req = pre.requests
    pidx = int(req.pid_index[i])
    dst = int(req.dst_node[i])
    exists = pre.page_first_ns <= start
    if req.src_node[i] >= 0:
        # migrate_pages(2): every page of the pid on src_node, walking the address space.
        sel = (pre.page_pid == pidx) & exists & (eng.node_now == req.src_node[i])
        pages = np.flatnonzero(sel).astype(np.int64)
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
