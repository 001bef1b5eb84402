"""Writing canonical trace v1 files."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay._output import replacing
from tracereplay.errors import TraceFormatError
from tracereplay.machine import Machine
from tracereplay.trace.columns import _row_group, _to_arrow
from tracereplay.trace.layout import RowGroups
from tracereplay.trace.pages import PageTable
from tracereplay.trace.read import _check_columns
from tracereplay.trace.schema import (
    _COLUMN_ENCODING,
    _COMPRESSION,
    _DICTIONARY_COLUMNS,
    _MACHINE_KEY,
    _ROW_GROUP_ROWS,
    _SCHEMA_KEY,
    KINDS,
    TRACE_SCHEMA,
    arrow_schema,
    optional_columns,
    rule_text,
)
from tracereplay.trace.validate import _Validator


def _as_batches(data: pa.Table | Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        yield from data.to_batches(max_chunksize=_ROW_GROUP_ROWS)
    elif isinstance(data, pa.RecordBatch):
        yield data
    else:
        yield from data


def write(data: pa.Table | Iterable[pa.RecordBatch], path: str | os.PathLike[str], *,
          machine: Machine | None, metadata: Mapping[str, str] | None = None,
          row_group_rows: int = _ROW_GROUP_ROWS) -> None:
    """Write ``data`` as a canonical trace v1 file at ``path``.

    Every row is checked as :func:`load` would (with ``machine`` None the CPU and node ranges,
    and the placement of pages by map rows, are not checked); rows must already be in non-decreasing ``ts_ns``. ``metadata`` adds key-value
    pairs (e.g. where an imported trace came from). The file is written under a temporary name
    in the same directory and renamed into place, so a failure leaves no file; an unusable
    ``path`` raises ``OutputPathError``. Same data, same bytes: nothing time-dependent goes in.
    Row groups hold at most ``row_group_rows`` rows, a long run of access rows in groups of its
    own (``tracereplay.trace.layout``).
    """
    path = Path(path)
    batches = _as_batches(data)
    first = next(batches, None)
    # An optional column (order) is written only when the data has it.
    absent = {n for n in optional_columns() if first is None or n not in first.schema.names}
    schema = pa.schema([f for f in arrow_schema(optional=True) if f.name not in absent])
    meta = {**(metadata or {}), _SCHEMA_KEY: TRACE_SCHEMA}
    if machine is not None:
        meta[_MACHINE_KEY] = machine.to_json()
    schema = schema.with_metadata(meta)
    validator = _Validator(str(path), machine, summarise=False)
    pages = PageTable(machine, path=str(path)) if machine is not None else None
    with replacing(path, "trace") as tmp, pq.ParquetWriter(
        tmp, schema, compression=_COMPRESSION,
        use_dictionary=_DICTIONARY_COLUMNS, column_encoding=_COLUMN_ENCODING,
        sorting_columns=[pq.SortingColumn(0)], write_statistics=True,
    ) as writer:
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        groups = RowGroups(row_group_rows)
        for batch in itertools.chain([] if first is None else [first], batches):
            if not pending and batch.num_rows == 0:
                continue
            _check_columns(str(path), batch.schema)
            row0 = validator.rows
            cols = validator.check(batch)
            canonical = _to_arrow(cols, schema.names)
            if pages is not None:
                pages.add(_row_group(canonical, row0))
            pending.append(canonical)
            pending_rows += batch.num_rows
            # Row groups by the layout's rule, whatever the input's batch sizes; rows wait
            # until twice a group's worth so that each cut writes about a group or more.
            if pending_rows >= 2 * row_group_rows:
                pending, pending_rows = _write_groups(writer, groups, pending, schema, final=False)
        if pending_rows:
            _write_groups(writer, groups, pending, schema, final=True)
        if validator.rows == 0:
            raise TraceFormatError("no rows to write", path=str(path), rule=rule_text("not-empty"))


def _write_groups(writer: pq.ParquetWriter, groups: RowGroups, pending: list[pa.RecordBatch],
                  schema: pa.Schema, *, final: bool) -> tuple[list[pa.RecordBatch], int]:
    """Write the row groups that ``pending`` fills; returns the rows left waiting."""
    table = pa.Table.from_batches(pending, schema=schema).combine_chunks()
    kind = table.column("kind").combine_chunks()
    is_access = kind.indices.to_numpy(zero_copy_only=False) == KINDS.index("access")
    start = 0
    for size in groups.cut(is_access, final=final):
        writer.write_table(table.slice(start, size))
        start += size
    rest = table.slice(start)
    return rest.to_batches(), rest.num_rows
