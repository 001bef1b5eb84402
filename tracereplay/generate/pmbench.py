"""Synthetic traces: the seed experiment's pmbench workload with ``migratepages`` back and forth.

The seed experiment (Huang Ying's batched TLB flushing in ``migrate_pages()``) ran pmbench
threads pinned over both sockets of a 2-socket server while ``numactl migratepages PID 0 1`` and
``migratepages PID 1 0`` moved every page of the process between node 0 and node 1, again and
again. :func:`pmbench_batches` produces that shape as trace v1 rows:

* **Threads.** ``threads`` pmbench threads, one per CPU: by default spread evenly over the nodes
  (16 threads on a 32-CPU, 2-node machine run on CPUs 0-7 and 16-23), or on ``cpus_list``.
* **Prefault.** pmbench touches its whole working set before it measures. With ``prefault`` the
  trace starts with one first-touch *write* per page of the working set; the set is cut into
  one contiguous share per thread and the threads touch their shares concurrently (round-robin
  in time). Each page is thus placed on its toucher's node, and the pages are split between the
  nodes as the threads are. These touches come before, and in addition to, the ``accesses``.
  Without ``prefault`` pages are placed by the workload's own first touches.
* **Accesses.** Each thread issues accesses at ``thread_rate_per_s`` (Poisson arrivals, or
  regular ones), so the merged stream is one Poisson process of rate threads x rate whose events
  go to a uniformly chosen thread (the same process, drawn without a merge sort). Each access
  picks a page of the working set by ``pattern`` and a random 64-byte line in it; it is a store
  with probability 1 - ``read_pct``/100. The working set is the first ``set_mib`` of a
  ``map_mib`` mapping; the rest of the mapping is never touched, so never placed or migrated.
* **Length.** The workload runs ``duration_ms`` after the prefault (pmbench measures after its
  set-up), or for exactly ``accesses`` accesses; 100 ms when neither is given.
* **Patterns** (``shape`` in brackets): ``uniform`` (none); ``linear`` [stride in pages, 1]:
  each thread walks the set from its own share's start; ``normal`` [standard deviation as a
  fraction of the set, 0.125] around the set's middle, wrapped; ``pareto`` [alpha, 1.16]: page
  rank = floor(Lomax(alpha) x pages / 16), wrapped, so the lowest pages are the hottest and
  alpha 1.16 gives about the 80/20 rule.
* **migratepages driver.** Every ``migrate_every_ms`` after the workload starts (the first
  non-prefault access), a whole-node ``migrate`` row runs on ``migrate_cpu``: first node
  ``src_node`` to ``dst_node`` (0 to 1 by default), then back, and so on. The first call moves
  only the pages on ``src_node``; every later call moves what the previous one gathered. Pages
  on other nodes (with more than 2 nodes) never move; the replay says when a call finds nothing. Calls after the
  last access are not emitted. ``migrate_every_ms`` 0 turns the driver off.

Everything is vectorised numpy in chunks of about one row group, drawn from one
``numpy.random.default_rng(seed)``: the same parameters give the same rows, and
:func:`tracereplay.trace.write` turns the same rows into the same bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from tracereplay import trace
from tracereplay.errors import BadInputError
from tracereplay.machine import Machine

Pattern = Literal["linear", "uniform", "normal", "pareto"]
Arrivals = Literal["poisson", "regular"]

PATTERNS: tuple[str, ...] = ("linear", "uniform", "normal", "pareto")
ARRIVALS: tuple[str, ...] = ("poisson", "regular")

# The default shape of each pattern (None: the pattern takes none).
DEFAULT_SHAPE: dict[str, float | None] = {
    "linear": 1.0,  # stride, pages
    "uniform": None,
    "normal": 0.125,  # standard deviation, fraction of the working set
    "pareto": 1.16,  # alpha: about 80% of accesses to 20% of pages
}

# Where the mapping starts: a typical mmap address of x86-64 user space.
BASE_VADDR = 0x7F00_0000_0000
_LINE_BYTES = 64
_MIB = 1 << 20
_CHUNK_ROWS = 1 << 20
# Pareto ranks are Lomax samples scaled by pages / _PARETO_SPREAD.
_PARETO_SPREAD = 16
_DEFAULT_DURATION_MS = 100.0

_KIND_ACCESS = trace.KINDS.index("access")
_KIND_MIGRATE = trace.KINDS.index("migrate")


@dataclass(frozen=True, slots=True, kw_only=True)
class PmbenchParams:
    """Parameters of :func:`pmbench_batches`; each is a pmbench or numactl knob (see module doc)."""

    threads: int = 16
    cpus_list: tuple[int, ...] | None = None  # CPU of each thread; default: spread over nodes
    map_mib: int = 256  # pmbench -m
    set_mib: int = 128  # pmbench -s
    pattern: Pattern = "uniform"  # pmbench -p
    shape: float | None = None  # pmbench -e; None: the pattern's default
    read_pct: float = 50.0  # pmbench -r
    thread_rate_per_s: float = 1e6  # accesses per second of each thread
    arrivals: Arrivals = "poisson"
    migrate_every_ms: float = 5.0  # 0: no migratepages driver
    migrate_cpu: int | None = None  # default: the last CPU that runs no thread
    cpus: int = 32
    nodes: int = 2
    page_size: int = 4096  # bytes
    duration_ms: float | None = None  # workload time after prefault; default 100 ms (or accesses)
    accesses: int | None = None  # number of workload accesses (prefault touches not counted)
    seed: int = 0
    pid: int = 1000
    prefault: bool = True
    # numactl migratepages PID src dst, then dst src, ...: the nodes the driver moves between
    src_node: int = 0
    dst_node: int = 1

    def __post_init__(self) -> None:
        def bad(message: str) -> BadInputError:
            return BadInputError(f"pmbench: {message}")

        if self.cpus < 1 or self.nodes < 1:
            raise bad(f"'cpus' and 'nodes' must be at least 1: {self.cpus}, {self.nodes}")
        if self.threads < 1:
            raise bad(f"'threads' must be at least 1: {self.threads}")
        if self.cpus_list is not None:
            if len(self.cpus_list) != self.threads:
                raise bad(f"'cpus_list' must name one CPU per thread ({self.threads}): "
                          f"{len(self.cpus_list)} CPUs")
            if len(set(self.cpus_list)) != len(self.cpus_list):
                raise bad(f"'cpus_list' names a CPU twice: {list(self.cpus_list)}")
            out = [c for c in self.cpus_list if not 0 <= c < self.cpus]
            if out:
                raise bad(f"'cpus_list' CPU {out[0]} is not in 0..{self.cpus - 1}")
        if self.set_mib <= 0 or self.map_mib <= 0:
            raise bad(f"'set_mib' and 'map_mib' must be positive: {self.set_mib}, {self.map_mib}")
        if self.set_mib > self.map_mib:
            raise bad(f"'set_mib' ({self.set_mib}) must not exceed 'map_mib' ({self.map_mib})")
        if self.page_size < _LINE_BYTES or self.page_size & (self.page_size - 1):
            raise bad(f"'page_size' must be a power of two of at least 64 bytes: {self.page_size}")
        if self.set_mib * _MIB < self.page_size:
            raise bad(f"'set_mib' must hold at least one page: {self.set_mib}")
        if self.pattern not in PATTERNS:
            raise bad(f"'pattern' must be one of {', '.join(PATTERNS)}: {self.pattern!r}")
        if self.arrivals not in ARRIVALS:
            raise bad(f"'arrivals' must be one of {', '.join(ARRIVALS)}: {self.arrivals!r}")
        if self.shape is not None:
            if DEFAULT_SHAPE[self.pattern] is None:
                raise bad(f"pattern {self.pattern!r} takes no 'shape': {self.shape}")
            if not self.shape > 0:
                raise bad(f"'shape' must be positive: {self.shape}")
        if not 0 <= self.read_pct <= 100:
            raise bad(f"'read_pct' must be within 0..100: {self.read_pct}")
        if not self.thread_rate_per_s > 0:
            raise bad(f"'thread_rate_per_s' must be positive: {self.thread_rate_per_s}")
        if self.migrate_every_ms < 0:
            raise bad(f"'migrate_every_ms' must not be negative: {self.migrate_every_ms}")
        if self.migrate_every_ms > 0 and self.nodes < 2:
            raise bad("migratepages moves pages between two nodes: 'nodes' must be at "
                      f"least 2 (or 'migrate_every_ms' 0): {self.nodes}")
        for name, node in (("src_node", self.src_node), ("dst_node", self.dst_node)):
            if not 0 <= node < self.nodes:
                raise bad(f"'{name}' {node} is not in 0..{self.nodes - 1}")
        if self.migrate_every_ms > 0 and self.src_node == self.dst_node:
            raise bad(f"'src_node' and 'dst_node' must differ: {self.src_node}")
        if self.migrate_cpu is not None and not 0 <= self.migrate_cpu < self.cpus:
            raise bad(f"'migrate_cpu' {self.migrate_cpu} is not in 0..{self.cpus - 1}")
        if self.duration_ms is not None and self.accesses is not None:
            raise bad("give 'duration_ms' or 'accesses', not both")
        if self.duration_ms is not None and not self.duration_ms > 0:
            raise bad(f"'duration_ms' must be positive: {self.duration_ms}")
        if self.accesses is not None and self.accesses < 0:
            raise bad(f"'accesses' must not be negative: {self.accesses}")
        if not 0 <= self.pid < 1 << 31:
            raise bad(f"'pid' must be within 0..2^31-1: {self.pid}")
        self.thread_cpus()  # enough CPUs on each node

    @property
    def machine(self) -> Machine:
        return Machine.spread(self.cpus, self.nodes, self.page_size)

    @property
    def set_pages(self) -> int:
        return self.set_mib * _MIB // self.page_size

    @property
    def pattern_shape(self) -> float | None:
        return self.shape if self.shape is not None else DEFAULT_SHAPE[self.pattern]

    def thread_cpus(self) -> tuple[int, ...]:
        """The CPU of each thread, in thread order."""
        if self.cpus_list is not None:
            return self.cpus_list
        node_of = self.machine.cpu_node
        chosen: list[int] = []
        for node in range(self.nodes):
            want = self.threads // self.nodes + (1 if node < self.threads % self.nodes else 0)
            have = [c for c in range(self.cpus) if node_of[c] == node]
            if want > len(have):
                raise BadInputError(
                    f"pmbench: {self.threads} threads spread over {self.nodes} nodes need {want} "
                    f"CPUs on node {node}, which has {len(have)}; give fewer 'threads', more "
                    "'cpus', or 'cpus_list'")
            chosen += have[:want]
        return tuple(sorted(chosen))

    def driver_cpu(self) -> int:
        """The CPU the migratepages calls run on."""
        if self.migrate_cpu is not None:
            return self.migrate_cpu
        busy = set(self.thread_cpus())
        idle = [c for c in range(self.cpus) if c not in busy]
        return idle[-1] if idle else self.cpus - 1


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """Parse a CPU list as taskset and numactl write it: ``0-7,16-23`` or ``0,2,4``."""
    cpus: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise BadInputError(f"CPU list {text!r}: {part!r} is not N or N-M")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise BadInputError(f"CPU list {text!r}: range {part.strip()!r} runs backwards")
        cpus.extend(range(lo, hi + 1))
    return tuple(cpus)


@dataclass(slots=True)
class _Clock:
    """Arrival times of the merged stream, carried from chunk to chunk."""

    rng: np.random.Generator
    gap_ns: float  # mean gap between two accesses of the merged stream
    poisson: bool
    t_ns: float = 0.0

    def next(self, n: int) -> np.ndarray:
        gaps = self.rng.exponential(self.gap_ns, n) if self.poisson else np.full(n, self.gap_ns)
        t = self.t_ns + np.cumsum(gaps)
        if n:
            self.t_ns = float(t[-1])
        return t.astype(np.int64)


class _Pmbench:
    """The generator's state: clock, per-thread positions and the driver's next call."""

    def __init__(self, p: PmbenchParams) -> None:
        self.p = p
        self.rng = np.random.default_rng(p.seed)
        self.cpu_of_thread = np.array(p.thread_cpus(), dtype=np.int32)
        self.nthreads = len(self.cpu_of_thread)
        self.pages = p.set_pages
        self.clock = _Clock(self.rng, 1e9 / (p.thread_rate_per_s * self.nthreads),
                            p.arrivals == "poisson")
        # Thread t's share of the working set starts at page share_start[t].
        self.share_start = (np.arange(self.nthreads, dtype=np.int64) * self.pages) // self.nthreads
        self.seq = np.zeros(self.nthreads, dtype=np.int64)  # accesses per thread so far
        self.issued = 0  # workload accesses so far
        self.migrate_cpu = p.driver_cpu()
        self.next_call_ns: int | None = None
        self.calls = 0
        self.every_ns = round(p.migrate_every_ms * 1e6)

    # -- accesses

    def prefault_chunks(self) -> Iterator[tuple[np.ndarray, ...]]:
        """First-touch writes: thread t's i-th touch is page share_start[t] + i; by (i, t)."""
        page = np.arange(self.pages, dtype=np.int64)
        owner = np.searchsorted(self.share_start, page, side="right") - 1
        order = np.lexsort((owner, page - self.share_start[owner]))
        for lo in range(0, self.pages, _CHUNK_ROWS):
            idx = order[lo:lo + _CHUNK_ROWS]
            ts = self.clock.next(idx.size)
            yield ts, owner[idx], page[idx], np.zeros(idx.size, dtype=np.int64), np.ones(
                idx.size, dtype=bool)

    def workload_chunk(self, n: int) -> tuple[np.ndarray, ...]:
        p, rng = self.p, self.rng
        ts = self.clock.next(n)
        if p.arrivals == "poisson":
            thread = rng.integers(0, self.nthreads, n)
        else:
            thread = (self.issued + np.arange(n)) % self.nthreads
        page = self._pages(thread, n)
        line = rng.integers(0, p.page_size // _LINE_BYTES, n)
        write = rng.random(n) >= p.read_pct / 100.0
        self.issued += n
        return ts, thread, page, line, write

    def _pages(self, thread: np.ndarray, n: int) -> np.ndarray:
        p, rng, pages = self.p, self.rng, self.pages
        shape = p.pattern_shape or 1.0  # never None for the patterns that use it
        if p.pattern == "uniform":
            return rng.integers(0, pages, n)
        if p.pattern == "normal":
            x = rng.normal(pages / 2.0, shape * pages, n)
            return np.floor(x).astype(np.int64) % pages
        if p.pattern == "pareto":
            x = rng.pareto(shape, n) * (pages / _PARETO_SPREAD)
            return np.floor(np.minimum(x, 2.0**62)).astype(np.int64) % pages
        # linear: each thread's k-th access is k strides past its share's start.
        stride = round(shape)
        order = np.argsort(thread, kind="stable")
        counts = np.bincount(thread, minlength=self.nthreads)
        starts = np.cumsum(counts) - counts
        k = np.empty(n, dtype=np.int64)
        k[order] = np.arange(n) - np.repeat(starts, counts)
        k += self.seq[thread]
        self.seq += counts
        return (self.share_start[thread] + k * stride) % pages

    # -- migratepages driver

    def calls_until(self, last_ns: int) -> np.ndarray:
        """Times of the driver's calls up to ``last_ns`` not emitted yet."""
        if self.every_ns <= 0 or self.next_call_ns is None or self.next_call_ns > last_ns:
            return np.zeros(0, dtype=np.int64)
        count = (last_ns - self.next_call_ns) // self.every_ns + 1
        times = self.next_call_ns + self.every_ns * np.arange(count, dtype=np.int64)
        self.next_call_ns += self.every_ns * int(count)
        return times

    def batch(self, chunk: tuple[np.ndarray, ...], calls: np.ndarray) -> pa.RecordBatch:
        """Access rows (ts, thread, page, line, write) plus the driver's calls, merged in time
        (a call goes after accesses of the same time)."""
        p = self.p
        ts, thread, page, line, write = chunk
        n, m = ts.size, calls.size
        total = n + m
        is_call = np.zeros(total, dtype=bool)
        is_call[np.searchsorted(ts, calls, side="right") + np.arange(m)] = True
        is_access = ~is_call

        def merged(access_values: np.ndarray | np.generic, call_values: np.ndarray | int,
                   dtype: type) -> np.ndarray:
            out: np.ndarray = np.empty(total, dtype=dtype)
            out[is_access] = access_values
            out[is_call] = call_values
            return out

        k = self.calls + np.arange(m, dtype=np.int64)
        # call 0: src_node -> dst_node, call 1: back, ...
        src = np.where(k % 2 == 0, p.src_node, p.dst_node).astype(np.int32)
        dst = np.where(k % 2 == 0, p.dst_node, p.src_node).astype(np.int32)
        self.calls += m
        vaddr = BASE_VADDR + page.astype(np.uint64) * np.uint64(p.page_size) + line.astype(
            np.uint64) * np.uint64(_LINE_BYTES)

        def nullable(values: np.ndarray, valid: np.ndarray, dtype: pa.DataType) -> pa.Array:
            return pa.array(values, type=dtype, mask=~valid)

        kind = merged(np.int8(_KIND_ACCESS), _KIND_MIGRATE, np.int8)
        columns = {
            "ts_ns": pa.array(merged(ts, calls, np.int64)),
            "kind": pa.DictionaryArray.from_arrays(pa.array(kind), pa.array(trace.KINDS)),
            "cpu": pa.array(merged(self.cpu_of_thread[thread], self.migrate_cpu, np.int32)),
            "pid": pa.array(np.full(total, p.pid, dtype=np.int32)),
            "vaddr": nullable(merged(vaddr, 0, np.uint64), is_access, pa.uint64()),
            "write": nullable(merged(write, False, np.bool_), is_access, pa.bool_()),
            "src_node": nullable(merged(np.int32(0), src, np.int32), is_call, pa.int32()),
            "dst_node": nullable(merged(np.int32(0), dst, np.int32), is_call, pa.int32()),
            "req_id": nullable(merged(np.int64(0), k, np.int64), is_call, pa.int64()),
            "mode": pa.array(["sync"]).take(nullable(np.zeros(total, np.int8), is_call, pa.int8())),
        }
        schema = trace.arrow_schema()
        return pa.RecordBatch.from_arrays([columns[n] for n in schema.names], schema=schema)


def pmbench_batches(params: PmbenchParams) -> Iterator[pa.RecordBatch]:
    """The pmbench + migratepages trace as trace v1 batches in time order (see module doc)."""
    g = _Pmbench(params)
    if params.prefault:
        for chunk in g.prefault_chunks():
            yield g.batch(chunk, calls=np.zeros(0, dtype=np.int64))
    # The workload runs for duration_ms after the prefault, as pmbench measures after its set-up.
    duration_ms = params.duration_ms
    if duration_ms is None and params.accesses is None:
        duration_ms = _DEFAULT_DURATION_MS
    end_ns = None if duration_ms is None else int(g.clock.t_ns) + round(duration_ms * 1e6)
    while True:
        if params.accesses is not None:
            n = min(_CHUNK_ROWS, params.accesses - g.issued)
            if n <= 0:
                return
        else:
            n = _CHUNK_ROWS
        chunk = g.workload_chunk(n)
        ts = chunk[0]
        if g.next_call_ns is None and ts.size:
            g.next_call_ns = int(ts[0]) + g.every_ns
        ended = False
        if end_ns is not None and ts[-1] > end_ns:  # the trace ends within this chunk
            keep = int(np.searchsorted(ts, end_ns, side="right"))
            chunk = tuple(a[:keep] for a in chunk)
            ts, ended = chunk[0], True
        if ts.size:
            yield g.batch(chunk, calls=g.calls_until(int(ts[-1])))
        if ended:
            return


def generate_pmbench(**params: object) -> pa.Table:
    """The whole pmbench trace as one table (keyword arguments of :class:`PmbenchParams`)."""
    p = PmbenchParams(**params)  # type: ignore[arg-type]
    return pa.Table.from_batches(list(pmbench_batches(p)), schema=trace.arrow_schema())


def write_pmbench(path: str | os.PathLike[str], params: PmbenchParams) -> int:
    """Generate the trace into ``path`` (atomically); return the number of rows written."""
    rows = 0

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for b in pmbench_batches(params):
            rows += b.num_rows
            yield b

    trace.write(counted(), path, machine=params.machine)
    return rows
