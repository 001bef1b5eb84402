"""The replay as one streaming read: validation, pre-pass, planning and the kernel advance
together, row group by row group.

Per row group, on the caller's thread: the reader thread has decoded it, the validator checks
it, the pre-pass numbers its pages and learns its calls. Its accesses up to the time the
pre-pass has got past (every row at or before it read, so only the rows at the group's last
timestamp wait for the next group) form the next chunk: each policy's planner plans the calls
that start by the chunk's end (and builds their rows of the migrations and batches tables),
and each policy's lane (a thread of its own: the compiled kernel releases the GIL) replays the
chunk and writes the rows of its stalls and flush rounds, while the caller goes on to the next
group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tracereplay import events as ev
from tracereplay import migrate as mig
from tracereplay import trace as tr
from tracereplay.config import Profile
from tracereplay.kernel import NO_ACCESSES, NO_LIMIT, Accesses, KernelState, PlanOps, plan_ops
from tracereplay.prepass import KIND_ACCESS, PrePass
from tracereplay.replay import tables

Progress = Callable[[int, int], None]

# Chunks a lane may have waiting: the caller runs at most this far ahead of the slowest lane.
LANE_DEPTH = 2


@dataclass(frozen=True, slots=True)
class Chunk:
    """Accesses of the trace in time order, with their page ids."""

    ts: np.ndarray
    cpu: np.ndarray
    page: np.ndarray
    write: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def split(self, t_ns: int) -> tuple[Chunk, Chunk]:
        """The accesses at or before ``t_ns``, and the rest."""
        k = int(np.searchsorted(self.ts, t_ns, side="right"))
        head = Chunk(self.ts[:k], self.cpu[:k], self.page[:k], self.write[:k])
        tail = Chunk(self.ts[k:], self.cpu[k:], self.page[k:], self.write[k:])
        return head, tail

    def then(self, other: Chunk) -> Chunk:
        if not len(self):
            return other
        return Chunk(np.concatenate([self.ts, other.ts]), np.concatenate([self.cpu, other.cpu]),
                     np.concatenate([self.page, other.page]),
                     np.concatenate([self.write, other.write]))


_EMPTY = Chunk(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32),
               np.zeros(0, np.bool_))


class Lane:
    """One policy's replay: its planner (driven by the caller), its kernel state and event
    tables (driven on the lane's own thread)."""

    def __init__(self, pre: PrePass, profile: Profile, policy: str, writer: ev.PolicyRunWriter,
                 *, emit: bool, closed_loop: bool = False) -> None:
        self.pre = pre
        self.planner = mig.Planner(pre, profile, policy)
        self.state = KernelState(pre.machine, profile, closed_loop=closed_loop)
        self.sink = tables.Sinks(pre, writer, profile.flush.mechanism)
        self.emit = emit
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"tracereplay-{policy}")
        self.running: list[Future[None]] = []
        # Accesses at or after the start of a call the planner cannot plan yet (its policy
        # reads stores the pre-pass has not got to): they wait for it.
        self.held = _EMPTY

    def submit(self, chunk: Chunk) -> None:
        """Plan the calls that start by the chunk's end (here), then replay it on the lane;
        the accesses from a call that waits for more of the trace on, later."""
        chunk = self.held.then(chunk)
        if not len(chunk):
            return
        plans = self.planner.plan_until(int(chunk.ts[-1]))
        # Their rows and operations are the caller's to build: the lane's thread is the
        # replay's longest.
        self.sink.plans(plans)
        ops = plan_ops(plans)
        blocked = self.planner.blocked_ns
        self.held = _EMPTY
        if blocked is not None:
            chunk, self.held = chunk.split(blocked - 1)
        if not len(chunk) and not plans:
            return
        pre = self.pre
        # What the lane reads of the pre-pass, as it is now: the caller goes on changing it.
        n = pre.n_pages
        pages = (pre.page_pid[:n], pre.page_vpn[:n], pre.page_node[:n], pre.page_order[:n])
        masks, first = self.planner.masks(), pre.cpu_first_ns
        while len(self.running) >= LANE_DEPTH:
            self.running.pop(0).result()
        self.running.append(self.pool.submit(self._step, chunk, ops, pages, masks, first))

    def _step(self, chunk: Chunk, ops: PlanOps,
              pages: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], masks: np.ndarray,
              first: np.ndarray) -> None:
        st = self.state
        st.grow(*pages)
        st.add(ops, masks, first)
        out = st.step(Accesses(chunk.ts, chunk.cpu, chunk.page, chunk.write), emit=self.emit,
                      on_rounds=self.sink.rounds)
        w = self.sink.w
        w.write("stalls", tables.stalls_table(self.pre, chunk.ts, chunk.cpu, chunk.page, out))
        if self.emit:
            w.write("accesses", tables.accesses_table(self.pre, chunk.ts, chunk.cpu, chunk.page,
                                                      chunk.write, out))

    def finish(self) -> Future[None]:
        """After the last chunk: the accesses held, then the operations left, one call's plan
        at a time (the pre-pass is complete, so the lane plans on its own thread)."""
        if len(self.held):
            self.submit(_EMPTY)  # the pre-pass is complete: nothing waits any more
        return self.pool.submit(self._finish)

    def _finish(self) -> None:
        pre, st, planner = self.pre, self.state, self.planner
        st.grow(pre.page_pid, pre.page_vpn, pre.page_node, pre.page_order)
        while True:
            nxt = planner.next_start()
            st.step(NO_ACCESSES, limit=NO_LIMIT if nxt is None else nxt - 1,
                    on_rounds=self.sink.rounds)
            if nxt is None:
                return
            plans = planner.plan_until(nxt)
            st.grow(pre.page_pid, pre.page_vpn, pre.page_node, pre.page_order)
            st.add(plans, planner.masks(), pre.cpu_first_ns)
            self.sink.plans(plans)

    def wait(self) -> None:
        for f in self.running:
            f.result()
        self.running = []

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def replay_groups(reader: tr.TraceReader, pre: PrePass, lanes: Sequence[Lane],
                  progress: Progress | None = None) -> None:
    """Read every row group of ``reader`` once and replay it in every lane."""
    held = _EMPTY

    def dispatch(chunk: Chunk) -> None:
        if len(chunk):
            for lane in lanes:
                lane.submit(chunk)
            if pre.writes is not None:
                # Stores no planner will read again (memory stays bounded by the calls' horizons).
                wanted = [t for lane in lanes if (t := lane.planner.stores_from()) is not None]
                if wanted:
                    pre.writes.forget_before(min(wanted))

    for group in reader.groups():
        pre.add_rows(group)
        page = group.page
        assert page is not None  # the read numbers the pages
        if len(page) == group.num_rows:
            acc = Chunk(group.ts_ns, group.cpu, page, group.write)
        else:
            sel = group.kind == KIND_ACCESS
            acc = Chunk(group.ts_ns[sel], group.cpu[sel], page, group.write[sel])
        # Rows at the group's last timestamp wait: the next group may hold more of that time.
        if len(held) and held.ts[-1] <= pre.known_ns:
            dispatch(held)  # a chunk of its own: no copy of the group to put them in front
            held = _EMPTY
        ready, held = held.then(acc).split(pre.known_ns)
        dispatch(ready)
        if progress is not None:
            progress(pre.rows - len(held), reader.num_rows)
    pre.close()
    dispatch(held)
    for lane in lanes:
        lane.wait()
    pre.address_order()  # complete before the lanes plan on their own
    for f in [lane.finish() for lane in lanes]:
        f.result()
    if progress is not None:
        progress(reader.num_rows, reader.num_rows)
