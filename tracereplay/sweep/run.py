"""A sweep from start to end, on the batch machinery: each grid point is a batch results
directory under the sweep's, and the work items of all points run on one executor."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay.batch.corpus import Corpus, discover
from tracereplay.batch.executors import dask_executor, local_executor
from tracereplay.batch.run import _check_policies, check_executor
from tracereplay.batch.store import FAILURES_NAME, FAILURES_SCHEMA, Results, empty_dir, locked
from tracereplay.batch.work import ResultRecord, WorkItem, plan, replay_item
from tracereplay.config import DEFAULT_PROFILE, Profile
from tracereplay.errors import BadInputError
from tracereplay.sweep.grid import Axis, Point, grid, point_profiles

__all__ = ["SWEEP_JSON", "SweepSummary", "read_sweep", "run_sweep"]

SWEEP_JSON = "sweep.json"
SCHEMA = "sweep/1"

# _failures.parquet of a sweep: the batch's columns after the point's partition path.
SWEEP_FAILURES_SCHEMA = pa.schema(
    [pa.field("point", pa.string(), nullable=False,
              metadata={"doc": "grid point: its partition path (migrate_batch_size=8)"}),
     *FAILURES_SCHEMA],
    metadata={"tracereplay.schema": "sweep-failures/1"})


@dataclass
class SweepSummary:
    """What a sweep did: results written, skipped (already complete) and failed."""

    out: str
    points: int
    traces: int
    policies: tuple[str, ...]
    ok: int = 0
    skipped: int = 0
    failures: list[ResultRecord] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "points": self.points, "traces": self.traces,
                "policies": list(self.policies), "ok": self.ok, "skipped": self.skipped,
                "failed": self.failed, "wall_s": self.wall_s}


def _corpus(traces: Sequence[str | os.PathLike[str]]) -> Corpus:
    """The traces of every argument (each a trace, directory, glob or list, as for batch)."""
    if not traces:
        raise BadInputError("sweep: give at least one trace")
    found = [discover(t) for t in traces]
    if len(found) == 1:
        return found[0]
    refs = {r.path: r for c in found for r in c.traces}
    ids: dict[str, str] = {}
    for r in refs.values():
        if r.id in ids:
            raise BadInputError(f"traces {ids[r.id]} and {r.path} get the same id {r.id}; "
                                "rename one of them")
        ids[r.id] = r.path
    return Corpus(os.path.commonpath([c.root for c in found]),
                  tuple(sorted(refs.values(), key=lambda r: r.path)))


def _replay_point(item: WorkItem, *, root: str, profiles: dict[str, Profile],
                  scratch: str | None) -> list[ResultRecord]:
    """Replay one item of one point into that point's results directory."""
    return replay_item(item, results=f"{root}/{item.point}", profile=profiles[item.point],
                       scratch=scratch)


