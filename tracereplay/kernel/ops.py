"""The operations of the plans reached so far, in time order, as the kernel takes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tracereplay import migrate as mig
from tracereplay.kernel._core import OP_ROUND, OP_UNMAP, Ops

_OP_COLS = {"ts": np.int64, "kind": np.int8, "arg": np.int64, "round": np.int64,
            "until": np.int64, "dst": np.int32, "batch": np.int64, "req": np.int64,
            "start": np.int64}
_ROUND_COLS = ("gid", "ts_ns", "end_ns", "cost_ns", "cpu", "pid_index", "req_id", "batch_id",
               "pages", "n_pages", "targets", "full", "mask_id", "broadcast")


def _translations(pg: dict[str, np.ndarray], ok: np.ndarray
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The migrated folios' rows, one per translation their unmap covers (``span``: every page
    of a PTE-mapped folio, the head of a PMD-mapped one), and the translation of each."""
    cols = ("unmap_ns", "round", "remap_ns", "dst_node", "batch_id", "req_id")
    rows: np.ndarray | slice = slice(None) if ok.all() else ok  # (all: no copy to select them)
    span = pg["span"][rows]
    if not len(span) or span.max() == 1:
        return {k: pg[k][rows] for k in cols}, pg["page"][rows]
    head = np.repeat(pg["page"][rows], span)
    first = np.cumsum(span) - span
    return ({k: np.repeat(pg[k][rows], span) for k in cols},
            head + np.arange(len(head), dtype=np.int64) - np.repeat(first, span))


@dataclass(frozen=True, slots=True)
class PlanOps:
    """The operations of some plans in time order, with the rounds they name (numbered from 0
    in the order of the plans) and the rounds' page lists, joined."""

    ops: dict[str, np.ndarray]
    rounds: dict[str, np.ndarray]
    pages: np.ndarray

    def __len__(self) -> int:
        return len(self.ops["ts"])


def plan_ops(plans: Sequence[mig.CallPlan]) -> PlanOps:
    """The operations of ``plans``: the unmap of each translation of each folio an attempt
    unmapped (migrated ones move it, aborted ones, transactional, restore it where it was) and
    each flush round's completion. Time first; at equal times unmaps before rounds; then the
    order they were planned. A pure function of the plans: the replay's caller lays them out
    while the lane replays."""
    parts: dict[str, list[np.ndarray]] = {k: [np.zeros(0, t)] for k, t in _OP_COLS.items()}
    rounds = [{k: np.zeros(0, np.int64) for k in _ROUND_COLS}]
    pages = [np.zeros(0, np.int64)]
    offset = 0
    for plan in plans:
        pg, rd = plan.pages, plan.rounds
        ok = pg["status"] != mig.STATUS_FAILED
        undone = pg["status"] == mig.STATUS_ABORTED
        if undone.any():
            pg = {**pg, "dst_node": np.where(undone, pg["src_node"], pg["dst_node"])}
        un, arg = _translations(pg, ok)
        n_u, n_r = len(arg), len(rd["gid"])
        none = np.full(n_r, -1, np.int64)
        unmaps = {"ts": un["unmap_ns"], "kind": np.full(n_u, OP_UNMAP, np.int8), "arg": arg,
                  "round": un["round"], "until": un["remap_ns"], "dst": un["dst_node"],
                  "batch": un["batch_id"], "req": un["req_id"]}
        ends = {"ts": rd["end_ns"], "kind": np.full(n_r, OP_ROUND, np.int8),
                "arg": np.arange(offset, offset + n_r, dtype=np.int64), "round": none,
                "until": none, "dst": none.astype(np.int32), "batch": none, "req": none}
        for k in unmaps:  # the plan's unmaps, then its rounds
            parts[k] += [unmaps[k], ends[k]]
        parts["start"].append(np.full(n_u + n_r, plan.start_ns, np.int64))
        rounds.append({k: rd[k] for k in _ROUND_COLS})
        pages.append(rd["page_list"])
        offset += n_r
    ops = {k: np.concatenate(parts[k]).astype(t, copy=False) for k, t in _OP_COLS.items()}
    order = np.argsort(_order_key(ops), kind="stable")  # stable: planned order among equals
    return PlanOps({k: v[order] for k, v in ops.items()},
                   {k: np.concatenate([r[k] for r in rounds]) for k in _ROUND_COLS},
                   np.concatenate(pages))


