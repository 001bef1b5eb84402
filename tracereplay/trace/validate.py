"""Every row rule of trace v1 on a stream of batches, counting the summary on the way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from tracereplay._frozen import frozen
from tracereplay.errors import TraceFormatError
from tracereplay.machine import Machine
from tracereplay.trace._rows import first_bad_row
from tracereplay.trace.columns import (
    _FEW_ROWS,
    _batch_cols,
    _by_name,
    _canonical,
    _codes,
    _Col,
    _column,
    _drop_ignored,
    _filled,
    _kind_masks,
    _mask_where,
    _rows_at,
    _states,
    _valid_mask,
)
from tracereplay.trace.schema import (
    _EMPTY_MASK,
    _OFF_CPU_LIMIT,
    _PID_LIMIT,
    _VADDR_LIMIT,
    KIND_CODES,
    KINDS,
    OFF_CPU_COLUMNS,
    RowGroup,
    TraceSummary,
    _columns,
    _spec,
    arrow_schema,
    pmd_order,
    rule_text,
)


def _first(mask: np.ndarray) -> int | None:
    if not mask.size:
        return None
    i = int(mask.argmax())
    return i if mask[i] else None


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values; by marking a bitmap when they span a small range (pages of one
    working set, CPUs), which is several times faster than sorting or hashing."""
    if values.size == 0:
        return values
    lo, hi = values.min(), values.max()
    if hi - lo >= max(4 * values.size, 1 << 16):
        return np.unique(values)
    seen = np.zeros(int(hi - lo) + 1, dtype=bool)
    seen[values - lo] = True
    return np.flatnonzero(seen).astype(values.dtype) + lo


