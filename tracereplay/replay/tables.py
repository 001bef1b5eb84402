"""Rows of the event tables (schemas/events.v1.json) from what the planner and the kernel
produce: plans, completed flush rounds, stalls, per-CPU counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from tracereplay import events as ev
from tracereplay import migrate as mig
from tracereplay.kernel import STAT_NAMES, KernelState, Stalls
from tracereplay.prepass import PrePass

_REASON_NAMES = {3: "local_mm_shootdown", 4: "remote_ipi_send"}


class Sinks:
    """Turns plans and completed rounds of one policy into rows of its event tables."""

    def __init__(self, pre: PrePass, writer: ev.PolicyRunWriter, mechanism: str = "ipi") -> None:
        self.pre = pre
        self.w = writer
        self.mechanism = mechanism

    def plans(self, plans: list[mig.CallPlan]) -> None:
        for plan in plans:
            self.w.write("migrations", migrations_table(self.pre, plan.pages))
            self.w.write("batches", batches_table(self.pre, plan.batches))

    def rounds(self, rd: dict[str, np.ndarray]) -> None:
        self.w.write("flushes", flushes_table(self.pre, rd, self.mechanism))


def _words(codes: np.ndarray, words: Sequence[str]) -> pa.Array:
    """``words[code]`` for each code, as a string array."""
    if len(codes) and codes.min() == codes.max():  # one word (every page migrated, say)
        word = words[int(codes[0])].encode()
        offsets = np.arange(len(codes) + 1, dtype=np.int32) * len(word)
        return pa.Array.from_buffers(pa.string(), len(codes),
                                     [None, pa.py_buffer(offsets), pa.py_buffer(word * len(codes))])
    return pa.array(words, pa.string()).take(pa.array(codes))


def _nullable(values: np.ndarray) -> pa.Array:
    """-1 as null. (The validity bitmap is built here: ``pa.array(values, mask=...)`` takes
    several times as long, more so for int32.)"""
    null = values < 0
    if not null.any():
        return pa.array(values)
    valid = pa.py_buffer(np.packbits(~null, bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values),
                                 [valid, pa.py_buffer(np.ascontiguousarray(values))],
                                 null_count=int(null.sum()))


def flushes_table(pre: PrePass, rd: dict[str, np.ndarray], mechanism: str = "ipi") -> pa.Table:
    """Rounds as rows; a broadcast round (``mechanism`` is the profile's) sends no IPI and
    reaches every other CPU, a round of any other kind reaches its IPI targets."""
    reason = np.where(rd["targets"] > 0, 4, 3).astype(np.int8)
    bcast = rd["broadcast"].astype(bool)
    reached = np.where(bcast, pre.machine.cpus - 1, rd["targets"]).astype(np.int32)
    return ev.to_table("flushes", {
        "flush_id": rd["gid"], "ts_ns": rd["ts_ns"], "end_ns": rd["end_ns"], "cpu": rd["cpu"],
        "pid": pre.pids[rd["pid_index"]], "req_id": rd["req_id"], "batch_id": rd["batch_id"],
        "pages": rd["pages"], "targets": rd["targets"],
        "targets_holding": np.where(bcast, 0, rd["holding"]),
        "target_full_flush": rd["full"].astype(bool), "cost_ns": rd["cost_ns"], "reason": reason,
        "reason_name": _words(reason, ["", "", "", _REASON_NAMES[3], _REASON_NAMES[4]]),
        "mechanism": _words(bcast.astype(np.int8), ["ipi", mechanism]),
        "cpus_reached": reached, "reached_holding": rd["holding"],
    })


def migrations_table(pre: PrePass, pg: dict[str, np.ndarray]) -> pa.Table:
    page = pg["page"]
    return ev.to_table("migrations", {
        "req_id": pg["req_id"], "batch_id": pg["batch_id"], "cpu": pg["cpu"],
        "pid": pre.pids.take(pre.page_pid.take(page)), "vpn": pre.page_vpn.take(page),
        "pos_in_batch": _nullable(pg["pos"]),
        "src_node": pg["src_node"], "dst_node": pg["dst_node"],
        "unmap_ns": _nullable(pg["unmap_ns"]), "flush_ns": _nullable(pg["flush_ns"]),
        "copy_start_ns": _nullable(pg["copy_start_ns"]), "copy_end_ns": _nullable(pg["copy_end_ns"]),
        "remap_ns": _nullable(pg["remap_ns"]),
        "status": _words(pg["status"], mig.STATUS_NAMES),
        "attempts": pg["attempts"], "pages": pg["pages"].astype(np.int32),
    })


def batches_table(pre: PrePass, batches: list[dict[str, int | str | None]]) -> pa.Table:
    if not batches:
        return ev.empty_table("batches")
    cols: dict[str, Any] = {k: [b[k] for b in batches] for k in batches[0]}
    cols["pid"] = pre.pids[np.asarray(cols.pop("pid_index"), np.int64)]
    return ev.to_table("batches", cols)


def cpu_stats_table(state: KernelState) -> pa.Table:
    cols: dict[str, Any] = {"cpu": np.arange(len(state.cpu_node), dtype=np.int32),
                            "node": state.cpu_node}
    for j, name in enumerate(STAT_NAMES):
        cols[name] = state.stats[:, j]
    return ev.to_table("cpu_stats", cols)


def stalls_table(pre: PrePass, ts: np.ndarray, cpu: np.ndarray, page: np.ndarray,
                 st: Stalls) -> pa.Table:
    sp = page[st.index]
    return ev.to_table("stalls", {
        "ts_ns": ts[st.index] if st.at_ns is None else st.at_ns, "cpu": cpu[st.index],
        "pid": pre.pids[pre.page_pid[sp]],
        "vpn": pre.page_vpn[sp], "stall_ns": st.stall_ns, "batch_id": st.batch_id,
        "req_id": st.req_id})


def accesses_table(pre: PrePass, ts: np.ndarray, cpu: np.ndarray, page: np.ndarray,
                   write: np.ndarray, st: Stalls) -> pa.Table:
    return ev.to_table("accesses", {
        "ts_ns": ts, "cpu": cpu, "pid": pre.pids[pre.page_pid[page]],
        "vpn": pre.page_vpn[page], "write": write,
        "outcome": st.outcome, "remote": st.remote, "latency_ns": st.latency_ns})
