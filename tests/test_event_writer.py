"""A run's event tables, written in parts, are gathered into row groups of the size it asks for."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from tracereplay.events import PolicyRunWriter, to_table


def _faults(start: int, n: int):  # type: ignore[no-untyped-def]
    ids = list(range(start, start + n))
    return to_table("faults", {
        "ts_ns": ids, "cpu": [0] * n, "pid": [1] * n, "tid": [1] * n, "address": ids,
        "vpn": ids, "error_code": [6] * n, "write": [True] * n, "line": ids})


def test_tables_written_in_parts_are_gathered_into_row_groups_of_the_runs_size(
    tmp_path: Path,
) -> None:
    with PolicyRunWriter(tmp_path, "measured", row_group_rows=1000) as w:
        for start in range(0, 2500, 700):  # appends that do not fall on group boundaries
            w.write("faults", _faults(start, min(700, 2500 - start)))
        w.close_tables()
        w.replace("migrations", pq.read_table(w.tmp / "migrations.parquet"))
        w.replace("stalls", pq.read_table(w.tmp / "stalls.parquet"))
        w.commit({})
    run = tmp_path / "policy=measured"
    faults = pq.ParquetFile(run / "faults.parquet")
    sizes = [faults.metadata.row_group(g).num_rows for g in range(faults.num_row_groups)]
    assert max(sizes) == 1000 and sum(sizes) == 2500  # appends are gathered until 1,000 rows
    assert faults.read().column("ts_ns").to_pylist() == list(range(2500))

    with PolicyRunWriter(tmp_path, "again", row_group_rows=1000) as w:
        w.write("faults", _faults(0, 10))
        w.close_tables()
        w.replace("faults", _faults(0, 2500))  # written whole, in one go
        w.commit({})
    replaced = pq.ParquetFile(tmp_path / "policy=again" / "faults.parquet")
    assert replaced.num_row_groups == 1
    assert replaced.read().column("line").to_pylist() == list(range(2500))
