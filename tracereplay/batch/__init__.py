"""Replay a corpus of traces: parallel, resumable, one result per trace and policy.

``run_batch(corpus, results)`` finds the traces of ``corpus`` (a directory, a glob, a file listing
paths, or one trace), and replays each one under each policy into::

    RESULTS/trace=<id>/policy=<name>/{flushes,migrations,batches,stalls,cpu_stats}.parquet + run.json
    RESULTS/_failures.parquet      one row per (trace, policy) that failed: trace, policy, path,
                                   error_class, message

``<id>`` is the trace's file stem and 8 hex digits of the SHA-256 of its path relative to the
corpus root (:func:`trace_id`): stable across runs and machines, unique within a corpus, and
readable.

**Resumable.** A result is written whole in a scratch directory and renamed into place; its
``run.json`` is written last, so a ``policy=<name>/`` directory with ``run.json`` is complete.
A rerun skips complete results (``force`` redoes them) and retries failed ones. The scratch
directory is ``.<RESULTS name>.scratch/`` beside ``RESULTS`` (same file system, so the rename is
atomic), or ``RESULTS/.scratch/`` when the parent cannot hold it; it is emptied when a batch starts.
Only one batch writes to a local ``RESULTS`` at a time (``RESULTS/.batch.lock``).

**Object storage.** ``RESULTS`` may be a URL (``s3://bucket/prefix``, through fsspec). Each table
is uploaded whole (an object store shows an object complete or not at all) and ``run.json`` last.
Object stores have no rename: while a result uploads, some of its tables exist without its
``run.json``; a rerun replaces such partial results.

**Executors.** ``local`` runs a pool of ``jobs`` worker processes; ``dask`` runs the same work on a
Dask distributed cluster (``scheduler`` address, or a local cluster of ``jobs`` workers), which
needs the ``dask`` extra, the traces and ``RESULTS`` reachable from every worker under the same
names.

The modules: ``corpus`` finds the traces and gives their ids; ``store`` is where results go and
how they are committed, the lock and ``_failures.parquet``; ``work`` plans the items and replays
one; ``executors`` run the items (local processes, Dask); ``run`` is :func:`run_batch`.
"""

from __future__ import annotations

from tracereplay.batch.corpus import Corpus, TraceRef, discover, trace_id
from tracereplay.batch.executors import EXECUTORS
from tracereplay.batch.run import BatchSummary, run_batch
from tracereplay.batch.store import FAILURES_NAME, Results, read_failures
from tracereplay.batch.work import ResultRecord, WorkItem, plan, replay_item

__all__ = [
    "EXECUTORS",
    "FAILURES_NAME",
    "BatchSummary",
    "Corpus",
    "ResultRecord",
    "Results",
    "TraceRef",
    "WorkItem",
    "discover",
    "plan",
    "read_failures",
    "replay_item",
    "run_batch",
    "trace_id",
]
