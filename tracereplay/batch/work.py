"""The work of a batch: which (trace, policies) items are to do, one item replayed and its
results published, and the record of how each (trace, policy) went."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tracereplay.batch._urls import filesystem, is_url
from tracereplay.batch.corpus import Corpus, TraceRef
from tracereplay.batch.store import Results, check_config
from tracereplay.config import Profile

__all__ = ["ResultRecord", "WorkItem", "plan", "replay_item"]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One trace and the policies to replay it under (those whose results are missing); in a
    sweep, ``point`` is the grid point's partition path (``migrate_batch_size=8``)."""

    trace: TraceRef
    policies: tuple[str, ...]
    point: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultRecord:
    """How one (trace, policy) went: ``ok`` with its metrics, or ``failed`` with the error."""

    trace: str
    policy: str
    path: str
    status: str
    output: str | None = None
    error_class: str | None = None
    message: str | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mib: float | None = None
    metrics: dict[str, Any] | None = None
    point: str = ""  # the sweep's grid point (WorkItem.point)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"trace": self.trace, "policy": self.policy,
                                "status": self.status, "path": self.path}
        if self.point:
            body["point"] = self.point
        if self.status == "ok":
            body["output"] = self.output
            body["metrics"] = self.metrics
        else:
            body["error_class"] = self.error_class
            body["message"] = self.message
        body["wall_s"] = self.wall_s
        body["cpu_s"] = self.cpu_s
        body["peak_rss_mib"] = self.peak_rss_mib
        return body


def plan(corpus: Corpus, results: Results, policies: Sequence[str], *, force: bool = False,
         config: dict[str, Any] | None = None) -> tuple[list[WorkItem], int]:
    """The work items of a batch (largest traces first) and how many results are skipped.

    With ``config`` (a profile's ``to_dict()``), results made with another configuration are
    an error, unless ``force`` replaces them all: one RESULTS holds one configuration.
    """
    complete = results.complete()
    done = set() if force else complete
    wanted = {(t.id, p) for t in corpus.traces for p in policies}
    if config is not None:
        check_config(results, sorted(complete - wanted if force else complete), config,
                     fixable=lambda pair: pair in wanted)
    items = []
    skipped = 0
    for t in corpus.traces:
        todo = tuple(p for p in policies if (t.id, p) not in done)
        skipped += len(policies) - len(todo)
        if todo:
            items.append(WorkItem(t, todo))
    # Largest first: the long ones start early, so the workers finish together.
    items.sort(key=lambda i: -i.trace.size)
    return items, skipped


def _peak_rss_mib() -> float | None:
    """This process's peak resident memory so far, MiB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:
        return None
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024, 1)  # Linux reports KiB


def failed(item: WorkItem, error: BaseException | tuple[str, str], wall_s: float = 0.0,
           policies: Sequence[str] | None = None) -> list[ResultRecord]:
    """The records of ``item``'s policies (or of ``policies``) failed with ``error``, an
    exception or its (class name, message)."""
    cls, msg = error if isinstance(error, tuple) else (type(error).__name__, str(error))
    return [ResultRecord(trace=item.trace.id, policy=p, path=item.trace.path, status="failed",
                         error_class=cls, message=msg or cls, wall_s=wall_s,
                         peak_rss_mib=_peak_rss_mib(), point=item.point)
            for p in (item.policies if policies is None else policies)]


def _fetch(url: str, directory: Path, storage_options: dict[str, Any] | None) -> Path:
    fs, path = filesystem(url, storage_options)
    local = directory / PurePosixPath(path).name
    fs.get_file(path, str(local))
    return local


def replay_item(item: WorkItem, results: str, profile: Profile, scratch: str | None = None,
                storage_options: dict[str, Any] | None = None) -> list[ResultRecord]:
    """Replay one trace under its policies and publish each result; never raises.

    Runs in a worker. ``scratch`` is a directory on the file system of ``results`` (local
    results), or None (a private temporary directory, for object storage).
    """
    from tracereplay import replay  # the engine loads in the worker, not in the driver

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        store = Results(results, storage_options=storage_options)
        with tempfile.TemporaryDirectory(prefix="item-", dir=scratch) as tmp:
            work = Path(tmp)
            trace_path = _fetch(item.trace.path, work, storage_options) if is_url(item.trace.path) \
                else item.trace.path
            runs = replay.run(trace_path, work / "out", policies=item.policies, profile=profile)
            wall = round(time.perf_counter() - t0, 3)
            cpu = round(time.process_time() - c0, 3)
            records = []
            for r in runs:
                try:
                    output = store.publish(Path(r.path), item.trace.id, r.policy,
                                           Path(scratch) if scratch else None)
                except Exception as e:
                    records += failed(item, e, wall, [r.policy])
                    continue
                records.append(ResultRecord(
                    trace=item.trace.id, policy=r.policy, path=item.trace.path, status="ok",
                    output=output, wall_s=wall, cpu_s=cpu, peak_rss_mib=_peak_rss_mib(),
                    metrics=r.metrics, point=item.point))
            return records
    except Exception as e:  # a bad trace, or a bug: either way, this trace only
        return failed(item, e, round(time.perf_counter() - t0, 3))
