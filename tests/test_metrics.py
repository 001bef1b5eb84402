"""run.json's summary is read from the views of the query library, not computed again."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tracereplay.errors import QueryError
from tracereplay.metrics import summarise
from tracereplay.query import run_query
from tracereplay.replay import run as replay

# The keys of run.json's summary (the replay adds migrate_calls).
SUMMARY_KEYS = [
    "pages_migrated", "pages_failed", "batches", "flush_rounds", "ipis_sent", "ipis_holding",
    "ipis_per_1000_pages", "migration_ns", "pages_per_s", "first_folio_p50_ns",
    "first_folio_p99_ns", "unmap_share", "flush_share",
    "copy_share", "remap_share", "other_share", "window_p50_ns", "window_max_ns",
    "stalled_accesses", "stall_p50_ns", "stall_p99_ns", "stall_max_ns", "attempts_aborted",
    "aborted_share", "accesses",
    "l1_hit_rate", "l2_hit_rate", "stale_hits", "remote_accesses",
]  # fmt: skip


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tiny = Path(__file__).resolve().parent.parent / "sample_traces" / "tiny.parquet"
    out = tmp_path_factory.mktemp("metrics") / "run"
    replay(tiny, out)
    return out


def _rows(view: str, run: Path, policy: str) -> dict[str, Any]:
    rows = [r for r in run_query(view, run).to_pylist() if r["policy"] == policy]
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("policy", ["serial", "batched"])
def test_the_summary_gives_the_values_of_the_views(replayed: Path, policy: str) -> None:
    summary = summarise(replayed / f"policy={policy}")
    assert list(summary) == SUMMARY_KEYS
    f = _rows("flush_counts", replayed, policy)
    t = _rows("throughput", replayed, policy)
    c = _rows("copy_share", replayed, policy)
    p = _rows("page_stall_summary", replayed, policy)
    h = _rows("tlb_hits", replayed, policy)
    assert summary["pages_migrated"] == t["pages_migrated"] > 0
    assert summary["pages_failed"] == t["pages_failed"]
    assert summary["batches"] == t["batches"]
    assert summary["migration_ns"] == t["migration_ns"]
    assert summary["pages_per_s"] == t["pages_per_s"]
    assert summary["first_folio_p50_ns"] == t["first_folio_p50_ns"] > 0
    assert summary["first_folio_p99_ns"] == t["first_folio_p99_ns"] >= t["first_folio_p50_ns"]
    assert summary["flush_rounds"] == f["flush_rounds"]
    assert summary["ipis_sent"] == f["ipis_sent"] > 0
    assert summary["ipis_holding"] == f["ipis_useful"]
    assert summary["ipis_per_1000_pages"] == f["ipis_per_1000_pages"]
    # shares and hit rates stay fractions in the summary; the views give percent
    for phase in ("unmap", "flush", "copy", "remap", "other"):
        assert summary[f"{phase}_share"] == pytest.approx(c[f"{phase}_pct"] / 100, rel=1e-12)
    assert summary["l1_hit_rate"] == pytest.approx(h["l1_hit_pct"] / 100, rel=1e-12)
    assert summary["l2_hit_rate"] == pytest.approx(h["l2_hit_pct"] / 100, rel=1e-12)
    assert summary["window_p50_ns"] == p["window_p50_ns"]
    assert summary["window_max_ns"] == p["window_max_ns"]
    assert summary["stalled_accesses"] == p["stalls"]
    assert summary["stall_p50_ns"] == p["stall_p50_ns"]
    assert summary["stall_p99_ns"] == p["stall_p99_ns"]
    assert summary["stall_max_ns"] == p["stall_max_ns"]
    assert summary["accesses"] == h["accesses"] > 0
    assert summary["stale_hits"] == h["stale_hits"]
    assert summary["remote_accesses"] == h["remote_accesses"]


def test_the_summary_of_a_directory_being_written_needs_no_manifest(
    replayed: Path, tmp_path: Path
) -> None:
    # The replay summarises a policy before it commits it: .policy=<name>.tmp-..., no run.json.
    writing = tmp_path / ".policy=batched.tmp-0123abcd"
    shutil.copytree(replayed / "policy=batched", writing,
                    ignore=shutil.ignore_patterns("run.json"))  # fmt: skip
    assert summarise(writing) == summarise(replayed / "policy=batched")


def test_a_directory_without_an_event_table_is_a_query_error(
    replayed: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "policy=serial"
    shutil.copytree(replayed / "policy=serial", broken)
    (broken / "batches.parquet").unlink()
    with pytest.raises(QueryError, match="has no table 'batches'"):
        summarise(broken)


def test_summaries_in_turn_each_read_their_own_directory(replayed: Path) -> None:
    # the views are bound once per process and pointed at each directory in turn
    serial, batched = (summarise(replayed / f"policy={p}") for p in ("serial", "batched"))
    assert serial["ipis_sent"] != batched["ipis_sent"]
    assert summarise(replayed / "policy=serial") == serial
