"""The pre-pass: what the migration engine needs to know of the past, advanced row group by
row group: dense page ids, page placement, mm_cpumask activity, migration calls.

The migration schedule depends on the accesses only through placement (first touch, or a
``map`` row) and mm_cpumask (which CPUs ran the process when), and both are facts about the
past: a call migrates the pages that exist when it starts, and mm_cpumask is what has run so
far. So the pre-pass advances with the replay over one read of the trace; the planner asks it
"the state up to t" once every row with ``ts_ns <= t`` has been added (:attr:`PrePass.known_ns`),
never the future. The TLB state never feeds back into the kernel's decisions.

Pages are numbered by the read (:class:`~tracereplay.trace.pages.PageTable`): dense ids in order
of first touch (or map), each placed once, on the node of the first accessing CPU or the node a
``map`` row before any access declares.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tracereplay.prepass.writes import WriteLog
from tracereplay.trace import KIND_CODES, RowGroup, TraceReader
from tracereplay.trace._pages import VPN_BITS
from tracereplay.trace.pages import NEVER, PageTable
from tracereplay.trace.schema import OFF_CPU_COLUMNS

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
    # the PTEs mapping each explicit page (the optional ``mappings`` column; null is 1)
    mappings: list[list[np.ndarray]] = field(default_factory=list)
    # each explicit page's measured time off the CPU before its unmap and before its move
    # (the optional ``off_cpu_unmap_ns`` and ``off_cpu_move_ns`` columns; null is 0), [k, 2]
    off_cpu: list[list[np.ndarray]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.req_id)

    def pages_vpn(self, i: int) -> np.ndarray:
        """The vpns call ``i`` lists, in order (int64)."""
        parts = self.vpns[i]
        if len(parts) != 1:
            self.vpns[i] = parts = [np.concatenate(parts) if parts else np.zeros(0, np.int64)]
        return parts[0]

    def pages_mappings(self, i: int) -> np.ndarray:
        """The mappings (PTEs) of each page call ``i`` lists, in order (int64, >= 0)."""
        parts = self.mappings[i]
        if len(parts) != 1:
            self.mappings[i] = parts = [np.concatenate(parts) if parts else np.zeros(0, np.int64)]
        return parts[0]

    def pages_off_cpu(self, i: int) -> np.ndarray:
        """int64 [pages, 2]: each page call ``i`` lists, in order, the time its migrating task
        was off its CPU before the page's unmap and before its move (0 when not measured)."""
        parts = self.off_cpu[i]
        if len(parts) != 1:
            self.off_cpu[i] = parts = [np.concatenate(parts) if parts
                                       else np.zeros((0, 2), np.int64)]
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
        maps = (np.asarray(rows.column("mappings").fill_null(1).to_numpy(zero_copy_only=False),
                           np.int64)
                if "mappings" in rows.schema.names else np.ones(len(req), np.int64))
        off = np.zeros((len(req), 2), np.int64)
        for k, name in enumerate(OFF_CPU_COLUMNS):
            if name in rows.schema.names:
                off[:, k] = rows.column(name).fill_null(0).to_numpy(zero_copy_only=False)
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
                self.mappings.append([])
                self.off_cpu.append([])
            if explicit[f]:
                rows_j = inverse == j
                self.vpns[i].append(vpn[rows_j])
                self.mappings[i].append(maps[rows_j])
                self.off_cpu[i].append(off[rows_j])


