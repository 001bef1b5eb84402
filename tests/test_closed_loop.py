"""Closed-loop replay: a stall delays the later accesses of its CPU (docs/model.md).

Hand costs (tests/replay_helpers.py: other 0, unmap 100, IPI round 500, invlpg 10, copy 1000,
remap 100), batched policy, pid 1 on an 8-CPU, 2-node machine (CPUs 0-3 on node 0).

Call 7, CPU 0 at 1000, pages 10 and 11 (CPU 0 and 1 in mm_cpumask; CPU 0 invalidates locally):

    unmap 10 at 1100, 11 at 1200; round 1200..1720 (2 x 10 + 500); copy 10 1720..2720, remap at
    2820; copy 11 2820..3820, remap at 3920.

Call 8, CPU 2 (never ran pid 1: no local invalidation) at 1500, pages 20, 21, 22:

    unmaps at 1600, 1700, 1800; round 1800..2300 (500); remaps at 2300 + 1100 k: 3400, 4500, 5600.

CPU 1 walks into page 11's migration entry at 1300 and waits to 3920: a stall of 2620 ns, which
starts while call 8 has not started yet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import reference
from replay_helpers import (
    HAND_COSTS,
    access,
    all_ops,
    hand_profile,
    kernel_setup,
    migrate_pages,
    run_kernel,
    write_trace,
)
from typer.testing import CliRunner

from tracereplay.cli import app
from tracereplay.machine import Machine
from tracereplay.replay import run

MACHINE = Machine.spread(8, 2)
FIRST_STALL = 3920 - 1300  # CPU 1 on page 11


def _trace(tmp_path: Path, call8_ns: int, *extra: dict) -> Path:
    rows = [access(0, 1, 10), access(1, 0, 11), access(2, 3, 20), access(3, 3, 21),
            access(4, 3, 22), *migrate_pages(1_000, 0, [10, 11], 1, req=7),
            access(1_300, 1, 11), *migrate_pages(call8_ns, 2, [20, 21, 22], 1, req=8), *extra]
    return write_trace(tmp_path / "t.parquet", rows, MACHINE)


def _stalls(out: Path) -> list[tuple[int, int, int, int, int]]:
    rows = pq.read_table(out / "policy=batched" / "stalls.parquet").to_pylist()
    return [(s["ts_ns"], s["cpu"], s["vpn"], s["stall_ns"], s["req_id"]) for s in rows]


def _both(trace: Path, tmp_path: Path) -> dict[bool, list[tuple[int, int, int, int, int]]]:
    got = {}
    for closed in (False, True):
        out = tmp_path / f"run-{closed}"
        run(trace, out, policies=["batched"], profile=hand_profile(), closed_loop=closed)
        manifest = json.loads((out / "policy=batched" / "run.json").read_text())
        assert manifest["closed_loop"] is closed
        got[closed] = _stalls(out)
    return got


def test_a_migration_that_starts_during_a_stall_catches_the_delayed_access(tmp_path: Path) -> None:
    """CPU 1 stalls on page 11 (1300..3920), then accesses page 22 at trace time 1550, after call
    8 started (1500) and before it unmaps page 22 (1800).

    Open loop the access is at 1550, before the unmap: a walk, no stall. Closed loop it happens
    at 1550 + 2620 = 4170, inside page 22's window 1800..5600: it stalls 5600 - 4170 = 1430 ns,
    and the stalls row carries the effective time 4170."""
    got = _both(_trace(tmp_path, 1_500, access(1_550, 1, 22)), tmp_path)
    assert got[False] == [(1_300, 1, 11, FIRST_STALL, 7)]
    assert got[True] == [(1_300, 1, 11, FIRST_STALL, 7), (1_550 + FIRST_STALL, 1, 22, 5600 - 4170, 8)]


def test_a_delayed_access_past_the_remap_does_not_stall(tmp_path: Path) -> None:
    """CPU 1 then accesses page 10 at 2000 (window 1100..2820; CPU 1 held 10, but the round
    dropped it at 1720) and page 21 at 2100 (window 1700..4500, never held): open loop both walk
    into their migration entries and stall 2820 - 2000 and 4500 - 2100 ns. Closed loop they
    happen at 2000 + 2620 = 4620 and 2100 + 2620 = 4720, after both remaps: no stall."""
    got = _both(_trace(tmp_path, 1_500, access(2_000, 1, 10), access(2_100, 1, 21)), tmp_path)
    assert got[False] == [(1_300, 1, 11, FIRST_STALL, 7), (2_000, 1, 10, 2820 - 2000, 7),
                          (2_100, 1, 21, 4500 - 2100, 8)]
    assert got[True] == [(1_300, 1, 11, FIRST_STALL, 7)]


def test_a_call_that_starts_after_the_access_is_not_seen_early(tmp_path: Path) -> None:
    """The rule's limit: call 8 starting at 1560, after the access's trace time 1550, is not seen
    by it, although its window of page 22 (1860..5660) covers the effective time 4170."""
    got = _both(_trace(tmp_path, 1_560, access(1_550, 1, 22)), tmp_path)
    assert got[False] == got[True] == [(1_300, 1, 11, FIRST_STALL, 7)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_kernel_matches_reference_on_the_hand_traces(tmp_path: Path, chunk: int) -> None:
    """The compiled kernel agrees with the reference model on the traces above, in any chunks
    (a window seen ahead of the kernel's position included)."""
    profile = hand_profile()
    extras = [(1_500, [access(1_550, 1, 22)]), (1_560, [access(1_550, 1, 22)]),
              (1_500, [access(2_000, 1, 10), access(2_100, 1, 21), access(2_200, 1, 20)])]
    for n, (call8, extra) in enumerate(extras):
        d = tmp_path / str(n)
        d.mkdir()
        pre, planner, acc = kernel_setup(_trace(d, call8, *extra), profile, "batched")
        got = run_kernel(pre, profile, planner, acc, chunk, closed_loop=True)
        buffer, masks = all_ops(pre, profile, "batched")
        want = reference.replay(pre, profile, buffer, masks, *acc, closed_loop=True)
        assert got["stalls"] == want.stalls
        assert got["stalls_at"] == want.stalls_at
        assert got["outcomes"] == want.outcomes
        assert got["stats"].tolist() == [list(s.values()) for s in want.stats]


def test_cli_closed_loop_says_its_mode(tmp_path: Path) -> None:
    trace = _trace(tmp_path, 1_500, access(1_550, 1, 22))
    for flag, closed in (([], False), (["--closed-loop"], True)):
        out = tmp_path / f"cli-{closed}"
        sets = [a for kv in HAND_COSTS for a in ("--set", kv)]
        r = CliRunner().invoke(app, ["replay", str(trace), "-o", str(out), "-p", "batched",
                                     "--json", *sets, *flag])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["closed_loop"] is closed
        assert len(_stalls(out)) == 1 + closed
