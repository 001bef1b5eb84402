"""The pages of a trace as the read meets them: dense ids in order of first touch, where each
page was placed, and when each process first ran on each CPU.

A page ``(pid, vpn)`` appears at its first access (on the node of the accessing CPU) or its
first ``map`` row (on the node the row declares). A map row after an access to its page breaks
the rule map-before-access: a page is placed once. The compiled scan (``_pages.touch``) and a
hash table from ``pid index << 45 | vpn`` to page ids do the work; the arrays grow by doubling.
"""

from __future__ import annotations

import numpy as np

from tracereplay._frozen import frozen
from tracereplay.errors import TraceFormatError
from tracereplay.machine import Machine
from tracereplay.trace import _pages
from tracereplay.trace._pages import VPN_BITS
from tracereplay.trace.schema import RowGroup, rule_text

NEVER = np.iinfo(np.int64).max


class _Growing:
    """Per-page arrays that grow as pages appear (amortised doubling)."""

    def __init__(self) -> None:
        self.cap = 1 << 12
        self.first_ns = np.zeros(self.cap, np.int64)
        self.node = np.zeros(self.cap, np.int32)
        self.pidx = np.zeros(self.cap, np.int32)
        self.vpn = np.zeros(self.cap, np.int64)
        self.order = np.zeros(self.cap, np.int8)
        self.table = np.full((self.cap * 2, 2), -1, np.int64)

    def reserve(self, n: int) -> None:
        """Room for ``n`` pages (and a hash table at most half full)."""
        if n <= self.cap:
            return
        cap = self.cap
        while cap < n:
            cap *= 2
        for name in ("first_ns", "node", "pidx", "vpn", "order"):
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype)
            new[: self.cap] = old
            setattr(self, name, new)
        bigger = np.full((cap * 2, 2), -1, np.int64)
        _pages.rehash(self.table, bigger)
        self.table, self.cap = bigger, cap


class PageTable:
    """Pages and processes of the row groups added so far (in file order)."""

    def __init__(self, machine: Machine, *, path: str | None = None) -> None:
        self.machine = machine
        self.path = path
        self.cpu_node = np.asarray(machine.cpu_node, np.int32)
        self.grow = _Growing()
        self.n_pages = 0
        self.pid_of: dict[int, int] = {}
        self._pids = np.zeros(0, np.int32)
        self._cpu_first = np.full((4, machine.cpus), NEVER, np.int64)
        self.accesses = 0

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
    def page_order(self) -> np.ndarray:
        """int8: the order of the folio each page belongs to (0: a base page). The pages of a
        folio have consecutive ids, its head (first page) first."""
        return self.grow.order[: self.n_pages]

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

    def add(self, group: RowGroup) -> tuple[np.ndarray, np.ndarray]:
        """Take one validated row group (the next in file order); return the pid index of each
        of its rows (int32) and the page id of each access row, in order (int32). Raises
        TraceFormatError for a map row after an access to its page."""
        cpus = self.machine.cpus
        n = group.num_rows
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
            srt = np.argsort(self._pids)
            pidx = srt[np.searchsorted(self._pids[srt], pid)].astype(np.int32)
        g = self.grow
        dst = np.zeros(len(group.other_index), np.int32)
        order = np.zeros(len(group.other_index), np.int8)
        if len(dst):
            dst = np.asarray(group.others.column("dst_node").fill_null(0)
                             .to_numpy(zero_copy_only=False), np.int32)
            if "order" in group.others.schema.names:
                order = np.asarray(group.others.column("order").fill_null(0)
                                   .to_numpy(zero_copy_only=False), np.int8)
        row = other = n_access = 0
        pages = np.empty(n - len(group.other_index), np.int32)
        while row < n:
            # The scan stops when the arrays are full; they grow and it goes on.
            g.reserve(self.n_pages + _pages.MAX_FOLIO_PAGES + 1)
            self.n_pages, row, other, n_access, bad, why = _pages.touch(
                row, other, n_access, frozen(group.kind), frozen(dst), frozen(group.ts_ns),
                frozen(group.cpu), frozen(pidx), frozen(group.vaddr),
                np.int64(self.machine.page_shift), self.cpu_node, g.table, self.n_pages,
                g.first_ns, g.node, g.pidx, g.vpn, self._cpu_first, pages, frozen(order),
                g.order,
            )
            if bad >= 0 and why == _pages.BAD_OVERLAP:
                raise TraceFormatError(
                    "a map row declares a folio that overlaps another folio of the process; "
                    "a page belongs to one folio (a second map row of the same folio, same "
                    "vaddr and order, changes nothing)",
                    path=self.path, column="order", row=group.row0 + int(bad),
                    rule=rule_text("folio-overlap"))
            if bad >= 0:
                raise TraceFormatError(
                    "a map row places a page that an earlier access already touched; a page "
                    "is placed once, by its first access or by a map row before it",
                    path=self.path, column="kind", row=group.row0 + int(bad),
                    rule=rule_text("map-before-access"))
        self.accesses += int(n_access)
        return pidx, pages
