"""Typed event tables (``schemas/events.v1.json``) and the run directories that hold them.

A run directory holds one sub-directory per policy, ``policy=<name>/``, with one Parquet file
per table and ``run.json``. A policy directory is written under a temporary name and renamed
into place when complete, so an interrupted run never leaves a directory that looks finished.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay._priority import run_in_background
from tracereplay._resources import load_schema
from tracereplay.errors import OutputExistsError

SCHEMA_VERSION = "events/1"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "float64": pa.float64(),
    "string": pa.string(),
}

_PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}
# Rows per row group of an event table: what a table holds in memory before it is written, per
# policy (256 K migration rows are about 30 MB), and still few enough groups to read fast.
_ROW_GROUP_ROWS = 1 << 18


def _writer_options(schema: pa.Schema) -> dict[str, Any]:
    """Dictionary-encode text only (numeric columns have too many distinct values to pay);
    delta-encode every 64-bit integer column. Within a call, ids, page numbers and times rise in
    small steps, so deltas pack into a few bits: the migrations of the 20 M pareto benchmark
    (8.1 M rows) write in 1.0 s instead of 1.8 s, read in 0.34 s instead of 1.8 s, and take
    0.7 MB instead of 79 MB. The 32-bit columns are CPUs, nodes, pids, counts and positions,
    a few distinct values repeated or short ramps: written plain, zstd packs them nearly as
    small in half the time delta packing takes (the 4.1 M migrations of the 100 M pmbench
    benchmark: 0.90 s of CPU instead of 1.12 s, 0.60 MB instead of 0.42 MB, read as fast)."""
    text = [f.name for f in schema if pa.types.is_string(f.type)]
    wide = [f.name for f in schema if pa.types.is_int64(f.type) or pa.types.is_uint64(f.type)]
    return {**_PARQUET_OPTIONS, "use_dictionary": text,
            "column_encoding": dict.fromkeys(wide, "DELTA_BINARY_PACKED")}


def table_names(*, include_optional: bool = False) -> list[str]:
    """Names of the event tables, in schema order."""
    tables = load_schema("events.v1")["tables"]
    return [n for n, t in tables.items() if include_optional or not t.get("optional", False)]


@functools.cache
def table_schema(name: str) -> pa.Schema:
    """The Arrow schema of event table ``name`` (built once; Arrow schemas are immutable)."""
    spec = load_schema("events.v1")["tables"][name]
    fields = [
        pa.field(
            c["name"],
            _ARROW_TYPES[c["type"]],
            nullable=c["nullable"],
            metadata={"unit": c["unit"] or "", "doc": c["doc"]},
        )
        for c in spec["columns"]
    ]
    return pa.schema(fields, metadata={"tracereplay.schema": SCHEMA_VERSION, "table": name})


def to_table(name: str, columns: Mapping[str, Any]) -> pa.Table:
    """Build event table ``name`` from a mapping of column name to array-like.

    Columns the mapping lacks are filled with nulls (they must be nullable); extra keys are an
    error, so a misspelt column cannot disappear silently.
    """
    schema = table_schema(name)
    extra = set(columns) - set(schema.names)
    if extra:
        raise KeyError(f"table '{name}' has no column(s) {sorted(extra)}")
    n = None
    for v in columns.values():
        n = len(v)
        break
    n = 0 if n is None else n
    arrays = []
    for field in schema:
        if field.name in columns:
            v = columns[field.name]
            typed = isinstance(v, pa.Array) and v.type == field.type
            arrays.append(v if typed else pa.array(v, type=field.type))
        else:
            if not field.nullable:
                raise KeyError(f"table '{name}' needs column '{field.name}'")
            arrays.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def empty_table(name: str) -> pa.Table:
    """An empty event table ``name`` with its schema."""
    return table_schema(name).empty_table()


class _Background:
    """One thread that encodes and writes row groups in the order they are handed over (Parquet
    encoding and compression release the GIL, so the replay goes on meanwhile), at a lower
    priority (:mod:`tracereplay._priority`). At most ``ahead`` row groups wait; an error is
    raised by the next call, or by ``wait``."""

    def __init__(self, ahead: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracereplay-writer",
                                        initializer=run_in_background)
        self._queued: deque[Future[None]] = deque()
        self._ahead = ahead
        # Tables of one run are written from two threads (a replay's caller and its lane).
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            while self._queued and (self._queued[0].done() or len(self._queued) >= self._ahead):
                self._queued.popleft().result()
            self._queued.append(self._pool.submit(fn))

    def wait(self) -> None:
        with self._lock:
            try:
                while self._queued:
                    self._queued.popleft().result()
            finally:
                for f in self._queued:
                    f.cancel()
                self._queued.clear()

    def shutdown(self) -> None:
        for f in self._queued:
            f.cancel()
        self._pool.shutdown(wait=True)


class TableWriter:
    """Incremental writer of one event table: rows are gathered into row groups of about
    ``row_group_rows`` rows (a quarter of a million unless asked), so many small appends still
    make a file that reads fast. With ``background``, row groups are written on its thread."""

    def __init__(
        self, path: Path, name: str, background: _Background | None = None,
        row_group_rows: int = _ROW_GROUP_ROWS,
    ) -> None:
        self._group_rows = row_group_rows
        self.name = name
        self.schema = table_schema(name)
        self.rows = 0
        self._closed = False
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._background = background
        self._writer = pq.ParquetWriter(str(path), self.schema, **_writer_options(self.schema))

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            # (a table built for this schema, as to_table builds it, needs no cast)
            same = table.schema.equals(self.schema, check_metadata=True)
            self._pending.append(table if same else table.cast(self.schema))
            self._pending_rows += table.num_rows
            self.rows += table.num_rows
            if self._pending_rows >= self._group_rows:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.concat_tables(self._pending)
            self._pending, self._pending_rows = [], 0
            if self._background is None:
                self._writer.write_table(table, row_group_size=self._group_rows)
            else:
                self._background.submit(
                    lambda: self._writer.write_table(table, row_group_size=self._group_rows))

    def abort(self) -> None:
        """Close the file without writing what is pending (it is about to be removed)."""
        self._pending = []
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                self._writer.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._flush()
                if self._background is not None:
                    self._background.wait()
            finally:
                self._writer.close()


class PolicyRunWriter:
    """Writes ``OUT/policy=<policy>/`` atomically.

    Use as a context manager: tables go to a hidden temporary directory beside the final one;
    leaving the block without an exception renames it into place (replacing an old one only when
    ``force`` is set), an exception removes it. Tables written in parts are gathered into
    row groups of about ``row_group_rows`` rows (a table written whole by ``replace`` is
    encoded in one go, in Parquet's default groups: smaller ones would only cost more).
    """

    def __init__(
        self, out_dir: str | os.PathLike[str], policy: str, *, force: bool = False,
        row_group_rows: int = _ROW_GROUP_ROWS,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.policy = policy
        self.final = self.out_dir / f"policy={policy}"
        self.force = force
        if self.final.exists() and not force:
            raise OutputExistsError(
                f"{self.final} already exists; use --force to replace it"
            )
        self.tmp = self.out_dir / f".policy={policy}.tmp-{uuid.uuid4().hex[:8]}"
        self._writers: dict[str, TableWriter] = {}
        self._background = _Background()
        self._group_rows = row_group_rows
        self.counts: dict[str, int] = {}

    def __enter__(self) -> PolicyRunWriter:
        self.tmp.mkdir(parents=True)
        return self

    def writer(self, name: str) -> TableWriter:
        """The incremental writer of table ``name`` (created on first use)."""
        if name not in self._writers:
            self._writers[name] = TableWriter(self.tmp / f"{name}.parquet", name, self._background,
                                              self._group_rows)
        return self._writers[name]

    def write(self, name: str, table: pa.Table | Iterable[pa.Table]) -> None:
        """Append ``table`` (or each of several tables) to event table ``name``."""
        w = self.writer(name)
        if isinstance(table, pa.Table):
            w.write(table)
        else:
            for t in table:
                w.write(t)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ok = exc_type is None
        try:
            if ok:
                for w in self._writers.values():
                    w.close()
                self.counts = {n: w.rows for n, w in self._writers.items()}
        except BaseException:
            ok = False
            raise
        finally:
            self._background.shutdown()
            if not ok:
                for w in self._writers.values():
                    w.abort()
                shutil.rmtree(self.tmp, ignore_errors=True)

    def close_tables(self) -> None:
        """Finish every table file (empty ones included), so they can be read before commit."""
        for w in self._writers.values():
            w.close()
        self.counts = {n: w.rows for n, w in self._writers.items()}
        for name in table_names():
            if name not in self._writers:
                schema = table_schema(name)
                pq.write_table(schema.empty_table(), self.tmp / f"{name}.parquet",
                               **_writer_options(schema))
                self.counts[name] = 0

    def replace(self, name: str, table: pa.Table) -> None:
        """Rewrite table ``name`` with ``table`` (a pass that completes a finished table, e.g.
        with facts only its last rows decide). The table's writer is finished first, so that
        nothing it holds is written over the new file later."""
        schema = table_schema(name)
        w = self.writer(name)
        w.close()
        pq.write_table(table.cast(schema), self.tmp / f"{name}.parquet", **_writer_options(schema))
        w.rows = table.num_rows
        self.counts[name] = table.num_rows

    def commit(self, manifest: Mapping[str, Any]) -> Path:
        """Write run.json and move the directory into place; returns the final path."""
        self.close_tables()
        body = dict(manifest)
        body.setdefault("schema", SCHEMA_VERSION)
        body.setdefault("policy", self.policy)
        body["tables"] = dict(sorted(self.counts.items()))
        (self.tmp / "run.json").write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        old = None
        if self.final.exists():
            old = self.out_dir / f".policy={self.policy}.old-{uuid.uuid4().hex[:8]}"
            self.final.rename(old)
        self.tmp.rename(self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final
