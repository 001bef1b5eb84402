"""valgrind lackey (``valgrind --tool=lackey --trace-mem=yes``) output as a trace of accesses.

Lackey prints one access per line: ``I  addr,size`` (instruction fetch), `` L addr,size`` (load),
`` S addr,size`` (store), `` M addr,size`` (modify: a load then a store of the same address);
valgrind's own messages start with ``==pid==``. Lackey records no time, no CPU and no process
id, so the caller names the ``pid`` and ``cpu`` and the time is synthetic: access *i* of the
trace (counting a modify as two) happens at ``i * ns_per_access``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numba import njit

import tracereplay
from tracereplay._compile import compile_time, timing
from tracereplay._output import check_file
from tracereplay.errors import ImportFormatError, OutputExistsError
from tracereplay.importer._source import open_source
from tracereplay.importer._trace import write_trace

_OK, _BLANK, _BAD = 0, 1, 2
_FETCH, _LOAD, _STORE, _MODIFY = 0, 1, 2, 3
_KIND_LETTERS = "ILSM"


@dataclass(frozen=True, slots=True)
class LackeyResult:
    trace_path: Path
    manifest: dict[str, Any]


@njit(cache=True, nogil=True)
def _scan_lackey(buf, ls, le, status, kind, addr):
    n = len(buf)
    pos = 0
    line = 0
    while pos < n:
        s = pos
        e = s
        while e < n and buf[e] != 10:
            e += 1
        pos = e + 1
        if e > s and buf[e - 1] == 13:
            e -= 1
        ls[line] = s
        le[line] = e
        i = line
        line += 1
        status[i] = _BAD
        kind[i] = -1
        addr[i] = 0
        if e == s or buf[s] == 61 or buf[s] == 45:  # empty, "==pid==" or "--pid--"
            status[i] = _BLANK
            continue
        if e - s < 5:
            continue
        c0 = buf[s]
        c1 = buf[s + 1]
        if c0 == 73 and c1 == 32 and buf[s + 2] == 32:  # "I  "
            k = _FETCH
        elif c0 == 32 and buf[s + 2] == 32 and (c1 == 76 or c1 == 83 or c1 == 77):
            k = _LOAD if c1 == 76 else (_STORE if c1 == 83 else _MODIFY)
        else:
            continue
        j = s + 3
        x = np.uint64(0)
        nd = 0
        while j < e and nd <= 16:
            ch = buf[j] | 32
            if 48 <= buf[j] <= 57:
                d = buf[j] - 48
            elif 97 <= ch <= 102:
                d = ch - 87
            else:
                break
            x = x * np.uint64(16) + np.uint64(d)
            j += 1
            nd += 1
        if nd == 0 or nd > 16 or j >= e or buf[j] != 44:
            continue
        j += 1
        sz = 0
        while j < e and 48 <= buf[j] <= 57:
            sz += 1
            j += 1
        if sz == 0 or j != e:
            continue
        status[i] = _OK
        kind[i] = k
        addr[i] = x
    return line


def import_lackey(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    pid: int,
    cpu: int,
    instructions: bool = False,
    ns_per_access: int = 1,
    strict: bool = False,
    force: bool = False,
) -> LackeyResult:
    """Write lackey output ``path`` as a trace v1 of ``access`` rows at ``out``."""
    src_path, out_path = Path(path), Path(out)
    if pid < 0 or cpu < 0 or ns_per_access < 1:
        raise ImportFormatError(
            f"lackey: --pid and --cpu must be >= 0 and --ns-per-access >= 1: "
            f"pid={pid} cpu={cpu} ns_per_access={ns_per_access}"
        )
    check_file(out_path, "--as-trace")
    if out_path.exists() and not force:
        raise OutputExistsError(f"{out_path} already exists; use --force to replace it")
    t0 = time.perf_counter()
    lines = 0
    accesses = 0
    counts = np.zeros(4, np.int64)
    malformed = 0
    malformed_lines: list[int] = []
    with compile_time() as compiled, open_source(src_path) as src:
        meta = {
            "tracereplay.source": str(src_path),
            "tracereplay.source_format": "valgrind-lackey",
            "tracereplay.time": f"synthetic: one access every {ns_per_access} ns",
        }

        def tables() -> Iterator[pa.Table]:
            nonlocal lines, accesses, counts, malformed
            for block in src.blocks():
                buf = np.frombuffer(block, np.uint8)
                n = block.count(b"\n") + 1
                ls, le = np.empty(n, np.int64), np.empty(n, np.int64)
                status, kind = np.empty(n, np.int8), np.empty(n, np.int8)
                addr = np.empty(n, np.uint64)
                m = _scan_lackey(buf, ls, le, status, kind, addr)
                status, kind, addr = status[:m], kind[:m], addr[:m]
                bad = np.nonzero(status == _BAD)[0]
                if len(bad):
                    if strict:
                        i = int(bad[0])
                        text = block[ls[i] : le[i]].decode("utf-8", "replace")
                        raise ImportFormatError(
                            f"{src_path}:{lines + i + 1}: malformed lackey line: expected "
                            f"'I  addr,size' or ' L|S|M addr,size' [rule: --strict]: {text[:160]!r}"
                        )
                    malformed += len(bad)
                    room = 100 - len(malformed_lines)
                    malformed_lines.extend((bad[: max(room, 0)] + lines + 1).tolist())
                lines += m
                ok = status == _OK
                if not instructions:
                    ok &= kind != _FETCH
                k, a = kind[ok], addr[ok]
                counts += np.bincount(kind[status == _OK], minlength=4)
                reps = np.where(k == _MODIFY, 2, 1)
                a = np.repeat(a, reps)
                write = np.repeat(k == _STORE, reps)
                if len(write):
                    # the second row of each modify is its store
                    second = np.cumsum(reps) - 1
                    write[second[reps == 2]] = True
                nrow = len(a)
                ts = (accesses + np.arange(nrow, dtype=np.int64)) * ns_per_access
                accesses += nrow
                yield (
                    pa.table(
                        {
                            "ts_ns": ts,
                            "kind": pa.array(["access"] * nrow, pa.string())
                            if nrow < 1
                            else pa.DictionaryArray.from_arrays(
                                np.zeros(nrow, np.int8), pa.array(["access"])
                            ).cast(pa.string()),
                            "cpu": np.full(nrow, cpu, np.int32),
                            "pid": np.full(nrow, pid, np.int32),
                            "vaddr": a,
                            "write": write,
                        }
                    )
                )
            if accesses == 0:
                raise ImportFormatError(
                    f"{src_path}: no lackey access lines ({lines} lines read, {malformed} "
                    "malformed); capture with valgrind --tool=lackey --trace-mem=yes"
                )

        write_trace(tables(), out_path, meta)
    wall = time.perf_counter() - t0
    manifest = {
        "tool_version": tracereplay.__version__,
        "source": {"path": str(src_path.resolve()), "compression": src.compression},
        "format": "lackey",
        "lines": lines,
        "events": {letter: int(c) for letter, c in zip(_KIND_LETTERS, counts, strict=True)},
        "accesses": accesses,
        "malformed": malformed,
        "malformed_lines": malformed_lines,
        **timing(lines, wall, compiled.seconds),
    }
    return LackeyResult(out_path, manifest)


__all__ = ["LackeyResult", "import_lackey"]
