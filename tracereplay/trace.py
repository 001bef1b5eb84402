"""Trace format v1: load and validate, read in canonical row-group batches, write.

``schemas/trace.v1.json`` is the single source of truth: the columns, the types each accepts,
which columns each row ``kind`` requires or ignores, the metadata keys and the named rules. This
module reads it; every rule a file can break is reported by its name from that file.

A trace is never held in memory whole. :func:`load` streams it row group by row group and checks
every rule per batch (carrying the last ``ts_ns`` and the migrate requests seen so far from batch
to batch): a group of canonical column types goes through one compiled pass (``_rows.py``) over
every row's ``ts_ns`` and every ``access`` row, and its few other rows through the vectorised
numpy checks, which alone name a broken rule (a group that breaks one is checked again by them
whole, so the message does not depend on the path). It builds a :class:`TraceSummary` on the
way. Consumers then read :meth:`Trace.batches`, which yields the same batches cast to the
canonical types of :func:`arrow_schema`. The replay drives the read itself (:class:`TraceReader`):
it decodes, validates and hashes each row group once, as numpy :class:`RowGroup` columns.

Canonical batches:

* ``kind`` is ``dictionary<int8, string>`` whose dictionary is always ``access, migrate, map``
  (index 0, 1, 2), so a consumer may test the indices directly.
* Values in a column that the row's kind *ignores* are read as null (``write`` on a ``migrate``
  row, ``src_node`` on an ``access`` row, ...). A null ``mode`` on a ``migrate`` row means sync.
* Optional columns missing from the file, or stored as Arrow's null type, are all null.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay._ahead import ahead
from tracereplay._frozen import frozen
from tracereplay._output import replacing
from tracereplay._resources import load_schema
from tracereplay._rows import first_bad_row
from tracereplay.errors import ConfigError, TraceFormatError
from tracereplay.machine import Machine

TRACE_SCHEMA = "trace/1"
# Row kinds in the order of the canonical ``kind`` dictionary (index 0, 1, 2).
KINDS: tuple[str, ...] = tuple(load_schema("trace.v1")["kinds"])

_SCHEMA_KEY = "tracereplay.schema"
_MACHINE_KEY = "tracereplay.machine"

# Rows per row group when writing, and the largest batch read at once.
_ROW_GROUP_ROWS = 1 << 20

# vaddr must be below 2^57 (5-level paging user space).
_VADDR_LIMIT = 1 << 57
_PID_LIMIT = 1 << 31

_INT_TYPES: dict[str, pa.DataType] = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
}
_CANONICAL_TYPES: dict[str, pa.DataType] = {
    **_INT_TYPES,
    "bool": pa.bool_(),
    "string": pa.string(),
}

# Low-cardinality columns get a Parquet dictionary; ts_ns and vaddr (nearly all distinct) do not.
_DICTIONARY_COLUMNS = ["kind", "cpu", "pid", "src_node", "dst_node", "mode"]
# Timestamps grow by small steps: delta encoding stores each in a few bits. Addresses share their
# high bytes: split into byte streams, those compress to nearly nothing (about 25% smaller).
_COLUMN_ENCODING = {"ts_ns": "DELTA_BINARY_PACKED", "vaddr": "BYTE_STREAM_SPLIT"}


def _spec() -> dict[str, Any]:
    return load_schema("trace.v1")


@cache
def _columns() -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in _spec()["columns"]}


def rule_text(name: str) -> str:
    """The name of a rule, checked against the schema so a typo cannot invent a rule."""
    if name not in _spec()["rules"]:
        raise KeyError(f"trace.v1.json has no rule '{name}'")
    return name


def arrow_schema() -> pa.Schema:
    """The canonical Arrow schema of trace v1 batches, with each column's unit and doc."""
    fields = []
    for name, col in _columns().items():
        dtype = _CANONICAL_TYPES[col["type"]]
        if name == "kind":
            dtype = pa.dictionary(pa.int8(), pa.string())
        always = all(v == "required" for v in col["kinds"].values())
        meta = {"unit": col["unit"] or "", "doc": col["doc"]}
        fields.append(pa.field(name, dtype, nullable=not always, metadata=meta))
    return pa.schema(fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSummary:
    """What a trace holds, counted while it is validated."""

    rows: int
    accesses: int
    reads: int
    writes: int
    maps: int
    pids: int  # distinct pids in any row
    cpus: int  # distinct CPUs that issue a row
    pages: int  # distinct (pid, vpn) accessed, mapped or named by an explicit migrate
    migrate_calls: int  # distinct req_id: whole-node and explicit-page calls
    whole_node_calls: int  # calls that move every page of a pid on src_node
    migrate_pages: int  # explicit migrate rows (one page each)
    ts_first_ns: int
    ts_last_ns: int

    @property
    def span_ns(self) -> int:
        return self.ts_last_ns - self.ts_first_ns

    def to_dict(self) -> dict[str, int]:
        d = asdict(self)
        d["span_ns"] = self.span_ns
        return d


# ----------------------------------------------------------------------------- columns in numpy

KIND_CODES = {k: i for i, k in enumerate(KINDS)}
_EMPTY_MASK = np.zeros(0, dtype=bool)


@dataclass(frozen=True, slots=True, kw_only=True)
class RowGroup:
    """One validated row group as numpy columns, for consumers that want arrays, not Arrow.

    ``ts_ns``, ``cpu``, ``pid``, ``vaddr`` and ``write`` cover every row and are never null on
    an ``access`` row; elsewhere a null reads as 0 (False). The rows of the other kinds are also
    in ``others``, a canonical batch (every column, as :meth:`Trace.batches` yields them), at
    the positions ``other_index`` of the group.
    """

    row0: int  # file row number of the group's first row
    kind: np.ndarray  # int8 codes into KINDS (0 access, 1 migrate, 2 map)
    ts_ns: np.ndarray  # int64
    cpu: np.ndarray  # int32
    pid: np.ndarray  # int32
    vaddr: np.ndarray  # uint64
    write: np.ndarray  # bool
    other_index: np.ndarray  # int64
    others: pa.RecordBatch

    @property
    def num_rows(self) -> int:
        return len(self.kind)


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    """Column ``name`` of ``batch``, or all nulls of its canonical type when the batch lacks it."""
    if name in batch.schema.names:
        return batch.column(name)
    return pa.nulls(batch.num_rows, arrow_schema().field(name).type)


def _row_group(batch: pa.RecordBatch, row0: int, names: list[str] | None = None) -> RowGroup:
    """A batch of canonical column types (of a validated file) as a :class:`RowGroup`."""
    codes = _codes(batch.column("kind"), KINDS)
    other = np.flatnonzero(codes != KIND_CODES["access"])
    values = {c: _filled(_column(batch, c)) for c in ("ts_ns", "cpu", "pid", "vaddr", "write")}
    if names is not None:
        batch = pa.RecordBatch.from_arrays([_column(batch, c) for c in names], names=names)
    return RowGroup(row0=row0, kind=codes, **values, other_index=other, others=_rows_at(batch, other))


def _rows_at(batch: pa.RecordBatch, index: np.ndarray) -> pa.RecordBatch:
    """The rows of ``batch`` at ``index`` (no rows: an empty slice, no take)."""
    return batch.take(pa.array(index)) if len(index) else batch.slice(0, 0)


def _filled(arr: pa.Array) -> np.ndarray:
    """A column of canonical type as numpy, nulls as 0 (False); without a copy when it has no
    nulls and is not bool."""
    if arr.null_count == len(arr):
        return np.zeros(len(arr), arr.type.to_pandas_dtype())
    if arr.null_count:
        arr = arr.fill_null(False if pa.types.is_boolean(arr.type) else 0)
    return arr.to_numpy(zero_copy_only=False)



@dataclass(slots=True)
class _Col:
    """One column of a batch as numpy: values (nulls filled with 0) and a validity mask."""

    values: np.ndarray
    valid: np.ndarray


def _type_accepted(dtype: pa.DataType, accept: list[str]) -> bool:
    # A column of nulls only (Arrow's null type) fits any column; rows that need it are then
    # reported by the non-null rule.
    if pa.types.is_null(dtype):
        return True
    for name in accept:
        if name == "dictionary<string>":
            if pa.types.is_dictionary(dtype) and (
                pa.types.is_string(dtype.value_type) or pa.types.is_large_string(dtype.value_type)
            ):
                return True
        elif name == "large_string":
            if pa.types.is_large_string(dtype):
                return True
        elif dtype == _CANONICAL_TYPES[name]:
            return True
    return False


def _type_name(dtype: pa.DataType) -> str:
    if pa.types.is_dictionary(dtype):
        return f"dictionary<{dtype.value_type}>"
    return str(dtype)


def _valid_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    if arr.null_count == len(arr):
        return np.zeros(len(arr), dtype=bool)
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _int_col(arr: pa.Array) -> _Col:
    """An integer column as int64 (uint64 stays uint64: only vaddr accepts it)."""
    if arr.null_count == len(arr):  # e.g. src_node in a group of accesses
        zeros = np.zeros(len(arr), np.uint64 if pa.types.is_uint64(arr.type) else np.int64)
        return _Col(zeros, np.zeros(len(arr), dtype=bool))
    valid = _valid_mask(arr)
    if arr.null_count:
        arr = arr.fill_null(0)
    values = arr.to_numpy(zero_copy_only=False)
    if values.dtype != np.uint64:
        values = values.astype(np.int64, copy=False)
    return _Col(values, valid)


def _codes_col(arr: pa.Array, words: tuple[str, ...]) -> _Col:
    """A string column as int8 codes into ``words``: -1 for null, -2 for any other word."""
    codes = _codes(arr, words)
    return _Col(codes, codes != -1)


def _codes(arr: pa.Array, words: tuple[str, ...]) -> np.ndarray:
    """The values of :func:`_codes_col`."""
    if pa.types.is_dictionary(arr.type):
        dictionary = arr.dictionary.to_pylist()
        if (arr.null_count == 0 and pa.types.is_int8(arr.type.index_type)
                and dictionary == list(words[: len(dictionary)])):
            return arr.indices.to_numpy(zero_copy_only=False)  # already the codes
        lookup = np.array([words.index(w) if w in words else -2 for w in dictionary] + [-1],
                          dtype=np.int8)
        idx = arr.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
        codes = lookup[idx]
    else:
        import pyarrow.compute as pc

        found = pc.index_in(arr, value_set=pa.array(words, type=arr.type))
        codes = found.fill_null(-2).to_numpy(zero_copy_only=False).astype(np.int8)
        codes[~_valid_mask(arr)] = -1
    return codes


def _numpy_col(arr: pa.Array, name: str) -> _Col:
    """Column ``name`` of a batch as numpy (codes for kind and mode)."""
    if pa.types.is_null(arr.type):
        return _Col(np.zeros(len(arr), dtype=np.int64), np.zeros(len(arr), dtype=bool))
    if name == "kind":
        return _codes_col(arr, KINDS)
    if name == "mode":
        return _codes_col(arr, ("sync", "async"))
    if _columns()[name]["type"] == "bool":
        return _Col(arr.fill_null(False).to_numpy(zero_copy_only=False), _valid_mask(arr))
    return _int_col(arr)


def _batch_cols(batch: pa.RecordBatch) -> dict[str, _Col]:
    """Every schema column of ``batch`` as numpy; absent columns are all null."""
    n = batch.num_rows
    return {name: _numpy_col(batch.column(name) if name in batch.schema.names else pa.nulls(n),
                             name)
            for name in _columns()}


def _kind_masks(kind: _Col) -> dict[str, np.ndarray]:
    return {k: kind.values == i for i, k in enumerate(KINDS)}


def _mask_where(masks: dict[str, np.ndarray], spec: dict[str, Any], state: str) -> np.ndarray:
    out = np.zeros(len(next(iter(masks.values()))), dtype=bool)
    for kind, s in spec["kinds"].items():
        if s == state:
            out |= masks[kind]
    return out


def _drop_ignored(cols: dict[str, _Col], masks: dict[str, np.ndarray]) -> None:
    """Null every value that the row's kind ignores (in place)."""
    for name, spec in _columns().items():
        ignored = _mask_where(masks, spec, "ignored")
        col = cols[name]
        if np.any(col.valid & ignored):
            col.valid = col.valid & ~ignored


def _arrow_col(col: _Col, name: str) -> pa.Array:
    """A numpy column back as its canonical Arrow array."""
    if name == "kind":
        indices = pa.array(col.values.astype(np.int8, copy=False), type=pa.int8())
        return pa.DictionaryArray.from_arrays(indices, pa.array(KINDS))
    if name == "mode":
        codes = pa.array(np.clip(col.values, 0, 1).astype(np.int8), mask=~col.valid)
        return pa.array(["sync", "async"]).take(codes)
    dtype = arrow_schema().field(name).type
    mask = None if col.valid.all() else ~col.valid
    return pa.array(col.values.astype(dtype.to_pandas_dtype(), copy=False), type=dtype, mask=mask)


def _to_arrow(cols: dict[str, _Col], names: Iterable[str]) -> pa.RecordBatch:
    schema = arrow_schema()
    names = list(names)
    return pa.RecordBatch.from_arrays([_arrow_col(cols[n], n) for n in names],
                                      schema=pa.schema([schema.field(n) for n in names]))


def _canonical(batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
    """``batch`` (of a validated file) cast to the canonical types, only ``names``.

    A column already of its canonical type passes through as it is unless it holds values its
    row's kind ignores (a file written by :func:`write` never does): converting through numpy
    costs more than reading the file.
    """
    import pyarrow.compute as pc

    schema = arrow_schema()
    kind = _numpy_col(batch.column("kind"), "kind")
    masks = _kind_masks(kind)
    arrays = []
    for name in names:
        dtype = schema.field(name).type
        ignored = _mask_where(masks, _columns()[name], "ignored")
        if name == "kind":
            arr = _arrow_col(kind, name)
        elif name not in batch.schema.names:
            arr = pa.nulls(batch.num_rows, dtype)
        elif batch.column(name).type == dtype:
            arr = batch.column(name)
            if (arr.null_count < len(arr) and ignored.any()
                    and np.any(_valid_mask(arr) & ignored)):
                arr = pc.if_else(pa.array(ignored), pa.scalar(None, dtype), arr)
        else:
            col = _numpy_col(batch.column(name), name)
            col.valid &= ~ignored
            arr = _arrow_col(col, name)
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([schema.field(n) for n in names]))


# ----------------------------------------------------------------------------- validation


def _first(mask: np.ndarray) -> int | None:
    i = int(np.argmax(mask)) if mask.size else 0
    return i if mask.size and mask[i] else None


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
        pos = np.searchsorted(self.ids, ids)
        found = pos < self.ids.size
        found[found] = self.ids[pos[found]] == ids[found]
        new_ids, first_idx, inverse = np.unique(ids[~found], return_index=True,
                                                return_inverse=True)
        new_first_row = rows[~found][first_idx]
        ref = np.empty_like(attrs)
        ref_first = np.empty_like(rows)
        prior = np.zeros(ids.size, dtype=np.int64)
        ref[found] = self.attrs[pos[found]]
        ref_first[found] = self.first_row[pos[found]]
        prior[found] = self.rows[pos[found]]
        ref[~found] = attrs[~found][first_idx][inverse]
        ref_first[~found] = new_first_row[inverse]
        # How many rows of the same request came earlier in this batch.
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        run = np.arange(ids.size) - np.repeat(starts, np.diff(np.r_[starts, ids.size]))
        earlier = np.empty_like(run)
        earlier[order] = run
        prior += earlier

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
                a = int(np.argmax(differs[i]))
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
        self._merge(pos, found, ids, attrs, rows, new_ids, first_idx)
        return clash

    @staticmethod
    def _show(column: str, value: Any) -> str:
        if column == "mode":
            return "async" if value == 1 else "sync"
        return str(int(value))

    def _merge(self, pos: np.ndarray, found: np.ndarray, ids: np.ndarray, attrs: np.ndarray,
               rows: np.ndarray, new_ids: np.ndarray, first_idx: np.ndarray) -> None:
        np.add.at(self.rows, pos[found], 1)
        if new_ids.size == 0:
            return
        new_counts = np.bincount(np.searchsorted(new_ids, ids[~found]), minlength=new_ids.size)
        all_ids = np.concatenate([self.ids, new_ids])
        order = np.argsort(all_ids, kind="stable")
        self.ids = all_ids[order]
        self.attrs = np.concatenate([self.attrs, attrs[~found][first_idx]])[order]
        self.first_row = np.concatenate([self.first_row, rows[~found][first_idx]])[order]
        self.rows = np.concatenate([self.rows, new_counts])[order]

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

    def error(self, message: str, *, column: str | None = None, row: int | None = None,
              rule: str) -> TraceFormatError:
        return TraceFormatError(message, path=self.path, column=column, row=row,
                                rule=rule_text(rule))

    def check(self, batch: pa.RecordBatch, rows: np.ndarray | None = None) -> dict[str, _Col]:
        """Validate one batch (rows continue from the previous one); return its columns.

        ``rows``, if given, are the file row numbers of the batch's rows (a selection of a row
        group whose other rows :meth:`check_group` checked); the row count is then the caller's.
        """
        offset = self.rows
        row_of = np.arange(offset, offset + batch.num_rows) if rows is None else rows
        cols = _batch_cols(batch)
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
        for name, spec in _columns().items():
            required = _mask_where(masks, spec, "required")
            flag(required & ~cols[name].valid, "non-null", name,
                 lambda i, name=name: f"{name} is null on a "
                                      f"{KINDS[kind.values[i]]} row, which requires it")
        _drop_ignored(cols, masks)

        ts = cols["ts_ns"]
        flag(ts.valid & (ts.values < 0), "ts-non-decreasing", "ts_ns",
             lambda i: f"ts_ns is negative: {ts.values[i]}")
        idx = np.flatnonzero(ts.valid)
        if idx.size:
            v = ts.values[idx]
            before = np.r_[v[0] if self.last_ts is None else self.last_ts, v[:-1]]
            j = _first(v < before)
            if j is not None:
                problems.append((int(idx[j]), "ts-non-decreasing", "ts_ns",
                                 f"ts_ns decreases from {before[j]} to {v[j]}"))
            if self.first_ts is None:
                self.first_ts = int(v[0])
            self.last_ts = int(v.max()) if self.last_ts is None else max(self.last_ts,
                                                                         int(v.max()))

        self._ranges(cols, flag)

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
        m = np.flatnonzero(migrate & req.valid)
        attrs = np.stack([  # in the order of _Requests.ATTRS
            (~vaddr.valid[m]).astype(np.int64), ts.values[m], cols["cpu"].values[m],
            cols["pid"].values[m], np.maximum(mode.values[m], 0), cols["dst_node"].values[m],
        ], axis=1).astype(np.int64)
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
        schema = arrow_schema()
        names = batch.schema.names
        for name in names:
            if name in _columns() and batch.schema.field(name).type != schema.field(name).type:
                return None
        kind = batch.column("kind")
        if not pa.types.is_string(kind.type.value_type):
            return None
        n = batch.num_rows
        codes = _codes(kind, KINDS)
        raw = {name: _column(batch, name) for name in ("ts_ns", "cpu", "pid", "vaddr", "write")}
        valid = {name: (_EMPTY_MASK if a.null_count == 0 else _valid_mask(a))
                 for name, a in raw.items()}
        values = {name: _filled(a) for name, a in raw.items()}
        last = -1 if self.last_ts is None else self.last_ts
        cpus = self.machine.cpus if self.machine else _PID_LIMIT
        v = {k: frozen(a) for k, a in values.items()}
        ok = {k: frozen(a) for k, a in valid.items()}
        bad = first_bad_row(frozen(codes), v["ts_ns"], ok["ts_ns"], v["cpu"], ok["cpu"], v["pid"],
                            ok["pid"], v["vaddr"], ok["vaddr"], ok["write"], last, cpus,
                            _VADDR_LIMIT)
        mode = _column(batch, "mode")
        if bad < 0 and mode.null_count < n:
            bad = -1 if _first(_codes(mode.drop_null(), ("sync", "async")) == -2) is None else 0
        offset = self.rows
        if bad >= 0:
            self.check(batch)  # names the broken rule
            raise AssertionError(f"{self.path}: row {offset + bad} breaks a rule check() passes")
        first_group = self.first_ts is None
        other = np.flatnonzero(codes != KIND_CODES["access"])
        others = _rows_at(batch, other)
        if len(other):
            self.check(others, rows=offset + other)  # migrate and map rows: every rule
        if first_group:
            self.first_ts = int(values["ts_ns"][0])
        self.last_ts = int(values["ts_ns"][-1])
        group = RowGroup(row0=offset, kind=codes, ts_ns=values["ts_ns"], cpu=values["cpu"],
                         pid=values["pid"], vaddr=values["vaddr"], write=values["write"],
                         other_index=other, others=_canonical(others, list(_columns())))
        if self.summarise:
            self._count_group(group)
        self.rows += n
        return group

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
        self.pids = np.union1d(self.pids, _distinct(pid.values[pid.valid]))
        cpu = cols["cpu"]
        self.cpus = np.union1d(self.cpus, _distinct(cpu.values[cpu.valid]))
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


# ----------------------------------------------------------------------------- reading


def _open(path: Path) -> pq.ParquetFile:
    where = str(path)
    if not path.exists():
        raise TraceFormatError("no such file", path=where, rule=rule_text("readable"))
    if not path.is_file():
        raise TraceFormatError("not a regular file (a directory?)", path=where,
                               rule=rule_text("readable"))
    size = path.stat().st_size
    if size == 0:
        raise TraceFormatError("the file is empty (0 bytes), not a Parquet file", path=where,
                               rule=rule_text("readable"))
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise TraceFormatError(f"not a readable Parquet file (truncated or another format?): {e}",
                               path=where, rule=rule_text("readable")) from e


def _metadata(path: Path, schema: pa.Schema) -> dict[str, str]:
    raw = schema.metadata or {}
    meta = {}
    for k, v in raw.items():
        try:
            meta[k.decode()] = v.decode()
        except UnicodeDecodeError as e:
            raise TraceFormatError(f"metadata key {k!r} is not UTF-8", path=str(path),
                                   rule=rule_text("readable")) from e
    return meta


def _machine(path: Path, meta: dict[str, str]) -> Machine | None:
    text = meta.get(_MACHINE_KEY)
    if text is None:
        return None
    try:
        return Machine.from_dict(json.loads(text))
    except (json.JSONDecodeError, ConfigError, TypeError, ValueError) as e:
        raise TraceFormatError(f"metadata {_MACHINE_KEY} is not a valid machine: {e}",
                               path=str(path), rule=rule_text("machine")) from e


def _check_schema_version(path: str, meta: dict[str, str]) -> None:
    version = meta.get(_SCHEMA_KEY, TRACE_SCHEMA)
    if version != TRACE_SCHEMA:
        raise TraceFormatError(
            f"metadata {_SCHEMA_KEY} is {version!r}; this tracereplay reads {TRACE_SCHEMA!r}",
            path=path, rule=rule_text("schema-version"))


def _check_columns(path: str, schema: pa.Schema) -> None:
    for name, spec in _columns().items():
        idx = schema.get_field_index(name)
        if idx < 0:
            needers = [k for k, s in spec["kinds"].items() if s == "required"]
            if needers:
                raise TraceFormatError(
                    f"column is missing; {', '.join(needers)} rows require it",
                    path=path, column=name, rule=rule_text("required-column"))
            continue
        dtype = schema.field(idx).type
        if not _type_accepted(dtype, spec["accept"]):
            raise TraceFormatError(
                f"type {_type_name(dtype)} is not accepted; expected {spec['type']} or one of "
                f"{', '.join(spec['accept'])}",
                path=path, column=name, rule=rule_text("column-type"))


def _all_null(pf: pq.ParquetFile, group: int, columns: list[str]) -> list[str]:
    """Columns (other than kind) that the row group's statistics say hold only nulls: they
    need no decoding (a group of accesses has four)."""
    md = pf.metadata.row_group(group)
    out = []
    for j in range(md.num_columns):
        chunk = md.column(j)
        name = chunk.path_in_schema
        stats = chunk.statistics
        if (name in columns and name != "kind" and stats is not None and stats.has_null_count
                and stats.null_count == md.num_rows):
            out.append(name)
    return out


def _group_end(pf: pq.ParquetFile, group: int) -> int:
    """The file offset just past the last column chunk of row group ``group``."""
    md = pf.metadata.row_group(group)
    end = 0
    for j in range(md.num_columns):
        c = md.column(j)
        start = c.data_page_offset
        if c.has_dictionary_page and c.dictionary_page_offset is not None:
            start = min(start, c.dictionary_page_offset)
        end = max(end, start + c.total_compressed_size)
    return end


def _read_groups(pf: pq.ParquetFile, path: Path, columns: list[str] | None,
                 *, hashing: _Hashing | None = None) -> Iterator[pa.RecordBatch]:
    schema = pf.schema_arrow
    names = list(schema.names) if columns is None else columns
    for group in range(pf.num_row_groups):
        try:
            nulls = _all_null(pf, group, names)
            read = [n for n in names if n not in nulls]
            for batch in pf.iter_batches(batch_size=_ROW_GROUP_ROWS, row_groups=[group],
                                         columns=read, use_threads=True):
                if nulls:
                    batch = pa.RecordBatch.from_arrays(
                        [batch.column(n) if n in read else pa.nulls(batch.num_rows, schema.field(n).type)
                         for n in names],
                        schema=pa.schema([schema.field(n) for n in names]))
                yield batch
            if hashing is not None:
                hashing.upto(_group_end(pf, group))
        except (OSError, pa.ArrowException) as e:
            raise TraceFormatError(f"row group {group} cannot be read (truncated or corrupt?): "
                                   f"{e}", path=str(path), rule=rule_text("readable")) from e
    if hashing is not None:
        hashing.upto(hashing.size)


def _read_batches(pf: pq.ParquetFile, path: Path, columns: list[str] | None,
                  *, hashing: _Hashing | None = None) -> Iterator[pa.RecordBatch]:
    """Row groups of ``pf``, decoded two ahead on a reader thread
    (Parquet decoding releases the GIL, so it overlaps the caller's work on the previous group)."""
    return ahead(_read_groups(pf, path, columns, hashing=hashing), depth=2,
                 name="tracereplay-reader")


class _Hashing:
    """SHA-256 of a memory-mapped file, advanced in file order as the read gets past each row
    group: the bytes are hashed while the decoding has them in memory (hashing releases the
    GIL, so it costs the reader thread, not the caller)."""

    def __init__(self, source: pa.MemoryMappedFile) -> None:
        self.source = source
        self.size = source.size()
        self.done = 0
        self.h = hashlib.sha256()

    def upto(self, end: int) -> None:
        end = min(end, self.size)
        while self.done < end:
            n = min(end - self.done, 16 << 20)
            self.h.update(memoryview(self.source.read_at(n, self.done)))
            self.done += n

    def hexdigest(self) -> str:
        self.upto(self.size)
        return self.h.hexdigest()


class TraceReader:
    """One read of a trace file: the footer parsed once, every row group decoded once (on a
    reader thread, ahead of the caller), validated, and the file's bytes hashed on the way.

    Open it, iterate :meth:`groups` (validated :class:`RowGroup` objects in file order), then
    read :attr:`sha256`, :meth:`summary` or :meth:`trace`. Raises :class:`TraceFormatError` at
    the first broken rule; the machine is the file's ``tracereplay.machine`` if it has one, else
    ``machine``, else :func:`default_machine`.
    """

    def __init__(self, path: str | os.PathLike[str], *, machine: Machine | None = None,
                 summarise: bool = True, hash_file: bool = True) -> None:
        self.path = Path(path)
        self.pf = _open(self.path)
        schema = self.pf.schema_arrow
        meta = _metadata(self.path, schema)
        _check_schema_version(str(self.path), meta)
        self.file_machine = _machine(self.path, meta)
        self.machine = self.file_machine or machine or default_machine()
        self.num_rows = int(self.pf.metadata.num_rows)
        if self.num_rows == 0:
            raise TraceFormatError("the file holds no rows", path=str(self.path),
                                   rule=rule_text("not-empty"))
        _check_columns(str(self.path), schema)
        self.columns = tuple(n for n in _columns() if schema.get_field_index(n) >= 0)
        st = self.path.stat()
        self._stat = (st.st_size, st.st_mtime_ns)
        self._hashing = _Hashing(self._source) if hash_file else None
        self._validator = _Validator(str(self.path), self.machine, summarise=summarise)
        self._read = False

    @functools.cached_property
    def _source(self) -> pa.MemoryMappedFile:
        return pa.memory_map(str(self.path))

    def groups(self) -> Iterator[RowGroup]:
        """Each row group, validated, as numpy columns (once: a second call raises)."""
        if self._read:
            raise RuntimeError(f"{self.path}: a TraceReader reads its file once")
        self._read = True
        validator = self._validator
        names = list(_columns())
        pf = pq.ParquetFile(self._source, metadata=self.pf.metadata) if self._hashing else self.pf
        for batch in _read_batches(pf, self.path, list(self.columns), hashing=self._hashing):
            row0 = validator.rows
            group = validator.check_group(batch)
            if group is None:  # columns of other types than the canonical ones
                validator.check(batch)
                group = _row_group(_canonical(batch, names), row0)
            yield group

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's bytes (hex), computed during the read."""
        if self._hashing is None:
            return file_sha256(self.path)
        return self._hashing.hexdigest()

    def summary(self) -> TraceSummary:
        return self._validator.summary()

    def trace(self) -> Trace:
        """The validated trace, once every group has been read."""
        v = self._validator
        return Trace(path=self.path, machine=self.machine,
                     machine_from_file=self.file_machine is not None,
                     summary=v.summary() if v.summarise else None, rows=v.rows,
                     columns=self.columns, stat=self._stat)


class Trace:
    """A validated trace file: its machine, its summary, and its rows as canonical batches."""

    def __init__(self, *, path: Path, machine: Machine, machine_from_file: bool,
                 summary: TraceSummary | None, rows: int, columns: tuple[str, ...],
                 stat: tuple[int, int]) -> None:
        self.path = path
        self.machine = machine
        self.machine_from_file = machine_from_file
        self.summary = summary  # None when loaded with summarise=False
        self._rows = rows
        self._file_columns = columns
        self._stat = stat

    @property
    def num_rows(self) -> int:
        return self._rows

    def __repr__(self) -> str:
        return f"Trace({str(self.path)!r}, rows={self.num_rows}, machine={self.machine})"

    def batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Row-group batches cast to :func:`arrow_schema` (only ``columns``, in that order)."""
        names = list(_columns()) if columns is None else list(columns)
        unknown = [c for c in names if c not in _columns()]
        if unknown:
            raise KeyError(f"trace v1 has no column(s) {unknown}")
        # Ignored values are nulled by kind, so kind is always read.
        read = [c for c in _columns() if c in self._file_columns and (c in names or c == "kind")]
        for batch in self._read(read):
            yield _canonical(batch, names)

    def _read(self, read: list[str]) -> Iterator[pa.RecordBatch]:
        st = self.path.stat()
        if (st.st_size, st.st_mtime_ns) != self._stat:
            raise TraceFormatError("the file changed since it was loaded; load it again",
                                   path=str(self.path), rule=rule_text("readable"))
        yield from _read_batches(_open(self.path), self.path, read)

    def sha256(self) -> str:
        """SHA-256 of the file's bytes (hex)."""
        return file_sha256(self.path)


def file_sha256(path: str | os.PathLike[str], stop: threading.Event | None = None) -> str:
    """SHA-256 of a file's bytes (hex); hashing releases the GIL, so it can run on a thread.
    With ``stop``, setting it ends the hashing early (the result is then meaningless)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            if stop is not None and stop.is_set():
                break
            h.update(block)
    return h.hexdigest()


def load(path: str | os.PathLike[str], *, machine: Machine | None = None,
         observe_rows: Callable[[RowGroup], None] | None = None,
         summarise: bool = True) -> Trace:
    """Open ``path`` and validate every rule of trace v1, streaming by row group.

    The machine is the file's ``tracereplay.machine`` if it has one, else ``machine``, else
    :func:`default_machine`. Raises :class:`TraceFormatError` at the first broken rule.
    ``observe_rows``, if given, receives each validated row group as a :class:`RowGroup` of
    numpy columns.
    (:class:`TraceReader` is the same read, for a consumer that drives it.)
    """
    reader = TraceReader(path, machine=machine, summarise=summarise, hash_file=False)
    for group in reader.groups():
        if observe_rows is not None:
            observe_rows(group)
    return reader.trace()


def file_machine(path: str | os.PathLike[str]) -> Machine | None:
    """The machine ``path`` describes in its metadata, or None (reads only the footer)."""
    path = Path(path)
    return _machine(path, _metadata(path, _open(path).schema_arrow))


def machine_of(path: str | os.PathLike[str], default: Machine | None = None) -> Machine:
    """The machine :func:`load` would use for ``path`` (reads only the file's footer)."""
    return file_machine(path) or default or default_machine()


def default_machine() -> Machine:
    """The machine assumed when neither the file nor the caller names one: the ``intel-2s``
    profile's 2 sockets x 16 CPUs, 4 KiB pages."""
    return Machine.spread(32, 2)


# ----------------------------------------------------------------------------- writing


def _as_batches(data: pa.Table | Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        yield from data.to_batches(max_chunksize=_ROW_GROUP_ROWS)
    elif isinstance(data, pa.RecordBatch):
        yield data
    else:
        yield from data


def write(data: pa.Table | Iterable[pa.RecordBatch], path: str | os.PathLike[str], *,
          machine: Machine | None, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``data`` as a canonical trace v1 file at ``path``.

    Every row is checked as :func:`load` would (with ``machine`` None the CPU and node ranges are
    not checked); rows must already be in non-decreasing ``ts_ns``. ``metadata`` adds key-value
    pairs (e.g. where an imported trace came from). The file is written under a temporary name
    in the same directory and renamed into place, so a failure leaves no file; an unusable
    ``path`` raises ``OutputPathError``. Same data, same bytes: nothing time-dependent goes in.
    """
    path = Path(path)
    schema = arrow_schema()
    meta = {**(metadata or {}), _SCHEMA_KEY: TRACE_SCHEMA}
    if machine is not None:
        meta[_MACHINE_KEY] = machine.to_json()
    schema = schema.with_metadata(meta)
    validator = _Validator(str(path), machine, summarise=False)
    with replacing(path, "trace") as tmp, pq.ParquetWriter(
        tmp, schema, compression="zstd", compression_level=3,
        use_dictionary=_DICTIONARY_COLUMNS, column_encoding=_COLUMN_ENCODING,
        sorting_columns=[pq.SortingColumn(0)], write_statistics=True,
    ) as writer:
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in _as_batches(data):
            if not pending and batch.num_rows == 0:
                continue
            _check_columns(str(path), batch.schema)
            cols = validator.check(batch)
            pending.append(_to_arrow(cols, schema.names))
            pending_rows += batch.num_rows
            # Row groups of exactly _ROW_GROUP_ROWS, whatever the input's batch sizes.
            while pending_rows >= _ROW_GROUP_ROWS:
                table = pa.Table.from_batches(pending, schema=schema).combine_chunks()
                writer.write_table(table.slice(0, _ROW_GROUP_ROWS))
                rest = table.slice(_ROW_GROUP_ROWS)
                pending = rest.to_batches()
                pending_rows = rest.num_rows
        if pending_rows:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
        if validator.rows == 0:
            raise TraceFormatError("no rows to write", path=str(path), rule=rule_text("not-empty"))
