"""Trace format v1 as ``schemas/trace.v1.json`` defines it: kinds, columns, canonical types,
named rules; the summary of a trace and a row group as numpy columns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa

from tracereplay._resources import load_schema

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
_OFF_CPU_LIMIT = 1 << 62
OFF_CPU_COLUMNS = ("off_cpu_unmap_ns", "off_cpu_move_ns")
"""Optional columns of explicit-page migrate rows: the migrating task's measured time off its
CPU before the page's unmap, and before its move (copy and remap)."""

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
# LZ4 rather than zstd: a replay decodes every row, and the six columns it reads decode in 2.6 s
# per 100 M rows instead of 4.3 s (one core), for files 13% larger (docs/performance.md).
_COMPRESSION = "lz4"


def pmd_order(page_shift: int) -> int:
    """The order of a PMD-mapped folio: a page-table page holds 2^(page_shift - 3) entries of
    8 bytes (x86-64 and arm64: 512 for 4 KiB pages, HPAGE_PMD_ORDER = 9)."""
    return page_shift - 3


def optional_columns() -> tuple[str, ...]:
    """Columns that a written file carries only when its data has them (``order``), so that a
    file without folios is the same bytes as before the column existed."""
    return tuple(n for n, c in _columns().items() if c.get("optional_column"))


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


def arrow_schema(*, optional: bool = False) -> pa.Schema:
    """The canonical Arrow schema of trace v1 batches, with each column's unit and doc; the
    optional columns (``order``) only with ``optional``, as a file carries them only when its
    rows use them."""
    full = _full_schema()
    if optional:
        return full
    skip = optional_columns()
    return pa.schema([f for f in full if f.name not in skip])


@cache
def _full_schema() -> pa.Schema:
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


KIND_CODES = {k: i for i, k in enumerate(KINDS)}
_EMPTY_MASK = np.zeros(0, dtype=bool)


@dataclass(frozen=True, slots=True, kw_only=True)
class RowGroup:
    """One validated row group as numpy columns, for consumers that want arrays, not Arrow.

    ``ts_ns``, ``cpu``, ``pid``, ``vaddr`` and ``write`` cover every row and are never null on
    an ``access`` row; elsewhere a null reads as 0 (False). The rows of the other kinds are also
    in ``others``, a canonical batch (every column, as :meth:`Trace.batches` yields them), at
    the positions ``other_index`` of the group. A read numbers the pages (``page``, one id per
    access row, dense in order of first touch) and processes (``pid_index``, one per row).
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
    # Filled by the read (trace.pages.PageTable): each row's pid index, each access row's page.
    pid_index: np.ndarray | None = None  # int32
    page: np.ndarray | None = None  # int32

    @property
    def num_rows(self) -> int:
        return len(self.kind)
