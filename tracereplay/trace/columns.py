"""Columns between Arrow and numpy: canonical casts, null masks, kind codes, the numpy view of a
row group."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
    dtype = arrow_schema(optional=True).field(name).type
    mask = None if col.valid.all() else ~col.valid
    return pa.array(col.values.astype(dtype.to_pandas_dtype(), copy=False), type=dtype, mask=mask)


def _to_arrow(cols: dict[str, _Col], names: Iterable[str]) -> pa.RecordBatch:
    schema = arrow_schema(optional=True)
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

    schema = arrow_schema(optional=True)
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
