"""The import's off-CPU gaps: a migrating task's lines stop while another task runs on its CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from tracereplay.importer import _scan as S
from tracereplay.importer import import_kernel_trace
from tracereplay.importer._measured import MeasuredBuilder
from tracereplay.replay import run

START = "migrate:mm_migrate_pages_start: mode=MIGRATE_SYNC reason=compaction"
END = "migrate:mm_migrate_pages: nr_succeeded={} nr_failed=0 mode=MIGRATE_SYNC reason=compaction"


def _set(page: int) -> str:
    # the migration entry of pfn 0x100 + page (x86-64: the offset inverted from bit 9)
    pte = ~((0x100 + page) << 9) & (2**64 - 1)
    return f"migrate:set_migration_pte: addr=7f000000{page}000, pte={pte:x} order=0"


def _remove(page: int) -> str:
    return f"migrate:remove_migration_pte: addr=7f000000{page}000, pte=2 order=0"


FAULT = "exceptions:page_fault_user: address=0x7f0000009000 ip=0x1 error_code=0x6"
#   call 0, sh on CPU 1                              call 1, sh on CPU 0
#   .000000 start                                    2.000000 start
#   .000010 set 1                                    2.000010   (w on CPU 0)
#   .000011 switch line ┐ 100 µs: unmap of page 2    2.000050 flush ┐ 50 µs, ends at a flush:
#     (w on CPU 0: not this CPU)                     2.000052 set 3 ┘ the next step, unmap of 3
#   .000111 set 2 ──────┘                            2.000055 remove 3 ┐ 35 µs, ends at the
#   .000112 flush (3)  ┐ 13 µs: short, not counted   2.000060   (w)     │ call's end: stage other
#     (k on CPU 1 inside)                            2.000090 end ──────┘
#   .000125 remove 1   ┐ 175 µs, kworker's two lines
#   .000300 remove 2 ──┘ on CPU 1: move of page 2
#     (k at .000300 and .000400, malformed k at .000350: none strictly inside, none counts)
#   .000400 end: 100 µs with no evidence, not counted
LINES = [
    f"  sh 9/9 [001] 1.000000: {START}",
    f"  sh 9/9 [001] 1.000010: {_set(1)}",
    "  sh 9/9 [001] 1.000011: tlb:tlb_flush: pages:-1 reason:flush on task switch (0)",
    f"   w 5/6 [000] 1.000020: {FAULT}",
    f"  sh 9/9 [001] 1.000111: {_set(2)}",  # line 5
    "  sh 9/9 [001] 1.000112: tlb:tlb_flush: pages:-1 reason:local mm shootdown (3)",
    f"   k 7/7 [001] 1.000120: {FAULT}",
    f"  sh 9/9 [001] 1.000125: {_remove(1)}",
    "   kworker 3/3 [001] 1.000130: workqueue:workqueue_execute_start: work struct 1",
    "   kworker 3/3 [001] 1.000200: workqueue:workqueue_execute_end: work struct 1",
    f"  sh 9/9 [001] 1.000300: {_remove(2)}",  # line 11
    "   kworker 3/3 [001] 1.000300: workqueue:workqueue_execute_start: work struct 2",
    "   kworker 3/3 [001] 1.000350: tlb:tlb_flush: reason:remote shootdown (1)",  # malformed
    "   kworker 3/3 [001] 1.000400: workqueue:workqueue_execute_end: work struct 2",
    f"  sh 9/9 [001] 1.000400: {END.format(2)}",
    f"  sh 9/9 [000] 2.000000: {START}",
    f"   w 5/6 [000] 2.000010: {FAULT}",
    "  sh 9/9 [000] 2.000050: tlb:tlb_flush: pages:1 reason:local shootdown (2)",  # line 18
    f"  sh 9/9 [000] 2.000052: {_set(3)}",
    f"  sh 9/9 [000] 2.000055: {_remove(3)}",
    f"   w 5/6 [000] 2.000060: {FAULT}",
    f"  sh 9/9 [000] 2.000090: {END.format(1)}",  # line 22
]
EXPECTED = [
    # req_id, cpu, start_ns, end_ns, dur_ns, stage, vpn, evidence, other_lines, line
    (0, 1, 11_000, 111_000, 100_000, "unmap", 0x7F0000002, "task_switch", 0, 5),
    (0, 1, 125_000, 300_000, 175_000, "move", 0x7F0000002, "other_task", 2, 11),
    (1, 0, 1_000_000_000, 1_000_050_000, 50_000, "unmap", 0x7F0000003, "other_task", 1, 18),
    (1, 0, 1_000_055_000, 1_000_090_000, 35_000, "other", None, "other_task", 1, 22),
]
COLS = ["req_id", "cpu", "start_ns", "end_ns", "dur_ns", "stage", "vpn", "evidence",
        "other_lines", "line"]  # fmt: skip


def _rows(t: pl.DataFrame) -> list[tuple]:
    return [tuple(r) for r in t.select(COLS).iter_rows()]


def test_gaps_with_another_task_or_a_switch_line_are_off_cpu_time(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n")
    import_kernel_trace(src, tmp_path / "run")
    t = pl.read_parquet(tmp_path / "run" / "policy=measured" / "off_cpu.parquet")
    assert _rows(t) == EXPECTED
    assert t["pid"].to_list() == t["tid"].to_list() == [9, 9, 9, 9]
    # the malformed line stays what it was: counted and listed, no evidence of anything
    skipped = pl.read_parquet(tmp_path / "run" / "policy=measured" / "skipped.parquet")
    assert skipped.filter(pl.col("why").str.starts_with("malformed"))["line"].to_list() == [13]


@pytest.mark.parametrize("per_block", [1, 2, 5])
def test_gaps_are_the_same_whatever_the_blocks(per_block: int) -> None:
    emitted: dict[str, pl.DataFrame] = {}
    b = MeasuredBuilder(emit=lambda name, t: emitted.__setitem__(name, pl.from_arrow(t)))
    # room for one open call, one gap and one settled gap: the tracker grows them as it goes
    tracker = b.off_cpu
    tracker._slots, tracker._gap_rows, tracker._res_rows = (
        np.zeros((1, a.shape[1]), np.int64)
        for a in (tracker._slots, tracker._gap_rows, tracker._res_rows)
    )
    for i in range(0, len(LINES), per_block):
        block = ("\n".join(LINES[i : i + per_block]) + "\n").encode()
        b.feed(block, S.scan(block, S.LAYOUT_PERF))
    b.finish()
    assert _rows(emitted["off_cpu"]) == EXPECTED


def test_a_capture_without_gaps_has_an_empty_table(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    # call 1 without the other task's lines: no gap has evidence
    src.write_text("\n".join(x for x in LINES[15:] if " w " not in x) + "\n")
    import_kernel_trace(src, tmp_path / "run")
    t = pl.read_parquet(tmp_path / "run" / "policy=measured" / "off_cpu.parquet")
    assert t.height == 0
    assert t.columns[:3] == ["req_id", "cpu", "pid"]


def test_as_trace_gives_each_gap_to_the_page_step_after_it(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n")
    res = import_kernel_trace(src, tmp_path / "run", as_trace=tmp_path / "t.parquet")
    rows = pl.read_parquet(tmp_path / "t.parquet").filter(pl.col("kind") == "migrate")
    got = rows.select("req_id", "vaddr", "off_cpu_unmap_ns", "off_cpu_move_ns").rows()
    assert got == [
        (0, 0x7F0000001000, None, None),
        # 100 µs before its unmap (the switch line's gap), 175 µs before its move
        (0, 0x7F0000002000, 100_000, 175_000),
        # the gap that ends at a flush goes to the unmap after it; the one before the end, nowhere
        (1, 0x7F0000003000, 50_000, None),
    ]
    counts = res.manifest["as_trace_rows"]
    assert (counts["off_cpu_gaps"], counts["off_cpu_ns"]) == (3, 325_000)
    assert (counts["off_cpu_gaps_dropped"], counts["off_cpu_dropped_ns"]) == (1, 35_000)


def test_as_trace_of_a_capture_without_gaps_has_no_off_cpu_columns(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("\n".join(x for x in LINES[15:] if " w " not in x) + "\n")
    res = import_kernel_trace(src, tmp_path / "run", as_trace=tmp_path / "t.parquet")
    assert "off_cpu_unmap_ns" not in pl.read_parquet(tmp_path / "t.parquet").columns
    assert not any(k.startswith("off_cpu") for k in res.manifest["as_trace_rows"])


def test_the_replay_of_the_trace_waits_out_the_gaps(tmp_path: Path) -> None:
    """batched: unmap 1, (100 µs), unmap 2, flush, move 1, (175 µs), move 2 in call 0; (50 µs),
    unmap 3, flush, move 3 in call 1. Against the same trace without the columns, page 1's
    window grows by the wait before unmap 2, page 2's by the wait before its move, page 3's
    unmap comes 50 µs later and its window is unchanged."""
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n")
    import_kernel_trace(src, tmp_path / "run", as_trace=tmp_path / "t.parquet")
    t = pq.read_table(tmp_path / "t.parquet")
    plain = t.drop_columns(["off_cpu_unmap_ns", "off_cpu_move_ns"])
    pq.write_table(plain.replace_schema_metadata(t.schema.metadata), tmp_path / "plain.parquet")
    windows = {}
    for name in ("t", "plain"):
        run(tmp_path / f"{name}.parquet", tmp_path / name, policies=["batched"])
        m = pl.read_parquet(tmp_path / name / "policy=batched" / "migrations.parquet")
        windows[name] = m.sort("vpn").select("vpn", "unmap_ns", "remap_ns")
    d = windows["t"].with_columns(
        d_unmap=pl.col("unmap_ns") - windows["plain"]["unmap_ns"],
        d_window=(pl.col("remap_ns") - pl.col("unmap_ns"))
        - (windows["plain"]["remap_ns"] - windows["plain"]["unmap_ns"]),
    )
    assert d.select("vpn", "d_unmap", "d_window").rows() == [
        (0x7F0000001, 0, 100_000),
        (0x7F0000002, 100_000, 175_000),
        (0x7F0000003, 50_000, 0),
    ]
