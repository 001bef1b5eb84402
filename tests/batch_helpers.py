"""Corpora for the batch tests: tiny generated traces plus broken files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tracereplay.generate.corpus import write_corpus

TABLES = ("batches", "cpu_stats", "flushes", "migrations", "stalls")
BROKEN = ("broken-not-parquet", "broken-truncated", "broken-time-runs-backwards")


def make_corpus(directory: Path, count: int = 50, *, broken: bool = True) -> list[Path]:
    """``count`` small traces (fast to replay) and, with ``broken``, one file per BROKEN name."""
    paths = write_corpus(directory, count, seed=7, accesses=1000, max_set_mib=1)
    if broken:
        good = paths[0]
        (directory / "broken-not-parquet.parquet").write_text("ts_ns,kind\n1,access\n")
        data = good.read_bytes()
        (directory / "broken-truncated.parquet").write_bytes(data[: len(data) // 2])
        table = pq.read_table(good)
        ts = table.column("ts_ns")
        backwards = table.set_column(0, "ts_ns", pc.subtract(pa.scalar(10**9, pa.int64()), ts))
        pq.write_table(backwards, directory / "broken-time-runs-backwards.parquet")
    return paths


def result_files(results: Path) -> dict[str, str]:
    """Every file of every result, relative to RESULTS, with its SHA-256 (run.json: present)."""
    out = {}
    for f in sorted(results.glob("trace=*/policy=*/*")):
        rel = f.relative_to(results).as_posix()
        out[rel] = "present" if f.name == "run.json" else hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def hidden_entries(results: Path) -> list[str]:
    """Hidden files and directories anywhere in RESULTS, the batch lock aside."""
    return sorted(p.relative_to(results).as_posix() for p in results.rglob(".*")
                  if p.name != ".batch.lock")
