"""A batch from start to end: check the options, find the corpus, lock RESULTS, plan, run the
items on an executor, and record what failed."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracereplay.batch.corpus import Corpus, discover
from tracereplay.batch.executors import EXECUTORS, dask_executor, local_executor
from tracereplay.batch.store import Results, empty_dir, locked
from tracereplay.batch.work import ResultRecord, plan, replay_item
from tracereplay.config import Profile
from tracereplay.errors import BadInputError
from tracereplay.migrate import DEFAULT_POLICIES

__all__ = ["BatchSummary", "check_executor", "run_batch"]


@dataclass
class BatchSummary:
    """What a batch did: results written, skipped (already complete) and failed."""

    results: str
    traces: int
    policies: tuple[str, ...]
    ok: int = 0
    skipped: int = 0
    failures: list[ResultRecord] = field(default_factory=list)
    wall_s: float = 0.0
    peak_rss_mib: float | None = None

    @property
    def failed(self) -> int:
        return len(self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {"results": self.results, "traces": self.traces, "policies": list(self.policies),
                "ok": self.ok, "skipped": self.skipped, "failed": self.failed,
                "wall_s": self.wall_s, "peak_rss_mib": self.peak_rss_mib}


def _check_policies(policies: Sequence[str]) -> tuple[str, ...]:
    from tracereplay import migrate

    names = tuple(dict.fromkeys(policies))
    if not names:
        raise BadInputError("no policy given")
    for n in names:
        migrate.policy(n)  # unknown names fail before any work
    return names


def check_executor(executor: str, scheduler: str | None, jobs: int | None) -> int:
    """Check the executor options (bad input before any work); returns the jobs to run."""
    if executor not in EXECUTORS:
        raise BadInputError(f"executor must be one of {', '.join(EXECUTORS)}: {executor!r}")
    if scheduler and executor != "dask":
        raise BadInputError("--scheduler needs --executor dask")
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise BadInputError(f"jobs must be at least 1: {jobs}")
    return jobs


def run_batch(
    corpus: str | os.PathLike[str] | Corpus,
    results: str | os.PathLike[str],
    *,
    policies: Sequence[str] = DEFAULT_POLICIES,
    profile: Profile | None = None,
    jobs: int | None = None,
    force: bool = False,
    executor: str = "local",
    scheduler: str | None = None,
    storage_options: dict[str, Any] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[ResultRecord], None] | None = None,
) -> BatchSummary:
    """Replay every trace of ``corpus`` under ``policies`` into ``results`` (see
    :mod:`tracereplay.batch`).

    ``storage_options`` go to fsspec for URLs (default: its environment, e.g. ``AWS_*``).
    ``on_start(to_do, skipped)`` is called once the work is planned, ``on_result`` once per
    finished (trace, policy). Bad traces do not raise: they are in the summary's ``failures``
    and in ``RESULTS/_failures.parquet``.
    """
    from tracereplay.config import load_profile

    t0 = time.perf_counter()
    jobs = check_executor(executor, scheduler, jobs)
    names = _check_policies(policies)
    profile = profile or load_profile()
    found = corpus if isinstance(corpus, Corpus) else discover(
        corpus, storage_options=storage_options)
    store = Results(results, storage_options=storage_options)
    if not store.remote:
        try:
            Path(store.path).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BadInputError(f"cannot create {store.url}: {e.strerror or e}") from None
    summary = BatchSummary(results=store.url, traces=len(found.traces), policies=names)
    with locked(store):
        scratch = None
        if not store.remote:
            scratch_dir = store.scratch_dir()
            empty_dir(scratch_dir)  # leftovers of a killed batch
            scratch = str(scratch_dir)
        items, summary.skipped = plan(found, store, names, force=force,
                                      config=profile.to_dict())
        if on_start is not None:
            on_start(sum(len(i.policies) for i in items), summary.skipped)
        replay = functools.partial(replay_item, results=store.url, profile=profile,
                                   scratch=scratch, storage_options=storage_options)
        runner = (dask_executor(jobs, scheduler, replay) if executor == "dask"
                  else local_executor(jobs, replay))
        attempted: set[tuple[str, str]] = set()
        try:
            if items:
                for records in runner(items):
                    for rec in records:
                        attempted.add((rec.trace, rec.policy))
                        if rec.status == "ok":
                            summary.ok += 1
                        else:
                            summary.failures.append(rec)
                        if rec.peak_rss_mib is not None:
                            summary.peak_rss_mib = max(summary.peak_rss_mib or 0.0,
                                                       rec.peak_rss_mib)
                        if on_result is not None:
                            on_result(rec)
        finally:
            store.update_failures(attempted, summary.failures)
            if scratch is not None:
                empty_dir(Path(scratch))
                with contextlib.suppress(OSError):
                    Path(scratch).rmdir()
            summary.wall_s = round(time.perf_counter() - t0, 3)
    return summary
