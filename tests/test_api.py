"""The front door: everything a user needs is importable from ``tracereplay``."""

from __future__ import annotations

from pathlib import Path

import tracereplay as tr


def test_every_public_name_resolves() -> None:
    missing = [name for name in tr.__all__ if getattr(tr, name, None) is None]
    assert missing == []


def test_load_replay_and_query_through_the_front_door(tiny_trace: Path, tmp_path: Path) -> None:
    trace = tr.load_trace(tiny_trace)
    assert trace.num_rows == 13
    results = tr.replay_trace(tiny_trace, tmp_path / "run",
                              profile=tr.load_profile(overrides=["batch_size=1"]))
    assert [r.policy for r in results] == ["serial", "batched"]
    table = tr.run_query("flush_counts", [tmp_path / "run"])
    assert sorted(table.column("policy").to_pylist()) == ["batched", "serial"]
