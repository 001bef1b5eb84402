"""A run as Chrome JSON trace events, the format ui.perfetto.dev and chrome://tracing open.

For each policy of the run, three processes:

- ``<policy>: CPUs``, a thread per CPU: each flush round as a slice on its initiator (``flush
  round``: pages, IPIs sent and useful in its args), each stalled access as a slice on the
  stalled CPU (``stall``, from the access to the page's remap);
- ``<policy>: migration calls``, a thread per call (``req_id``): each batch as a slice with its
  phases (``unmap``, ``flush``, ``copy``, ``remap``, ``other``) nested in it, laid end to end in
  that order from the batch's start, and ``first page usable`` as an instant at its
  ``first_remap_ns``;
- ``<policy>: counters``: ``pages unmapped``, the pages between unmap and remap at each moment.

Timestamps (``ts``, ``dur``) are in microseconds, as the format has them; every event keeps
its nanoseconds in ``args`` (``ts_ns``, ``dur_ns``). A big run is cut to ``max_events``: the
earliest events by time are kept, and :class:`Exported` says what was left out.

The event tables count the IPIs of a round but do not name the CPUs that took them, so IPI
handling is not drawn on the targets' tracks: each round's args hold its targets, and
``cpu_stats.irq_ns`` the time each CPU spent handling them.
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tracereplay.errors import BadInputError
from tracereplay.query import connect

__all__ = ["DEFAULT_MAX_EVENTS", "Exported", "export_perfetto", "trace_events"]

DEFAULT_MAX_EVENTS = 1_000_000
"""Events kept by default: ui.perfetto.dev opens about this many JSON events comfortably."""

_PHASES = ("unmap", "flush", "copy", "remap", "other")


@dataclass(frozen=True, slots=True)
class Exported:
    """What an export wrote: events kept, events cut by kind, and the time the cut falls at."""

    path: str
    events: int
    cut: dict[str, int]
    cut_after_ns: int | None


def _us(ns: int | float) -> float:
    return ns / 1000.0


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def trace_events(run_dir: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(metadata events, timed events sorted by time) of a run directory."""
    con = connect(run_dir, views=[])
    try:
        policies = [r["policy"] for r in _rows(con, "SELECT DISTINCT policy FROM batches "
                                                    "UNION SELECT DISTINCT policy FROM cpu_stats "
                                                    "ORDER BY 1")]
        if _rows(con, "SELECT count(DISTINCT trace) AS n FROM batches")[0]["n"] > 1:
            raise BadInputError(f"{run_dir}: export one run at a time, not a corpus or a sweep")
        meta: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for i, policy in enumerate(policies):
            cpus_pid, calls_pid, counters_pid = 3 * i + 1, 3 * i + 2, 3 * i + 3
            for pid, what in ((cpus_pid, "CPUs"), (calls_pid, "migration calls"),
                              (counters_pid, "counters")):
                meta.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                             "args": {"name": f"{policy}: {what}"}})
                meta.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                             "args": {"sort_index": pid}})
            q = policy.replace("'", "''")
            for r in _rows(con, f"SELECT cpu FROM cpu_stats WHERE policy = '{q}' UNION "
                                f"SELECT cpu FROM flushes WHERE policy = '{q}' UNION "
                                f"SELECT cpu FROM stalls WHERE policy = '{q}' ORDER BY 1"):
                meta.append({"ph": "M", "name": "thread_name", "pid": cpus_pid, "tid": r["cpu"],
                             "args": {"name": f"CPU {r['cpu']}"}})
            for r in _rows(con, f"SELECT flush_id, ts_ns, end_ns, cpu, req_id, batch_id, pages, "
                                f"targets, targets_holding, cost_ns, reason_name FROM flushes "
                                f"WHERE policy = '{q}' ORDER BY ts_ns, flush_id"):
                dur = (r["end_ns"] - r["ts_ns"]) if r["end_ns"] is not None else 0
                events.append({"ph": "X", "cat": "flush", "name": "flush round",
                               "ts": _us(r["ts_ns"]), "dur": _us(dur), "pid": cpus_pid,
                               "tid": r["cpu"], "args": {**r, "dur_ns": dur}})
            for r in _rows(con, f"SELECT ts_ns, cpu, pid, vpn, stall_ns, batch_id, req_id "
                                f"FROM stalls WHERE policy = '{q}' ORDER BY ts_ns, cpu"):
                events.append({"ph": "X", "cat": "stall", "name": "stall", "ts": _us(r["ts_ns"]),
                               "dur": _us(r["stall_ns"]), "pid": cpus_pid, "tid": r["cpu"],
                               "args": {**r, "dur_ns": r["stall_ns"]}})
            calls = set()
            for r in _rows(con, f"SELECT batch_id, req_id, cpu, kind, pages, nr_succeeded, "
                                f"start_ns, end_ns, unmap_ns, flush_ns, copy_ns, remap_ns, "
                                f"other_ns, first_remap_ns FROM batches WHERE policy = '{q}' "
                                f"ORDER BY start_ns, batch_id"):
                tid = -1 if r["req_id"] is None else int(r["req_id"])
                calls.add(tid)
                end = r["end_ns"] if r["end_ns"] is not None else r["start_ns"]
                events.append({"ph": "X", "cat": "batch", "name": f"batch {r['batch_id']}",
                               "ts": _us(r["start_ns"]), "dur": _us(end - r["start_ns"]),
                               "pid": calls_pid, "tid": tid,
                               "args": {**r, "ts_ns": r["start_ns"], "dur_ns": end - r["start_ns"]}})
                t = r["start_ns"]
                for p in _PHASES:
                    d = r[f"{p}_ns"]
                    if d:
                        events.append({"ph": "X", "cat": "phase", "name": p, "ts": _us(t),
                                       "dur": _us(d), "pid": calls_pid, "tid": tid,
                                       "args": {"batch_id": r["batch_id"], "ts_ns": t, "dur_ns": d}})
                        t += d
                if r["first_remap_ns"] is not None:
                    events.append({"ph": "i", "s": "t", "cat": "batch",
                                   "name": "first page usable", "ts": _us(r["first_remap_ns"]),
                                   "pid": calls_pid, "tid": tid,
                                   "args": {"batch_id": r["batch_id"],
                                            "ts_ns": r["first_remap_ns"]}})
            for tid in sorted(calls):
                meta.append({"ph": "M", "name": "thread_name", "pid": calls_pid, "tid": tid,
                             "args": {"name": f"call {tid}" if tid >= 0 else "call ?"}})
            events += _unmapped_counter(con, q, counters_pid)
    finally:
        con.close()
    events.sort(key=lambda e: (e["ts"], e["pid"], e.get("tid", 0)))
    return meta, events


