"""Import a kernel trace (perf script / ftrace / trace-cmd text, perf.data) as ``policy=measured``."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import tracereplay
from tracereplay._compile import compile_time, timing
from tracereplay._output import check_dir, check_file, output_error, remove_created
from tracereplay.errors import ImportFormatError, OutputExistsError
from tracereplay.events import PolicyRunWriter, empty_table
from tracereplay.importer import _scan as S
from tracereplay.importer._as_trace import write_as_trace
from tracereplay.importer._machine import captured_machine, check_cpus, trace_machine
from tracereplay.importer._measured import (
    REASON_NAMES,
    Malformed,
    MeasuredBuilder,
    Prepared,
    prepare,
)
from tracereplay.importer._source import open_source
from tracereplay.importer._stalls import measured_stalls
from tracereplay.trace import file_sha256

FORMATS = ("auto", "perf-script", "ftrace", "lackey")
_LACKEY_LINE = re.compile(rb"^(?:==\d+==|I  [0-9a-fA-F]+,\d+$| [LSM] [0-9a-fA-F]+,\d+$)", re.M)
_DETECT_LINES = 2000
# The measured tables' row groups: a quarter of the replay's (``events``), so that what is left
# to encode once the last block is in (on one thread, while the other core waits) is at most
# 64 K rows a table: c60's last 0.10 s becomes 0.05 to 0.07 s.
IMPORT_ROW_GROUP_ROWS = 1 << 16


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import wrote and found; ``manifest`` is the run.json body."""

    run_dir: Path | None
    trace_path: Path | None
    manifest: dict[str, Any]


def detect_format(head: bytes) -> str | None:
    """``perf-script``, ``ftrace``, ``lackey`` or None, from the first lines of an input."""
    lines = head.split(b"\n", _DETECT_LINES)[:_DETECT_LINES]
    sample = b"\n".join(lines)
    if len(_LACKEY_LINE.findall(sample)) > len(lines) // 2:
        return "lackey"
    r = S.scan(sample, S.LAYOUT_ANY)
    ok = r["layout"][r["status"] == S.ST_EVENT]
    perf = int((ok == S.LAYOUT_PERF).sum())
    ftrace = int((ok == S.LAYOUT_FTRACE).sum())
    if perf == ftrace == 0:
        return None
    return "perf-script" if perf >= ftrace else "ftrace"


class _Pipeline:
    """Blocks read (and decompressed) on one thread from the start, a few ahead, with their
    newlines found (numpy), then scanned on two others (a block each) while the caller
    assembles the one before (decompressors, numpy, the scanner, hashlib and Arrow all release
    the GIL). Reading starts before the format is known, so it overlaps the compiled scanner's
    start-up."""

    AHEAD = 4  # blocks read ahead of those being scanned
    # Until the first scan starts (the compiled scanner loads first, a fixed 0.4 s or so on one
    # core), the reader goes further ahead: the other core would otherwise wait for it.
    STARTUP_AHEAD = 12
    SCANNERS = 2  # blocks scanned at once

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._reader = ThreadPoolExecutor(max_workers=1)
        self._scanner = ThreadPoolExecutor(max_workers=self.SCANNERS)
        self._reads: deque[Future[tuple[bytes, np.ndarray] | None]] = deque()

    def __enter__(self) -> _Pipeline:
        for _ in range(1 + self.STARTUP_AHEAD):
            self._reads.append(self._reader.submit(self._read))
        return self

    def __exit__(self, *exc: object) -> None:
        self._scanner.shutdown(wait=True, cancel_futures=True)
        self._reader.shutdown(wait=True, cancel_futures=True)

    def _read(self) -> tuple[bytes, np.ndarray] | None:
        block = next(self._blocks, None)
        return None if block is None else (block, S.newlines(block))

    def first(self) -> bytes:
        """The first block (empty for an empty input)."""
        item = self._reads[0].result()
        return b"" if item is None else item[0]

    def scanned(
        self, layout: int, meanwhile: Callable[[], None] = lambda: None
    ) -> Iterator[tuple[bytes, dict[str, np.ndarray], Prepared]]:
        """Every block with its scan and its ``prepare``, in order (both made on the scanning
        thread); ``meanwhile`` runs while the first are scanned."""
        # A set of scan arrays for each block in flight, in turn: the caller assembles one block
        # while the next ones are scanned into the others, and asks for a block only when done
        # with the one before.
        buffers = [S.ScanBuffers() for _ in range(self.SCANNERS + 1)]

        def scan(
            read: Future[tuple[bytes, np.ndarray] | None], i: int
        ) -> tuple[bytes, dict[str, np.ndarray], Prepared] | None:
            item = read.result()
            if item is None:
                return None
            block, nl = item
            r = S.scan(block, layout, buffers[i % len(buffers)], nl)
            return block, r, prepare(block, r)

        pending: deque[Future[tuple[bytes, dict[str, np.ndarray], Prepared] | None]] = deque()
        i = 0

        def next_scan() -> None:
            nonlocal i
            pending.append(self._scanner.submit(scan, self._reads.popleft(), i))
            if len(self._reads) < 1 + self.AHEAD:  # back to AHEAD once the start-up's are in
                self._reads.append(self._reader.submit(self._read))
            i += 1

        for _ in range(self.SCANNERS):
            next_scan()
        meanwhile()
        while True:
            item = pending.popleft().result()
            if item is None:
                for scanning in pending:  # the input has ended: these read nothing
                    scanning.result()
                for read in self._reads:
                    read.result()
                return
            next_scan()
            yield item


