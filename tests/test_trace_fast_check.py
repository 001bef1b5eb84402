"""The compiled row checks (files of canonical column types) report exactly what the vectorised
checks report: same rule, column, row and message, or no error, on every file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import valid_columns
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tracereplay import TraceFormatError, trace
from tracereplay.trace import read
from tracereplay.trace.validate import _Validator

# Values that break, or nearly break, a rule of each column.
EDGES: dict[str, list[object]] = {
    "ts_ns": [None, -1, 0, 5, 25, 30, 10**12],
    "kind": [None, "access", "migrate", "map", "munmap"],
    "cpu": [None, -1, 0, 3, 31, 32],
    "pid": [None, -1, 0, 7, 8, 2**31 - 1],
    "vaddr": [None, 0, 0x1000, 0x5000, (1 << 57) - 1, 1 << 57],
    "write": [None, True, False],
    "src_node": [None, -1, 0, 1, 2],
    "dst_node": [None, -1, 0, 1, 2],
    "req_id": [None, 0, 1, 2],
    "mode": [None, "sync", "async", "lazy"],
}


def canonical_file(path: Path, columns: dict[str, list], row_group_size: int) -> Path:
    """Write ``columns`` with the canonical types, unchecked, in row groups of the given size."""
    schema = trace.arrow_schema()
    arrays = []
    for field in schema:
        if field.name == "kind":
            words = [*trace.KINDS, "munmap"]
            idx = [None if k is None else words.index(k) for k in columns["kind"]]
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(idx, pa.int8()), pa.array(words)))
        else:
            arrays.append(pa.array(columns[field.name], field.type))
    loose = pa.schema([f.with_nullable(True) for f in schema])
    pq.write_table(pa.table(arrays, schema=loose), path, row_group_size=row_group_size)
    return path


def outcome(path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(_Validator, "check_group", lambda self, batch: None)
        try:
            t = trace.load(path)
        except TraceFormatError as e:
            return ("error", e.rule, e.column, e.row, str(e))
        assert t.summary is not None
        return ("ok", tuple(sorted(t.summary.to_dict().items())))


def test_the_fast_path_runs_on_canonical_files(tmp_path: Path) -> None:
    path = canonical_file(tmp_path / "t.parquet", valid_columns(), 4)
    groups = []
    original = _Validator.check_group

    def spy(self: _Validator, batch: pa.RecordBatch) -> trace.RowGroup | None:
        group = original(self, batch)
        groups.append(group)
        return group

    pytest.MonkeyPatch().setattr(_Validator, "check_group", spy)
    try:
        trace.load(path)
    finally:
        pytest.MonkeyPatch().undo()
        _Validator.check_group = original  # type: ignore[method-assign]
    assert len(groups) == 2 and all(g is not None for g in groups)
    assert [g.row0 for g in groups] == [0, 4]
    assert list(groups[0].other_index) == [2, 3] and list(groups[1].other_index) == [0, 1]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 11), st.sampled_from(sorted(EDGES)), st.data()),
                      max_size=3),
       row_group_size=st.sampled_from([1, 2, 5, 12]))
def test_fast_and_vectorised_checks_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          edits: list, row_group_size: int) -> None:
    # Two copies of the valid trace, the second 100 ns later with its own requests.
    base = valid_columns()
    cols = {k: v + v for k, v in base.items()}
    cols["ts_ns"] = base["ts_ns"] + [t + 100 for t in base["ts_ns"]]
    cols["req_id"] = base["req_id"] + [None if r is None else r + 2 for r in base["req_id"]]
    for row, name, data in edits:
        cols[name][row] = data.draw(st.sampled_from(EDGES[name]))
    path = canonical_file(tmp_path / "t.parquet", cols, row_group_size)
    fast = outcome(path, True, monkeypatch)
    event(f"{fast[0]} {fast[1] if fast[0] == 'error' else ''}")
    assert fast == outcome(path, False, monkeypatch)


def test_all_null_columns_are_not_decoded_but_read_as_nulls(tmp_path: Path) -> None:
    cols = valid_columns()
    path = canonical_file(tmp_path / "t.parquet", cols, 2)  # group 0: two accesses
    pf = pq.ParquetFile(path)
    assert read._all_null(pf, 0, list(cols)) == ["src_node", "dst_node", "req_id", "mode"]
    batches = list(read._read_groups(pf, path, list(cols)))
    assert pa.Table.from_batches(batches).equals(pq.read_table(path))
    assert np.array_equal(trace.load(path).summary.to_dict()["accesses"], 2)  # type: ignore[union-attr]
