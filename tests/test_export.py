"""tracereplay export perfetto: Chrome JSON trace events, checked against the format and, on a
hand-written run, event by event."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from golden.build import build_runs

from tracereplay.errors import BadInputError
from tracereplay.export import export_perfetto
from tracereplay.generate.corpus import write_corpus
from tracereplay.query import run_query
from tracereplay.replay import run as replay


def _events(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    body = json.loads(raw)
    assert body["displayTimeUnit"] == "ns"
    return body["traceEvents"]


def _check_format(events: list[dict[str, Any]]) -> None:
    """Every event as the trace-event format wants it (phase, names, ids, µs times)."""
    for e in events:
        assert e["ph"] in {"X", "i", "C", "M"}, e
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "M":
            assert e["name"] in {"process_name", "thread_name", "process_sort_index"}
            continue
        assert isinstance(e["ts"], int | float) and e["ts"] >= 0
        if e["ph"] == "X":
            assert e["dur"] >= 0
            assert e["dur"] == pytest.approx(e["args"]["dur_ns"] / 1000)
        if e["ph"] in ("X", "i"):
            assert e["ts"] == pytest.approx(e["args"]["ts_ns"] / 1000)
        if e["ph"] == "i":
            assert e["s"] == "t"
        if e["ph"] == "C":
            assert all(isinstance(v, int) for v in e["args"].values())
    timed = [e["ts"] for e in events if e["ph"] != "M"]
    assert timed == sorted(timed)


@pytest.fixture(scope="module")
def seed_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_runs("seed_small", tmp_path_factory.mktemp("export")) / "run"


def test_the_hand_written_batched_call_exports_event_by_event(seed_small: Path,
                                                              tmp_path: Path) -> None:
    # tests/test_queries.py draws this run: one batch of 4 pages from 0 to 1630 ns, its round
    # 210-1080 from CPU 0 to CPUs 1 and 2, stalls of CPU 2 at 300 (1300 ns), CPU 1 at 500 (840)
    # and at 1000 (600); pages unmapped at 60, 110, 160, 210, remapped at 1210, 1340, 1470, 1600.
    got = export_perfetto(seed_small, tmp_path / "t.json")
    assert (got.cut, got.cut_after_ns) == ({}, None)
    events = _events(tmp_path / "t.json")
    _check_format(events)
    names = {e["args"]["name"]: e["pid"] for e in events if e["name"] == "process_name"}
    cpus, calls, counters = names["batched: CPUs"], names["batched: migration calls"], \
        names["batched: counters"]
    mine = [e for e in events if e["pid"] in (cpus, calls, counters) and e["ph"] != "M"]
    rounds = [(e["tid"], e["ts"], e["dur"], e["args"]["targets"]) for e in mine
              if e["name"] == "flush round"]
    assert rounds == [(0, 0.21, 0.87, 2)]
    stalls = [(e["tid"], e["ts"], e["dur"]) for e in mine if e["name"] == "stall"]
    assert stalls == [(2, 0.3, 1.3), (1, 0.5, 0.84), (1, 1.0, 0.6)]
    phases = [(e["name"], e["ts"], e.get("dur")) for e in mine
              if e.get("cat") in ("batch", "phase")]
    assert phases == [("batch 0", 0.0, 1.63), ("unmap", 0.0, 0.2), ("flush", 0.2, 0.87),
                      ("copy", 1.07, 0.4), ("first page usable", 1.21, None),
                      ("remap", 1.47, 0.12), ("other", 1.59, 0.04)]
    counter = [(e["ts"], e["args"]["pages"]) for e in mine if e["ph"] == "C"]
    assert counter == [(0.06, 1), (0.11, 2), (0.16, 3), (0.21, 4), (1.21, 3), (1.34, 2),
                       (1.47, 1), (1.6, 0)]


def test_a_replayed_run_has_one_slice_per_flush_round_and_per_stall(tmp_path: Path) -> None:
    trace = write_corpus(tmp_path / "c", 1, seed=7, accesses=20_000, max_set_mib=1)[0]
    replay(trace, tmp_path / "run")
    export_perfetto(tmp_path / "run", tmp_path / "t.json.gz")
    events = _events(tmp_path / "t.json.gz")
    _check_format(events)
    pids = {e["args"]["name"]: e["pid"] for e in events if e["name"] == "process_name"}
    flushes = run_query("flush_counts", tmp_path / "run").to_pylist()
    stalls = run_query("page_stall_summary", tmp_path / "run").to_pylist()
    for f, s in zip(flushes, stalls, strict=True):
        cpus = pids[f"{f['policy']}: CPUs"]
        slices = [e for e in events if e["pid"] == cpus and e["ph"] == "X"]
        assert sum(e["name"] == "flush round" for e in slices) == f["flush_rounds"] > 0
        assert sum(e["name"] == "stall" for e in slices) == s["stalls"]


def test_max_events_keeps_the_earliest_and_says_what_was_cut(seed_small: Path,
                                                             tmp_path: Path) -> None:
    got = export_perfetto(seed_small, tmp_path / "t.json", max_events=5)
    events = _events(tmp_path / "t.json")
    timed = [e for e in events if e["ph"] != "M"]
    assert len(timed) == got.events == 5
    full = export_perfetto(seed_small, tmp_path / "all.json")
    assert sum(got.cut.values()) == full.events - 5
    assert got.cut_after_ns == round(timed[-1]["ts"] * 1000)
    r = subprocess.run([sys.executable, "-m", "tracereplay", "export", "perfetto", str(seed_small),
                        "-o", str(tmp_path / "c.json"), "--max-events", "5"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "cut at --max-events 5" in r.stderr


@pytest.mark.parametrize(("name", "kwargs", "says"), [
    ("t.txt", {}, "must end in .json"),
    ("t.json", {"max_events": 0}, "at least 1"),
])
def test_bad_export_options_are_bad_input(seed_small: Path, tmp_path: Path, name: str,
                                          kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(BadInputError, match=says):
        export_perfetto(seed_small, tmp_path / name, **kwargs)
    assert list(tmp_path.iterdir()) == []
