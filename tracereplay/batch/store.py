"""Where results go (a local directory or an object-store prefix), how a result is committed
and found complete, the batch lock, the failure table, and the rule of one configuration per
RESULTS."""

from __future__ import annotations

import contextlib
import glob as globlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay.batch._urls import filesystem, is_url, strip_file_url
from tracereplay.config import current_config, first_difference
from tracereplay.errors import BadInputError

if TYPE_CHECKING:
    from tracereplay.batch.work import ResultRecord

__all__ = ["FAILURES_NAME", "FAILURES_SCHEMA", "Results", "read_failures"]

FAILURES_NAME = "_failures.parquet"
MARKER_NAME = "run.json"
LOCK_NAME = ".batch.lock"

FAILURES_SCHEMA = pa.schema([
    pa.field("trace", pa.string(), nullable=False, metadata={"doc": "trace id (trace=<id>/)"}),
    pa.field("policy", pa.string(), nullable=False, metadata={"doc": "migration policy"}),
    pa.field("path", pa.string(), nullable=False, metadata={"doc": "the trace file"}),
    pa.field("error_class", pa.string(), nullable=False,
             metadata={"doc": "class of the error, e.g. TraceFormatError"}),
    pa.field("message", pa.string(), nullable=False, metadata={"doc": "the error's message"}),
], metadata={"tracereplay.schema": "failures/1"})

Pair = tuple[str, str]  # (trace id, policy)


def _result_rel(trace: str, policy: str) -> str:
    """The result of (trace, policy), relative to RESULTS (hive partitions)."""
    return f"trace={trace}/policy={policy}"


class Results:
    """Where results go: a local directory or an object-store prefix."""

    def __init__(self, root: str | os.PathLike[str], *,
                 storage_options: dict[str, Any] | None = None) -> None:
        text = strip_file_url(os.fspath(root))
        self.remote = is_url(text)
        if self.remote:
            self.url = text.rstrip("/")
            self.fs, self.path = filesystem(self.url, storage_options)
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
        rel = _result_rel(trace, policy)
        return f"{self.url}/{rel}" if self.remote else str(Path(self.url) / rel)

    def complete(self) -> set[Pair]:
        """(trace id, policy) of every complete result: those with their run.json."""
        markers = f"{_result_rel('*', '*')}/{MARKER_NAME}"
        if self.remote:
            found = self.fs.glob(self.join(markers))
        else:
            found = globlib.glob(f"{globlib.escape(self.path)}/{markers}")
        done = set()
        for f in found:
            parts = PurePosixPath(Path(f).as_posix() if not self.remote else f).parts
            t, p = parts[-3], parts[-2]
            if t.startswith("trace=") and p.startswith("policy="):
                done.add((t[len("trace="):], p[len("policy="):]))
        return done

    def manifests(self, pairs: Sequence[Pair]) -> dict[Pair, Any]:
        """The run.json of each (trace, policy) result that has a readable one."""
        paths = {self.join(_result_rel(t, p), MARKER_NAME): (t, p) for t, p in pairs}
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

    # -- committing a result

    def scratch_dir(self) -> Path:
        """A directory on the file system of RESULTS outside it (local results only), so that
        a finished result moves into place by one atomic rename."""
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
        # An object store has no rename: each table goes up whole, run.json last, so a prefix
        # without run.json is incomplete and the next batch replaces it.
        dest = self.join(_result_rel(trace, policy))
        if self.fs.exists(dest):
            self.fs.rm(dest, recursive=True)
        files = sorted(p for p in src.iterdir() if p.name != MARKER_NAME)
        for f in [*files, src / MARKER_NAME]:
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

    def update_failures(self, attempted: set[Pair], failures: Sequence[ResultRecord]) -> None:
        """Rewrite the failure table: old rows not attempted again and still without a
        result, plus ``failures`` (this batch's), sorted."""
        old = self.read_failures()
        complete = self.complete()
        rows = [r for r in old.to_pylist()
                if (r["trace"], r["policy"]) not in attempted
                and (r["trace"], r["policy"]) not in complete]
        rows += [{"trace": r.trace, "policy": r.policy, "path": r.path,
                  "error_class": r.error_class or "", "message": r.message or ""}
                 for r in failures]
        rows.sort(key=lambda r: (r["trace"], r["policy"]))
        self.write_failures(pa.Table.from_pylist(rows, schema=FAILURES_SCHEMA))


def read_failures(results: str | os.PathLike[str], *,
                  storage_options: dict[str, Any] | None = None) -> pa.Table:
    """``RESULTS/_failures.parquet`` (empty when there is none)."""
    return Results(results, storage_options=storage_options).read_failures()


@contextlib.contextmanager
def locked(results: Results) -> Iterator[None]:
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


def empty_dir(directory: Path) -> None:
    for p in directory.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()


# --- one configuration per RESULTS -------------------------------------------------------------


def check_config(results: Results, pairs: Sequence[Pair], config: dict[str, Any], *,
                 fixable: Callable[[Pair], bool]) -> None:
    """Refuse to mix configurations: compare each result's run.json with ``config``.

    Results are keyed by (trace, policy) only, so results of two configurations in one RESULTS
    could not be told apart by a query.
    """
    want = json.loads(json.dumps(config))  # tuples become lists, as in run.json
    want.pop("sources", None)
    manifests = results.manifests(pairs)
    differ = []
    for pair in pairs:
        got = manifests.get(pair, {}).get("config")
        if isinstance(got, dict):
            got = {k: v for k, v in current_config(got).items() if k != "sources"}
            d = first_difference(got, want)
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
            f"(e.g. {_result_rel(trace, policy)}: {key} is {old!r} there, {new!r} now); {hint}")