class PrePass:
    """The state of the pre-pass after the row groups added so far (in file order).

    Every accessor describes the past: pages that have appeared (``page_*``, ``n_pages``, from
    the read's :class:`~tracereplay.trace.pages.PageTable`), the first access of each process
    on each CPU, the calls read. ``active_bin_ns`` > 0 also keeps which CPUs ran each process
    in each bin of that width, which ``mm_cpumask = 'window'`` needs.
    """

    def __init__(self, pages: PageTable, *, active_bin_ns: int = 0, writes: bool = False) -> None:
        self.pages = pages
        # The stores read so far, when a policy needs them (``writes``; see prepass.writes).
        self.writes: WriteLog | None = WriteLog() if writes else None
        self.machine = pages.machine
        self.active_bin_ns = active_bin_ns
        self._bins: list[tuple[int, np.ndarray]] = []  # (last ts, packed slot << 40 | bin)
        self.calls = Calls()
        self.rows = 0
        self.known_ns = -1  # every row with ts_ns <= known_ns has been added
        self._addr_keys = np.zeros(0, np.int64)
        self._addr_ids = np.zeros(0, np.int64)
        self._addr_lock = threading.Lock()  # planners on lanes of their own share the order

    # -- the past, as far as it is known ------------------------------------------------------

    @property
    def n_pages(self) -> int:
        return self.pages.n_pages

    @property
    def accesses(self) -> int:
        return self.pages.accesses

    @property
    def pids(self) -> np.ndarray:
        """int32: the pid of each pid index, in order of first appearance."""
        return self.pages.pids

    @property
    def page_pid(self) -> np.ndarray:
        """int32 pid index of each page."""
        return self.pages.page_pid

    @property
    def page_vpn(self) -> np.ndarray:
        return self.pages.page_vpn

    @property
    def page_order(self) -> np.ndarray:
        """int8: the order of each page's folio (0: a base page; a folio's pages have
        consecutive ids, its head first)."""
        return self.pages.page_order

    @property
    def page_first_ns(self) -> np.ndarray:
        """int64: when each page appeared (its first access or map row)."""
        return self.pages.page_first_ns

    @property
    def page_node(self) -> np.ndarray:
        """int32: the node each page was placed on."""
        return self.pages.page_node

    @property
    def cpu_first_ns(self) -> np.ndarray:
        """int64 [pids, cpus]: first access of each pid index on each CPU (NEVER if none)."""
        return self.pages.cpu_first_ns

    def page_ids(self, pid: np.ndarray, vpn: np.ndarray) -> np.ndarray:
        """Dense page ids of (pid, vpn) pairs; -1 where the page has not appeared."""
        return self.pages.page_ids(pid, vpn)

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

    def mask_until(self, pid_index: int, t_ns: int, mode: str, window_ns: int) -> int:
        """The earliest time after ``t_ns`` at which :meth:`mask` (same arguments) may read
        otherwise than at ``t_ns``, as far as the pre-pass has read: every reading from
        ``t_ns`` up to it is the same. ``sticky``: when the next CPU first runs the pid (NEVER
        if none will); ``window``: when either end of the window crosses an activity bin's
        edge."""
        if mode == "sticky":
            first = self.cpu_first_ns[pid_index]
            later = first[first > t_ns]
            return int(later.min()) if len(later) else NEVER
        w = self.active_bin_ns
        lo, hi = (t_ns - window_ns) // w, (t_ns + 1) // w - 1
        return min((lo + 1) * w + window_ns, (hi + 2) * w - 1)

    # -- advancing ----------------------------------------------------------------------------

    def add_rows(self, group: RowGroup) -> None:
        """Take one row group of the read (the next in file order; its pages numbered)."""
        assert group.pid_index is not None, "the read numbers a group's pages"
        n = group.num_rows
        if self.active_bin_ns and n:
            is_access = group.kind == KIND_ACCESS
            slot = group.pid_index[is_access].astype(np.int64) * self.machine.cpus + group.cpu[is_access]
            bins = np.unique((slot << 40) | (group.ts_ns[is_access] // self.active_bin_ns))
            self._bins.append((int(group.ts_ns[-1]), bins))
        if len(group.other_index):
            others = group.others
            mig = others.column("kind").indices.to_numpy(zero_copy_only=False) == KIND_MIGRATE
            if mig.any():
                sel = others.filter(pa.array(mig))
                vaddr = np.asarray(sel.column("vaddr").fill_null(0).to_numpy(zero_copy_only=False), np.uint64)
                self.calls.add(sel, group.pid_index[group.other_index[mig]],
                               (vaddr >> np.uint64(self.machine.page_shift)).astype(np.int64))
        if self.writes is not None and n:
            page = group.page
            assert page is not None
            acc = slice(None) if len(page) == n else group.kind == KIND_ACCESS
            stores = group.write[acc]
            self.writes.add(group.ts_ns[acc][stores], page[stores])
        self.rows = group.row0 + n
        if n:
            # Rows at the group's last time may go on in the next group.
            self.known_ns = int(group.ts_ns[-1]) - 1

    def close(self) -> None:
        """Every row has been added: the past is the whole trace."""
        self.known_ns = NEVER


def prepass(reader: TraceReader, *, active_bin_ns: int = 0, writes: bool = False) -> PrePass:
    """The pre-pass over every row group of a trace's read."""
    pre = PrePass(reader.pages, active_bin_ns=active_bin_ns, writes=writes)
    for group in reader.groups():
        pre.add_rows(group)
    pre.close()
    return pre