def read_sweep(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``OUT/sweep.json``, or None where there is none."""
    path = Path(out) / SWEEP_JSON
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInputError(f"{path}: cannot read it: {e}") from None
    if not isinstance(body, dict) or body.get("schema") != SCHEMA:
        raise BadInputError(f"{path}: not a tracereplay sweep ({SCHEMA})")
    return body


def _write_json(path: Path, body: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _sweep_json(old: dict[str, Any] | None, axes: Sequence[Axis], points: Sequence[Point],
                policies: Sequence[str], profile: str, sets: Sequence[str],
                config_file: str | None, corpus: Corpus) -> dict[str, Any]:
    """The grid of this sweep merged with the one already in OUT (same keys only)."""
    keys = [a.key for a in axes]
    if old is not None and [k["key"] for k in old.get("keys", [])] != keys:
        raise BadInputError(
            f"the sweep there varies {[k['key'] for k in old.get('keys', [])]}, this one {keys}: "
            "write to another -o")
    values = {a.key: list(a.values) for a in axes}
    old_points = [] if old is None else old.get("points", [])
    for k in old.get("keys", []) if old else []:
        values[k["key"]] = list(dict.fromkeys([*k["values"], *values[k["key"]]]))
    by_path = {p["path"]: p for p in old_points}
    for pt in points:
        by_path.setdefault(pt.path, {"path": pt.path, "values": dict(pt.values)})
    traces = {t["id"]: t for t in (old or {}).get("traces", [])}
    for t in corpus.traces:
        traces[t.id] = {"id": t.id, "path": t.path}
    return {
        "schema": SCHEMA,
        "keys": [{"key": k, "column": a.column, "values": values[k]}
                 for k, a in zip(keys, axes, strict=True)],
        "points": list(by_path.values()),
        "traces": sorted(traces.values(), key=lambda t: t["id"]),
        "policies": list(dict.fromkeys([*(old or {}).get("policies", []), *policies])),
        "profile": profile,
        "set": list(sets),
        "config_file": config_file,
        "layout": "<column>=<value>/.../trace=<id>/policy=<name>/<table>.parquet",
    }


def _update_failures(root: Path, attempted: set[tuple[str, str, str]],
                     failures: Sequence[ResultRecord], complete: set[tuple[str, str, str]]) -> None:
    """Rewrite OUT/_failures.parquet: old rows not attempted again and still without a result,
    plus this sweep's failures, sorted (the batch's rule, with the point as a key)."""
    path = root / FAILURES_NAME
    old: list[dict[str, Any]] = []
    if path.is_file():
        with contextlib.suppress(OSError, KeyError, ValueError, pa.ArrowException):
            old = pq.read_table(path).select(SWEEP_FAILURES_SCHEMA.names).to_pylist()
    rows = [r for r in old if (r["point"], r["trace"], r["policy"]) not in attempted
            and (r["point"], r["trace"], r["policy"]) not in complete]
    rows += [{"point": r.point, "trace": r.trace, "policy": r.policy, "path": r.path,
              "error_class": r.error_class or "", "message": r.message or ""} for r in failures]
    rows.sort(key=lambda r: (r["point"], r["trace"], r["policy"]))
    tmp = root / f".{FAILURES_NAME}.tmp-{uuid.uuid4().hex[:8]}"
    pq.write_table(pa.Table.from_pylist(rows, schema=SWEEP_FAILURES_SCHEMA), tmp)
    os.replace(tmp, path)


def run_sweep(
    traces: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    axes: Sequence[Axis],
    *,
    policies: Sequence[str],
    profile: str = DEFAULT_PROFILE,
    config_file: str | None = None,
    sets: Sequence[str] = (),
    jobs: int | None = None,
    force: bool = False,
    executor: str = "local",
    scheduler: str | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[ResultRecord], None] | None = None,
) -> SweepSummary:
    """Replay ``traces`` under ``policies`` at every point of the grid of ``axes`` into
    ``out``: ``out/<column>=<value>/.../trace=<id>/policy=<name>/`` (each point a batch
    results directory), ``out/sweep.json`` and ``out/_failures.parquet``.

    Every point's configuration is checked before any work; complete results are skipped
    (``force`` redoes them); a trace that fails is recorded, not raised.
    """
    t0 = time.perf_counter()
    jobs = check_executor(executor, scheduler, jobs)
    points = grid(axes)
    profiles = point_profiles(points, profile, config_file=config_file, sets=sets)
    names = _check_policies(policies)
    corpus = _corpus(traces)
    root = Path(out).resolve()
    if root.exists() and not root.is_dir():
        raise BadInputError(f"{out} exists and is not a directory")
    old = read_sweep(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInputError(f"cannot create {out}: {e.strerror or e}") from None
    body = _sweep_json(old, axes, points, names, profile, sets, config_file, corpus)
    summary = SweepSummary(out=str(root), points=len(points), traces=len(corpus.traces),
                           policies=names)
    store = Results(root)
    with locked(store):
        # Every point's results are checked against its configuration before any replay.
        items: list[WorkItem] = []
        for pt in points:
            todo, skipped = plan(corpus, Results(root / pt.path), names, force=force,
                                 config=profiles[pt.path].to_dict())
            items += [replace(i, point=pt.path) for i in todo]
            summary.skipped += skipped
        items.sort(key=lambda i: -i.trace.size)
        _write_json(root / SWEEP_JSON, body)
        scratch_dir = store.scratch_dir()
        empty_dir(scratch_dir)  # leftovers of a killed sweep
        if on_start is not None:
            on_start(sum(len(i.policies) for i in items), summary.skipped)
        replay = functools.partial(_replay_point, root=str(root), profiles=profiles,
                                   scratch=str(scratch_dir))
        runner = (dask_executor(jobs, scheduler, replay) if executor == "dask"
                  else local_executor(jobs, replay))
        attempted: set[tuple[str, str, str]] = set()
        try:
            for records in runner(items) if items else ():
                for rec in records:
                    attempted.add((rec.point, rec.trace, rec.policy))
                    if rec.status == "ok":
                        summary.ok += 1
                    else:
                        summary.failures.append(rec)
                    if on_result is not None:
                        on_result(rec)
        finally:
            complete = {(pt.path, t, p) for pt in points
                        for t, p in Results(root / pt.path).complete()}
            _update_failures(root, attempted, summary.failures, complete)
            empty_dir(scratch_dir)
            with contextlib.suppress(OSError):
                scratch_dir.rmdir()
            summary.wall_s = round(time.perf_counter() - t0, 3)
    return summary
