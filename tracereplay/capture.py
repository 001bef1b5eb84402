"""``tracereplay capture``: record a real kernel with ``perf`` and import what it recorded.

Runs ``perf record -a`` with the events the importer uses (``tlb:tlb_flush``, ``migrate:*``,
``exceptions:page_fault_user``) around a command, or for a duration, turns ``perf.data`` into
``perf script --header`` text (the header names the machine), and imports it into a run
directory with its trace (``import --as-trace``). Everything goes to one output directory:

    OUT/capture.perf-script.zst   the text (zstd), the input of the import
    OUT/policy=measured/          the measured tables
    OUT/trace.parquet             the capture as a trace, to replay into OUT

A capture that fails leaves nothing behind: not the directory if it made it, nor any file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from tracereplay.errors import BadInputError, OutputExistsError
from tracereplay.importer import import_kernel_trace

__all__ = ["EVENTS", "CaptureError", "CaptureResult", "capture"]

EVENTS = ("tlb:tlb_flush", "migrate:*", "exceptions:page_fault_user")
_FIELDS = "comm,pid,tid,cpu,time,event,trace"
TEXT_NAME = "capture.perf-script.zst"
TRACE_NAME = "trace.parquet"


class CaptureError(BadInputError):
    """perf is missing, not permitted, or cannot record the events (exit code 2)."""


@dataclass(frozen=True, slots=True)
class CaptureResult:
    out_dir: Path
    text: Path
    trace: Path
    command_rc: int | None
    manifest: dict[str, Any]


def _perf() -> str:
    perf = shutil.which("perf")
    if perf is None:
        raise CaptureError(
            "capture needs 'perf' on PATH: install it (Debian/Ubuntu: linux-perf or "
            "linux-tools-$(uname -r); Fedora/RHEL: perf)"
        )
    return perf


def _record_failure(rc: int, stderr: str) -> CaptureError:
    text = stderr.strip()
    last = text.splitlines()[-1] if text else f"exit code {rc}"
    low = text.lower()
    if "permission" in low or "paranoid" in low or "not permitted" in low:
        return CaptureError(
            "perf record is not permitted to record kernel tracepoints system-wide: run as "
            "root, or allow it with 'sysctl kernel.perf_event_paranoid=-1' (and read access "
            f"to /sys/kernel/tracing); perf said: {last}"
        )
    if "event syntax error" in low or "unknown tracepoint" in low:
        return CaptureError(
            f"perf record cannot record {', '.join(EVENTS)} on this kernel (tracefs mounted? "
            f"exceptions:page_fault_user is x86 only); perf said: {last}"
        )
    return CaptureError(f"perf record failed (exit code {rc}): {last}")


def capture(
    out_dir: str | os.PathLike[str],
    command: Sequence[str] = (),
    *,
    duration_s: float | None = None,
    force: bool = False,
    buffer: str = "64M",
) -> CaptureResult:
    """Record ``command`` (or ``duration_s`` seconds of the whole machine) and import it."""
    if not command and duration_s is None:
        raise CaptureError("give a command after '--', or --duration SECONDS")
    if command and duration_s is not None:
        raise CaptureError("give a command after '--' or --duration SECONDS, not both")
    if duration_s is not None and not duration_s > 0:
        raise CaptureError(f"--duration must be more than 0 seconds: {duration_s}")
    out = Path(out_dir)
    for name in (TEXT_NAME, TRACE_NAME, "policy=measured"):
        if (out / name).exists() and not force:
            raise OutputExistsError(f"{out / name} already exists; use --force to replace it")
    perf = _perf()
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputExistsError(f"{out}: cannot create the output directory: {e.strerror}") from e
    work = Path(tempfile.mkdtemp(prefix=".tracereplay-capture-", dir=out))
    done = False
    try:
        data = work / "perf.data"
        events = [a for ev in EVENTS for a in ("-e", ev)]
        what = list(command) if command else ["sleep", f"{duration_s:g}"]
        rec = subprocess.run(
            [perf, "record", "-a", "-m", buffer, *events, "-o", str(data), "--", *what],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
        if not data.exists() or data.stat().st_size == 0:
            raise _record_failure(rec.returncode, rec.stderr)
        text = work / TEXT_NAME
        with text.open("wb") as f, zstandard.ZstdCompressor(level=6).stream_writer(f) as z:
            script = subprocess.Popen(
                [perf, "script", "--header", "-F", _FIELDS, "-i", str(data)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            assert script.stdout is not None
            shutil.copyfileobj(script.stdout, z, 1 << 20)
            if script.wait() != 0:
                raise CaptureError(f"perf script could not read {data} (exit {script.returncode})")
        text.replace(out / TEXT_NAME)  # run.json names the text and the trace where they stay
        res = import_kernel_trace(out / TEXT_NAME, out, force=force, as_trace=out / TRACE_NAME)
        done = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not done:
            (out / TEXT_NAME).unlink(missing_ok=True)
            if created:
                shutil.rmtree(out, ignore_errors=True)
    manifest = dict(res.manifest)
    manifest["capture"] = {"command": list(what), "perf_record_rc": rec.returncode}
    return CaptureResult(out, out / TEXT_NAME, out / TRACE_NAME,
                         rec.returncode if command else None, manifest)  # fmt: skip
