"""Writing trace v1 files (``schemas/trace.v1.json``) from imported data.

Files are written under a temporary name beside the target and renamed into place when
complete, so an interrupted import never leaves a file that looks finished (nor the temporary
one).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay._output import replacing
from tracereplay._resources import load_schema

TRACE_SCHEMA = "trace/1"
_TYPES = {
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


def trace_schema(extra: dict[str, str] | None = None) -> pa.Schema:
    spec = load_schema("trace.v1")
    fields = [pa.field(c["name"], _TYPES[c["type"]]) for c in spec["columns"]]
    meta = {"tracereplay.schema": TRACE_SCHEMA, **(extra or {})}
    return pa.schema(fields, metadata=meta)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with every trace column, in order and type; missing ones are null."""
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


class TraceWriter:
    """Streams row groups into a trace v1 file; use as a context manager.

    Entering raises ``OutputPathError`` when ``path`` cannot be a file (a directory, a missing
    parent directory); a write the system refuses raises it too.
    """

    def __init__(self, path: str | os.PathLike[str], extra: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.schema = trace_schema(extra)
        self.rows = 0
        self._w: pq.ParquetWriter | None = None
        self._stack = ExitStack()

    def __enter__(self) -> TraceWriter:
        with ExitStack() as stack:
            tmp = stack.enter_context(replacing(self.path, "trace"))
            self._w = pq.ParquetWriter(str(tmp), self.schema, compression="zstd")
            stack.callback(self._w.close)
            self._stack = stack.pop_all()
        return self

    def write(self, table: pa.Table) -> None:
        assert self._w is not None
        if table.num_rows:
            self._w.write_table(conform(table, self.schema))
            self.rows += table.num_rows

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close the file, then move it into place (or remove it after an error)
        self._stack.__exit__(exc_type, exc, tb)


def write_trace(
    table: pa.Table, path: str | os.PathLike[str], extra: dict[str, str] | None = None
) -> None:
    """Write a whole trace v1 table atomically."""
    with TraceWriter(path, extra) as w:
        w.write(table)
