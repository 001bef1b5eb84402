"""Columns between Arrow and numpy: canonical casts, null masks, kind codes, the numpy view of a
row group."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from tracereplay.trace.schema import (
    _CANONICAL_TYPES,
    KIND_CODES,
    KINDS,
    RowGroup,
    _columns,
    arrow_schema,
)


def _by_name(batch: pa.RecordBatch) -> dict[str, pa.Array]:
    """The schema columns of ``batch`` by name (``batch.column(name)`` for each costs more than
    all of them at once); a schema column the batch holds twice raises as ``batch.column``
    does."""
    names = batch.schema.names
    if len(set(names)) < len(names):
        return {n: batch.column(n) for n in _columns() if n in names}
    return dict(zip(names, batch.columns, strict=True))


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    """Column ``name`` of ``batch``, or all nulls of its canonical type when the batch lacks it."""
    if name in batch.schema.names:
        return batch.column(name)
    return pa.nulls(batch.num_rows, arrow_schema(optional=True).field(name).type)


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


# Up to this many rows a string column is coded word by word in Python rather than by Arrow's
# compute functions, whose fixed cost per call is that of several dozen rows.
_FEW_ROWS = 64


def _codes(arr: pa.Array, words: tuple[str, ...]) -> np.ndarray:
    """The values of :func:`_codes_col`."""
    if pa.types.is_dictionary(arr.type):
        dictionary = arr.dictionary.to_pylist()
        if (arr.null_count == 0 and pa.types.is_int8(arr.type.index_type)
                and dictionary == list(words[: len(dictionary)])):
            return arr.indices.to_numpy(zero_copy_only=False)  # already the codes
        lookup = np.array([words.index(w) if w in words else -2 for w in dictionary] + [-1],
                          dtype=np.int8)
        idx = arr.indices
        if arr.null_count:
            idx = idx.fill_null(len(dictionary))
        idx = idx.to_numpy(zero_copy_only=False)
        codes = lookup[idx]
    elif len(arr) <= _FEW_ROWS:  # a compute call costs more than a word at a time
        index = {w: i for i, w in enumerate(words)}
        codes = np.array([-1 if w is None else index.get(w, -2) for w in arr.to_pylist()],
                         dtype=np.int8)
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
        if arr.null_count == len(arr):
            return _Col(np.zeros(len(arr), dtype=bool), np.zeros(len(arr), dtype=bool))
        valid = _valid_mask(arr)
        if arr.null_count:
            arr = arr.fill_null(False)
        return _Col(arr.to_numpy(zero_copy_only=False), valid)
    return _int_col(arr)


def _batch_cols(batch: pa.RecordBatch,
                arrays: dict[str, pa.Array] | None = None) -> dict[str, _Col]:
    """Every schema column of ``batch`` as numpy; absent columns are all null. ``arrays``: the
    batch's :func:`_by_name`, when the caller has it."""
    n = batch.num_rows
    if arrays is None:
        arrays = _by_name(batch)
    return {name: _numpy_col(arrays[name], name) if name in arrays
            else _Col(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))
            for name in _columns()}


def _kind_masks(kind: _Col) -> dict[str, np.ndarray]:
    return {k: kind.values == i for i, k in enumerate(KINDS)}


def _mask_where(masks: dict[str, np.ndarray], spec: dict[str, Any], state: str) -> np.ndarray:
    out = np.zeros(len(next(iter(masks.values()))), dtype=bool)
    for kind, s in spec["kinds"].items():
        if s == state:
            out |= masks[kind]
    return out


@cache
def _state_table(state: str) -> np.ndarray:
    """Which kinds give each column ``state`` ("required", "ignored", ...): one row per column
    of the schema, one entry per kind code + 2 (codes -2 and -1, an unknown word and a null
    kind, are in no state)."""
    table = np.zeros((len(_columns()), len(KINDS) + 2), dtype=bool)
    for c, spec in enumerate(_columns().values()):
        for kind, s in spec["kinds"].items():
            table[c, KIND_CODES[kind] + 2] = s == state
    table.flags.writeable = False
    return table


def _states(codes: np.ndarray, state: str) -> np.ndarray:
    """Rows where each column has ``state`` by its row's kind, one row per schema column (row
    ``c`` of the result is :func:`_mask_where` of column ``c``)."""
    return _state_table(state).take(codes.astype(np.intp) + 2, axis=1)


