"""Pre-pass over a trace: dense ids, page placement, mm_cpumask activity, migration requests.

The migration schedule depends on the accesses only through placement (first touch, or a
``map`` row) and mm_cpumask (which CPUs ran the process when), so one streaming pass over the
trace collects both; the TLB state never feeds back into the kernel's decisions.

Page ids are dense and ordered by (pid, vpn): ``page_key = pid_index << 45 | vpn`` is sorted, so
an access's page id is a binary search away.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from tracereplay.machine import Machine

VPN_BITS = 45
NEVER = np.iinfo(np.int64).max

KIND_ACCESS, KIND_MIGRATE, KIND_MAP = 0, 1, 2
_KIND_CODES = {"access": KIND_ACCESS, "migrate": KIND_MIGRATE, "map": KIND_MAP}


def kind_codes(kind: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Row kinds as int8 codes (0 access, 1 migrate, 2 map); the trace is already validated."""
    if isinstance(kind, pa.ChunkedArray):
        kind = kind.combine_chunks()
    if pa.types.is_dictionary(kind.type):
        table = np.array([_KIND_CODES.get(v, -1) for v in kind.dictionary.to_pylist()], np.int8)
        return table[kind.indices.to_numpy(zero_copy_only=False)]
    out = np.full(len(kind), -1, np.int8)
    values = kind.to_numpy(zero_copy_only=False)
    for name, code in _KIND_CODES.items():
        out[values == name] = code
    return out


@dataclass(frozen=True, slots=True)
class Requests:
    """Migration calls in time order. Explicit pages are a CSR list into page ids."""

    req_id: np.ndarray  # int64
    ts_ns: np.ndarray  # int64
    cpu: np.ndarray  # int32
    pid_index: np.ndarray  # int32
    dst_node: np.ndarray  # int32
    src_node: np.ndarray  # int32, -1 for an explicit-page call
    is_async: np.ndarray  # bool
    page_ptr: np.ndarray  # int64 [n + 1]
    pages: np.ndarray  # int64 page ids, in the order the call lists them
    absent_pages: int  # explicit pages never touched or mapped: skipped, as the kernel does

    def __len__(self) -> int:
        return len(self.req_id)


@dataclass(frozen=True, slots=True)
class PrePass:
    """What the migration engine and the replay kernel need to know before replaying."""

    machine: Machine
    pids: np.ndarray  # int32, sorted: pid of each pid index
    page_key: np.ndarray  # uint64, sorted: pid_index << 45 | vpn
    page_pid: np.ndarray  # int32 pid index of each page
    page_vpn: np.ndarray  # int64
    page_first_ns: np.ndarray  # int64: first touch or map
    page_node: np.ndarray  # int32: initial node
    cpu_first_ns: np.ndarray  # int64 [pids, cpus]: first access of the pid on the cpu (NEVER)
    active_bin_ns: int  # width of the activity bins (window mode), ns
    active_ptr: np.ndarray  # int64 [pids * cpus + 1]: CSR of active bins per (pid, cpu)
    active_bins: np.ndarray  # int64 sorted within each (pid, cpu)
    requests: Requests
    accesses: int

    @property
    def n_pages(self) -> int:
        return len(self.page_key)

    def page_ids(self, pid: np.ndarray, vpn: np.ndarray) -> np.ndarray:
        """Dense page ids of (pid, vpn) pairs that exist (every access does)."""
        pidx = np.searchsorted(self.pids, pid).astype(np.uint64)
        key = (pidx << np.uint64(VPN_BITS)) | vpn.astype(np.uint64)
        return np.searchsorted(self.page_key, key).astype(np.int64)

    def mask(self, pid_index: int, t_ns: int, mode: str, window_ns: int) -> np.ndarray:
        """mm_cpumask of a pid at time ``t_ns`` as a bool array over CPUs."""
        first = self.cpu_first_ns[pid_index]
        if mode == "sticky":
            return first <= t_ns
        cpus = self.machine.cpus
        lo = (t_ns - window_ns) // self.active_bin_ns
        hi = t_ns // self.active_bin_ns
        out = np.zeros(cpus, bool)
        for c in range(cpus):
            s, e = self.active_ptr[pid_index * cpus + c], self.active_ptr[pid_index * cpus + c + 1]
            if s == e:
                continue
            bins = self.active_bins[s:e]
            i = np.searchsorted(bins, lo)
            out[c] = i < len(bins) and bins[i] <= hi
        return out


