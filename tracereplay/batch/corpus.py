"""Finding the traces of a corpus (a directory, a glob, a list file, one trace, or a URL) and
giving each its id."""

from __future__ import annotations

import glob as globlib
import hashlib
import itertools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tracereplay.batch._urls import filesystem, is_url, strip_file_url
from tracereplay.errors import BadInputError

__all__ = ["Corpus", "TraceRef", "discover", "trace_id"]

_GLOB_MAGIC = re.compile(r"[*?\[]")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TRACE_SUFFIX = ".parquet"


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
    rel = _url_rel(path, root) if is_url(path) else Path(os.path.relpath(path, root)).as_posix()
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


def _before_wildcard(parts: Iterable[str]) -> list[str]:
    """The leading parts of a glob pattern that hold no wildcard: the glob's root."""
    return list(itertools.takewhile(lambda p: not _GLOB_MAGIC.search(p), parts))


def discover(corpus: str | os.PathLike[str], *,
             storage_options: dict[str, Any] | None = None) -> Corpus:
    """The traces of ``corpus``: a directory, a glob, a file listing paths, or one trace file.

    A directory yields every ``*.parquet`` below it, except in hidden directories (``.``/``_``)
    and hive partitions (``key=value``, e.g. results written inside the corpus). A list file
    holds one path per line (blank lines and ``#`` comments skipped), relative paths meaning
    relative to the list file; it may name files that do not exist, which then fail. URLs
    (``s3://…``) need fsspec.
    """
    text = strip_file_url(os.fspath(corpus))
    if is_url(text):
        return _discover_url(text, storage_options)
    if _GLOB_MAGIC.search(text):
        fixed = _before_wildcard(Path(text).parts)
        root = str(Path(*fixed).resolve()) if fixed else str(Path.cwd())
        paths = [p for p in globlib.glob(text, recursive=True) if os.path.isfile(p)]
        if not paths:
            raise BadInputError(f"corpus {text}: the glob matches no files")
        return _local_corpus(root, paths)
    path = Path(text)
    if path.is_dir():
        top = path.resolve()
        paths = [
            str(p) for p in top.rglob(f"*{_TRACE_SUFFIX}")
            if p.is_file() and not _hidden_or_partition(p.relative_to(top).parts)
        ]
        if not paths:
            raise BadInputError(f"corpus {text}: the directory holds no *{_TRACE_SUFFIX} files")
        return _local_corpus(str(top), paths)
    if path.is_file():
        if path.suffix == _TRACE_SUFFIX or _is_parquet(path):
            return _local_corpus(str(path.resolve().parent), [str(path)])
        return _local_corpus(str(path.resolve().parent), _read_list(path))
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
        entry = strip_file_url(entry)
        paths.append(entry if is_url(entry) else str(base / entry))
    if not paths:
        raise BadInputError(f"corpus list {path} names no traces")
    return paths


def _local_corpus(root: str, paths: Iterable[str]) -> Corpus:
    """The corpus of ``paths`` (local ones, or URLs a list file names), each path once."""
    refs: dict[str, TraceRef] = {}
    for p in paths:
        full = p if is_url(p) else str(Path(p).resolve())
        if full in refs:
            continue
        try:
            size = 0 if is_url(full) else os.stat(full).st_size
        except OSError:
            size = 0
        refs[full] = TraceRef(trace_id(full, root), full, size)
    return _sorted_corpus(root, refs.values())


def _discover_url(url: str, storage_options: dict[str, Any] | None) -> Corpus:
    fs, path = filesystem(url, storage_options)
    protocol = url.split("://", 1)[0]

    def full(p: str) -> str:
        return f"{protocol}://{p}"

    if _GLOB_MAGIC.search(path):
        found = fs.glob(path, detail=True)
        root = full("/".join(_before_wildcard(path.split("/"))))
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
    return _sorted_corpus(root, (TraceRef(trace_id(full(k), root), full(k), int(v.get("size") or 0))
                                 for k, v in files.items()))


def _sorted_corpus(root: str, refs: Iterable[TraceRef]) -> Corpus:
    """The corpus of ``refs`` in path order; two traces with one id are bad input."""
    traces = tuple(sorted(refs, key=lambda r: r.path))
    seen: dict[str, str] = {}
    for t in traces:
        if t.id in seen:
            raise BadInputError(f"traces {seen[t.id]} and {t.path} get the same id {t.id}; "
                                "rename one of them")
        seen[t.id] = t.path
    return Corpus(root, traces)
