"""Output locations: checked before any work is done, written whole or not at all.

A command checks where its outputs go (``check_file``, ``check_dir``) before it reads its input,
so a mistyped path costs no time. A file is written under a temporary name beside its target
and renamed into place when complete (``replacing``); directories that a failed command created
are removed again (``remove_created``). An ``OSError`` on the way becomes ``OutputPathError``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tracereplay.errors import OutputPathError


def output_error(e: OSError, what: str, path: str | os.PathLike[str]) -> OutputPathError:
    """``e``, raised while writing ``what`` at ``path``, as an ``OutputPathError``."""
    return OutputPathError(f"cannot write {what} {os.fspath(path)}: {e.strerror or e}")


def check_file(path: str | os.PathLike[str], what: str = "output") -> None:
    """Raise ``OutputPathError`` unless ``path`` can be written as a file: it is not a
    directory and its directory exists."""
    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"{what} {p} is a directory; name a file")
    parent = p.parent
    if not parent.is_dir():
        state = "is not a directory" if parent.exists() else "does not exist"
        raise OutputPathError(f"{what} {p}: the directory {parent} {state}")


def check_dir(path: str | os.PathLike[str], what: str = "output directory") -> Path | None:
    """Raise ``OutputPathError`` unless ``path`` is a directory or can be created as one.

    Returns the outermost directory that creating ``path`` would make (``path`` itself or one
    of its parents), or None when ``path`` exists: what ``remove_created`` may take away.
    """
    p = Path(path)
    created = None
    here = p
    while not here.exists():
        if here.is_symlink():  # a dangling link: mkdir would fail on it
            raise OutputPathError(f"{what} {p}: {here} is a broken symbolic link")
        created = here
        if here.parent == here:
            break
        here = here.parent
    if here.exists() and not here.is_dir():
        raise OutputPathError(f"{what} {p}: {here} is not a directory")
    return created


def remove_created(path: str | os.PathLike[str], created: Path | None) -> None:
    """Remove the empty directories from ``path`` up to ``created`` (see ``check_dir``).

    Nothing is removed when ``created`` is None, and never a directory that holds anything.
    """
    if created is None:
        return
    here, top = Path(path), Path(created)
    while True:
        try:
            here.rmdir()
        except OSError:
            return
        if here == top or here.parent == here:
            return
        here = here.parent


@contextmanager
def replacing(path: str | os.PathLike[str], what: str = "output") -> Iterator[Path]:
    """Yield a temporary path (hidden, beside ``path``) to write ``path`` through; it replaces
    ``path`` when the block ends without an error and is removed otherwise.

    ``check_file`` runs first; an ``OSError`` in the block or in the rename becomes
    ``OutputPathError``.
    """
    check_file(path, what)
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise output_error(e, what, p) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["check_dir", "check_file", "output_error", "remove_created", "replacing"]
