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

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay._ahead import ahead
from tracereplay.errors import ConfigError, TraceFormatError
from tracereplay.machine import Machine
from tracereplay.trace.columns import _canonical, _row_group, _type_accepted, _type_name
from tracereplay.trace.pages import PageTable
from tracereplay.trace.schema import (
    _MACHINE_KEY,
    _ROW_GROUP_ROWS,
    _SCHEMA_KEY,
    TRACE_SCHEMA,
    RowGroup,
    TraceSummary,
    _columns,
    optional_columns,
    rule_text,
)
from tracereplay.trace.validate import _Validator


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
                  *, hashing: _Hashing | None = None) -> Generator[pa.RecordBatch, None, None]:
    """Row groups of ``pf``, decoded two ahead on a reader thread of lower priority
    (Parquet decoding releases the GIL, so it overlaps the caller's work on the previous group;
    the replay's lanes come first)."""
    return ahead(_read_groups(pf, path, columns, hashing=hashing), depth=2,
                 name="tracereplay-reader", background=True)


class _Hashing:
    """SHA-256 of a file, advanced in file order as the read gets past each row group: the
    bytes are hashed just after the decoding brought them into the page cache (reading them
    again is a copy, not I/O; hashing releases the GIL, so it costs the reader thread, not the
    caller). A plain read, not a memory map: mapped pages would count in the process's RSS."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.done = 0
        self.h = hashlib.sha256()
        self._buffer = bytearray(4 << 20)
        self._file: io.FileIO | None = None

    def upto(self, end: int) -> None:
        end = min(end, self.size)
        if self.done >= end:
            return
        if self._file is None:
            self._file = self.path.open("rb", buffering=0)
        view = memoryview(self._buffer)
        while self.done < end:
            n = self._file.readinto(view[: min(end - self.done, len(view))])
            if not n:
                raise OSError(f"{self.path}: the file ended at byte {self.done} while it was read")
            self.h.update(view[:n])
            self.done += n
        if self.done >= self.size:
            self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def hexdigest(self) -> str:
        self.upto(self.size)
        return self.h.hexdigest()


class TraceReader:
    """One read of a trace file: the footer parsed once, every row group decoded once (on a
    reader thread, ahead of the caller), validated, its pages numbered (:attr:`pages`, a
    :class:`~tracereplay.trace.pages.PageTable`), and the file's bytes hashed on the way.

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
        self._hashing = _Hashing(self.path) if hash_file else None
        self._validator = _Validator(str(self.path), self.machine, summarise=summarise)
        self.pages = PageTable(self.machine, path=str(self.path))
        self._read = False

    def groups(self) -> Iterator[RowGroup]:
        """Each row group, validated, as numpy columns with its pages numbered in :attr:`pages`
        (once: a second call raises)."""
        if self._read:
            raise RuntimeError(f"{self.path}: a TraceReader reads its file once")
        self._read = True
        batches = _read_batches(self.pf, self.path, list(self.columns), hashing=self._hashing)
        try:
            with contextlib.closing(batches):  # stops the reader thread before the hashing ends
                yield from self._validated(batches)
        finally:
            if self._hashing is not None:
                self._hashing.close()

    def _validated(self, batches: Iterator[pa.RecordBatch]) -> Iterator[RowGroup]:
        validator = self._validator
        names = list(_columns())
        for batch in batches:
            row0 = validator.rows
            group = validator.check_group(batch)
            if group is None:  # columns of other types than the canonical ones
                validator.check(batch)
                group = _row_group(_canonical(batch, names), row0)
            pid_index, page = self.pages.add(group)
            yield dataclasses.replace(group, pid_index=pid_index, page=page)

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
        # The optional columns (order) only when the file has them.
        names = [c for c in _columns() if c in self._file_columns or c not in optional_columns()
                 ] if columns is None else list(columns)
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


def default_machine() -> Machine:
    """The machine assumed when neither the file nor the caller names one: the ``intel-2s``
    profile's 2 sockets x 16 CPUs, 4 KiB pages."""
    return Machine.spread(32, 2)
