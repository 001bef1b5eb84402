"""Every rule of trace format v1 has a bad file that breaks it, and each gets one clear message."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import valid_columns

from tracereplay import TraceFormatError, trace
from tracereplay._resources import load_schema
from tracereplay.cli import main


def write_raw(path: Path, columns: dict, *, metadata: dict | None = None,
              schema: pa.Schema | None = None, row_group_size: int | None = None) -> Path:
    """Write a Parquet file as-is (no checks), as a foreign tool would."""
    table = pa.table(columns, schema=schema)
    if metadata is not None:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def changed(**edits: Callable[[list], list] | list) -> dict:
    cols = valid_columns()
    for name, edit in edits.items():
        cols[name] = edit(cols[name]) if callable(edit) else edit
    return cols


def map_after_access() -> dict:
    """The valid trace and, last, a map row of the page its first access touched (0x1000)."""
    cols = valid_columns()
    extra = {"ts_ns": 50, "kind": "map", "pid": 7, "vaddr": 0x1000, "dst_node": 0}
    return {k: [*v, extra.get(k)] for k, v in cols.items()}


def with_folios(orders: list, *, extra: dict | None = None) -> dict:
    """The valid trace with an ``order`` column (and, last, one more row: ``extra``)."""
    cols = {**valid_columns(), "order": orders}
    if extra is not None:
        cols = {k: [*v, extra.get(k)] for k, v in cols.items()}
    return cols


def with_off_cpu(unmap: list, move: list | None = None) -> dict:
    """The valid trace with the off-CPU columns (rows 3 and 4 are explicit-page migrate rows,
    row 5 a whole-node one)."""
    return {**valid_columns(), "off_cpu_unmap_ns": unmap,
            "off_cpu_move_ns": move if move is not None else [None] * len(unmap)}


def with_mappings(mappings: list) -> dict:
    """The valid trace with a ``mappings`` column (rows 3 and 4 are explicit-page migrate rows,
    row 5 a whole-node one)."""
    return {**valid_columns(), "mappings": mappings}


def overlapping_folios() -> dict:
    """The valid trace whose map row (row 2) declares the base page 0x9000 and, last, a map
    row of the 8-page folio 0x8000 .. 0xffff of the same pid: the two overlap."""
    cols = with_folios([None, None, 0, None, None, None],
                       extra={"ts_ns": 50, "kind": "map", "pid": 7, "vaddr": 0x8000,
                              "dst_node": 0, "order": 3})
    cols["vaddr"][2] = 0x9000
    return cols


def at(i: int, value: object) -> Callable[[list], list]:
    def edit(values: list) -> list:
        values = list(values)
        values[i] = value
        return values
    return edit


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["tracereplay", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# rule -> (write the bad file into the given path, column named, row named)
BAD_FILES: dict[str, tuple[Callable[[Path], object], str | None, int | None]] = {
    "readable": (lambda p: p.write_bytes(b"ts_ns,kind\n0,access\n"), None, None),
    "schema-version": (lambda p: write_raw(p, valid_columns(),
                                           metadata={"tracereplay.schema": "trace/2"}),
                       None, None),
    "machine": (lambda p: write_raw(p, valid_columns(), metadata={
        "tracereplay.machine": json.dumps({"cpus": 2, "nodes": 2, "cpu_node": [0, 5]})}),
        None, None),
    "not-empty": (lambda p: write_raw(p, {k: v[:0] for k, v in valid_columns().items()},
                                      schema=trace.arrow_schema()), None, None),
    "required-column": (lambda p: write_raw(p, {k: v for k, v in valid_columns().items()
                                                if k != "dst_node"}), "dst_node", None),
    "column-type": (lambda p: write_raw(p, changed(ts_ns=["0", "10", "20", "30", "30", "40"])),
                    "ts_ns", None),
    "known-kind": (lambda p: write_raw(p, changed(kind=at(2, "munmap"))), "kind", 2),
    "non-null": (lambda p: write_raw(p, changed(cpu=at(1, None))), "cpu", 1),
    "ts-non-decreasing": (lambda p: write_raw(p, changed(ts_ns=at(2, 5))), "ts_ns", 2),
    "cpu-in-machine": (lambda p: write_raw(p, changed(cpu=at(1, 32))), "cpu", 1),
    "node-in-machine": (lambda p: write_raw(p, changed(dst_node=at(2, 2))), "dst_node", 2),
    "vaddr-range": (lambda p: write_raw(p, changed(vaddr=at(0, 1 << 57))), "vaddr", 0),
    "pid-range": (lambda p: write_raw(p, changed(pid=at(3, 1 << 31))), "pid", 3),
    "mode-known": (lambda p: write_raw(p, changed(mode=at(3, "lazy"))), "mode", 3),
    "migrate-shape": (lambda p: write_raw(p, changed(vaddr=at(5, 0x5000))), "src_node", 5),
    "request-consistent": (lambda p: write_raw(p, changed(cpu=at(4, 3))), "cpu", 4),
    "map-before-access": (lambda p: write_raw(p, map_after_access()), "kind", 6),
    "order-on-map": (lambda p: write_raw(p, with_folios([None, 0, None, None, None, None])),
                     "order", 1),
    "folio-order": (lambda p: write_raw(p, with_folios([None, None, 10, None, None, None])),
                    "order", 2),
    "folio-aligned": (lambda p: write_raw(p, with_folios([None, None, 1, None, None, None])),
                      "vaddr", 2),
    "folio-overlap": (lambda p: write_raw(p, overlapping_folios()), "order", 6),
    "mappings-on-migrate": (lambda p: write_raw(p, with_mappings([None, None, None, 2, None, 3])),
                            "mappings", 5),
    "mappings-range": (lambda p: write_raw(p, with_mappings([None, None, None, 0, -1, None])),
                       "mappings", 4),
    "off-cpu-on-migrate": (lambda p: write_raw(p, with_off_cpu([None, None, None, 5, None, 7])),
                           "off_cpu_unmap_ns", 5),
    "off-cpu-range": (lambda p: write_raw(p, with_off_cpu([None] * 6,
                                                          [None, None, None, 0, -3, None])),
                      "off_cpu_move_ns", 4),
}


def test_every_rule_of_the_schema_has_a_bad_file() -> None:
    assert set(BAD_FILES) == set(load_schema("trace.v1")["rules"])


@pytest.mark.parametrize("rule", list(BAD_FILES))
def test_bad_file_names_file_column_row_and_rule(rule: str, tmp_path: Path) -> None:
    make, column, row = BAD_FILES[rule]
    path = tmp_path / "bad.parquet"
    make(path)
    with pytest.raises(TraceFormatError) as info:
        trace.load(path)
    e = info.value
    assert (e.rule, e.column, e.row) == (rule, column, row)
    text = str(e)
    assert str(path) in text
    assert f"[rule: {rule}]" in text
    if column is not None:
        assert f"column '{column}'" in text
    if row is not None:
        assert f"row {row}" in text


@pytest.mark.parametrize("rule", list(BAD_FILES))
def test_validate_exits_2_with_one_message_and_no_output(
        rule: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.parquet"
    BAD_FILES[rule][0](path)
    code, out, err = run_cli(["validate", str(path), "--json"], monkeypatch, capsys)
    assert code == 2
    assert out == ""
    assert f"[rule: {rule}]" in " ".join(err.split())
    assert "Traceback" not in err


def test_validate_command_shows_no_traceback_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    write_raw(path, changed(kind=at(2, "munmap")))
    r = subprocess.run([sys.executable, "-c", "from tracereplay.cli import main; main()",
                        "validate", str(path)], capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    assert "unknown kind 'munmap'" in r.stderr


@pytest.mark.parametrize("what", ["missing", "directory", "zero bytes", "truncated", "corrupt"])
def test_unreadable_paths_are_reported_as_readable(what: str, tmp_path: Path, tiny_trace: Path,
                                                  seed_trace: Path) -> None:
    path = tmp_path / "t.parquet"
    if what == "corrupt":  # footer intact, data pages of the first row group garbled
        data = bytearray(seed_trace.read_bytes())
        for i in range(1000, 200_000, 7):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
    elif what == "directory":
        path.mkdir()
    elif what == "zero bytes":
        path.write_bytes(b"")
    elif what == "truncated":
        path.write_bytes(tiny_trace.read_bytes()[:-100])
    with pytest.raises(TraceFormatError) as info:
        trace.load(path)
    assert info.value.rule == "readable"
    assert str(path) in str(info.value)


def test_a_file_without_schema_key_is_read_as_trace_v1(tmp_path: Path) -> None:
    t = trace.load(write_raw(tmp_path / "t.parquet", valid_columns()))
    assert t.num_rows == 6
    assert not t.machine_from_file
    assert t.machine == trace.default_machine()


def test_compatible_integer_widths_and_string_kinds_are_accepted(tmp_path: Path) -> None:
    cols = valid_columns()
    schema = pa.schema([
        ("ts_ns", pa.uint32()), ("kind", pa.dictionary(pa.int32(), pa.large_string())),
        ("cpu", pa.int8()), ("pid", pa.int64()), ("vaddr", pa.int64()), ("write", pa.bool_()),
        ("src_node", pa.uint8()), ("dst_node", pa.int16()), ("req_id", pa.int32()),
        ("mode", pa.large_string()),
    ])
    t = trace.load(write_raw(tmp_path / "t.parquet", cols, schema=schema))
    (batch,) = t.batches()
    assert batch.schema.equals(trace.arrow_schema())
    assert batch.column("kind").to_pylist() == cols["kind"]
    assert batch.column("vaddr").to_pylist() == cols["vaddr"]


def test_a_float_where_an_integer_belongs_is_a_type_error(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "t.parquet", changed(cpu=[0.0, 1.0, None, 2.0, 2.0, 3.0]))
    with pytest.raises(TraceFormatError, match="type double is not accepted") as info:
        trace.load(path)
    assert (info.value.rule, info.value.column) == ("column-type", "cpu")


def test_negative_timestamp_breaks_ts_rule(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "t.parquet", changed(ts_ns=at(0, -1)))
    with pytest.raises(TraceFormatError, match="negative") as info:
        trace.load(path)
    assert (info.value.rule, info.value.row) == ("ts-non-decreasing", 0)


def test_cpu_is_checked_against_the_machine_in_the_file(tmp_path: Path) -> None:
    meta = {"tracereplay.machine": json.dumps({"cpus": 3, "nodes": 2})}
    with pytest.raises(TraceFormatError, match=r"CPUs 0\.\.2") as info:
        trace.load(write_raw(tmp_path / "t.parquet", valid_columns(), metadata=meta))
    assert (info.value.rule, info.value.row) == ("cpu-in-machine", 5)


def test_values_a_kind_ignores_are_not_checked_and_read_as_null(tmp_path: Path) -> None:
    # src_node 99 on an access row and write on a migrate row mean nothing: no error, null.
    path = write_raw(tmp_path / "t.parquet", changed(src_node=at(0, 99), write=at(3, True)))
    (batch,) = trace.load(path).batches()
    assert batch.column("src_node")[0].as_py() is None
    assert batch.column("write")[3].as_py() is None


def test_mappings_on_an_access_row_is_named_by_the_row_check(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "t.parquet", with_mappings([None, 2, None, None, None, None]))
    with pytest.raises(TraceFormatError, match="set on an access row") as info:
        trace.load(path)
    assert (info.value.rule, info.value.column, info.value.row) == ("mappings-on-migrate",
                                                                    "mappings", 1)


def test_off_cpu_on_an_access_row_is_named_by_the_row_check(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "t.parquet", with_off_cpu([None] * 6,
                                                          [None, 9, None, None, None, None]))
    with pytest.raises(TraceFormatError, match="set on an access row") as info:
        trace.load(path)
    assert (info.value.rule, info.value.column, info.value.row) == ("off-cpu-on-migrate",
                                                                    "off_cpu_move_ns", 1)


def test_mappings_is_kept_on_explicit_migrate_rows_and_absent_files_read_as_before(
        tmp_path: Path) -> None:
    t = trace.load(write_raw(tmp_path / "m.parquet", with_mappings([None, None, None, 4, None,
                                                                    None])))
    (batch,) = t.batches()
    assert batch.column("mappings").to_pylist() == [None, None, None, 4, None, None]
    (plain,) = trace.load(write_raw(tmp_path / "p.parquet", valid_columns())).batches()
    assert "mappings" not in plain.schema.names


def test_a_whole_node_request_has_exactly_one_row(tmp_path: Path) -> None:
    cols = valid_columns()
    for name in cols:
        cols[name].append(cols[name][5])
    with pytest.raises(TraceFormatError, match="exactly one row") as info:
        trace.load(write_raw(tmp_path / "t.parquet", cols))
    assert (info.value.rule, info.value.column, info.value.row) == ("request-consistent",
                                                                    "req_id", 6)


def test_a_request_mixing_shapes_is_inconsistent(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "t.parquet", changed(req_id=at(5, 0), ts_ns=at(5, 30),
                                                     src_node=at(5, 0), mode=at(5, "sync")))
    with pytest.raises(TraceFormatError, match="whole-node but row 3") as info:
        trace.load(path)
    assert (info.value.rule, info.value.row) == ("request-consistent", 5)


def test_errors_in_later_row_groups_name_the_row_of_the_file(tmp_path: Path) -> None:
    n = 1000
    cols = {
        "ts_ns": list(range(n)), "kind": ["access"] * n, "cpu": [i % 4 for i in range(n)],
        "pid": [1] * n, "vaddr": [4096 * i for i in range(n)], "write": [False] * n,
        "src_node": [None] * n, "dst_node": [None] * n, "req_id": [None] * n,
        "mode": [None] * n,
    }
    cols["ts_ns"][700] = 650  # decreases against row 699, which is in another row group
    path = write_raw(tmp_path / "t.parquet", cols, row_group_size=100)
    with pytest.raises(TraceFormatError, match="decreases from 699 to 650") as info:
        trace.load(path)
    assert info.value.row == 700


def test_requests_are_checked_across_row_groups(tmp_path: Path) -> None:
    cols = valid_columns()
    extra = {"ts_ns": 50, "kind": "migrate", "cpu": 2, "pid": 7, "vaddr": 0x3000, "write": None,
             "src_node": None, "dst_node": 1, "req_id": 0, "mode": "sync"}
    for name, value in extra.items():
        cols[name].append(value)
    path = write_raw(tmp_path / "t.parquet", cols, row_group_size=2)
    with pytest.raises(TraceFormatError, match="req_id 0 has ts_ns 50 but row 3") as info:
        trace.load(path)
    assert (info.value.rule, info.value.column, info.value.row) == ("request-consistent",
                                                                    "ts_ns", 6)


def test_the_first_offending_row_wins_across_rules(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "t.parquet", changed(mode=at(4, "lazy"), cpu=at(1, 99)))
    with pytest.raises(TraceFormatError) as info:
        trace.load(path)
    assert (info.value.rule, info.value.row) == ("cpu-in-machine", 1)


def test_validate_json_summary_of_tiny_trace(tiny_trace: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["validate", str(tiny_trace), "--json"], monkeypatch, capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["machine"] == {"cpus": 4, "nodes": 2, "cpu_node": [0, 0, 1, 1], "page_size": 4096}
    assert doc["machine_from_file"] is True
    assert doc["summary"] == {
        "rows": 13, "accesses": 10, "reads": 5, "writes": 5, "maps": 0, "pids": 1, "cpus": 4,
        "pages": 4, "migrate_calls": 2, "whole_node_calls": 1, "migrate_pages": 2,
        "ts_first_ns": 0, "ts_last_ns": 2600, "span_ns": 2600,
    }


def test_validate_prints_a_summary_table(tiny_trace: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["validate", str(tiny_trace)], monkeypatch, capsys)
    assert code == 0
    assert "valid trace/1" in out
    assert "distinct pages" in out