def _frames(batches: Iterator[pa.RecordBatch]) -> Iterator[pl.DataFrame]:
    for batch in batches:
        df = pl.from_arrow(batch)
        assert isinstance(df, pl.DataFrame)
        yield df.with_columns(pl.Series("kind_code", kind_codes(batch.column("kind"))))


def prepass(
    batches: Iterator[pa.RecordBatch], machine: Machine, *, active_bin_ns: int = 1_000_000
) -> PrePass:
    """One streaming pass over validated trace batches (canonical column types)."""
    page_size = machine.page_size
    touch_parts: list[pl.DataFrame] = []
    map_parts: list[pl.DataFrame] = []
    cpu_parts: list[pl.DataFrame] = []
    bin_parts: list[pl.DataFrame] = []
    mig_parts: list[pl.DataFrame] = []
    accesses = 0
    row0 = 0
    for df in _frames(batches):
        df = df.with_columns(pl.int_range(row0, row0 + df.height, dtype=pl.Int64).alias("row"))
        row0 += df.height
        acc = df.filter(pl.col("kind_code") == KIND_ACCESS).with_columns(
            (pl.col("vaddr") // page_size).cast(pl.Int64).alias("vpn")
        )
        accesses += acc.height
        touch_parts.append(
            acc.group_by("pid", "vpn", maintain_order=True).agg(
                pl.col("ts_ns").first().alias("first_ns"), pl.col("cpu").first().alias("first_cpu")
            )
        )
        cpu_parts.append(acc.group_by("pid", "cpu").agg(pl.col("ts_ns").min().alias("first_ns")))
        bin_parts.append(
            acc.select("pid", "cpu", (pl.col("ts_ns") // active_bin_ns).alias("bin")).unique()
        )
        map_parts.append(
            df.filter(pl.col("kind_code") == KIND_MAP).select(
                "pid", (pl.col("vaddr") // page_size).cast(pl.Int64).alias("vpn"),
                pl.col("ts_ns").alias("map_ns"), pl.col("dst_node").alias("map_node"),
            )
        )
        mig_parts.append(
            df.filter(pl.col("kind_code") == KIND_MIGRATE).select(
                "row", "ts_ns", "cpu", "pid", "req_id", "dst_node", "src_node", "mode",
                (pl.col("vaddr") // page_size).cast(pl.Int64).alias("vpn"),
            )
        )

    touch = (
        pl.concat(touch_parts) if touch_parts else
        pl.DataFrame(schema={"pid": pl.Int32, "vpn": pl.Int64, "first_ns": pl.Int64, "first_cpu": pl.Int32})
    ).group_by("pid", "vpn", maintain_order=True).first()
    maps = (pl.concat(map_parts) if map_parts else pl.DataFrame(
        schema={"pid": pl.Int32, "vpn": pl.Int64, "map_ns": pl.Int64, "map_node": pl.Int32}
    )).group_by("pid", "vpn", maintain_order=True).first()
    cpu_node = np.asarray(machine.cpu_node, np.int32)
    pages = (
        touch.join(maps, on=["pid", "vpn"], how="full", coalesce=True)
        .with_columns(pl.min_horizontal("first_ns", "map_ns").alias("first_ns"))
        .sort("pid", "vpn")
    )
    # A map row declares the initial node; otherwise the first toucher's node.
    first_cpu = pages.get_column("first_cpu").fill_null(0).to_numpy().astype(np.int64)
    page_node = np.where(
        pages.get_column("map_node").is_null().to_numpy(),
        cpu_node[first_cpu],
        pages.get_column("map_node").fill_null(0).to_numpy(),
    ).astype(np.int32)
    pids_all = [pages.get_column("pid")]
    migs = pl.concat(mig_parts) if mig_parts else pl.DataFrame()
    if migs.height:
        pids_all.append(migs.get_column("pid"))
    pids = np.unique(pl.concat(pids_all).to_numpy()).astype(np.int32)

    page_pid = np.searchsorted(pids, pages.get_column("pid").to_numpy()).astype(np.int32)
    page_vpn = pages.get_column("vpn").to_numpy().astype(np.int64)
    page_key = (page_pid.astype(np.uint64) << np.uint64(VPN_BITS)) | page_vpn.astype(np.uint64)

    cpus = machine.cpus
    cpu_first = np.full((len(pids), cpus), NEVER, np.int64)
    if cpu_parts:
        cf = pl.concat(cpu_parts).group_by("pid", "cpu").agg(pl.col("first_ns").min())
        pi = np.searchsorted(pids, cf.get_column("pid").to_numpy())
        cpu_first[pi, cf.get_column("cpu").to_numpy()] = cf.get_column("first_ns").to_numpy()
    if bin_parts:
        bins = pl.concat(bin_parts).unique().with_columns(
            pl.col("pid").replace_strict(pids.tolist(), list(range(len(pids))), return_dtype=pl.Int64).alias("pidx")
        ).with_columns((pl.col("pidx") * cpus + pl.col("cpu")).alias("slot")).sort("slot", "bin")
        slot = bins.get_column("slot").to_numpy()
        active_bins = bins.get_column("bin").to_numpy().astype(np.int64)
    else:
        slot = np.zeros(0, np.int64)
        active_bins = np.zeros(0, np.int64)
    active_ptr = np.searchsorted(slot, np.arange(len(pids) * cpus + 1)).astype(np.int64)

    return PrePass(
        machine=machine, pids=pids, page_key=page_key, page_pid=page_pid, page_vpn=page_vpn,
        page_first_ns=pages.get_column("first_ns").to_numpy().astype(np.int64),
        page_node=page_node, cpu_first_ns=cpu_first, active_bin_ns=active_bin_ns,
        active_ptr=active_ptr, active_bins=active_bins,
        requests=_requests(migs, pids, page_key) if migs.height else _empty_requests(),
        accesses=accesses,
    )


def _empty_requests() -> Requests:
    z64 = np.zeros(0, np.int64)
    z32 = np.zeros(0, np.int32)
    return Requests(z64, z64, z32, z32, z32, z32, np.zeros(0, bool), np.zeros(1, np.int64), z64, 0)


def _requests(migs: pl.DataFrame, pids: np.ndarray, page_key: np.ndarray) -> Requests:
    """Group migrate rows into calls (validated: one ts, cpu, pid, mode and dst per req_id)."""
    calls = migs.group_by("req_id", maintain_order=True).agg(
        pl.col("row").first(), pl.col("ts_ns").first(), pl.col("cpu").first(), pl.col("pid").first(),
        pl.col("dst_node").first(), pl.col("src_node").first(), pl.col("mode").first(),
    ).sort("ts_ns", "row")
    explicit = migs.filter(pl.col("src_node").is_null())
    pid_idx_calls = np.searchsorted(pids, calls.get_column("pid").to_numpy()).astype(np.int32)
    n = calls.height
    order = {r: i for i, r in enumerate(calls.get_column("req_id").to_list())}
    page_ptr = np.zeros(n + 1, np.int64)
    pages = np.zeros(0, np.int64)
    absent = 0
    if explicit.height:
        ex_pid = explicit.get_column("pid").to_numpy()
        ex_vpn = explicit.get_column("vpn").to_numpy().astype(np.int64)
        pidx = np.searchsorted(pids, ex_pid).astype(np.uint64)
        key = (pidx << np.uint64(VPN_BITS)) | ex_vpn.astype(np.uint64)
        pos = np.searchsorted(page_key, key)
        present = np.zeros(len(key), bool)
        if len(page_key):
            present = (pos < len(page_key)) & (page_key[np.minimum(pos, len(page_key) - 1)] == key)
        absent = int((~present).sum())
        call_index = np.array([order[r] for r in explicit.get_column("req_id").to_list()], np.int64)
        call_index = call_index[present]
        page_ids = pos[present].astype(np.int64)
        # Stable sort by call keeps each call's pages in the order the trace lists them.
        srt = np.argsort(call_index, kind="stable")
        pages = page_ids[srt]
        counts = np.bincount(call_index, minlength=n)
        page_ptr[1:] = np.cumsum(counts)
    src = calls.get_column("src_node").fill_null(-1).to_numpy().astype(np.int32)
    mode = calls.get_column("mode").fill_null("sync").to_numpy()
    return Requests(
        req_id=calls.get_column("req_id").to_numpy().astype(np.int64),
        ts_ns=calls.get_column("ts_ns").to_numpy().astype(np.int64),
        cpu=calls.get_column("cpu").to_numpy().astype(np.int32),
        pid_index=pid_idx_calls,
        dst_node=calls.get_column("dst_node").to_numpy().astype(np.int32),
        src_node=src,
        is_async=(mode == "async"),
        page_ptr=page_ptr,
        pages=pages,
        absent_pages=absent,
    )
