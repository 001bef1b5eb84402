"""Writing trace v1 files (``schemas/trace.v1.json``) from imported data, through
:func:`tracereplay.trace.write`: every row is checked as ``tracereplay validate`` would, the file
is written under a temporary name and renamed into place when complete, so an interrupted import
never leaves a file that looks finished (nor the temporary one).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator

import pyarrow as pa

from tracereplay import trace
from tracereplay.machine import Machine
from tracereplay.trace.schema import optional_columns


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with every trace column, in order and type; missing ones are null."""
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def write_trace(data: pa.Table | Iterable[pa.Table], path: str | os.PathLike[str],
                extra: dict[str, str] | None = None, machine: Machine | None = None) -> None:
    """Write imported rows (one table, or tables in time order) as a trace v1 file (carrying
    ``machine`` when known); an optional column (``mappings``) is written when the first
    table has it."""
    tables = iter([data] if isinstance(data, pa.Table) else data)
    first = next(tables, None)
    have = set() if first is None else set(first.column_names)
    skip = set(optional_columns()) - have
    schema = pa.schema([f for f in trace.arrow_schema(optional=True) if f.name not in skip])
    tables = itertools.chain([] if first is None else [first], tables)

    def batches() -> Iterator[pa.RecordBatch]:
        for t in tables:
            yield from _conform(t, schema).to_batches()

    trace.write(batches(), path, machine=machine, metadata=extra)
