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
"""

from __future__ import annotations

import contextlib
import glob as globlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay.config import Profile
from tracereplay.errors import BadInputError

__all__ = [
    "EXECUTORS",
    "FAILURES_NAME",
    "BatchSummary",
    "Corpus",
    "ResultRecord",
    "TraceRef",
    "WorkItem",
    "discover",
    "plan",
    "read_failures",
    "replay_item",
    "run_batch",
    "trace_id",
]

EXECUTORS = ("local", "dask")
FAILURES_NAME = "_failures.parquet"
MARKER_NAME = "run.json"
LOCK_NAME = ".batch.lock"
DASK_CONNECT_TIMEOUT = "20s"

FAILURES_SCHEMA = pa.schema([
    pa.field("trace", pa.string(), nullable=False, metadata={"doc": "trace id (trace=<id>/)"}),
    pa.field("policy", pa.string(), nullable=False, metadata={"doc": "migration policy"}),
    pa.field("path", pa.string(), nullable=False, metadata={"doc": "the trace file"}),
    pa.field("error_class", pa.string(), nullable=False,
             metadata={"doc": "class of the error, e.g. TraceFormatError"}),
    pa.field("message", pa.string(), nullable=False, metadata={"doc": "the error's message"}),
], metadata={"tracereplay.schema": "failures/1"})

_GLOB_MAGIC = re.compile(r"[*?\[]")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TRACE_SUFFIX = ".parquet"


# --- corpus ----------------------------------------------------------------------------------


def _is_url(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


def _strip_file_url(text: str) -> str:
    return text[len("file://"):] if text.startswith("file://") else text


@dataclass(frozen=True, slots=True)
class TraceRef:
    """One trace of a corpus: its id, its path (absolute, or a URL) and its size in bytes."""

    id: str
    path: str
    size: int = 0


@dataclass(frozen=True, slots=True)
class Corpus:
    """The traces a corpus names, in path order, and the root their ids are relative to."""

    root: str
    traces: tuple[TraceRef, ...]


def trace_id(path: str, root: str) -> str:
    """``<stem>-<8 hex>``: the file stem and a hash of ``path`` relative to ``root``.

    The stem keeps the id readable; the hash tells apart traces of one stem in different
    sub-directories. Both come from the path relative to the corpus root, so a corpus moved or
    mounted elsewhere keeps its ids. Characters other than letters, digits, ``.``, ``_`` and
    ``-`` become ``_`` (an id is a hive partition value).
    """
    rel = _url_rel(path, root) if _is_url(path) else Path(os.path.relpath(path, root)).as_posix()
    stem = _ID_UNSAFE.sub("_", PurePosixPath(rel).name.removesuffix(_TRACE_SUFFIX)).strip("_")
    digest = hashlib.sha256(rel.encode("utf-8")).hexdigest()[:8]
    return f"{stem or 'trace'}-{digest}"


def _url_rel(path: str, root: str) -> str:
    """``path`` relative to ``root`` for URLs (``s3://b/c/x.parquet`` under ``s3://b/c``)."""
    root = root.rstrip("/")
    return path[len(root) + 1:] if path.startswith(root + "/") else path


def _hidden_or_partition(rel_parts: Iterable[str]) -> bool:
    """A path inside a hidden (``.``/``_``) directory or a hive partition (``key=value``)."""
    return any(p.startswith((".", "_")) or "=" in p for p in rel_parts)


def discover(corpus: str | os.PathLike[str], *,
             storage_options: dict[str, Any] | None = None) -> Corpus:
    """The traces of ``corpus``: a directory, a glob, a file listing paths, or one trace file.

    A directory yields every ``*.parquet`` below it, except in hidden directories (``.``/``_``)
    and hive partitions (``key=value``, e.g. results written inside the corpus). A list file
    holds one path per line (blank lines and ``#`` comments skipped), relative paths meaning
    relative to the list file; it may name files that do not exist, which then fail. URLs
    (``s3://…``) need fsspec.
    """
    text = _strip_file_url(os.fspath(corpus))
    if _is_url(text):
        return _discover_url(text, storage_options)
    if _GLOB_MAGIC.search(text):
        root = _glob_root(text)
        paths = [p for p in globlib.glob(text, recursive=True) if os.path.isfile(p)]
        if not paths:
            raise BadInputError(f"corpus {text}: the glob matches no files")
        return _corpus(root, paths)
    path = Path(text)
    if path.is_dir():
        top = path.resolve()
        paths = [
            str(p) for p in top.rglob(f"*{_TRACE_SUFFIX}")
            if p.is_file() and not _hidden_or_partition(p.relative_to(top).parts)
        ]
        if not paths:
            raise BadInputError(f"corpus {text}: the directory holds no *{_TRACE_SUFFIX} files")
        return _corpus(str(top), paths)
    if path.is_file():
        if path.suffix == _TRACE_SUFFIX or _is_parquet(path):
            return _corpus(str(path.resolve().parent), [str(path)])
        return _corpus(str(path.resolve().parent), _read_list(path))
    raise BadInputError(f"corpus {text} does not exist (give a directory, a glob or a list file)")


def _is_parquet(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def _read_list(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"corpus list {path}: cannot read it: {e}") from None
    base = path.resolve().parent
    paths = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entry = _strip_file_url(entry)
        paths.append(entry if _is_url(entry) else str(base / entry))
    if not paths:
        raise BadInputError(f"corpus list {path} names no traces")
    return paths


def _glob_root(pattern: str) -> str:
    """The directory part of ``pattern`` before its first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for p in parts:
        if _GLOB_MAGIC.search(p):
            break
        fixed.append(p)
    return str(Path(*fixed).resolve()) if fixed else str(Path.cwd())


def _corpus(root: str, paths: Iterable[str]) -> Corpus:
    refs: dict[str, TraceRef] = {}
    for p in paths:
        full = p if _is_url(p) else str(Path(p).resolve())
        if full in refs:
            continue
        try:
            size = 0 if _is_url(full) else os.stat(full).st_size
        except OSError:
            size = 0
        refs[full] = TraceRef(trace_id(full, root), full, size)
    traces = tuple(sorted(refs.values(), key=lambda r: r.path))
    _check_unique(traces)
    return Corpus(root, traces)


def _check_unique(traces: Sequence[TraceRef]) -> None:
    seen: dict[str, str] = {}
    for t in traces:
        if t.id in seen:
            raise BadInputError(f"traces {seen[t.id]} and {t.path} get the same id {t.id}; "
                                "rename one of them")
        seen[t.id] = t.path


def _discover_url(url: str, storage_options: dict[str, Any] | None) -> Corpus:
    fs, path = _fsspec(url, storage_options)
    protocol = url.split("://", 1)[0]

    def full(p: str) -> str:
        return f"{protocol}://{p}"

    if _GLOB_MAGIC.search(path):
        found = fs.glob(path, detail=True)
        root = full(_glob_root_posix(path))
    elif fs.isdir(path):
        found = fs.find(path, detail=True)
        root = full(path.rstrip("/"))
        found = {k: v for k, v in found.items()
                 if k.endswith(_TRACE_SUFFIX)
                 and not _hidden_or_partition(PurePosixPath(k[len(path.rstrip("/")) + 1:]).parts)}
    elif fs.isfile(path):
        found = {path: fs.info(path)}
        root = full(str(PurePosixPath(path).parent))
    else:
        raise BadInputError(f"corpus {url} does not exist")
    files = {k: v for k, v in found.items() if v.get("type", "file") == "file"}
    if not files:
        raise BadInputError(f"corpus {url} holds no *{_TRACE_SUFFIX} files")
    refs = sorted((TraceRef(trace_id(full(k), root), full(k), int(v.get("size") or 0))
                   for k, v in files.items()), key=lambda r: r.path)
    _check_unique(refs)
    return Corpus(root, tuple(refs))


def _glob_root_posix(pattern: str) -> str:
    fixed = []
    for p in pattern.split("/"):
        if _GLOB_MAGIC.search(p):
            break
        fixed.append(p)
    return "/".join(fixed)


def _fsspec(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise BadInputError(
            f"{url}: object storage needs fsspec (pip install 'tracereplay[dask]')") from None
    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as e:
        raise BadInputError(f"{url}: {e}") from None


# --- the results directory -------------------------------------------------------------------


class Results:
    """Where results go: a local directory or an object-store prefix."""

    def __init__(self, root: str | os.PathLike[str], *,
                 storage_options: dict[str, Any] | None = None) -> None:
        text = _strip_file_url(os.fspath(root))
        self.remote = _is_url(text)
        if self.remote:
            self.url = text.rstrip("/")
            self.fs, self.path = _fsspec(self.url, storage_options)
            self.path = self.path.rstrip("/")
        else:
            self.url = str(Path(text).resolve())
            self.fs, self.path = None, self.url

    def __repr__(self) -> str:
        return f"Results({self.url!r})"

    def join(self, *parts: str) -> str:
        return "/".join([self.path, *parts])

    def result_path(self, trace: str, policy: str) -> str:
        """Where the result of (trace, policy) lives, as a path or URL."""
        rel = f"trace={trace}/policy={policy}"
        return f"{self.url}/{rel}" if self.remote else str(Path(self.url) / rel)

    def complete(self) -> set[tuple[str, str]]:
        """(trace id, policy) of every complete result."""
        pattern = self.join("trace=*", "policy=*", MARKER_NAME)
        if self.remote:
            found = self.fs.glob(pattern)
        else:
            found = globlib.glob(globlib.escape(self.path) + "/trace=*/policy=*/" + MARKER_NAME)
        done = set()
        for f in found:
            parts = PurePosixPath(Path(f).as_posix() if not self.remote else f).parts
            t, p = parts[-3], parts[-2]
            if t.startswith("trace=") and p.startswith("policy="):
                done.add((t[len("trace="):], p[len("policy="):]))
        return done

    def manifests(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """The run.json of each (trace, policy) result that has a readable one."""
        paths = {self.join(f"trace={t}", f"policy={p}", MARKER_NAME): (t, p) for t, p in pairs}
        if not paths:
            return {}
        if self.remote:
            blobs = self.fs.cat(list(paths), on_error="omit")
        else:
            blobs = {}
            for path in paths:
                with contextlib.suppress(OSError):
                    blobs[path] = Path(path).read_bytes()
        out = {}
        for path, blob in blobs.items():
            key = paths.get(path) or paths.get(path.split("://", 1)[-1])
            with contextlib.suppress(ValueError):
                if key is not None:
                    out[key] = json.loads(blob)
        return out

    # -- local only: scratch space and lock

    def scratch_dir(self) -> Path:
        """A directory on the file system of RESULTS outside it (see the module doc)."""
        root = Path(self.path)
        sibling = root.parent / f".{root.name}.scratch"
        try:
            sibling.mkdir(exist_ok=True)
            if sibling.stat().st_dev == root.stat().st_dev:
                return sibling
            sibling.rmdir()
        except OSError:
            pass
        inner = root / ".scratch"
        inner.mkdir(exist_ok=True)
        return inner

    def publish(self, src: Path, trace: str, policy: str, scratch: Path | None) -> str:
        """Move the finished policy directory ``src`` into place (replacing an old result)."""
        if self.remote:
            return self._upload(src, trace, policy)
        final = Path(self.result_path(trace, policy))
        final.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if final.exists():
            old = (scratch or final.parent) / f".old-{uuid.uuid4().hex[:12]}"
            final.rename(old)
        src.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return str(final)

    def _upload(self, src: Path, trace: str, policy: str) -> str:
        dest = self.join(f"trace={trace}", f"policy={policy}")
        if self.fs.exists(dest):
            self.fs.rm(dest, recursive=True)
        files = sorted(p for p in src.iterdir() if p.name != MARKER_NAME)
        for f in [*files, src / MARKER_NAME]:  # the marker last
            self.fs.put_file(str(f), f"{dest}/{f.name}")
        return self.result_path(trace, policy)

    # -- the failure table

    def read_failures(self) -> pa.Table:
        path = self.join(FAILURES_NAME)
        try:
            if self.remote:
                if not self.fs.exists(path):
                    return FAILURES_SCHEMA.empty_table()
                with self.fs.open(path, "rb") as fh:
                    table = pq.read_table(fh)
            else:
                if not os.path.exists(path):
                    return FAILURES_SCHEMA.empty_table()
                table = pq.read_table(path)
            return table.select(FAILURES_SCHEMA.names).cast(FAILURES_SCHEMA)
        except (OSError, KeyError, ValueError, pa.ArrowException):
            return FAILURES_SCHEMA.empty_table()  # unreadable: rebuilt from this run

    def write_failures(self, table: pa.Table) -> None:
        path = self.join(FAILURES_NAME)
        if self.remote:
            with self.fs.open(path, "wb") as fh:
                pq.write_table(table, fh)
            return
        tmp = self.join(f".{FAILURES_NAME}.tmp-{uuid.uuid4().hex[:8]}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)


@contextlib.contextmanager
def _locked(results: Results) -> Iterator[None]:
    """Hold ``RESULTS/.batch.lock`` (local results only); a second batch fails fast."""
    if results.remote or sys.platform == "win32":
        yield
        return
    import fcntl

    path = Path(results.path) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInputError(f"{results.url}: another tracereplay batch is writing there "
                                f"(it holds {path})") from None
        yield
    finally:
        os.close(fd)


# --- work ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One trace and the policies to replay it under (those whose results are missing)."""

    trace: TraceRef
    policies: tuple[str, ...]


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

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"trace": self.trace, "policy": self.policy,
                                "status": self.status, "path": self.path}
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


def _peak_rss_mib() -> float | None:
    try:
        import resource
    except ImportError:
        return None
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024, 1)  # Linux reports KiB