def _unmapped_counter(con: Any, policy_sql: str, pid: int) -> list[dict[str, Any]]:
    """``pages unmapped`` at each time it changes: +1 at a page's unmap, -1 at its remap."""
    got = con.execute(
        f"SELECT unmap_ns, remap_ns FROM migrations WHERE policy = '{policy_sql}' "
        f"AND status = 'migrated' AND unmap_ns IS NOT NULL AND remap_ns IS NOT NULL").fetchnumpy()
    if not len(got["unmap_ns"]):
        return []
    t = np.concatenate([np.asarray(got["unmap_ns"], np.int64), np.asarray(got["remap_ns"], np.int64)])
    step = np.concatenate([np.ones(len(got["unmap_ns"]), np.int64),
                           -np.ones(len(got["remap_ns"]), np.int64)])
    order = np.lexsort((step, t))  # at one time, remaps (-1) before unmaps
    t, level = t[order], np.cumsum(step[order])
    last = np.ones(len(t), bool)
    last[:-1] = t[1:] != t[:-1]  # one value per time: the level after its last change
    return [{"ph": "C", "name": "pages unmapped", "ts": _us(int(ts)), "pid": pid, "tid": 0,
             "args": {"pages": int(v)}} for ts, v in zip(t[last], level[last], strict=True)]


def export_perfetto(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], *,
                    max_events: int = DEFAULT_MAX_EVENTS) -> Exported:
    """Write the run as trace events to ``out`` (``.json``, or gzip-compressed ``.json.gz``),
    at most ``max_events`` timed events, the earliest; whole or not at all."""
    if max_events < 1:
        raise BadInputError(f"--max-events must be at least 1: {max_events}")
    target = Path(out)
    if not (target.name.endswith(".json") or target.name.endswith(".json.gz")):
        raise BadInputError(f"{out}: the output must end in .json or .json.gz")
    meta, events = trace_events(run_dir)
    cut: dict[str, int] = {}
    cut_after = None
    if len(events) > max_events:
        dropped = events[max_events:]
        cut = dict(Counter(e["name"] if e["ph"] != "X" or e["cat"] in ("flush", "stall")
                           else e["cat"] for e in dropped))
        cut_after = round(events[max_events - 1]["ts"] * 1000)
        events = events[:max_events]
    body = {"traceEvents": meta + events, "displayTimeUnit": "ns",
            "otherData": {"source": str(run_dir), "tool": "tracereplay export perfetto",
                          "cut": cut}}
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        if target.name.endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return Exported(str(target), len(events), cut, cut_after)
