"""Row groups of a few rows (a migrate call between two long runs of accesses gets a group of
its own) and the few-row paths of validation: broken rules are named with the file's row, and
a valid file reads as it did with any row-group layout."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracereplay import TraceFormatError, trace
from tracereplay.machine import Machine
from tracereplay.trace import TraceReader

MACHINE = Machine(cpus=4, nodes=2, cpu_node=(0, 0, 1, 1))
RUN = 40  # access rows before, between and after the two migrate calls


def rows() -> dict[str, list]:
    """40 accesses, a whole-node migrate (row 40, req_id 5), 40 accesses, an explicit-page
    migrate (row 81, req_id 2), 40 accesses: 122 rows."""
    cols: dict[str, list] = {f.name: [] for f in trace.arrow_schema()}

    def add(**row: object) -> None:
        for name in cols:
            cols[name].append(row.get(name))

    ts = 0
    for block in range(3):
        for i in range(RUN):
            add(ts_ns=ts, kind="access", cpu=i % 4, pid=7, vaddr=0x1000 * (i % 8),
                write=i % 2 == 0)
            ts += 10
        if block == 0:
            add(ts_ns=ts, kind="migrate", cpu=1, pid=7, src_node=0, dst_node=1, req_id=5,
                mode="sync")
        elif block == 1:
            add(ts_ns=ts, kind="migrate", cpu=2, pid=7, vaddr=0x3000, dst_node=0, req_id=2,
                mode="async")
        ts += 10
    return cols


def write_groups(path: Path, cols: dict[str, list], sizes: list[int]) -> Path:
    """The rows in canonical types (every column nullable), unchecked, in row groups of the
    given sizes."""
    schema = pa.schema([f.with_nullable(True) for f in trace.arrow_schema()])
    table = pa.table(cols, schema=schema)
    with pq.ParquetWriter(path, table.schema) as writer:
        start = 0
        for size in sizes:
            writer.write_table(table.slice(start, size))
            start += size
    assert start == table.num_rows
    return path


LAYOUT = [RUN, 1, RUN, 1, RUN]


def test_the_writer_gives_each_migrate_row_a_group_and_the_reader_keeps_it(
        tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    trace.write(pa.table(rows(), schema=trace.arrow_schema()), path, machine=MACHINE,
                row_group_rows=16)
    md = pq.ParquetFile(path).metadata
    sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
    assert sizes == [16, 16, 8, 1, 16, 16, 8, 1, 16, 16, 8]
    reader = TraceReader(path)
    groups = list(reader.groups())
    one = [g for g in groups if g.num_rows == 1]
    assert [g.row0 for g in one] == [40, 81]
    assert [list(g.other_index) for g in one] == [[0], [0]]
    # Every column, the optional ones (absent from the file) as nulls.
    absent = {"order": None, "mappings": None, "off_cpu_unmap_ns": None, "off_cpu_move_ns": None}
    assert one[0].others.to_pylist() == [{
        "ts_ns": 400, "kind": "migrate", "cpu": 1, "pid": 7, "vaddr": None, "write": None,
        "src_node": 0, "dst_node": 1, "req_id": 5, "mode": "sync", **absent}]
    assert one[1].others.to_pylist() == [{
        "ts_ns": 810, "kind": "migrate", "cpu": 2, "pid": 7, "vaddr": 0x3000, "write": None,
        "src_node": None, "dst_node": 0, "req_id": 2, "mode": "async", **absent}]
    assert one[0].others.schema == trace.arrow_schema(optional=True)
    assert [int(g.ts_ns[0]) for g in one] == [400, 810]
    assert reader.summary().to_dict() == {
        "rows": 122, "accesses": 120, "reads": 60, "writes": 60, "maps": 0, "pids": 1,
        "cpus": 4, "pages": 8, "migrate_calls": 2, "whole_node_calls": 1, "migrate_pages": 1,
        "ts_first_ns": 0, "ts_last_ns": 1210, "span_ns": 1210}


@pytest.mark.parametrize(("row", "value", "rule", "column", "message"), [
    (81, {"ts_ns": 700}, "ts-non-decreasing", "ts_ns", "ts_ns decreases from 800 to 700"),
    (81, {"mode": "lazy"}, "mode-known", "mode",
     "unknown mode 'lazy'; expected sync, async or null"),
    (81, {"dst_node": None}, "non-null", "dst_node",
     "dst_node is null on a migrate row, which requires it"),
    (81, {"kind": None}, "non-null", "kind", "kind is null"),
    (40, {"vaddr": 0x2000}, "migrate-shape", "src_node",
     "a migrate row has both vaddr and src_node; set vaddr for an explicit page or src_node "
     "for a whole-node migrate, not both"),
    (81, {"req_id": 5}, "request-consistent", "vaddr",
     "req_id 5 is explicit-page but row 40 of it is whole-node"),
    (40, {"cpu": 4}, "cpu-in-machine", "cpu", "cpu 4 is outside the machine's CPUs 0..3"),
])
def test_a_broken_migrate_row_in_a_group_of_its_own_is_named_by_its_file_row(
        tmp_path: Path, row: int, value: dict, rule: str, column: str, message: str) -> None:
    cols = rows()
    for name, v in value.items():
        cols[name][row] = v
    path = write_groups(tmp_path / "t.parquet", cols, LAYOUT)
    with pytest.raises(TraceFormatError) as info:
        trace.load(path, machine=MACHINE)
    e = info.value
    assert (e.rule, e.column, e.row) == (rule, column, row)
    assert str(e) == f"{path}, column '{column}', row {row}: {message} [rule: {rule}]"


def test_a_request_with_a_lower_id_than_one_seen_is_still_found_again(tmp_path: Path) -> None:
    # req_id 5 (row 40), then 2 (row 81), then a row of 5 again that is explicit-page.
    cols = rows()
    extra = {"ts_ns": 1220, "kind": "migrate", "cpu": 1, "pid": 7, "vaddr": 0x4000,
             "dst_node": 1, "req_id": 5, "mode": "sync"}
    for name in cols:
        cols[name].append(extra.get(name))
    path = write_groups(tmp_path / "t.parquet", cols, [*LAYOUT, 1])
    with pytest.raises(TraceFormatError) as info:
        trace.load(path, machine=MACHINE)
    e = info.value
    assert (e.rule, e.column, e.row) == ("request-consistent", "vaddr", 122)
    assert "req_id 5 is explicit-page but row 40 of it is whole-node" in str(e)


def test_string_columns_of_many_rows_are_coded_as_of_a_few(tmp_path: Path) -> None:
    # Plain string kind and mode (not dictionaries): more than 64 rows in one batch are coded by
    # Arrow, fewer one by one; both name the same row and word.
    for group in (200, 3):
        cols = rows()
        cols["mode"][81] = "lazy"
        path = tmp_path / f"s{group}.parquet"
        pq.write_table(pa.table(cols), path, row_group_size=group)
        with pytest.raises(TraceFormatError) as info:
            trace.load(path, machine=MACHINE)
        assert (info.value.rule, info.value.row) == ("mode-known", 81)
        assert "unknown mode 'lazy'; expected sync, async or null" in str(info.value)
        cols = rows()
        cols["kind"][90] = "munmap"
        pq.write_table(pa.table(cols), path, row_group_size=group)
        with pytest.raises(TraceFormatError) as info:
            trace.load(path, machine=MACHINE)
        assert (info.value.rule, info.value.column, info.value.row) == ("known-kind", "kind", 90)
        assert "unknown kind 'munmap'; expected one of access, migrate, map" in str(info.value)


@pytest.mark.parametrize("layout", [[122], [100, 22], [61, 61], [1] * 122])
def test_the_summary_counts_processes_and_cpus_whatever_the_groups(
        tmp_path: Path, layout: list[int]) -> None:
    # A second process (pid 9, on CPU 3 only) appears from row 100 on.
    cols = rows()
    for i in range(100, 122):
        cols["pid"][i], cols["cpu"][i] = 9, 3
    path = write_groups(tmp_path / "t.parquet", cols, layout)
    summary = trace.load(path, machine=MACHINE).summary
    assert summary is not None
    assert (summary.pids, summary.cpus, summary.rows, summary.accesses) == (2, 4, 122, 120)
    # pid 7: pages 0..7; pid 9: rows 100..121 are accesses i % 8 of the third run (i = 18..39).
    assert summary.pages == 8 + 8
