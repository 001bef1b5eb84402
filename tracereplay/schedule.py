"""Pre-pass over a trace: dense ids, page placement, mm_cpumask activity, migration requests.

The migration schedule depends on the accesses only through placement (first touch, or a
``map`` row) and mm_cpumask (which CPUs ran the process when), so one streaming pass over the
trace collects both; the TLB state never feeds back into the kernel's decisions.

Page ids are dense, in order of first touch; a compiled hash table maps ``(pid, vpn)`` to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tracereplay import _pages
from tracereplay import trace as tr
from tracereplay._frozen import frozen
from tracereplay._pages import VPN_BITS
from tracereplay.machine import Machine

if TYPE_CHECKING:  # polars is imported only for traces with migrate rows
    import polars as pl

NEVER = np.iinfo(np.int64).max

KIND_ACCESS, KIND_MIGRATE, KIND_MAP = 0, 1, 2
_KIND_CODES = {"access": KIND_ACCESS, "migrate": KIND_MIGRATE, "map": KIND_MAP}


def kind_codes(kind: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Row kinds as int8 codes (0 access, 1 migrate, 2 map); the trace is already validated."""
    if isinstance(kind, pa.ChunkedArray):
        kind = kind.combine_chunks()
    if pa.types.is_dictionary(kind.type):
        table = np.array([_KIND_CODES.get(v, -1) for v in kind.dictionary.to_pylist()], np.int8)
        return table[kind.indices.to_numpy(zero_copy_only=False)]
    out = np.full(len(kind), -1, np.int8)
    values = kind.to_numpy(zero_copy_only=False)
    for name, code in _KIND_CODES.items():
        out[values == name] = code
    return out


@dataclass(frozen=True, slots=True)
class Requests:
    """Migration calls in time order. Explicit pages are a CSR list into page ids."""

    req_id: np.ndarray  # int64
    ts_ns: np.ndarray  # int64
    cpu: np.ndarray  # int32
    pid_index: np.ndarray  # int32
    dst_node: np.ndarray  # int32
    src_node: np.ndarray  # int32, -1 for an explicit-page call
    is_async: np.ndarray  # bool
    page_ptr: np.ndarray  # int64 [n + 1]
    pages: np.ndarray  # int64 page ids, in the order the call lists them
    absent_pages: int  # explicit pages never touched or mapped: skipped, as the kernel does

    def __len__(self) -> int:
        return len(self.req_id)