def _drop_ignored(cols: dict[str, _Col], ignored: np.ndarray) -> None:
    """Null every value that the row's kind ignores (in place); ``ignored`` as :func:`_states`
    gives it."""
    names = list(_columns())
    valid = np.array([cols[name].valid for name in names])
    for c in (valid & ignored).any(axis=1).nonzero()[0]:
        col = cols[names[c]]
        col.valid = col.valid & ~ignored[c]


@cache
def _kind_words() -> pa.Array:
    return pa.array(KINDS)


@cache
def _schema_of(names: tuple[str, ...]) -> pa.Schema:
    """The canonical schema of the columns ``names``, in that order."""
    schema = arrow_schema(optional=True)
    return pa.schema([schema.field(n) for n in names])


def _nulls(n: int, dtype: pa.DataType) -> pa.Array:
    """``pa.nulls(n, dtype)``; the same array again for a few rows (arrays are immutable)."""
    return _few_nulls(n, dtype) if n <= _FEW_ROWS else pa.nulls(n, dtype)


@lru_cache(maxsize=256)
def _few_nulls(n: int, dtype: pa.DataType) -> pa.Array:
    return pa.nulls(n, dtype)


@cache
def _fields_of(names: tuple[str, ...]) -> list[tuple[int, str, pa.DataType]]:
    """(position among the schema columns, name, canonical type) of each of ``names``."""
    index = {name: c for c, name in enumerate(_columns())}
    return [(index[f.name], f.name, f.type) for f in _schema_of(names)]


def _arrow_col(col: _Col, name: str) -> pa.Array:
    """A numpy column back as its canonical Arrow array."""
    if name == "kind":
        indices = pa.array(col.values.astype(np.int8, copy=False), type=pa.int8())
        return pa.DictionaryArray.from_arrays(indices, _kind_words())
    if name == "mode":
        codes = pa.array(np.clip(col.values, 0, 1).astype(np.int8), mask=~col.valid)
        return pa.array(["sync", "async"]).take(codes)
    dtype = arrow_schema(optional=True).field(name).type
    mask = None if col.valid.all() else ~col.valid
    return pa.array(col.values.astype(dtype.to_pandas_dtype(), copy=False), type=dtype, mask=mask)


def _to_arrow(cols: dict[str, _Col], names: Iterable[str]) -> pa.RecordBatch:
    schema = arrow_schema(optional=True)
    names = list(names)
    return pa.RecordBatch.from_arrays([_arrow_col(cols[n], n) for n in names],
                                      schema=pa.schema([schema.field(n) for n in names]))


def _canonical(batch: pa.RecordBatch, names: list[str], *,
               arrays: dict[str, pa.Array] | None = None,
               kind: _Col | None = None) -> pa.RecordBatch:
    """``batch`` (of a validated file) cast to the canonical types, only ``names``.

    A column already of its canonical type passes through as it is unless it holds values its
    row's kind ignores (a file written by :func:`write` never does): converting through numpy
    costs more than reading the file. ``arrays`` and ``kind``: the batch's :func:`_by_name` and
    kind column as numpy, when the caller has them.
    """
    import pyarrow.compute as pc

    key = tuple(names)
    given = _by_name(batch) if arrays is None else arrays
    if kind is None:
        kind = _numpy_col(given["kind"], "kind")
    ignored = _states(kind.values, "ignored")
    ignores = np.asarray(ignored.any(axis=1))
    out = []
    for c, name, dtype in _fields_of(key):
        if name == "kind":
            arr = given["kind"]
            if not (arr.type == dtype and arr.null_count == 0
                    and arr.dictionary.equals(_kind_words())):  # else not the canonical codes
                arr = _arrow_col(kind, name)
        elif name not in given:
            arr = _nulls(batch.num_rows, dtype)
        elif given[name].type == dtype:
            arr = given[name]
            if (arr.null_count < len(arr) and ignores[c]
                    and (_valid_mask(arr) & ignored[c]).any()):
                arr = pc.if_else(pa.array(ignored[c]), pa.scalar(None, dtype), arr)
        else:
            col = _numpy_col(given[name], name)
            col.valid &= ~ignored[c]
            arr = _arrow_col(col, name)
        out.append(arr)
    return pa.RecordBatch.from_arrays(out, schema=_schema_of(key))
