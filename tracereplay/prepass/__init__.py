"""The pre-pass: what the migration engine needs to know of the past, advanced row group by
row group: dense page ids, page placement, mm_cpumask activity, migration calls.

The migration schedule depends on the accesses only through placement (first touch, or a
``map`` row) and mm_cpumask (which CPUs ran the process when), and both are facts about the
past: a call migrates the pages that exist when it starts, and mm_cpumask is what has run so
far. So the pre-pass advances with the replay over one read of the trace; the planner asks it
"the state up to t" once every row with ``ts_ns <= t`` has been added (:attr:`PrePass.known_ns`),
never the future. The TLB state never feeds back into the kernel's decisions.

Page ids are dense, in order of first touch (or map); a compiled hash table maps ``(pid, vpn)``
to them. A page's initial node is fixed when it appears: the node of the first accessing CPU,
or the node a ``map`` row declares, which must come before any access to the page (rule
map-before-access).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tracereplay._frozen import frozen
from tracereplay.errors import TraceFormatError
from tracereplay.machine import Machine
from tracereplay.prepass import _pages
from tracereplay.prepass._pages import VPN_BITS
from tracereplay.trace import KIND_CODES, RowGroup, rule_text

NEVER = np.iinfo(np.int64).max

KIND_ACCESS, KIND_MIGRATE, KIND_MAP = (KIND_CODES[k] for k in ("access", "migrate", "map"))

__all__ = ["KIND_ACCESS", "KIND_MAP", "KIND_MIGRATE", "NEVER", "Calls", "PrePass", "prepass"]


@dataclass(slots=True)
class Calls:
    """Migration calls in the order their first rows appear (time order), as they are read.

    An explicit-page call (move_pages(2)) lists its pages as (pid, vpn); the planner resolves
    them to page ids when the call starts. A whole-node call (migrate_pages(2)) has ``src_node``
    set and no pages.
    """

    req_id: list[int] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)
    pid: list[int] = field(default_factory=list)
    pid_index: list[int] = field(default_factory=list)
    dst_node: list[int] = field(default_factory=list)
    src_node: list[int] = field(default_factory=list)  # -1 for an explicit-page call
    is_async: list[bool] = field(default_factory=list)
    vpns: list[list[np.ndarray]] = field(default_factory=list)  # explicit pages, in listed order
    index: dict[int, int] = field(default_factory=dict)  # req_id -> call

    def __len__(self) -> int:
        return len(self.req_id)

    def pages_vpn(self, i: int) -> np.ndarray:
        """The vpns call ``i`` lists, in order (int64)."""
        parts = self.vpns[i]
        if len(parts) != 1:
            self.vpns[i] = parts = [np.concatenate(parts) if parts else np.zeros(0, np.int64)]
        return parts[0]

    def add(self, rows: pa.RecordBatch, pid_index: np.ndarray, vpn: np.ndarray) -> None:
        """Take the migrate rows of one row group (validated: the rows of one ``req_id`` agree
        on time, CPU, process, mode and destination); a call's rows may span row groups."""
        req = rows.column("req_id").to_numpy(zero_copy_only=False)
        explicit = rows.column("src_node").is_null().to_numpy(zero_copy_only=False)
        ts = rows.column("ts_ns").to_numpy(zero_copy_only=False)
        cpu = rows.column("cpu").to_numpy(zero_copy_only=False)
        pid = rows.column("pid").to_numpy(zero_copy_only=False)
        dst = rows.column("dst_node").to_numpy(zero_copy_only=False)
        src = rows.column("src_node").fill_null(-1).to_numpy(zero_copy_only=False)
        mode = rows.column("mode").fill_null("sync").to_pylist()
        ids, first, inverse = np.unique(req, return_index=True, return_inverse=True)
        for j in np.argsort(first, kind="stable"):
            r, f = int(ids[j]), int(first[j])
            i = self.index.get(r)
            if i is None:
                i = self.index[r] = len(self.req_id)
                self.req_id.append(r)
                self.ts_ns.append(int(ts[f]))
                self.cpu.append(int(cpu[f]))
                self.pid.append(int(pid[f]))
                self.pid_index.append(int(pid_index[f]))
                self.dst_node.append(int(dst[f]))
                self.src_node.append(int(src[f]))
                self.is_async.append(mode[f] == "async")
                self.vpns.append([])
            if explicit[f]:
                self.vpns[i].append(vpn[inverse == j])