@dataclass(frozen=True, slots=True)
class PrePass:
    """What the migration engine and the replay kernel need to know before replaying.

    Pages are numbered densely in the order they are first touched (or mapped).
    """

    machine: Machine
    pids: np.ndarray  # int32: pid of each pid index, in order of first appearance
    page_pid: np.ndarray  # int32 pid index of each page
    page_vpn: np.ndarray  # int64
    page_first_ns: np.ndarray  # int64: first touch or map
    page_node: np.ndarray  # int32: initial node
    addr_order: np.ndarray  # int64: page ids sorted by (pid, vpn), the address-space walk
    cpu_first_ns: np.ndarray  # int64 [pids, cpus]: first access of the pid on the cpu (NEVER)
    active_bin_ns: int  # width of the activity bins (window mode), ns; 0 when not collected
    active_ptr: np.ndarray  # int64 [pids * cpus + 1]: CSR of active bins per (pid, cpu)
    active_bins: np.ndarray  # int64 sorted within each (pid, cpu)
    requests: Requests
    accesses: int
    table: np.ndarray  # hash table rows [pid index << 45 | vpn, page id] (see _pages)

    @property
    def n_pages(self) -> int:
        return len(self.page_vpn)

    def pid_index(self, pid: np.ndarray) -> np.ndarray:
        """Pid indices of pids that appear in the trace (-1 for others)."""
        if len(pid) and pid[0] == pid.min() == pid.max():
            # One process in the chunk (the common case): one lookup.
            hit = np.flatnonzero(self.pids == pid[0])
            return np.full(len(pid), hit[0] if len(hit) else -1, np.int64)
        order = np.argsort(self.pids, kind="stable")
        pos = np.searchsorted(self.pids[order], pid)
        pos = np.minimum(pos, len(order) - 1)
        found = self.pids[order][pos] == pid
        return np.where(found, order[pos], -1).astype(np.int64)

    def page_ids(self, pid: np.ndarray, vpn: np.ndarray) -> np.ndarray:
        """Dense page ids of (pid, vpn) pairs; -1 where the page was never touched or mapped."""
        pidx = self.pid_index(np.asarray(pid))
        keys = (pidx << VPN_BITS) | np.asarray(vpn, np.int64)
        out = np.empty(len(keys), np.int64)
        _pages.lookup(self.table, keys, out)
        out[pidx < 0] = -1
        return out

    def mask(self, pid_index: int, t_ns: int, mode: str, window_ns: int) -> np.ndarray:
        """mm_cpumask of a pid at time ``t_ns`` as a bool array over CPUs."""
        first = self.cpu_first_ns[pid_index]
        if mode == "sticky":
            return first <= t_ns
        if not self.active_bin_ns:
            raise ValueError("the pre-pass did not collect activity bins (mm_cpumask = 'window')")
        cpus = self.machine.cpus
        lo = (t_ns - window_ns) // self.active_bin_ns
        hi = t_ns // self.active_bin_ns
        out = np.zeros(cpus, bool)
        for c in range(cpus):
            s, e = self.active_ptr[pid_index * cpus + c], self.active_ptr[pid_index * cpus + c + 1]
            if s == e:
                continue
            bins = self.active_bins[s:e]
            i = np.searchsorted(bins, lo)
            out[c] = i < len(bins) and bins[i] <= hi
        return out


class _Growing:
    """Per-page arrays that grow as pages appear (amortised doubling)."""

    def __init__(self) -> None:
        self.cap = 1 << 12
        self.first_ns = np.zeros(self.cap, np.int64)
        self.first_cpu = np.zeros(self.cap, np.int32)
        self.map_node = np.zeros(self.cap, np.int32)
        self.pidx = np.zeros(self.cap, np.int32)
        self.vpn = np.zeros(self.cap, np.int64)
        self.table = np.full((self.cap * 2, 2), -1, np.int64)

    def reserve(self, n: int) -> None:
        """Room for ``n`` pages (and a hash table at most half full)."""
        if n <= self.cap:
            return
        cap = self.cap
        while cap < n:
            cap *= 2
        for name in ("first_ns", "first_cpu", "map_node", "pidx", "vpn"):
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype)
            new[: self.cap] = old
            setattr(self, name, new)
        bigger = np.full((cap * 2, 2), -1, np.int64)
        _pages.rehash(self.table, bigger)
        self.table, self.cap = bigger, cap