# One line of each event the importer assembles, in both layouts: _warm_up's input.
_WARM_LINES = """\
w 5/6 [000] 1.000000: tlb:tlb_flush: pages:-1 reason:remote IPI send (4)
w 5/7 [001] 1.000001: tlb:tlb_flush: pages:-1 reason:remote shootdown (1)
sh 9/9 [001] 1.000002: migrate:mm_migrate_pages_start: mode=MIGRATE_SYNC reason=compaction
sh 9/9 [001] 1.000003: migrate:set_migration_pte: addr=7f0000001000, pte=1 order=0
w 5/6 [000] 1.000004: exceptions:page_fault_user: address=0x7f0000001000 ip=0x1 error_code=0x6
sh 9/9 [001] 1.000005: migrate:remove_migration_pte: addr=7f0000001000, pte=2 order=0
sh 9/9 [001] 1.000006: migrate:mm_migrate_pages: nr_succeeded=1 nr_failed=0 mode=MIGRATE_SYNC
"""
_WARM = {
    S.LAYOUT_PERF: _WARM_LINES.encode(),
    S.LAYOUT_FTRACE: re.sub(r"(?m)^(\w+) \d+/(\d+) ", r"\1-\2 (5) ", _WARM_LINES).encode(),
}


def _warm_up(layout: int) -> None:
    """Assemble a few lines of each event the importer knows, and match their fault, and throw
    the tables away: numba loads each compiled pass at its first call, here while the scanner
    scans the first block (the main thread would wait for it), not once that block is in."""
    emitted: dict[str, list[pa.Table]] = {}
    b = MeasuredBuilder(emit=lambda name, t: emitted.setdefault(name, []).append(t))
    block = _WARM[layout]
    b.feed(block, S.scan(block, layout))
    b.finish()
    measured_stalls(emitted["faults"][0], emitted["migrations"][0])


def _flavor(head: bytes, fmt: str) -> str:
    if fmt == "ftrace" and re.search(rb"^\s*(cpus=\d+|version = \d)", head[:4096], re.M):
        return "trace-cmd"
    return fmt