def _order_key(ops: dict[str, np.ndarray]) -> np.ndarray:
    """One int64 per operation that sorts as (time, kind)."""
    return ops["ts"] * 2 + ops["kind"]


class OpBuffer:
    """Scheduled operations not yet replayed, in time order, with the rounds they name.

    Plans are added as the replay reaches their start; replayed operations are dropped, and
    the rounds they completed are handed back as rows of the ``flushes`` table.
    """

    def __init__(self) -> None:
        self.ops = {k: np.zeros(0, t) for k, t in _OP_COLS.items()}
        self.rounds: dict[str, np.ndarray] = {k: np.zeros(0, np.int64) for k in _ROUND_COLS}
        self.r_ptr = np.zeros(1, np.int64)
        self.r_pages = np.zeros(0, np.int64)
        self.holding = np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.ops["ts"])

    def add(self, plans: Sequence[mig.CallPlan] | PlanOps) -> None:
        """Take the operations of plans (or as :func:`plan_ops` laid them out), after those
        already here at equal time and kind."""
        new = plans if isinstance(plans, PlanOps) else plan_ops(plans)
        if not len(new) and not len(new.rounds["gid"]):
            return
        n0 = len(self.rounds["gid"])
        add = dict(new.ops)
        add["arg"] = np.where(add["kind"] == OP_ROUND, add["arg"] + n0, add["arg"])
        # Merge two sorted lists, those already here first among equals.
        at = np.searchsorted(_order_key(self.ops), _order_key(add), side="right")
        at += np.arange(len(at))
        mine = np.ones(len(self) + len(at), bool)
        mine[at] = False
        merged = {}
        for k, t in _OP_COLS.items():
            col = np.empty(len(mine), t)
            col[mine] = self.ops[k]
            col[at] = add[k]
            merged[k] = col
        self.ops = merged
        self.rounds = {k: np.concatenate([self.rounds[k], new.rounds[k]]) for k in _ROUND_COLS}
        self.r_pages = np.concatenate([self.r_pages, new.pages])
        self.r_ptr = np.zeros(len(self.rounds["gid"]) + 1, np.int64)
        self.r_ptr[1:] = np.cumsum(self.rounds["n_pages"])
        self.holding = np.concatenate([self.holding, np.zeros(len(new.rounds["gid"]), np.int32)])

    def consume(self, n: int) -> dict[str, np.ndarray]:
        """Drop the first ``n`` operations; return the rounds they completed (with holding)."""
        kind, arg = self.ops["kind"], self.ops["arg"]
        done = arg[:n][kind[:n] == OP_ROUND]
        out = {k: v[done] for k, v in self.rounds.items()}
        out["holding"] = self.holding[done]
        left = arg[n:][kind[n:] == OP_ROUND]
        if len(done):
            # Renumber the rounds still pending and rebuild their page lists.
            keep = np.sort(left)
            new_index = np.full(len(self.rounds["gid"]), -1, np.int64)
            new_index[keep] = np.arange(len(keep))
            counts = self.rounds["n_pages"][keep]
            take = np.repeat(self.r_ptr[keep] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            self.r_pages = self.r_pages[take]
            self.rounds = {k: v[keep] for k, v in self.rounds.items()}
            self.holding = self.holding[keep]
            self.r_ptr = np.zeros(len(keep) + 1, np.int64)
            self.r_ptr[1:] = np.cumsum(counts)
            rest_kind = kind[n:]
            arg = arg.copy()
            arg[n:][rest_kind == OP_ROUND] = new_index[arg[n:][rest_kind == OP_ROUND]]
            self.ops["arg"] = arg
        self.ops = {k: v[n:] for k, v in self.ops.items()}
        return out

    def op_record(self) -> Ops:
        o = self.ops
        return Ops(ts=o["ts"], kind=o["kind"], arg=o["arg"], round=o["round"], until=o["until"],
                   dst=o["dst"], batch=o["batch"], req=o["req"], start=o["start"])