class PrePassBuilder:
    """The pre-pass as a consumer of trace batches: ``add`` each batch in file order, then
    ``finish``. ``active_bin_ns`` > 0 also collects which CPUs ran each pid in each bin of that
    width, which ``mm_cpumask = 'window'`` needs."""

    def __init__(self, machine: Machine, *, active_bin_ns: int = 0) -> None:
        self.machine = machine
        self.active_bin_ns = active_bin_ns
        self.shift = np.uint64(machine.page_shift)
        self.grow = _Growing()
        self.n_pages = 0
        self.pid_of: dict[int, int] = {}
        self.cpu_first = np.full((4, machine.cpus), NEVER, np.int64)
        self.bin_parts: list[np.ndarray] = []
        self.mig_parts: list[pl.DataFrame] = []
        self.accesses = 0
        self.row0 = 0

    def add(self, batch: pa.RecordBatch) -> np.ndarray:
        """Take one batch of canonical trace rows (the next in file order); return the page
        ids of its accesses."""
        return self.add_rows(tr._row_group(batch, self.row0))

    def add_rows(self, group: tr.RowGroup) -> np.ndarray:
        """Take one row group (the next in file order); return the page ids (int32) of its
        access rows, in order."""
        cpus = self.machine.cpus
        n = group.num_rows
        codes = group.kind
        pid = group.pid
        single = bool(n) and pid.min() == pid.max()
        for p in ([int(pid[0])] if single else np.unique(pid).tolist()):
            self.pid_of.setdefault(int(p), len(self.pid_of))
        if len(self.pid_of) > len(self.cpu_first):
            grow_to = max(len(self.pid_of), 2 * len(self.cpu_first))
            more = np.full((grow_to - len(self.cpu_first), cpus), NEVER, np.int64)
            self.cpu_first = np.vstack([self.cpu_first, more])
        if single:
            pidx = np.full(n, self.pid_of[int(pid[0])], np.int32)
        else:
            known = np.fromiter(self.pid_of.keys(), np.int32, len(self.pid_of))
            index = np.fromiter(self.pid_of.values(), np.int32, len(self.pid_of))
            pidx = _pid_index(known, index, pid)
        g = self.grow
        others = group.others
        dst = np.zeros(len(group.other_index), np.int32)
        if len(dst):
            dst = np.asarray(others.column("dst_node").fill_null(0).to_numpy(zero_copy_only=False), np.int32)
        row = other = n_access = 0
        pages = np.empty(n - len(group.other_index), np.int32)
        while row < n:
            # The scan stops when the arrays are full; they grow and it goes on.
            g.reserve(self.n_pages + 1)
            self.n_pages, row, other, n_access = _pages.touch(
                row, other, n_access, frozen(codes), frozen(dst), frozen(group.ts_ns),
                frozen(group.cpu), frozen(pidx), frozen(group.vaddr),
                np.int64(self.machine.page_shift), g.table, self.n_pages,
                g.first_ns, g.first_cpu, g.map_node, g.pidx, g.vpn, self.cpu_first, pages,
            )
        self.accesses += int(n_access)
        if self.active_bin_ns:
            is_access = codes == KIND_ACCESS
            slot = pidx[is_access].astype(np.int64) * cpus + group.cpu[is_access]
            self.bin_parts.append(np.unique((slot << 40) | (group.ts_ns[is_access] // self.active_bin_ns)))
        mig = others.column("kind").indices.to_numpy(zero_copy_only=False) == KIND_MIGRATE if len(dst) \
            else np.zeros(0, bool)
        if mig.any():
            import polars as pl

            sel = others.filter(pa.array(mig))
            df = pl.from_arrow(pa.Table.from_batches([sel]))
            assert isinstance(df, pl.DataFrame)
            vaddr = np.asarray(sel.column("vaddr").fill_null(0).to_numpy(zero_copy_only=False), np.uint64)
            self.mig_parts.append(df.with_columns(
                pl.Series("row", group.row0 + group.other_index[mig]),
                pl.Series("vpn", (vaddr >> self.shift).astype(np.int64)),
            ))
        self.row0 = group.row0 + n
        return pages

    def page_nodes(self, start: int, stop: int) -> np.ndarray:
        """Initial node of pages ``start`` to ``stop`` as the rows so far declare it (a later
        ``map`` row of a page first touched by an access may still change it)."""
        g = self.grow
        cpu_node = np.asarray(self.machine.cpu_node, np.int32)
        map_node = g.map_node[start:stop]
        first_cpu = g.first_cpu[start:stop]
        # A map row declares the initial node; otherwise the first toucher's node.
        return np.where(map_node >= 0, map_node, cpu_node[np.maximum(first_cpu, 0)]).astype(np.int32)

    def finish(self) -> PrePass:
        g, n_pages, cpus = self.grow, self.n_pages, self.machine.cpus
        page_node = self.page_nodes(0, n_pages)
        pids = np.fromiter(self.pid_of.keys(), np.int64, len(self.pid_of)).astype(np.int32)
        page_pid = g.pidx[:n_pages].copy()
        page_vpn = g.vpn[:n_pages].copy()
        if self.bin_parts:
            packed = np.unique(np.concatenate(self.bin_parts))
            slot = packed >> 40
            active_bins = packed & ((1 << 40) - 1)
        else:
            slot = np.zeros(0, np.int64)
            active_bins = np.zeros(0, np.int64)
        pre = PrePass(
            machine=self.machine, pids=pids, page_pid=page_pid, page_vpn=page_vpn,
            page_first_ns=g.first_ns[:n_pages].copy(), page_node=page_node,
            addr_order=np.lexsort((page_vpn, pids[page_pid])).astype(np.int64),
            cpu_first_ns=self.cpu_first[: len(pids)].copy(), active_bin_ns=self.active_bin_ns,
            active_ptr=np.searchsorted(slot, np.arange(len(pids) * cpus + 1)).astype(np.int64),
            active_bins=active_bins, requests=_empty_requests(), accesses=self.accesses,
            table=g.table,
        )
        if self.mig_parts:
            import polars as pl

            pre = replace(pre, requests=_requests(pl.concat(self.mig_parts, how="vertical_relaxed"), pre))
        return pre


def prepass(
    batches: Iterator[pa.RecordBatch], machine: Machine, *, active_bin_ns: int = 0
) -> PrePass:
    """One streaming pass over validated trace batches (canonical column types)."""
    builder = PrePassBuilder(machine, active_bin_ns=active_bin_ns)
    for batch in batches:
        builder.add(batch)
    return builder.finish()


def _pid_index(known: np.ndarray, index: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """Pid indices of ``pid`` (every one among ``known``)."""
    srt = np.argsort(known)
    return index[srt][np.searchsorted(known[srt], pid)].astype(np.int32)


def _empty_requests() -> Requests:
    z64 = np.zeros(0, np.int64)
    z32 = np.zeros(0, np.int32)
    return Requests(z64, z64, z32, z32, z32, z32, np.zeros(0, bool), np.zeros(1, np.int64), z64, 0)


def _requests(migs: pl.DataFrame, pre: PrePass) -> Requests:
    """Group migrate rows into calls (validated: one ts, cpu, pid, mode and dst per req_id)."""
    import polars as pl

    calls = migs.group_by("req_id", maintain_order=True).agg(
        pl.col("row").first(), pl.col("ts_ns").first(), pl.col("cpu").first(), pl.col("pid").first(),
        pl.col("dst_node").first(), pl.col("src_node").first(), pl.col("mode").first(),
    ).sort("ts_ns", "row")
    explicit = migs.filter(pl.col("src_node").is_null())
    n = calls.height
    order = {r: i for i, r in enumerate(calls.get_column("req_id").to_list())}
    page_ptr = np.zeros(n + 1, np.int64)
    pages = np.zeros(0, np.int64)
    absent = 0
    if explicit.height:
        ids = pre.page_ids(explicit.get_column("pid").to_numpy(), explicit.get_column("vpn").to_numpy())
        present = ids >= 0
        absent = int((~present).sum())
        call_index = np.array([order[r] for r in explicit.get_column("req_id").to_list()], np.int64)
        # A stable sort by call keeps each call's pages in the order the trace lists them.
        srt = np.argsort(call_index[present], kind="stable")
        pages = ids[present][srt]
        page_ptr[1:] = np.cumsum(np.bincount(call_index[present], minlength=n))
    src = calls.get_column("src_node").fill_null(-1).to_numpy().astype(np.int32)
    mode = calls.get_column("mode").fill_null("sync").to_numpy()
    return Requests(
        req_id=calls.get_column("req_id").to_numpy().astype(np.int64),
        ts_ns=calls.get_column("ts_ns").to_numpy().astype(np.int64),
        cpu=calls.get_column("cpu").to_numpy().astype(np.int32),
        pid_index=pre.pid_index(calls.get_column("pid").to_numpy()).astype(np.int32),
        dst_node=calls.get_column("dst_node").to_numpy().astype(np.int32),
        src_node=src,
        is_async=(mode == "async"),
        page_ptr=page_ptr,
        pages=pages,
        absent_pages=absent,
    )