def import_kernel_trace(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None,
    *,
    fmt: str = "auto",
    strict: bool = False,
    force: bool = False,
    as_trace: str | os.PathLike[str] | None = None,
    src_node: int = 0,
    dst_node: int = 1,
    cpus: int | None = None,
    nodes: int | None = None,
) -> ImportResult:
    """Import ``path`` into ``out_dir/policy=measured/`` (and/or a trace at ``as_trace``).

    Raises ImportFormatError for unreadable input (with ``strict``: at the first malformed
    line), OutputExistsError when an output exists and ``force`` is not set, and
    OutputPathError when an output cannot go where it is asked to (checked before the input is
    read). Nothing is left behind on error: not the tables, not the trace, and not the run
    directory when this import created it.
    """
    src_path = Path(path)
    if fmt not in FORMATS or fmt == "lackey":
        raise ImportFormatError(f"--format must be one of auto, perf-script, ftrace here: {fmt}")
    if cpus is not None and cpus < 1:
        raise ImportFormatError(f"--cpus must be at least 1: {cpus}")
    if nodes is not None and nodes < 1:
        raise ImportFormatError(f"--nodes must be at least 1: {nodes}")
    if out_dir is None and as_trace is None:
        raise ImportFormatError("nothing to write: give -o RUN_DIR, --as-trace OUT, or both")
    # Where the outputs go is checked before the input is read.
    trace_path = Path(as_trace) if as_trace is not None else None
    if trace_path is not None:
        check_file(trace_path, "--as-trace")
        if trace_path.exists() and not force:
            raise OutputExistsError(f"{trace_path} already exists; use --force to replace it")
    scratch = None
    created = None  # the directories this import makes for the run, removed again on error
    if out_dir is None:
        parent = trace_path.parent if trace_path is not None else Path(".")
        try:
            scratch = Path(tempfile.mkdtemp(prefix=".tracereplay-import-", dir=parent))
        except OSError as e:
            raise output_error(e, "--as-trace", trace_path or parent) from None
        run_root = scratch
    else:
        run_root = Path(out_dir)
        created = check_dir(run_root, "run directory")
    writer = PolicyRunWriter(run_root, "measured", force=force or scratch is not None,
                             row_group_rows=IMPORT_ROW_GROUP_ROWS)

    t0 = time.perf_counter()
    final = None
    trace_written = False
    try:
        with compile_time() as compiled, open_source(src_path) as src, \
                _Pipeline(src.blocks()) as pipeline:
            S.scan(b"")  # the compiled scanner loads (a fixed cost) while the first block is read
            first = pipeline.first()
            detected = detect_format(first)
            if fmt == "auto":
                if detected == "lackey":
                    raise ImportFormatError(
                        f"{src_path}: this is valgrind lackey output; import it with "
                        "--format lackey --pid N --cpu N --as-trace OUT.parquet"
                    )
                if detected is None:
                    raise ImportFormatError(
                        f"{src_path}: no perf script or ftrace event line in the first "
                        f"{_DETECT_LINES} lines (expected 'comm pid [cpu] secs.frac: event: ...')"
                    )
                fmt = detected
            layout = S.LAYOUT_PERF if fmt == "perf-script" else S.LAYOUT_FTRACE

            def fail(m: Malformed) -> None:
                raise ImportFormatError(
                    f"{src_path}:{m.line}: malformed line: {m.rule} [rule: --strict]: "
                    f"{m.text[:160]!r}"
                )

            with writer as w:
                w.write("skipped", empty_table("skipped"))  # present even when empty
                held = _Held(w)
                b = MeasuredBuilder(emit=held.emit, strict_fail=fail if strict else None)
                for block, scanned, prep in pipeline.scanned(layout, lambda: _warm_up(layout)):
                    b.feed(block, scanned, prep)
                    held.fed(faulted=bool(b.counts.get(_FAULT_EVENT)))
                b.finish()
                machine, origin = captured_machine(first, cpus, nodes, src_path)
                check_cpus(machine, b.max_cpu, b.max_cpu_line, src_path, origin)
                stalls = held.stalls() if b.counts.get(_FAULT_EVENT) else None
                if b.base_ns is None:
                    raise ImportFormatError(
                        f"{src_path}: no event lines ({b.lines} lines read, "
                        f"{b.malformed_total} malformed)"
                    )
                # the clock stops once every table is written and the input hashed
                w.close_tables()
                sha256 = src.sha256
                wall = time.perf_counter() - t0
                manifest = _manifest(src_path, src.compression, sha256, _flavor(first, fmt), b,
                                     wall, compiled.seconds)  # fmt: skip
                if stalls is not None:
                    manifest["stalls"] = stalls
                if machine is not None:
                    manifest["machine"] = {**machine.to_dict(), "from": origin}
                if trace_path is not None:
                    # Written before the run is committed, so that run.json names the trace
                    # (its sha256): replaying that trace into this run directory is allowed.
                    w.close_tables()
                    manifest["as_trace"] = str(trace_path)
                    manifest["as_trace_rows"] = write_as_trace(
                        w.tmp, trace_path, src_node=src_node, dst_node=dst_node,
                        source=src_path, machine=trace_machine(machine, src_node, dst_node),
                    )
                    trace_written = True
                    manifest["as_trace_sha256"] = file_sha256(trace_path)
                final = w.commit(manifest)
    except BaseException as e:
        if trace_written and trace_path is not None:
            trace_path.unlink(missing_ok=True)
        if scratch is None and final is not None:
            shutil.rmtree(final, ignore_errors=True)
        remove_created(run_root, created)
        if isinstance(e, OSError):  # the input side raises ImportFormatError, never OSError
            raise output_error(e, "run directory", run_root) from None
        raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return ImportResult(None if scratch is not None else final, trace_path, manifest)