def _union(seen: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.union1d(seen, values)`` of sorted distinct int64 ``seen``: ``seen`` itself when it
    holds every one of ``values`` (most batches name no new process or CPU)."""
    if values.size == 0:
        return seen
    if values.size > _FEW_ROWS:
        values = _distinct(values)
    if seen.size:
        pos = np.minimum(np.searchsorted(seen, values), seen.size - 1)
        if (seen[pos] == values).all():
            return seen
    return np.union1d(seen, values)


class _Requests:
    """Migrate requests seen so far, sorted by req_id, with what every row of one must share."""

    # Attributes compared between rows of one request, and the column each is named by.
    ATTRS = ("shape", "ts_ns", "cpu", "pid", "mode", "dst_node")

    def __init__(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.attrs = np.zeros((0, len(self.ATTRS)), dtype=np.int64)
        self.first_row = np.zeros(0, dtype=np.int64)
        self.rows = np.zeros(0, dtype=np.int64)

    def check(
        self, rows: np.ndarray, ids: np.ndarray, attrs: np.ndarray
    ) -> tuple[int, str, str] | None:
        """Add the migrate rows of one batch; return (row, column, message) of the first clash."""
        if ids.size == 0:
            return None
        # The batch's requests: its rows sorted by req_id (stably: a request's rows in batch
        # order), each request's first row, and how many of its rows came earlier.
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        head = np.empty(ids.size, dtype=bool)
        head[0] = True
        np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=head[1:])
        request_sorted = np.cumsum(head) - 1
        request = np.empty_like(request_sorted)
        request[order] = request_sorted
        at = np.arange(ids.size)
        starts = at[head]
        earlier = np.empty_like(at)
        earlier[order] = at - starts[request_sorted]
        req_ids, first_idx = sorted_ids[head], order[head]
        counts = np.empty_like(starts)
        counts[:-1] = starts[1:] - starts[:-1]
        counts[-1] = ids.size - starts[-1]
        # Which of them were seen in earlier batches, and where.
        pos = np.searchsorted(self.ids, req_ids)
        found = pos < self.ids.size
        found[found] = self.ids[pos[found]] == req_ids[found]
        # What each row must match: its request's first row, in this batch or an earlier one.
        req_ref, req_first = attrs[first_idx], rows[first_idx]
        req_prior = np.zeros(req_ids.size, dtype=np.int64)
        req_ref[found] = self.attrs[pos[found]]
        req_first[found] = self.first_row[pos[found]]
        req_prior[found] = self.rows[pos[found]]
        ref, ref_first = req_ref[request], req_first[request]
        prior = req_prior[request] + earlier

        differs = attrs != ref
        shape_col = self.ATTRS.index("shape")
        whole_twice = (ref[:, shape_col] == 1) & (prior >= 1) & ~differs.any(axis=1)
        clash: tuple[int, str, str] | None = None
        bad = differs.any(axis=1) | whole_twice
        i = _first(bad)
        if i is not None:
            rid, first = int(ids[i]), int(ref_first[i])
            if whole_twice[i]:
                clash = (int(rows[i]), "req_id",
                         f"req_id {rid} is a whole-node migrate and already has a row (row "
                         f"{first}); a whole-node request has exactly one row")
            else:
                a = int(differs[i].argmax())
                column = self.ATTRS[a]
                if column == "shape":
                    what = ("whole-node" if attrs[i, a] else "explicit-page",
                            "whole-node" if ref[i, a] else "explicit-page")
                    column = "vaddr"
                    detail = f"is {what[0]} but row {first} of it is {what[1]}"
                else:
                    detail = (f"has {column} {self._show(column, attrs[i, a])} but row {first} "
                              f"of it has {self._show(column, ref[i, a])}")
                clash = (int(rows[i]), column, f"req_id {rid} {detail}")
        self._merge(pos, found, req_ids, counts, req_ref, req_first)
        return clash

    @staticmethod
    def _show(column: str, value: Any) -> str:
        if column == "mode":
            return "async" if value == 1 else "sync"
        return str(int(value))

    def _merge(self, pos: np.ndarray, found: np.ndarray, req_ids: np.ndarray,
               counts: np.ndarray, attrs: np.ndarray, first_row: np.ndarray) -> None:
        """Count the rows of the batch's requests (sorted by id, each once, with its row count
        and first row's attributes) into the requests seen so far."""
        self.rows[pos[found]] += counts[found]
        new = ~found
        if not new.any():
            return
        if not self.ids.size or req_ids[new][0] > self.ids[-1]:  # the usual: ids grow
            self.ids = np.concatenate([self.ids, req_ids[new]])
            self.attrs = np.concatenate([self.attrs, attrs[new]])
            self.first_row = np.concatenate([self.first_row, first_row[new]])
            self.rows = np.concatenate([self.rows, counts[new]])
            return
        all_ids = np.concatenate([self.ids, req_ids[new]])
        order = np.argsort(all_ids, kind="stable")
        self.ids = all_ids[order]
        self.attrs = np.concatenate([self.attrs, attrs[new]])[order]
        self.first_row = np.concatenate([self.first_row, first_row[new]])[order]
        self.rows = np.concatenate([self.rows, counts[new]])[order]

    @property
    def calls(self) -> int:
        return int(self.ids.size)

    @property
    def whole_node_calls(self) -> int:
        return int(np.count_nonzero(self.attrs[:, self.ATTRS.index("shape")] == 1))


class _Validator:
    """Checks every row rule on a stream of batches and counts the summary on the way.

    With ``machine`` None (``write`` without a machine cannot know the CPUs a reader will assume)
    CPUs and nodes are only checked to fit the canonical int32.
    """

    def __init__(self, path: str, machine: Machine | None, *, summarise: bool) -> None:
        self.path = path
        self.machine = machine
        self.summarise = summarise
        self.rows = 0
        self.last_ts: int | None = None
        self.first_ts: int | None = None
        self.requests = _Requests()
        self.counts = {"accesses": 0, "reads": 0, "writes": 0, "maps": 0, "migrate_pages": 0}
        self.pids = np.zeros(0, dtype=np.int64)
        self.cpus = np.zeros(0, dtype=np.int64)
        self.pages: dict[int, np.ndarray] = {}
        # The schema of the last batch :meth:`check_group` found of canonical column types.
        self._group_schema: pa.Schema | None = None

    def error(self, message: str, *, column: str | None = None, row: int | None = None,
              rule: str) -> TraceFormatError:
        return TraceFormatError(message, path=self.path, column=column, row=row,
                                rule=rule_text(rule))

    def check(self, batch: pa.RecordBatch, rows: np.ndarray | None = None, *,
              arrays: dict[str, pa.Array] | None = None) -> dict[str, _Col]:
        """Validate one batch (rows continue from the previous one); return its columns.

        ``rows``, if given, are the file row numbers of the batch's rows (a selection of a row
        group whose other rows :meth:`check_group` checked); the row count is then the caller's.
        ``arrays``: the batch's columns by name (``columns._by_name``), when the caller has them.
        """
        offset = self.rows
        row_of = np.arange(offset, offset + batch.num_rows) if rows is None else rows
        cols = _batch_cols(batch, arrays)
        problems: list[tuple[int, str, str | None, str]] = []  # (row, rule, column, message)

        def flag(mask: np.ndarray, rule: str, column: str | None, message: Any) -> None:
            i = _first(mask)
            if i is not None:
                problems.append((i, rule, column, message(i) if callable(message) else message))

        kind = cols["kind"]
        flag(kind.values == -1, "non-null", "kind", "kind is null")
        flag(kind.values == -2, "known-kind", "kind",
             lambda i: f"unknown kind {batch.column('kind')[i].as_py()!r}; expected one of "
                       f"{', '.join(KINDS)}")
        masks = _kind_masks(kind)
        # The first row where a column its kind requires is null; of that row, the first such
        # column (the order in which one flag per column would name it).
        names = list(_columns())
        missing = _states(kind.values, "required") & ~np.array([cols[n].valid for n in names])
        i = _first(missing.any(axis=0))
        if i is not None:
            name = names[int(missing[:, i].argmax())]
            problems.append((i, "non-null", name, f"{name} is null on a "
                                                  f"{KINDS[kind.values[i]]} row, which requires it"))
        _drop_ignored(cols, _states(kind.values, "ignored"))

        ts = cols["ts_ns"]
        flag(ts.valid & (ts.values < 0), "ts-non-decreasing", "ts_ns",
             lambda i: f"ts_ns is negative: {ts.values[i]}")
        idx = ts.valid.nonzero()[0]
        if idx.size:
            v = ts.values[idx]
            before = np.empty_like(v)
            before[0] = v[0] if self.last_ts is None else self.last_ts
            before[1:] = v[:-1]
            j = _first(v < before)
            if j is not None:
                problems.append((int(idx[j]), "ts-non-decreasing", "ts_ns",
                                 f"ts_ns decreases from {before[j]} to {v[j]}"))
            if self.first_ts is None:
                self.first_ts = int(v[0])
            self.last_ts = int(v.max()) if self.last_ts is None else max(self.last_ts,
                                                                         int(v.max()))

        self._ranges(cols, flag)

        self._folios(cols, masks, kind, flag)

        self._mappings(cols, masks, kind, flag)

        self._off_cpu(cols, masks, kind, flag)

        mode = cols["mode"]
        flag(mode.values == -2, "mode-known", "mode",
             lambda i: f"unknown mode {batch.column('mode')[i].as_py()!r}; expected sync, "
                       "async or null")

        migrate = masks["migrate"]
        vaddr, src = cols["vaddr"], cols["src_node"]
        flag(migrate & vaddr.valid & src.valid, "migrate-shape", "src_node",
             "a migrate row has both vaddr and src_node; set vaddr for an explicit page or "
             "src_node for a whole-node migrate, not both")
        flag(migrate & ~vaddr.valid & ~src.valid, "migrate-shape", "vaddr",
             "a migrate row has neither vaddr nor src_node; set vaddr for an explicit page or "
             "src_node for a whole-node migrate")

        req = cols["req_id"]
        m = (migrate & req.valid).nonzero()[0]
        attrs = np.empty((m.size, len(_Requests.ATTRS)), dtype=np.int64)
        for a, column in enumerate((  # in the order of _Requests.ATTRS
            ~vaddr.valid[m], ts.values[m], cols["cpu"].values[m], cols["pid"].values[m],
            np.maximum(mode.values[m], 0), cols["dst_node"].values[m],
        )):
            attrs[:, a] = column
        clash = self.requests.check(row_of[m], req.values[m], attrs)
        if clash is not None:
            local = int(np.searchsorted(row_of, clash[0]))
            problems.append((local, "request-consistent", clash[1], clash[2]))

        if problems:
            rule_order = list(_spec()["rules"])
            row, rule, column, message = min(problems, key=lambda p: (p[0], rule_order.index(p[1])))
            raise self.error(message, column=column, row=int(row_of[row]), rule=rule)

        if self.summarise:
            self._count(cols, masks)
        if rows is None:
            self.rows += batch.num_rows
        return cols

    def check_group(self, batch: pa.RecordBatch) -> RowGroup | None:
        """Validate one row group of canonical column types by the compiled pass (every row's
        ``ts_ns``, every ``access`` row) and :meth:`check` on its other rows; return it as
        numpy columns. None, having checked nothing, when a column is not of its canonical
        type (or the batch is empty). A broken rule is reported exactly as :meth:`check` reports it."""
        if batch.num_rows == 0:
            return None
        names = batch.schema.names
        if self._group_schema is None or not batch.schema.equals(self._group_schema):
            schema = arrow_schema(optional=True)
            for name in names:
                if name in _columns() and batch.schema.field(name).type != schema.field(name).type:
                    return None
            if not pa.types.is_string(batch.column("kind").type.value_type):
                return None
            self._group_schema = batch.schema
        arrays = _by_name(batch)
        n = batch.num_rows
        codes = _codes(arrays["kind"], KINDS)
        raw = {name: arrays[name] if name in arrays else _column(batch, name)
               for name in ("ts_ns", "cpu", "pid", "vaddr", "write")}
        values = {name: _filled(a) for name, a in raw.items()}
        other = (codes != KIND_CODES["access"]).nonzero()[0]
        offset = self.rows
        # Without access rows check() below checks every rule of every row.
        bad = self._first_bad(arrays, codes, raw, values) if len(other) < n else -1
        if bad >= 0:
            self.check(batch)  # names the broken rule
            raise AssertionError(f"{self.path}: row {offset + bad} breaks a rule check() passes")
        first_group = self.first_ts is None
        if len(other) == n:  # no access rows (one migrate row between two long runs of them)
            cols = self.check(batch, rows=offset + other, arrays=arrays)
            others = _canonical(batch, list(_columns()), arrays=arrays, kind=cols["kind"])
        else:
            taken = _rows_at(batch, other)
            if len(other):
                self.check(taken, rows=offset + other)  # migrate and map rows: every rule
            others = _canonical(taken, list(_columns()))
        if first_group:
            self.first_ts = int(values["ts_ns"][0])
        self.last_ts = int(values["ts_ns"][-1])
        group = RowGroup(row0=offset, kind=codes, ts_ns=values["ts_ns"], cpu=values["cpu"],
                         pid=values["pid"], vaddr=values["vaddr"], write=values["write"],
                         other_index=other, others=others)
        if self.summarise and len(other) < n:
            self._count_group(group)
        self.rows += n
        return group

    def _first_bad(self, arrays: dict[str, pa.Array], codes: np.ndarray,
                   raw: dict[str, pa.Array], values: dict[str, np.ndarray]) -> int:
        """The compiled pass of :meth:`check_group`: the first row (of the group) that breaks
        a rule, or -1."""
        n = len(codes)
        valid = {name: (_EMPTY_MASK if a.null_count == 0 else _valid_mask(a))
                 for name, a in raw.items()}
        last = -1 if self.last_ts is None else self.last_ts
        cpus = self.machine.cpus if self.machine else _PID_LIMIT
        v = {k: frozen(a) for k, a in values.items()}
        ok = {k: frozen(a) for k, a in valid.items()}
        bad = first_bad_row(frozen(codes), v["ts_ns"], ok["ts_ns"], v["cpu"], ok["cpu"], v["pid"],
                            ok["pid"], v["vaddr"], ok["vaddr"], ok["write"], last, cpus,
                            _VADDR_LIMIT)
        mode = arrays.get("mode")  # absent: all null
        if bad < 0 and mode is not None and mode.null_count < n:
            words = _codes(mode.drop_null() if mode.null_count else mode, ("sync", "async"))
            bad = -1 if _first(words == -2) is None else 0
        for name in ("order", "mappings", *OFF_CPU_COLUMNS):
            # None may be set on an access row: check() names the row.
            if bad < 0 and name in arrays:
                col = arrays[name]
                if col.null_count < n and _first(
                        _valid_mask(col) & (codes == KIND_CODES["access"])) is not None:
                    bad = 0
        return int(bad)

    def _count_group(self, g: RowGroup) -> None:
        """Count the access rows of a row group (:meth:`check` counted the others)."""
        acc = g.kind == KIND_CODES["access"]
        names = ("write", "pid", "cpu", "vaddr")
        values = {k: getattr(g, k)[acc] if len(g.other_index) else getattr(g, k) for k in names}
        n = len(values["pid"])
        every, none = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
        self._count({k: _Col(v, every) for k, v in values.items()},
                    {"access": every, "map": none, "migrate": none})

    def _ranges(self, cols: dict[str, _Col], flag: Any) -> None:
        def out_of(name: str, low: int, high: int, rule: str, what: str) -> None:
            col = cols[name]
            bad = col.valid & ((col.values >= high) if col.values.dtype == np.uint64
                               else (col.values < low) | (col.values >= high))
            flag(bad, rule, name, lambda i: f"{name} {col.values[i]} is outside {what}")

        # Without a machine, CPUs and nodes must still fit the canonical int32.
        cpus, nodes = (self.machine.cpus, self.machine.nodes) if self.machine else (
            _PID_LIMIT, _PID_LIMIT)
        out_of("cpu", 0, cpus, "cpu-in-machine", f"the machine's CPUs 0..{cpus - 1}")
        for name in ("src_node", "dst_node"):
            out_of(name, 0, nodes, "node-in-machine", f"the machine's nodes 0..{nodes - 1}")
        out_of("vaddr", 0, _VADDR_LIMIT, "vaddr-range", "0..2^57-1")
        out_of("pid", 0, _PID_LIMIT, "pid-range", "0..2^31-1")

    def _folios(self, cols: dict[str, _Col], masks: dict[str, np.ndarray], kind: _Col,
                flag: Any) -> None:
        """The rules of the optional ``order`` column (a map row's folio)."""
        order = cols["order"]
        if not order.valid.any():
            return
        forbidden = _mask_where(masks, _columns()["order"], "forbidden")
        flag(order.valid & forbidden, "order-on-map", "order",
             lambda i: f"order is set on a {KINDS[kind.values[i]]} row; only a map row "
                       "declares a folio")
        shift = self.machine.page_shift if self.machine else 12
        pmd = pmd_order(shift)
        out = order.valid & ((order.values < 0) | (order.values > pmd))
        flag(out, "folio-order", "order",
             lambda i: f"order {order.values[i]} is outside 0..{pmd}: a folio is at most a "
                       f"PMD ({1 << pmd} pages of {1 << shift} bytes)")
        k = np.where(order.valid & ~out & masks["map"], order.values, 0).astype(np.uint64)
        vpn = cols["vaddr"].values.astype(np.uint64) >> np.uint64(shift)
        misaligned = (vpn & ((np.uint64(1) << k) - np.uint64(1))) != 0
        flag(misaligned, "folio-aligned", "vaddr",
             lambda i: f"vaddr {cols['vaddr'].values[i]:#x} is not aligned to its folio of "
                       f"order {order.values[i]} ({(1 << int(order.values[i])) << shift} bytes)")

    def _mappings(self, cols: dict[str, _Col], masks: dict[str, np.ndarray], kind: _Col,
                  flag: Any) -> None:
        """The rules of the optional ``mappings`` column (the PTEs of a migrated page)."""
        mappings = cols["mappings"]
        if not mappings.valid.any():
            return
        explicit = masks["migrate"] & cols["vaddr"].valid
        flag(mappings.valid & ~explicit, "mappings-on-migrate", "mappings",
             lambda i: "mappings is set on "
                       + ("a whole-node migrate row (no vaddr)" if masks["migrate"][i] else
                          f"{'an' if KINDS[kind.values[i]] == 'access' else 'a'} "
                          f"{KINDS[kind.values[i]]} row")
                       + "; only an explicit-page migrate row counts the PTEs of its page")
        flag(mappings.valid & ((mappings.values < 0) | (mappings.values >= _PID_LIMIT)),
             "mappings-range", "mappings",
             lambda i: f"mappings {mappings.values[i]} is outside 0..2^31-1 (the PTEs that "
                       "map the page; 0 when no process maps it)")

    def _off_cpu(self, cols: dict[str, _Col], masks: dict[str, np.ndarray], kind: _Col,
                 flag: Any) -> None:
        """The rules of the optional off-CPU columns (a migrated page's measured pauses)."""
        explicit = masks["migrate"] & cols["vaddr"].valid
        for name in OFF_CPU_COLUMNS:
            col = cols[name]
            if not col.valid.any():
                continue
            flag(col.valid & ~explicit, "off-cpu-on-migrate", name,
                 lambda i, name=name: f"{name} is set on "
                 + ("a whole-node migrate row (no vaddr)" if masks["migrate"][i] else
                    f"{'an' if KINDS[kind.values[i]] == 'access' else 'a'} "
                    f"{KINDS[kind.values[i]]} row")
                 + "; only an explicit-page migrate row times its page's steps")
            flag(col.valid & ((col.values < 0) | (col.values >= _OFF_CPU_LIMIT)),
                 "off-cpu-range", name,
                 lambda i, col=col, name=name: f"{name} {col.values[i]} is outside 0..2^62-1 "
                 "(ns the migrating task was off its CPU)")

    def _count(self, cols: dict[str, _Col], masks: dict[str, np.ndarray]) -> None:
        access = masks["access"]
        write = cols["write"]
        c = self.counts
        c["accesses"] += int(np.count_nonzero(access))
        c["writes"] += int(np.count_nonzero(access & write.valid & write.values))
        c["reads"] = c["accesses"] - c["writes"]
        c["maps"] += int(np.count_nonzero(masks["map"]))
        c["migrate_pages"] += int(np.count_nonzero(masks["migrate"] & cols["vaddr"].valid))
        pid = cols["pid"]
        self.pids = _union(self.pids, pid.values[pid.valid])
        cpu = cols["cpu"]
        self.cpus = _union(self.cpus, cpu.values[cpu.valid])
        vaddr = cols["vaddr"]
        shift = np.uint64(self.machine.page_shift if self.machine else 12)
        vpn = vaddr.values[vaddr.valid].astype(np.uint64) >> shift
        page_pid = pid.values[vaddr.valid]
        if page_pid.size == 0:
            return
        if page_pid.min() == page_pid.max():  # the common case: one process per batch
            groups = [(int(page_pid[0]), vpn)]
        else:
            groups = [(int(p), vpn[page_pid == p]) for p in np.unique(page_pid)]
        for p, vpns in groups:
            distinct = _distinct(vpns)
            seen = self.pages.get(p)
            self.pages[p] = distinct if seen is None else np.union1d(seen, distinct)

    def summary(self) -> TraceSummary:
        return TraceSummary(
            rows=self.rows,
            pids=int(self.pids.size),
            cpus=int(self.cpus.size),
            pages=sum(int(v.size) for v in self.pages.values()),
            migrate_calls=self.requests.calls,
            whole_node_calls=self.requests.whole_node_calls,
            ts_first_ns=self.first_ts or 0,
            ts_last_ns=self.last_ts or 0,
            **self.counts,
        )
