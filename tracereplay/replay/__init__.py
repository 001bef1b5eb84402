"""Replay a trace under migration policies and write their event tables.

``run(trace_path, out_dir)`` reads the trace once: each row group is validated, taken by the
pre-pass and replayed by every policy (``pipeline``), so memory holds the pages and the calls
in flight, not the trace. Event tables are written as they are produced, into
``out_dir/policy=<name>/``, under a temporary name until the policy's run is complete.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracereplay import __version__
from tracereplay import events as ev
from tracereplay import migrate as mig
from tracereplay import trace as tr
from tracereplay.config import Profile, load_profile
from tracereplay.metrics import summarise
from tracereplay.migrate import DEFAULT_POLICIES
from tracereplay.prepass import PrePass
from tracereplay.replay import tables
from tracereplay.replay._machine import check as check_machine
from tracereplay.replay._machine import check_distances
from tracereplay.replay.outdir import check_out_dir, check_siblings

Progress = Callable[[int, int], None]

__all__ = ["DEFAULT_POLICIES", "PolicyResult", "run"]


@dataclass
class PolicyResult:
    """What one policy's replay produced: summary metrics and where its tables are."""

    policy: str
    path: Path
    metrics: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    kernel_s: float = 0.0  # time in the compiled kernel


def run(
    trace_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    policies: Sequence[str] = DEFAULT_POLICIES,
    profile: Profile | None = None,
    force: bool = False,
    emit_accesses: bool = False,
    progress: Progress | None = None,
    closed_loop: bool = False,
) -> list[PolicyResult]:
    """Replay ``trace_path`` under each policy; write ``out_dir/policy=<name>/``.

    ``closed_loop``: a stalled access delays the later accesses of its CPU by its wait
    (docs/model.md); off, trace times are never delayed.

    ``progress(done, total)`` is called as rows are read and replayed (``done`` of the file's
    ``total`` rows, never falling)."""
    t0 = time.perf_counter()
    profile = profile or load_profile()
    if isinstance(policies, str):
        policies = [policies]
    policies = list(dict.fromkeys(policies))
    for name in policies:
        mig.policy(name)  # unknown names fail before any work
    out = Path(out_dir)
    created = check_out_dir(out, policies, force)
    try:
        return _run(trace_path, out, policies, profile, force, emit_accesses, progress, t0,
                    closed_loop)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # leave nothing behind where there was nothing
        raise


def _run(trace_path: str | os.PathLike[str], out: Path, policies: list[str], profile: Profile,
         force: bool, emit_accesses: bool, progress: Progress | None,
         t0: float, closed_loop: bool = False) -> list[PolicyResult]:
    from tracereplay.replay.pipeline import Lane, replay_groups

    reader = tr.TraceReader(trace_path, machine=profile.machine.machine(), summarise=False)
    notes = ([] if reader.file_machine is None
             else check_machine(profile, reader.file_machine, str(trace_path)))
    check_distances(profile, reader.machine.nodes, str(trace_path))
    window = profile.flush.mm_cpumask == "window"
    pre = PrePass(reader.pages, active_bin_ns=max(1, profile.flush.mm_cpumask_window_ns // 16) if window else 0,
                  writes=any(mig.policy(name).horizon is not None for name in policies))
    check_siblings(out, policies, None, profile.to_dict(), force)
    # A policy's directory appears only at its commit; an error removes every uncommitted one.
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(ev.PolicyRunWriter(out, name, force=force))
                   for name in policies]
        lanes = [Lane(pre, profile, name, w, emit=emit_accesses, closed_loop=closed_loop)
                 for name, w in zip(policies, writers, strict=True)]
        for lane in lanes:
            stack.callback(lane.close)
        replay_groups(reader, pre, lanes, progress)
        sha = reader.sha256
        trace = reader.trace()
        check_siblings(out, policies, sha, profile.to_dict(), force)
        results = []
        for lane in lanes:
            name, planner, state, w = lane.planner.policy, lane.planner, lane.state, lane.sink.w
            w.write("cpu_stats", tables.cpu_stats_table(state))
            w.close_tables()
            metrics = summarise(w.tmp)
            metrics["migrate_calls"] = planner.calls
            metrics["empty_calls"] = planner.empty_calls
            manifest = {
                "tool": "tracereplay", "tool_version": __version__,
                "trace": {"path": str(trace.path.resolve()), "sha256": sha,
                          "rows": trace.num_rows, "machine": trace.machine.to_dict(),
                          "machine_from_file": trace.machine_from_file},
                "config": profile.to_dict(),
                "policy": name,
                "closed_loop": closed_loop,
                "summary": metrics,
                "skipped": {"absent_pages": planner.absent_pages,
                            "busy_pages": planner.skipped_busy,
                            "pages_on_dst": planner.skipped_on_dst},
                "wall_s": round(time.perf_counter() - t0, 3),
            }
            if notes:
                manifest["notes"] = notes
            path = w.commit(manifest)
            results.append(PolicyResult(policy=name, path=path, metrics=metrics,
                                        counts=w.counts, kernel_s=state.kernel_s))
        return results