def _failed(item: WorkItem, error: BaseException | tuple[str, str], wall_s: float = 0.0,
            policies: Sequence[str] | None = None) -> list[ResultRecord]:
    cls, msg = error if isinstance(error, tuple) else (type(error).__name__, str(error))
    return [ResultRecord(trace=item.trace.id, policy=p, path=item.trace.path, status="failed",
                         error_class=cls, message=msg or cls, wall_s=wall_s,
                         peak_rss_mib=_peak_rss_mib())
            for p in (item.policies if policies is None else policies)]


def _fetch(url: str, directory: Path, storage_options: dict[str, Any] | None) -> Path:
    fs, path = _fsspec(url, storage_options)
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
            trace_path = _fetch(item.trace.path, work, storage_options) if _is_url(item.trace.path) \
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
                    records += _failed(item, e, wall, [r.policy])
                    continue
                records.append(ResultRecord(
                    trace=item.trace.id, policy=r.policy, path=item.trace.path, status="ok",
                    output=output, wall_s=wall, cpu_s=cpu, peak_rss_mib=_peak_rss_mib(),
                    metrics=r.metrics))
            return records
    except Exception as e:  # a bad trace, or a bug: either way, this trace only
        return _failed(item, e, round(time.perf_counter() - t0, 3))


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
        _check_configs(results, sorted(complete - wanted if force else complete), config,
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


def _first_difference(old: Any, new: Any, key: str = "") -> tuple[str, Any, Any] | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            d = _first_difference(old.get(k), new.get(k), f"{key}.{k}" if key else str(k))
            if d is not None:
                return d
        return None
    return None if old == new else (key, old, new)


def _check_configs(results: Results, pairs: Sequence[tuple[str, str]], config: dict[str, Any],
                   fixable: Callable[[tuple[str, str]], bool]) -> None:
    """Refuse to mix configurations: compare each result's run.json with ``config``."""
    want = json.loads(json.dumps(config))  # tuples become lists, as in run.json
    want.pop("sources", None)
    manifests = results.manifests(pairs)
    differ = []
    for pair in pairs:
        got = manifests.get(pair, {}).get("config")
        if isinstance(got, dict):
            got = {k: v for k, v in got.items() if k != "sources"}
            d = _first_difference(got, want)
            if d is not None:
                differ.append((pair, d))
    if differ:
        (trace, policy), (key, old, new) = differ[0]
        hint = ("write to another -o (and query both), or replace them with --force"
                if all(fixable(pair) for pair, _ in differ) else
                "some are of traces or policies this batch does not run, so --force would not "
                "replace them: write to another -o (and query both)")
        raise BadInputError(
            f"{results.url}: {len(differ)} result(s) were made with another configuration "
            f"(e.g. trace={trace}/policy={policy}: {key} is {old!r} there, {new!r} now); {hint}")


# --- executors -------------------------------------------------------------------------------

ItemRunner = Callable[[Sequence[WorkItem]], Iterator[list[ResultRecord]]]


def _worker_init() -> None:
    """Worker set-up: die with the batch (even on kill -9), leave Ctrl-C to the batch."""
    import multiprocessing
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One worker per core already: Arrow's own thread pool would make them fight (a 2-core
    # batch ran each trace 2.3x slower with it than without).
    pa.set_cpu_count(1)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the batch process is gone
        os._exit(1)

    threading.Thread(target=watch, name="tracereplay-batch-watch", daemon=True).start()


def _local_executor(jobs: int, results: str, profile: Profile, scratch: str | None,
                    storage_options: dict[str, Any] | None) -> ItemRunner:
    def runner(items: Sequence[WorkItem]) -> Iterator[list[ResultRecord]]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        if jobs == 1 or len(items) == 1:
            for it in items:  # no pool to start: in this process
                yield replay_item(it, results, profile, scratch, storage_options)
            return
        # Workers start from a server that has imported the engine once (fork would copy the
        # progress bar's thread); each watches the batch and exits when it dies.
        ctx: multiprocessing.context.BaseContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            server = multiprocessing.get_context("forkserver")
            server.set_forkserver_preload(["tracereplay.replay", "tracereplay.batch"])
            ctx = server
        else:
            ctx = multiprocessing.get_context("spawn")
        pending = list(items)
        crashes: dict[WorkItem, int] = {}
        while pending:
            pool = ProcessPoolExecutor(max_workers=max(1, min(jobs, len(pending))),
                                       mp_context=ctx, initializer=_worker_init)
            retry: list[WorkItem] = []
            try:
                futures = {pool.submit(replay_item, it, results, profile, scratch,
                                       storage_options): it
                           for it in pending}
                waiting = set(futures)
                while waiting:
                    finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        item = futures[fut]
                        try:
                            yield fut.result()
                        except BrokenProcessPool:
                            # The pool breaks for every item in flight; retry each once in a
                            # fresh pool, so only an item that kills its worker twice fails.
                            crashes[item] = crashes.get(item, 0) + 1
                            if crashes[item] >= 2:
                                yield _failed(item, ("WorkerCrashed", "the worker process died "
                                                     "(killed, or out of memory) replaying it"))
                            else:
                                retry.append(item)
                        except Exception as e:
                            yield _failed(item, e)
            finally:
                pool.shutdown(wait=not retry, cancel_futures=True)
            pending = retry

    return runner


def _dask_executor(jobs: int, scheduler: str | None, results: str, profile: Profile,
                   scratch: str | None, storage_options: dict[str, Any] | None) -> ItemRunner:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise BadInputError(
            "the dask executor needs Dask distributed: pip install 'tracereplay[dask]'") from None

    def runner(items: Sequence[WorkItem]) -> Iterator[list[ResultRecord]]:
        import logging

        with contextlib.ExitStack() as stack:
            if scheduler:
                try:
                    client = stack.enter_context(Client(scheduler, timeout=DASK_CONNECT_TIMEOUT))
                except (OSError, TimeoutError) as e:
                    raise BadInputError(
                        f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
            else:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=jobs, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR))
                client = stack.enter_context(Client(cluster))
            futures = client.map(replay_item, list(items), results=results, profile=profile,
                                 scratch=scratch, storage_options=storage_options, pure=False)
            by_key = {f.key: it for f, it in zip(futures, items, strict=True)}
            for fut in as_completed(futures):
                item = by_key[fut.key]
                try:
                    yield fut.result()
                except Exception as e:  # KilledWorker, a worker without tracereplay, ...
                    yield _failed(item, e)
                fut.release()

    return runner