class _Growing:
    """Per-page arrays that grow as pages appear (amortised doubling)."""

    def __init__(self) -> None:
        self.cap = 1 << 12
        self.first_ns = np.zeros(self.cap, np.int64)
        self.node = np.zeros(self.cap, np.int32)
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
        for name in ("first_ns", "node", "pidx", "vpn"):
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype)
            new[: self.cap] = old
            setattr(self, name, new)
        bigger = np.full((cap * 2, 2), -1, np.int64)
        _pages.rehash(self.table, bigger)
        self.table, self.cap = bigger, cap


class PrePass:
    """The state of the pre-pass after the row groups added so far (in file order).

    Every accessor describes the past: pages that have appeared (``page_*``, ``n_pages``), the
    first access of each process on each CPU, the calls read. ``active_bin_ns`` > 0 also keeps
    which CPUs ran each process in each bin of that width, which ``mm_cpumask = 'window'``
    needs.
    """

    def __init__(self, machine: Machine, *, active_bin_ns: int = 0, path: str | None = None) -> None:
        self.machine = machine
        self.path = path
        self.active_bin_ns = active_bin_ns
        self.cpu_node = np.asarray(machine.cpu_node, np.int32)
        self.grow = _Growing()
        self.n_pages = 0
        self.pid_of: dict[int, int] = {}
        self._pids = np.zeros(0, np.int32)
        self._cpu_first = np.full((4, machine.cpus), NEVER, np.int64)
        self._bins: list[tuple[int, np.ndarray]] = []  # (last ts, packed slot << 40 | bin)
        self.calls = Calls()
        self.accesses = 0
        self.rows = 0
        self.known_ns = -1  # every row with ts_ns <= known_ns has been added
        self._addr_keys = np.zeros(0, np.int64)
        self._addr_ids = np.zeros(0, np.int64)
        self._addr_lock = threading.Lock()  # planners on lanes of their own share the order

    # -- the past, as far as it is known ------------------------------------------------------

    @property
    def pids(self) -> np.ndarray:
        """int32: the pid of each pid index, in order of first appearance."""
        return self._pids

    @property
    def page_pid(self) -> np.ndarray:
        """int32 pid index of each page."""
        return self.grow.pidx[: self.n_pages]

    @property
    def page_vpn(self) -> np.ndarray:
        return self.grow.vpn[: self.n_pages]

    @property
    def page_first_ns(self) -> np.ndarray:
        """int64: when each page appeared (its first access or map row)."""
        return self.grow.first_ns[: self.n_pages]

    @property
    def page_node(self) -> np.ndarray:
        """int32: the node each page was placed on."""
        return self.grow.node[: self.n_pages]

    @property
    def cpu_first_ns(self) -> np.ndarray:
        """int64 [pids, cpus]: first access of each pid index on each CPU (NEVER if none)."""
        return self._cpu_first[: len(self._pids)]

    @property
    def table(self) -> np.ndarray:
        """The hash table from ``pid index << 45 | vpn`` to page ids (see ``_pages``)."""
        return self.grow.table

    def pid_index(self, pid: np.ndarray) -> np.ndarray:
        """Pid indices of pids seen so far (-1 for others)."""
        pid = np.asarray(pid)
        if not len(self._pids):
            return np.full(len(pid), -1, np.int64)
        order = np.argsort(self._pids, kind="stable")
        pos = np.minimum(np.searchsorted(self._pids[order], pid), len(order) - 1)
        found = self._pids[order][pos] == pid
        return np.where(found, order[pos], -1).astype(np.int64)

    def page_ids(self, pid: np.ndarray, vpn: np.ndarray) -> np.ndarray:
        """Dense page ids of (pid, vpn) pairs; -1 where the page has not appeared."""
        pidx = self.pid_index(np.asarray(pid))
        keys = (pidx << VPN_BITS) | np.asarray(vpn, np.int64)
        out = np.empty(len(keys), np.int64)
        _pages.lookup(self.grow.table, keys, out)
        out[pidx < 0] = -1
        return out

    def address_order(self) -> np.ndarray:
        """Every page so far, sorted by (pid index, vpn): the order migrate_pages(2) walks an
        address space in. Pages that appeared since the last call are merged in."""
        with self._addr_lock:
            return self._address_order()

    def _address_order(self) -> np.ndarray:
        n, done = self.n_pages, len(self._addr_ids)
        if n > done:
            new = np.arange(done, n, dtype=np.int64)
            keys = (self.page_pid[done:].astype(np.int64) << VPN_BITS) | self.page_vpn[done:]
            order = np.argsort(keys, kind="stable")
            keys, new = keys[order], new[order]
            at = np.searchsorted(self._addr_keys, keys)
            self._addr_keys = np.insert(self._addr_keys, at, keys)
            self._addr_ids = np.insert(self._addr_ids, at, new)
        return self._addr_ids

    def mask(self, pid_index: int, t_ns: int, mode: str, window_ns: int) -> np.ndarray:
        """mm_cpumask of a pid at time ``t_ns`` as a bool array over CPUs: ``sticky``, every
        CPU that ran it by then; ``window``, every CPU that ran it in the activity bins that
        ended by ``t_ns`` and overlap the last ``window_ns`` (bins of ``active_bin_ns``)."""
        first = self.cpu_first_ns[pid_index]
        if mode == "sticky":
            return first <= t_ns
        w = self.active_bin_ns
        if not w:
            raise ValueError("the pre-pass did not collect activity bins (mm_cpumask = 'window')")
        cpus = self.machine.cpus
        lo, hi = (t_ns - window_ns) // w, (t_ns + 1) // w - 1
        out = np.zeros(cpus, bool)
        slot_lo = pid_index * cpus
        for last_ns, packed in reversed(self._bins):
            if last_ns // w < lo:
                break
            slot, b = packed >> 40, packed & ((1 << 40) - 1)
            hit = (slot >= slot_lo) & (slot < slot_lo + cpus) & (b >= lo) & (b <= hi)
            out[slot[hit] - slot_lo] = True
        return out

    # -- advancing ----------------------------------------------------------------------------

    def add_rows(self, group: RowGroup) -> np.ndarray:
        """Take one validated row group (the next in file order); return the page ids (int32)
        of its access rows, in order. Raises TraceFormatError for a map row after an access to
        its page."""
        cpus = self.machine.cpus
        n = group.num_rows
        codes = group.kind
        pid = group.pid
        single = bool(n) and pid.min() == pid.max()
        for p in ([int(pid[0])] if single else np.unique(pid).tolist()):
            self.pid_of.setdefault(int(p), len(self.pid_of))
        if len(self.pid_of) != len(self._pids):
            self._pids = np.fromiter(self.pid_of.keys(), np.int64, len(self.pid_of)).astype(np.int32)
        if len(self.pid_of) > len(self._cpu_first):
            grow_to = max(len(self.pid_of), 2 * len(self._cpu_first))
            more = np.full((grow_to - len(self._cpu_first), cpus), NEVER, np.int64)
            self._cpu_first = np.vstack([self._cpu_first, more])
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
            self.n_pages, row, other, n_access, bad = _pages.touch(
                row, other, n_access, frozen(codes), frozen(dst), frozen(group.ts_ns),
                frozen(group.cpu), frozen(pidx), frozen(group.vaddr),
                np.int64(self.machine.page_shift), self.cpu_node, g.table, self.n_pages,
                g.first_ns, g.node, g.pidx, g.vpn, self._cpu_first, pages,
            )
            if bad >= 0:
                raise TraceFormatError(
                    "a map row places a page that an earlier access already touched; a page "
                    "is placed once, by its first access or by a map row before it",
                    path=self.path, column="kind", row=group.row0 + int(bad),
                    rule=rule_text("map-before-access"))
        self.accesses += int(n_access)
        if self.active_bin_ns and n:
            is_access = codes == KIND_ACCESS
            slot = pidx[is_access].astype(np.int64) * cpus + group.cpu[is_access]
            bins = np.unique((slot << 40) | (group.ts_ns[is_access] // self.active_bin_ns))
            self._bins.append((int(group.ts_ns[-1]), bins))
        if len(dst):
            mig = others.column("kind").indices.to_numpy(zero_copy_only=False) == KIND_MIGRATE
            if mig.any():
                sel = others.filter(pa.array(mig))
                vaddr = np.asarray(sel.column("vaddr").fill_null(0).to_numpy(zero_copy_only=False), np.uint64)
                self.calls.add(sel, pidx[group.other_index[mig]],
                               (vaddr >> np.uint64(self.machine.page_shift)).astype(np.int64))
        self.rows = group.row0 + n
        if n:
            # Rows at the group's last time may go on in the next group.
            self.known_ns = int(group.ts_ns[-1]) - 1
        return pages

    def close(self) -> None:
        """Every row has been added: the past is the whole trace."""
        self.known_ns = NEVER


def prepass(groups: Iterable[RowGroup], machine: Machine, *, active_bin_ns: int = 0) -> PrePass:
    """The pre-pass after every row group of ``groups`` (validated, in file order)."""
    pre = PrePass(machine, active_bin_ns=active_bin_ns)
    for group in groups:
        pre.add_rows(group)
    pre.close()
    return pre


def _pid_index(known: np.ndarray, index: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """Pid indices of ``pid`` (every one among ``known``)."""
    srt = np.argsort(known)
    return index[srt][np.searchsorted(known[srt], pid)].astype(np.int32)
