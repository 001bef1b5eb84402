"""trace.write then trace.load gives back the rows; write refuses bad rows and leaves no file."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import valid_columns
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracereplay import Machine, TraceFormatError, trace
from tracereplay.trace.layout import RowGroups

MACHINE = Machine.spread(4, 2)
COLUMNS = [f.name for f in trace.arrow_schema()]

cpus = st.integers(0, MACHINE.cpus - 1)
nodes = st.integers(0, MACHINE.nodes - 1)
pids = st.integers(0, 2**31 - 1)
vaddrs = st.integers(0, 2**57 - 1)
modes = st.sampled_from([None, "sync", "async"])


def row(**values: object) -> dict:
    return {name: values.get(name) for name in COLUMNS}


@st.composite
def calls(draw: st.DrawFn, req_id: int) -> list[dict]:
    """The rows of one event: an access, a map, a whole-node or an explicit-page migrate."""
    what = draw(st.sampled_from(["access", "map", "whole", "pages"]))
    cpu, pid = draw(cpus), draw(pids)
    if what == "access":
        return [row(kind="access", cpu=cpu, pid=pid, vaddr=draw(vaddrs), write=draw(st.booleans()))]
    if what == "map":
        return [row(kind="map", cpu=draw(st.none() | cpus), pid=pid, vaddr=draw(vaddrs),
                    dst_node=draw(nodes))]
    common = {"kind": "migrate", "cpu": cpu, "pid": pid, "dst_node": draw(nodes),
              "req_id": req_id, "mode": draw(modes)}
    if what == "whole":
        return [row(src_node=draw(nodes), **common)]
    return [row(vaddr=v, **common) for v in draw(st.lists(vaddrs, min_size=1, max_size=3))]


def placed_once(rows: list[dict]) -> list[dict]:
    """``rows`` without the map rows of pages an earlier access touched (rule map-before-access)."""
    touched: set[tuple[int, int]] = set()
    kept = []
    for r in rows:
        page = (r["pid"], r["vaddr"] >> 12) if r["vaddr"] is not None else None
        if r["kind"] == "access":
            touched.add(page)  # type: ignore[arg-type]
        elif r["kind"] == "map" and page in touched:
            continue
        kept.append(r)
    return kept


@st.composite
def traces(draw: st.DrawFn) -> pa.Table:
    rows: list[dict] = []
    ts = 0
    for req_id in range(draw(st.integers(1, 25))):
        ts += draw(st.integers(0, 10**6))
        for r in draw(calls(req_id)):
            r["ts_ns"] = ts
            rows.append(r)
    return pa.Table.from_pylist(placed_once(rows))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=traces())
def test_written_rows_load_back_unchanged(table: pa.Table, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    trace.write(table, path, machine=MACHINE)
    t = trace.load(path)
    assert t.machine == MACHINE and t.machine_from_file
    assert t.num_rows == table.num_rows
    back = pa.Table.from_batches(list(t.batches()))
    assert back.schema.equals(trace.arrow_schema())
    for name in COLUMNS:
        assert back.column(name).to_pylist() == table.column(name).to_pylist(), name


@settings(max_examples=40, deadline=None)
@given(table=traces(), narrow=st.booleans())
def test_summary_counts_what_the_rows_hold(table: pa.Table, narrow: bool, tmp_path_factory:
                                           pytest.TempPathFactory) -> None:
    rows = table.to_pylist()
    if narrow:  # a few pages close together, as real working sets are
        for r in rows:
            if r["vaddr"] is not None:
                r["vaddr"] %= 1 << 20
        rows = placed_once(rows)
        table = pa.Table.from_pylist(rows, schema=table.schema)
    path = tmp_path_factory.mktemp("t") / "t.parquet"
    trace.write(table, path, machine=MACHINE)
    s = trace.load(path).summary
    assert s.rows == len(rows)
    assert s.accesses == sum(r["kind"] == "access" for r in rows)
    assert s.writes == sum(r["kind"] == "access" and r["write"] for r in rows)
    assert s.pages == len({(r["pid"], r["vaddr"] >> 12) for r in rows if r["vaddr"] is not None})
    assert s.pids == len({r["pid"] for r in rows})
    assert s.cpus == len({r["cpu"] for r in rows if r["cpu"] is not None})
    assert s.migrate_calls == len({r["req_id"] for r in rows if r["kind"] == "migrate"})
    assert s.ts_first_ns == rows[0]["ts_ns"] and s.ts_last_ns == rows[-1]["ts_ns"]


def test_batches_can_select_columns_in_any_order(tiny_trace: Path) -> None:
    (batch,) = trace.load(tiny_trace).batches(["vaddr", "ts_ns"])
    assert batch.schema.names == ["vaddr", "ts_ns"]
    assert batch.column("ts_ns").to_pylist()[:2] == [0, 100]


def test_batches_refuse_a_file_changed_since_load(tmp_path: Path, tiny_trace: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(tiny_trace.read_bytes())
    t = trace.load(path)
    path.write_bytes(tiny_trace.read_bytes() + b"\0")
    with pytest.raises(TraceFormatError, match="changed since it was loaded"):
        next(t.batches())


def test_kind_indices_follow_the_schema_order(tiny_trace: Path) -> None:
    (batch,) = trace.load(tiny_trace).batches(["kind"])
    kind = batch.column("kind")
    assert kind.dictionary.to_pylist() == list(trace.KINDS) == ["access", "migrate", "map"]
    assert kind.indices.to_pylist()[5:8] == [0, 1, 1]


def test_write_refuses_decreasing_timestamps_and_leaves_no_file(tmp_path: Path) -> None:
    cols = valid_columns()
    cols["ts_ns"][3] = 5
    path = tmp_path / "t.parquet"
    with pytest.raises(TraceFormatError, match="decreases") as info:
        trace.write(pa.table(cols), path, machine=None)
    assert (info.value.rule, info.value.row) == ("ts-non-decreasing", 3)
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_no_rows(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError) as info:
        trace.write([], tmp_path / "t.parquet", machine=None)
    assert info.value.rule == "not-empty"
    assert list(tmp_path.iterdir()) == []


def test_write_checks_cpus_against_the_machine(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError) as info:
        trace.write(pa.table(valid_columns()), tmp_path / "t.parquet", machine=Machine.spread(2, 2))
    assert (info.value.rule, info.value.row) == ("cpu-in-machine", 3)


def test_same_rows_in_other_batches_give_the_same_bytes(tmp_path: Path) -> None:
    copies = []
    for k in range(3):  # the valid rows three times, later in time, with their own req_ids
        cols = valid_columns()
        cols["ts_ns"] = [t + 100 * k for t in cols["ts_ns"]]
        cols["req_id"] = [None if r is None else r + 2 * k for r in cols["req_id"]]
        copies.append(pa.table(cols))
    table = pa.concat_tables(copies)
    one, other = tmp_path / "one.parquet", tmp_path / "other.parquet"
    trace.write(table, one, machine=MACHINE, row_group_rows=4)
    trace.write(table.to_batches(max_chunksize=5), other, machine=MACHINE, row_group_rows=4)
    assert one.read_bytes() == other.read_bytes()
    # Groups of 4 rows have runs of 1 access row (4 // 16, at least 1) in groups of their own:
    # each copy is a run of 2 access rows, then 4 rows of other kinds.
    meta = pq.ParquetFile(one).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [2, 4] * 3


def test_long_runs_of_accesses_get_row_groups_of_their_own() -> None:
    # 32 rows a group: a run of 2 or more access rows is long. A=access, o=another kind.
    kinds = "AoAAAooA" + "A" * 70 + "o"
    is_access = np.array([k == "A" for k in kinds])
    # [A o] other; [A A A] long; [o o] other; 71 A: long, in groups of 32, 32, 7; [o] other.
    assert RowGroups(32).cut(is_access, final=True) == [2, 3, 2, 32, 32, 7, 1]
    # Waiting for more rows, a long run at the end gives its whole groups; the rest waits.
    assert RowGroups(32).cut(is_access[:-1], final=False) == [2, 3, 2, 32, 32]
    # A short run at the end may still become long: the rows before it of its segment wait too.
    assert RowGroups(32).cut(is_access[:6], final=False) == [2, 3]


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 40), runs=st.lists(st.tuples(st.booleans(), st.integers(1, 90)),
                                              max_size=12),
       cuts=st.lists(st.integers(1, 60), min_size=1, max_size=30))
def test_row_groups_do_not_depend_on_the_batches_written(rows: int, runs: list[tuple[bool, int]],
                                                         cuts: list[int]) -> None:
    is_access = np.concatenate([np.full(n, a) for a, n in runs] or [np.zeros(0, bool)])
    want = RowGroups(rows).cut(is_access, final=True)
    assert sum(want) == len(is_access) and all(0 < w <= rows for w in want)
    layout, got, written, seen = RowGroups(rows), [], 0, 0
    for step in itertools.cycle(cuts):
        seen = min(len(is_access), seen + step)
        final = seen == len(is_access)
        sizes = layout.cut(is_access[written:seen], final=final)
        got += sizes
        written += sum(sizes)
        if final:
            break
    assert got == want


def test_groups_of_accesses_have_the_other_kinds_columns_all_null(tmp_path: Path) -> None:
    # A call between two long runs of accesses: the access groups' statistics say the
    # columns that only other rows set are all null, so a reader skips them.
    n = 40
    cols = {"ts_ns": list(range(2 * n + 1)), "kind": ["access"] * n + ["migrate"] + ["access"] * n,
            "cpu": [0] * (2 * n + 1), "pid": [7] * (2 * n + 1),
            "vaddr": [0x1000] * n + [None] + [0x1000] * n,
            "write": [False] * n + [None] + [False] * n,
            "src_node": [None] * n + [0] + [None] * n, "dst_node": [None] * n + [1] + [None] * n,
            "req_id": [None] * n + [0] + [None] * n, "mode": [None] * (2 * n + 1)}
    path = tmp_path / "t.parquet"
    trace.write(pa.table(cols), path, machine=MACHINE, row_group_rows=64)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [40, 1, 40]
    names = meta.schema.names
    for g in (0, 2):
        for name in ("src_node", "dst_node", "req_id", "mode"):
            stats = meta.row_group(g).column(names.index(name)).statistics
            assert stats.null_count == 40, name


def test_written_file_has_canonical_metadata_and_settings(tiny_trace: Path) -> None:
    pf = pq.ParquetFile(tiny_trace)
    meta = pf.schema_arrow.metadata
    assert meta[b"tracereplay.schema"] == b"trace/1"
    assert Machine.from_dict(json.loads(meta[b"tracereplay.machine"])) == Machine.spread(4, 2)
    group = pf.metadata.row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert {c.compression for c in columns.values()} == {"LZ4"}
    assert not columns["ts_ns"].has_dictionary_page
    assert not columns["vaddr"].has_dictionary_page
    assert columns["kind"].has_dictionary_page


def test_sha256_is_of_the_file_bytes(tiny_trace: Path) -> None:
    import hashlib

    assert trace.load(tiny_trace).sha256() == hashlib.sha256(tiny_trace.read_bytes()).hexdigest()