# --- the batch -------------------------------------------------------------------------------


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


def read_failures(results: str | os.PathLike[str], *,
                  storage_options: dict[str, Any] | None = None) -> pa.Table:
    """``RESULTS/_failures.parquet`` (empty when there is none)."""
    return Results(results, storage_options=storage_options).read_failures()


def _merge_failures(old: pa.Table, attempted: set[tuple[str, str]],
                    complete: set[tuple[str, str]], new: Sequence[ResultRecord]) -> pa.Table:
    """Old rows not retried and still incomplete, plus this run's failures, sorted."""
    rows = [r for r in old.to_pylist()
            if (r["trace"], r["policy"]) not in attempted
            and (r["trace"], r["policy"]) not in complete]
    rows += [{"trace": r.trace, "policy": r.policy, "path": r.path,
              "error_class": r.error_class or "", "message": r.message or ""} for r in new]
    rows.sort(key=lambda r: (r["trace"], r["policy"]))
    return pa.Table.from_pylist(rows, schema=FAILURES_SCHEMA)


def _check_policies(policies: Sequence[str]) -> tuple[str, ...]:
    from tracereplay import migrate

    names = tuple(dict.fromkeys(policies))
    if not names:
        raise BadInputError("no policy given")
    for n in names:
        migrate.policy(n)  # unknown names fail before any work
    return names