_FAULT_EVENT = S.KIND_NAMES[S.KIND_PAGE_FAULT]


class _Held:
    """The builder's tables on their way to the writer. The faults decide each migrated page's
    owner (``migrations.pid``) only once the last line is read, so while the capture has faults
    the ``migrations`` rows are held back, and written once, complete, at the end (with the
    faults, kept too). A capture whose first block has no fault is taken to have none: its
    migrations stream to the writer; should a fault come later all the same, the finished table
    is read back and rewritten."""

    def __init__(self, w: PolicyRunWriter) -> None:
        self._w = w
        self._migrations: list[pa.Table] | None = []  # None: streamed to the writer
        self._faults: list[pa.Table] = []

    def emit(self, name: str, table: pa.Table) -> None:
        if name == "migrations" and self._migrations is not None:
            self._migrations.append(table)
            return
        if name == "faults":
            self._faults.append(table)
        self._w.write(name, table)

    def fed(self, *, faulted: bool) -> None:
        """After a block: without a fault so far, stop holding the migrations back."""
        if not faulted and self._migrations is not None:
            held, self._migrations = self._migrations, None
            for t in held:
                self._w.write("migrations", t)

    def stalls(self) -> dict[str, Any]:
        """Match the faults to the migration windows once every row is in: ``stalls`` rows,
        and each migrated page's owner in ``migrations.pid`` (see ``_stalls``)."""
        w = self._w
        if self._migrations is not None:
            migrations = pa.concat_tables(self._migrations or [empty_table("migrations")])
            faults = pa.concat_tables(self._faults)
            # The other tables are finished on a thread of their own while the faults are
            # matched and the migrations written (Arrow and the matching release the GIL); the
            # migrations' own writer, empty, is closed first, so nothing else writes that file.
            w.writer("migrations").close()
            with ThreadPoolExecutor(max_workers=1) as closer:
                closing = closer.submit(w.close_tables)
                owned, stalls = measured_stalls(faults, migrations)
                w.replace("migrations", owned)
                closing.result()
        else:
            w.close_tables()
            faults = pq.read_table(w.tmp / "faults.parquet")
            migrations = pq.read_table(w.tmp / "migrations.parquet")
            owned, stalls = measured_stalls(faults, migrations)
            w.replace("migrations", owned)
        self._migrations = self._faults = []
        w.write("stalls", stalls)
        return {
            "faults": faults.num_rows,
            "stalls": stalls.num_rows,
            "pages_with_owner": owned.num_rows - owned.column("pid").null_count,
            "note": "a fault inside a page's migration window is a stall; stall_ns = remap - "
            "fault is a lower bound; migrations.pid is the process that faulted on the page "
            "(see docs/importing.md)",
        }


def _manifest(
    path: Path, compression: str, sha256: str, fmt: str, b: MeasuredBuilder, wall: float,
    compile_s: float,
) -> dict[str, Any]:
    return {
        "tool": "tracereplay",
        "tool_version": tracereplay.__version__,
        "source": {"path": str(path.resolve()), "sha256": sha256, "compression": compression},
        "format": fmt,
        "lines": b.lines,
        "events": dict(sorted(b.counts.items())),
        "tlb_flush_reasons": {
            f"{k} {REASON_NAMES.get(k, '?')}": v for k, v in sorted(b.reasons.items())
        },
        "skipped": dict(sorted(b.skipped.items())),
        "malformed": b.malformed_total,
        "malformed_lines": b.malformed_lines,
        "migrations": {"paired": b.paired, "unpaired": b.unpaired_sets},
        "receivers_joined": b.receivers_joined,
        **timing(b.lines, wall, compile_s),
        "notes": (
            "times are ns since the first event of the file; migrations.pid is null because "
            "the tracepoint's task is the migrating task, not the page's owner"
        ),
    }


__all__ = ["FORMATS", "ImportResult", "detect_format", "import_kernel_trace"]
