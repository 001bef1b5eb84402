"""Synthetic traces: the ``move_pages()`` benchmark of the batch-copy series.

Shivank Garg's series "Accelerate page migration with batch copying and hardware offload"
(linux-mm, RFC v1 June 2024 ... v6 June 2026) measures ``move_pages()`` of a 1 GB mapping
from node 0 to node 1, by folio size (4K ... 2M). :func:`move_pages_batches` writes that shape
as trace v1 rows:

* **Mapping.** ``total_mib`` of folios of ``folio_kib`` each (a power of two from one base page
  to a PMD, 4 KiB ... 2 MiB with 4 KiB pages), from ``BASE_VADDR`` (2 MiB aligned): one ``map``
  row per folio on node 0 with its ``order``, and at once one first-touch store of the folio by
  the process on ``migrate_cpu`` (the benchmark faults its buffer in before it moves it, so
  that CPU is in mm_cpumask), one row a nanosecond.
* **The call.** ``call_ms`` later one ``move_pages()`` call (one request, sync) on
  ``migrate_cpu`` names every folio (its first page) with destination node 1.
* **Threads.** ``threads`` threads of the process (on CPUs ``migrate_cpu + 1`` on, wrapping
  around) touch the mapping meanwhile, from the end of the prefault for ``duration_ms``: each
  at ``thread_rate_per_s`` (Poisson arrivals), a uniformly chosen base page and 64-byte line,
  a store with probability ``1 - read_pct / 100``.

One ``numpy.random.default_rng(seed)`` draws the threads' accesses, in chunks of about one row
group: the same parameters give the same rows, and :func:`tracereplay.trace.write` the same
bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tracereplay import trace
from tracereplay.errors import BadInputError
from tracereplay.generate.pmbench import BASE_VADDR
from tracereplay.machine import Machine
from tracereplay.trace.schema import pmd_order

_KIB = 1 << 10
_MIB = 1 << 20
_LINE_BYTES = 64
_CHUNK_ROWS = 1 << 20
_KINDS = {k: np.int8(i) for i, k in enumerate(trace.KINDS)}


@dataclass(frozen=True, slots=True, kw_only=True)
class MovePagesParams:
    """Parameters of :func:`move_pages_batches` (see the module doc); errors name the
    command-line option of each."""

    folio_kib: int = 4
    total_mib: int = 1024
    threads: int = 0
    thread_rate_per_s: float = 1e6
    read_pct: float = 50.0
    duration_ms: float = 100.0  # how long the threads touch the mapping after the prefault
    call_ms: float = 1.0  # the call, after the prefault (the threads are running by then)
    migrate_cpu: int = 0
    cpus: int = 64
    nodes: int = 2
    page_size: int = 4096
    seed: int = 0
    pid: int = 1000

    def __post_init__(self) -> None:
        def bad(option: str, rule: str, value: object) -> BadInputError:
            return BadInputError(f"move-pages: --{option} {rule}: {value}")

        if self.cpus < 1:
            raise bad("cpus", "must be at least 1", self.cpus)
        if self.nodes < 2:
            raise bad("nodes", "must be at least 2 (the call moves node 0 to node 1)", self.nodes)
        if self.page_size < _LINE_BYTES or self.page_size & (self.page_size - 1):
            raise bad("page-size", "must be a power of two of at least 64 bytes", self.page_size)
        folio, folio_bytes = self.folio_kib, self.folio_kib * _KIB
        largest = self.page_size << pmd_order(self.machine.page_shift)
        if not self.page_size <= folio_bytes <= largest or folio_bytes & (folio_bytes - 1):
            raise bad("folio-kib", f"must be a power of two from one base page to a PMD "
                      f"({self.page_size / _KIB:g} ... {largest // _KIB})", folio)
        if self.total_mib < 1 or self.total_mib * _MIB % (folio * _KIB):
            raise bad("total-mib", f"must be a positive whole number of folios of {folio} KiB",
                      self.total_mib)
        if not 0 <= self.migrate_cpu < self.cpus:
            raise bad("migrate-cpu", f"must be within 0..{self.cpus - 1}", self.migrate_cpu)
        if not 0 <= self.threads < self.cpus:
            raise bad("threads", f"must be within 0..{self.cpus - 1} (a CPU each, besides "
                      "the migrating one)", self.threads)
        if not self.thread_rate_per_s > 0:
            raise bad("rate", "must be positive", self.thread_rate_per_s)
        if not 0 <= self.read_pct <= 100:
            raise bad("read-pct", "must be within 0..100", self.read_pct)
        if not self.duration_ms >= 0:
            raise bad("duration-ms", "must not be negative", self.duration_ms)
        if not self.call_ms >= 0:
            raise bad("call-ms", "must not be negative", self.call_ms)
        if not 0 <= self.pid < 1 << 31:
            raise bad("pid", "must be within 0..2^31-1", self.pid)

    @property
    def machine(self) -> Machine:
        return Machine.spread(self.cpus, self.nodes, self.page_size)

    @property
    def order(self) -> int:
        """The folios' order: 2^order base pages each."""
        return (self.folio_kib * _KIB // self.page_size).bit_length() - 1

    @property
    def folios(self) -> int:
        return self.total_mib * _MIB // (self.folio_kib * _KIB)


def _batch(n: int, cols: dict[str, np.ndarray], valid: dict[str, np.ndarray]) -> pa.RecordBatch:
    """Rows of ``n`` as a canonical batch; a column missing from ``cols`` is all null, one in
    ``valid`` null where it says False."""
    schema = trace.arrow_schema(optional=True)
    arrays = []
    for f in schema:
        if f.name == "kind":
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(cols["kind"]),
                                                         pa.array(trace.KINDS)))
        elif f.name == "mode":
            sync = valid.get("mode", np.zeros(n, bool))
            arrays.append(pa.array(["sync"]).take(pa.array(np.zeros(n, np.int8), mask=~sync)))
        elif f.name in cols:
            mask = ~valid[f.name] if f.name in valid else None
            arrays.append(pa.array(cols[f.name], type=f.type, mask=mask))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def move_pages_batches(p: MovePagesParams) -> Iterator[pa.RecordBatch]:
    """The benchmark's trace as trace v1 batches in time order (see the module doc)."""
    folio_bytes = p.folio_kib * _KIB
    n_folios = p.folios
    # Prefault: a map row and a first-touch store per folio, one folio a nanosecond.
    for lo in range(0, n_folios, _CHUNK_ROWS // 2):
        i = np.arange(lo, min(n_folios, lo + _CHUNK_ROWS // 2), dtype=np.int64)
        n = 2 * len(i)
        vaddr = np.repeat(np.uint64(BASE_VADDR) + i.astype(np.uint64) * np.uint64(folio_bytes), 2)
        is_map = np.tile(np.array([True, False]), len(i))
        yield _batch(n, {
            "ts_ns": np.repeat(i, 2), "kind": np.where(is_map, _KINDS["map"], _KINDS["access"]),
            "cpu": np.full(n, p.migrate_cpu, np.int32), "pid": np.full(n, p.pid, np.int32),
            "vaddr": vaddr, "write": ~is_map, "dst_node": np.zeros(n, np.int32),
            "order": np.full(n, p.order, np.int8),
        }, {"write": ~is_map, "dst_node": is_map, "order": is_map, "cpu": np.ones(n, bool)})
    start_ns = n_folios
    call_ns = start_ns + round(p.call_ms * 1e6)
    rng = np.random.default_rng(p.seed)
    cpus = (p.migrate_cpu + 1 + np.arange(p.threads)) % p.cpus
    end_ns = start_ns + round(p.duration_ms * 1e6)
    pages = p.total_mib * _MIB // p.page_size
    rate_per_ns = p.threads * p.thread_rate_per_s / 1e9
    t = float(start_ns)
    call_done = False
    while p.threads:
        # The threads' accesses: one Poisson process of threads x rate, each event a thread's.
        gaps = rng.exponential(1 / rate_per_ns, _CHUNK_ROWS)
        ts = np.floor(t + np.cumsum(gaps)).astype(np.int64)
        t += float(gaps.sum())
        ts = ts[ts < end_ns]
        n = len(ts)
        thread = rng.integers(0, p.threads, n)
        page = rng.integers(0, pages, n).astype(np.uint64)
        line = rng.integers(0, p.page_size // _LINE_BYTES, n).astype(np.uint64)
        write = rng.random(n) >= p.read_pct / 100
        vaddr = np.uint64(BASE_VADDR) + page * np.uint64(p.page_size) + line * np.uint64(_LINE_BYTES)
        # The call's rows go in after the accesses at or before its time.
        at = int(np.searchsorted(ts, call_ns, side="right"))
        if not call_done and (at < n or n < _CHUNK_ROWS):
            if at:
                yield _batch(at, {"ts_ns": ts[:at], "kind": np.full(at, _KINDS["access"]),
                                  "cpu": cpus[thread[:at]].astype(np.int32),
                                  "pid": np.full(at, p.pid, np.int32), "vaddr": vaddr[:at],
                                  "write": write[:at]}, {})
            yield _call(p, call_ns, folio_bytes)
            call_done = True
            ts, thread, vaddr, write = ts[at:], thread[at:], vaddr[at:], write[at:]
        m = len(ts)
        if m:
            yield _batch(m, {"ts_ns": ts, "kind": np.full(m, _KINDS["access"]),
                             "cpu": cpus[thread].astype(np.int32),
                             "pid": np.full(m, p.pid, np.int32), "vaddr": vaddr,
                             "write": write}, {})
        if n < _CHUNK_ROWS:
            break
    if not call_done:
        yield _call(p, call_ns, folio_bytes)


def _call(p: MovePagesParams, call_ns: int, folio_bytes: int) -> pa.RecordBatch:
    """The move_pages() call: one row per folio (its first page), one request."""
    n = p.folios
    vaddr = np.uint64(BASE_VADDR) + np.arange(n, dtype=np.uint64) * np.uint64(folio_bytes)
    return _batch(n, {
        "ts_ns": np.full(n, call_ns, np.int64), "kind": np.full(n, _KINDS["migrate"]),
        "cpu": np.full(n, p.migrate_cpu, np.int32), "pid": np.full(n, p.pid, np.int32),
        "vaddr": vaddr, "dst_node": np.ones(n, np.int32), "req_id": np.zeros(n, np.int64),
    }, {"mode": np.ones(n, bool)})


def write_move_pages(path: str | os.PathLike[str], params: MovePagesParams) -> int:
    """Generate the trace into ``path`` (atomically); return the number of rows written."""
    rows = 0

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for b in move_pages_batches(params):
            rows += b.num_rows
            yield b

    trace.write(counted(), path, machine=params.machine)
    return rows