def run_batch(
    corpus: str | os.PathLike[str] | Corpus,
    results: str | os.PathLike[str],
    *,
    policies: Sequence[str] = ("serial", "batched"),
    profile: Profile | None = None,
    jobs: int | None = None,
    force: bool = False,
    executor: str = "local",
    scheduler: str | None = None,
    storage_options: dict[str, Any] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[ResultRecord], None] | None = None,
) -> BatchSummary:
    """Replay every trace of ``corpus`` under ``policies`` into ``results`` (module doc).

    ``storage_options`` go to fsspec for URLs (default: its environment, e.g. ``AWS_*``).
    ``on_start(to_do, skipped)`` is called once the work is planned, ``on_result`` once per
    finished (trace, policy). Bad traces do not raise: they are in the summary's ``failures``
    and in ``RESULTS/_failures.parquet``.
    """
    from tracereplay.config import load_profile

    t0 = time.perf_counter()
    if executor not in EXECUTORS:
        raise BadInputError(f"executor must be one of {', '.join(EXECUTORS)}: {executor!r}")
    if scheduler and executor != "dask":
        raise BadInputError("--scheduler needs --executor dask")
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise BadInputError(f"jobs must be at least 1: {jobs}")
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
    with _locked(store):
        scratch = None
        if not store.remote:
            scratch_dir = store.scratch_dir()
            _empty_dir(scratch_dir)  # leftovers of a killed batch
            scratch = str(scratch_dir)
        items, summary.skipped = plan(found, store, names, force=force,
                                      config=profile.to_dict())
        if on_start is not None:
            on_start(sum(len(i.policies) for i in items), summary.skipped)
        runner = (_dask_executor(jobs, scheduler, store.url, profile, scratch, storage_options)
                  if executor == "dask"
                  else _local_executor(jobs, store.url, profile, scratch, storage_options))
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
            table = _merge_failures(store.read_failures(), attempted, store.complete(),
                                    summary.failures)
            store.write_failures(table)
            if scratch is not None:
                _empty_dir(Path(scratch))
                with contextlib.suppress(OSError):
                    Path(scratch).rmdir()
            summary.wall_s = round(time.perf_counter() - t0, 3)
    return summary


def _empty_dir(directory: Path) -> None:
    for p in directory.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()

