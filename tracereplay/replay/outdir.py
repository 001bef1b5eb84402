"""Where a replay's results go: checks made before any work, so that a run cannot fail late
for want of a writable place, and cannot mix results of different traces or configurations."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from tracereplay.config import current_config, first_difference
from tracereplay.errors import OutputExistsError


def check_out_dir(out: Path, policies: list[str], force: bool) -> bool:
    """Fail early, before any work, if the results cannot go to ``out``; True if this call
    created ``out``."""
    created = not out.exists()
    if not created and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputExistsError(f"{out}: cannot create the run directory: {e.strerror}") from e
    if not os.access(out, os.W_OK):
        raise OutputExistsError(f"{out}: the run directory is not writable")
    for name in policies:
        existing = out / f"policy={name}"
        if existing.exists() and not force:
            raise OutputExistsError(f"{existing} already exists; use --force to replace it")
        # Left by a replay that was killed: nothing can be writing them now but a concurrent
        # replay of the same policy into the same directory, which is not supported.
        for stale in out.glob(f".policy={name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    return created


def check_siblings(out: Path, policies: list[str], sha: str | None, config: dict[str, Any],
                   force: bool) -> None:
    """A run directory holds policies of one trace and one configuration, so that queries
    compare like with like: other policies' results that differ are refused, or removed with
    ``force``. With ``sha`` None (before the trace is read) only configurations are compared."""
    for other in sorted(out.glob("policy=*")):
        name = other.name.removeprefix("policy=")
        if name in policies or not (other / "run.json").exists():
            continue
        try:
            manifest = json.loads((other / "run.json").read_text())
        except (OSError, ValueError):
            continue
        if _imported_as(manifest, sha):
            continue
        # A run written before the policies had config sections of their own compares by
        # where its values are now.
        theirs = current_config(manifest.get("config", {}))
        same_trace = sha is None or manifest.get("trace", {}).get("sha256") == sha
        if same_trace and theirs == config:
            continue
        if same_trace:
            key, there, now = first_difference(theirs, config) or ("", None, None)
            what = f"another configuration ({key} is {there!r} there, {now!r} now)"
        else:
            what = "another trace"
        if not force:
            raise OutputExistsError(
                f"{other} holds results of {what}; write to another directory, or use --force "
                "to replace the whole run")
        shutil.rmtree(other)


def _imported_as(manifest: dict[str, Any], sha: str | None) -> bool:
    """An import's measured tables beside the replay of the trace that import wrote
    (``import --as-trace``): the same capture, measured and modelled. Before the trace is
    read (``sha`` None) any import passes; its configuration is not a profile."""
    written = manifest.get("as_trace_sha256")
    return manifest.get("policy") == "measured" and written is not None and sha in (None, written)
