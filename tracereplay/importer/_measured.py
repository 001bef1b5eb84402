"""Measured event tables from scanned kernel-trace lines.

Blocks of lines arrive in file order; each is turned into rows of ``flushes``, ``migrations``,
``batches`` and ``skipped`` with whole-column (polars) operations. What can only be decided by
later lines is carried to the next block, and the carry stays small:

- an open migration call per task (``mm_migrate_pages_start`` seen, ``mm_migrate_pages`` not yet);
- ``set_migration_pte`` rows whose ``remove_migration_pte`` has not come yet, inside an open call;
- the ``tlb:tlb_flush`` rows of the last ``RECEIVER_WINDOW_NS``, whose IPI round may still gain
  receivers.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.events import table_schema, to_table
from tracereplay.importer import _scan as S
from tracereplay.importer._off_cpu import OffCpuTracker

# A receiver (reason 1) belongs to the latest IPI round (reason 4) sent from another CPU at
# most this long before it. IPIs arrive within microseconds; a receiver further away than this
# has lost its round (the trace started after it, or the initiator's event was dropped).
RECEIVER_WINDOW_NS = 1_000_000

REASON_NAMES = {
    0: "task_switch",
    1: "remote_shootdown",
    2: "local_shootdown",
    3: "local_mm_shootdown",
    4: "remote_ipi_send",
    5: "remote_wrong_cpu",
}
# Reason strings as kernels print them, lower-cased (the case changed in 2025), for the rare
# line that carries no "(code)".
REASON_TEXT = {
    "flush on task switch": 0,
    "remote shootdown": 1,
    "local shootdown": 2,
    "local mm shootdown": 3,
    "remote ipi send": 4,
    "remote wrong cpu": 5,
}
REASON_SEND_IPI = 4
REASON_RECEIVER = 1
TLB_SINGLE_PAGE_FLUSH_CEILING = 33  # x86 default; receivers flush everything above it
TEXT_LIMIT = 300
PAGE_SHIFT = 12
PF_WRITE = 1 << 1  # x86 page-fault error code: X86_PF_WRITE (arch/x86/include/asm/trap_pf.h)


def _strings(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """Arrow strings of the byte spans (invalid UTF-8 replaced)."""
    data, offs = S.gather(buf, starts, ends, TEXT_LIMIT)
    arr = pa.StringArray.from_buffers(len(starts), pa.py_buffer(offs), pa.py_buffer(data))
    try:
        arr.validate(full=True)
        return arr
    except pa.ArrowInvalid:
        raw = data.tobytes()
        return pa.array(
            [raw[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(len(starts))],
            pa.string(),
        )


@dataclass
class Malformed:
    line: int
    rule: str
    text: str


@dataclass
class MeasuredBuilder:
    """Turns scanned blocks into event-table rows; ``emit`` receives (table name, Arrow table)."""

    emit: Any
    strict_fail: Any = None  # called with the first Malformed when --strict
    base_ns: int | None = None
    lines: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[int] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    malformed_lines: list[int] = field(default_factory=list)
    malformed_total: int = 0
    layouts: Counter[int] = field(default_factory=Counter)
    unpaired_sets: int = 0
    paired: int = 0
    receivers_joined: int = 0
    max_cpu: int = -1  # the highest CPU of an event line, and its line
    max_cpu_line: int = 0
    _next_call: int = 0
    _next_flush: int = 0
    _open_calls: dict[int, int] = field(default_factory=dict)  # ctx -> call id
    _pending_starts: dict[str, Any] | None = None
    _open_sets: dict[str, np.ndarray] | None = None
    _tlb_tail: tuple[dict[str, np.ndarray], pa.Array] | None = None
    _first_line: int = 1  # of the block being assembled
    off_cpu: OffCpuTracker = field(default_factory=OffCpuTracker)
    _pair_table: np.ndarray = field(default_factory=S.pair_table)  # pair_fifo's, kept

    # ------------------------------------------------------------------ block
    def feed(self, block: bytes, r: dict[str, np.ndarray], prep: Prepared | None = None) -> None:
        """Take one block of lines and its scan (``_scan.scan(block, layout)``), and its
        ``prepare`` (made here when not given)."""
        if prep is None:
            prep = prepare(block, r)
        buf = np.frombuffer(block, dtype=np.uint8)
        n = len(r["ls"])
        first_line = self.lines + 1
        self.lines += n
        line_no = np.arange(first_line, first_line + n, dtype=np.int64)

        self._malformed(buf, r, line_no)

        ev = prep.ev
        if not len(ev):
            return
        if self.base_ns is None:
            self.base_ns = int(r["ts"][ev[0]])
        if prep.top_cpu > self.max_cpu:
            self.max_cpu = prep.top_cpu
            self.max_cpu_line = prep.top_row + first_line
        _count(self.layouts, prep.layouts)
        _count(self.counts, prep.by_kind[1:], S.KIND_NAMES)

        unknown = prep.unknown
        if len(unknown):
            names = prep.unknown_names
            for vc in pc.value_counts(names).to_pylist():
                self.counts[vc["values"]] += vc["counts"]
            self._skip(line_no[unknown], names, "unknown_event", buf, r, unknown)

        if not len(prep.known) and not self._open_calls:
            return
        # the call of every event line's task (unknown events too: the off-CPU gaps see them)
        ctx = prep.ctx
        n_open = len(self._open_calls)
        call, open_ctx, open_call, self._next_call = S.assign_calls(
            ctx,
            prep.kinds,
            np.fromiter(self._open_calls.keys(), np.int64, n_open),
            np.fromiter(self._open_calls.values(), np.int64, n_open),
            self._next_call,
        )
        self._open_calls = dict(zip(open_ctx.tolist(), open_call.tolist(), strict=True))
        self.off_cpu.feed(r, ev, ctx, call, line_no)
        if not len(prep.known):
            return
        self._first_line = first_line
        call = call[prep.is_known]

        def rows(part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            """A kind's columns, with their line numbers and calls."""
            out = dict(part)
            out["line"] = part["line"] + first_line
            out["call"] = call[part["call"]]  # the rows' positions in ``known``
            return out

        self._calls(rows(prep.mig), prep.mig_modes, buf, r)
        self._flushes(rows(prep.tlb), prep.tlb_texts, final=False)
        self._migrations(rows(prep.pte), buf, r)
        if len(prep.fault["line"]):
            self._faults(rows(prep.fault))

    # ------------------------------------------------------------- malformed
    def _malformed(self, buf: np.ndarray, r: dict[str, np.ndarray], line_no: np.ndarray) -> None:
        bad = np.nonzero(r["status"] == S.ST_MALFORMED)[0]
        if not len(bad):
            return
        texts = _strings(buf, r["ls"][bad], r["le"][bad])
        text_list = texts.to_pylist()
        keep = []
        lost = []
        for j, t in enumerate(text_list):
            if _LOST.search(t):
                lost.append(j)
            elif not _HEADER.match(t):
                keep.append(j)
        if lost:
            sel = pa.array(lost, pa.int64())
            self._emit_skipped(line_no[bad][lost], None, "lost_events", texts.take(sel))
        if not keep:
            return
        idx = bad[keep]
        if self.strict_fail is not None:
            i = idx[0]
            self.strict_fail(
                Malformed(int(line_no[i]), S.ERRORS.get(int(r["err"][i]), "malformed"),
                          text_list[keep[0]])
            )  # fmt: skip
        self.malformed_total += len(idx)
        room = 100 - len(self.malformed_lines)
        if room > 0:
            self.malformed_lines.extend(line_no[idx][:room].tolist())
        kinds = r["kind"][idx]
        ev_names = pa.array(
            [S.KIND_NAMES[k] if k >= 0 else None for k in kinds.tolist()], pa.string()
        )
        rules = [S.ERRORS.get(int(e), "malformed") for e in r["err"][idx].tolist()]
        self.skipped["malformed"] += len(idx)
        self.emit(
            "skipped",
            to_table(
                "skipped",
                {
                    "line": line_no[idx],
                    "event": ev_names,
                    "why": pa.array([f"malformed: {x}" for x in rules], pa.string()),
                    "text": texts.take(pa.array(keep, pa.int64())),
                },
            ),
        )

    def _skip(
        self,
        lines: np.ndarray,
        events: pa.Array | None,
        why: str,
        buf: np.ndarray,
        r: dict[str, np.ndarray],
        idx: np.ndarray,
    ) -> None:
        self._emit_skipped(lines, events, why, _strings(buf, r["ls"][idx], r["le"][idx]))

    def _emit_skipped(self, lines: Any, events: Any, why: str, texts: Any) -> None:
        n = len(lines)
        if not n:
            return
        self.skipped[why] += n
        self.emit(
            "skipped",
            to_table(
                "skipped",
                {
                    "line": lines,
                    "event": events if events is not None else pa.nulls(n, pa.string()),
                    "why": pa.array([why] * n, pa.string()),
                    "text": texts,
                },
            ),
        )

    # ----------------------------------------------------------------- calls
    def _calls(
        self,
        mig: dict[str, np.ndarray],
        modes: tuple[pa.Array, pa.Array],
        buf: np.ndarray,
        r: dict[str, np.ndarray],
    ) -> None:
        """Emit the calls that end in this block as ``batches`` rows (``mig``: the start and end
        rows, each with its ``call``; ``modes``: their mode and reason); starts whose end is
        still to come wait for it."""
        if not len(mig["line"]):
            return
        rows = mig["line"] - self._first_line
        cols: dict[str, Any] = {**mig, "mode": modes[0], "reason": modes[1]}
        kind, call = mig["kind"], mig["call"]
        is_end = kind == S.KIND_MIGRATE_END
        orphan = np.nonzero(is_end & (call < 0))[0]
        if len(orphan):
            self._emit_skipped(
                mig["line"][orphan],
                pa.array([S.KIND_NAMES[S.KIND_MIGRATE_END]] * len(orphan)),
                "end_without_start",
                _strings(buf, r["ls"][rows[orphan]], r["le"][rows[orphan]]),
            )
        is_start = np.nonzero(kind == S.KIND_MIGRATE_START)[0]
        starts = _take(cols, is_start)
        ends = _take(cols, np.nonzero(is_end & (call >= 0))[0])
        # The text of a start is kept for a call that does not end in this block (it may be
        # reported as without end); the others' is left empty, never to be read.
        open_ = ~np.isin(starts["call"], ends["call"])
        at = rows[is_start]
        starts["text"] = _strings(buf, np.where(open_, r["ls"][at], -1), r["le"][at])
        if self._pending_starts is not None:
            old = self._pending_starts
            starts = {c: _concat(old[c], v) for c, v in starts.items()}
        closed = np.isin(starts["call"], ends["call"])
        done = _take(starts, np.nonzero(closed)[0])
        done = _take(done, np.argsort(done["call"], kind="stable"))
        by_call = np.argsort(ends["call"], kind="stable")
        ends = _take(ends, by_call[np.searchsorted(ends["call"], done["call"], sorter=by_call)])
        self._emit_batches(done, ends)
        rest = _take(starts, np.nonzero(~closed)[0])
        still_open = np.isin(rest["call"], np.fromiter(self._open_calls.values(), np.int64))
        self._pending_starts = _take(rest, np.nonzero(still_open)[0])
        self._unterminated(_take(rest, np.nonzero(~still_open)[0]))

    def _unterminated(self, starts: dict[str, Any]) -> None:
        n = len(starts["line"])
        if n:
            self._emit_skipped(
                starts["line"],
                pa.array([S.KIND_NAMES[S.KIND_MIGRATE_START]] * n),
                "call_without_end",
                starts["text"],
            )

    def _emit_batches(self, start: dict[str, Any], end: dict[str, Any]) -> None:
        """One ``batches`` row per call: its start row and its end row (in call order)."""
        n = len(start["line"])
        if not n:
            return
        assert self.base_ns is not None
        done, failed = end["a0"], end["a1"]
        self.emit(
            "batches",
            _arrow_table(
                "batches",
                {
                    "batch_id": start["call"],
                    "req_id": start["call"],
                    "cpu": start["cpu"],
                    "pid": start["pid"],
                    "kind": _repeat("call", n),
                    "mode": pc.coalesce(end["mode"], start["mode"]),
                    "reason": pc.coalesce(end["reason"], start["reason"]),
                    "nr_succeeded": pa.array(done, pa.int64(), mask=done == S.MISSING),
                    "nr_failed": pa.array(failed, pa.int64(), mask=failed == S.MISSING),
                    "start_ns": start["ts"] - self.base_ns,
                    "end_ns": end["ts"] - self.base_ns,
                    "pages": np.where(done == S.MISSING, 0, done)
                    + np.where(failed == S.MISSING, 0, failed),
                },
            ),
        )

    # --------------------------------------------------------------- flushes
    def _flushes(self, tlb: dict[str, np.ndarray], texts: pa.Array, *, final: bool) -> None:
        """Emit the flushes whose round can gain no more receivers (all of them when
        ``final``); ``texts`` are the lines of the receivers (empty for other rows)."""
        if len(tlb["line"]):
            codes, times = np.unique(tlb["a1"], return_counts=True)
            for code, c in zip(codes.tolist(), times.tolist(), strict=True):
                self.reasons[code] += c
        if self._tlb_tail is not None:
            old, old_texts = self._tlb_tail
            tlb = {c: np.concatenate([old[c], tlb[c]]) for c in _TLB_COLS}
            texts = pa.concat_arrays([old_texts, texts])
            self._tlb_tail = None
        n = len(tlb["line"])
        if not n:
            return
        reason = tlb["a1"]
        joined, targets, cut = S.flush_rounds(
            reason, tlb["ts"], tlb["cpu"], REASON_SEND_IPI, REASON_RECEIVER,
            RECEIVER_WINDOW_NS, final,
        )  # fmt: skip
        if cut < n:
            # Rows from the first round that may still gain receivers wait for the next block.
            self._tlb_tail = ({c: v[cut:] for c, v in tlb.items()}, texts.slice(cut))
            tlb = {c: v[:cut] for c, v in tlb.items()}
            reason, joined, targets = reason[:cut], joined[:cut], targets[:cut]
        if not cut:
            return
        self.receivers_joined += int(joined.sum())
        receiver = reason == REASON_RECEIVER
        lost = np.nonzero(receiver & ~joined)[0]
        if len(lost):
            self._emit_skipped(
                tlb["line"][lost],
                pa.array([S.KIND_NAMES[S.KIND_TLB_FLUSH]] * len(lost)),
                "receiver_without_round",
                texts.take(pa.array(lost)),
            )
        rows = _select(tlb, ~receiver)
        targets = targets[~receiver]
        n = len(rows["line"])
        pages = rows["a0"]
        code = rows["a1"]
        is_round = code == REASON_SEND_IPI
        named = (code >= 0) & (code < len(_REASON_LIST))
        self.emit(
            "flushes",
            _arrow_table(
                "flushes",
                {
                    "flush_id": np.arange(self._next_flush, self._next_flush + n, dtype=np.int64),
                    "ts_ns": rows["ts"] - self.base_ns,
                    "cpu": rows["cpu"],
                    "pid": rows["pid"],
                    "req_id": _calls_array(rows["call"]),
                    "batch_id": _calls_array(rows["call"]),
                    "pages": pages,
                    "targets": np.where(is_round, targets, 0),
                    "target_full_flush": pa.array(
                        pages == -1,
                        pa.bool_(),
                        mask=~is_round | ((pages != -1) & (pages > TLB_SINGLE_PAGE_FLUSH_CEILING)),
                    ),
                    "reason": code,
                    "reason_name": _REASON_LIST.take(
                        pa.array(np.where(named, code, 0), pa.int64(), mask=~named)
                    ),
                },
            ),
        )
        self._next_flush += n

    # ------------------------------------------------------------ migrations
    def _migrations(
        self, pte: dict[str, np.ndarray], buf: np.ndarray, r: dict[str, np.ndarray]
    ) -> None:
        """Pair the set and remove rows (in line order, after the sets still open) and emit
        what is decided; ``call`` is -1 outside a call."""
        pte = {c: pte[c] for c in _PTE_COLS}
        if self._open_sets is not None and len(self._open_sets["line"]):
            pte = {c: np.concatenate([self._open_sets[c], pte[c]]) for c in _PTE_COLS}
        self._open_sets = None
        if not len(pte["line"]):
            return
        call = pte["call"]
        is_set = pte["kind"] == S.KIND_SET_PTE
        partner, orphan, self._pair_table = S.pair_fifo(
            pte["ctx"], call, pte["addr"].view(np.int64), is_set, self._pair_table
        )
        if orphan.any():
            # removes are never carried: every orphan is a line of this block
            lines = pte["line"][orphan]
            rows = lines - self._first_line
            self._emit_skipped(
                lines,
                pa.array([S.KIND_NAMES[S.KIND_REMOVE_PTE]] * len(lines)),
                "unpaired",
                _strings(buf, r["ls"][rows], r["le"][rows]),
            )
        paired = is_set & (partner >= 0)
        open_ = is_set & (partner < 0)
        keep = (call == -1) | np.isin(call, np.fromiter(self._open_calls.values(), np.int64))
        carry = open_ & keep
        self._open_sets = _select(pte, carry)
        done = _select(pte, paired)
        done["remap"] = pte["ts"][partner[paired]]
        self._emit_migrations(done, "migrated")
        self._emit_migrations(_select(pte, open_ & ~keep), "unpaired")

    def _emit_migrations(self, rows: dict[str, np.ndarray], status: str) -> None:
        """``rows`` (in line order) as ``migrations`` rows."""
        n = len(rows["line"])
        if not n:
            return
        assert self.base_ns is not None
        if status == "migrated":
            self.paired += n
            remap = pa.array(rows["remap"] - self.base_ns, pa.int64())
        else:
            self.unpaired_sets += n
            remap = pa.nulls(n, pa.int64())
        call = _calls_array(rows["call"])
        cols = {
            "req_id": call,
            "batch_id": call,
            "cpu": rows["cpu"],
            "vpn": (rows["addr"] >> np.uint64(PAGE_SHIFT)).astype(np.int64),
            "pfn": migration_entry_pfn(rows["a1"]),
            "unmap_ns": rows["ts"] - self.base_ns,
            "remap_ns": remap,
            "status": _repeat(status, n),
        }
        self.emit("migrations", _arrow_table("migrations", cols))

    # ---------------------------------------------------------------- faults
    def _faults(self, f: dict[str, np.ndarray]) -> None:
        """``exceptions:page_fault_user`` rows as ``faults`` rows."""
        assert self.base_ns is not None
        code = f["a0"]
        self.emit(
            "faults",
            _arrow_table(
                "faults",
                {
                    "ts_ns": f["ts"] - self.base_ns,
                    "cpu": f["cpu"],
                    "pid": f["pid"],
                    "tid": f["tid"],
                    "address": f["addr"],
                    "vpn": (f["addr"] >> np.uint64(PAGE_SHIFT)).astype(np.int64),
                    "error_code": code,
                    "write": (code & PF_WRITE) != 0,
                    "line": f["line"],
                },
            ),
        )

    # ------------------------------------------------------------------ end
    def finish(self) -> None:
        """Flush what was carried: the last rounds, open calls and their unpaired pages."""
        if self._tlb_tail is not None:
            tail, texts = self._tlb_tail
            self._flushes({c: v[:0] for c, v in tail.items()}, texts.slice(0, 0), final=True)
        self._open_calls = {}
        if self._open_sets is not None:
            rest = self._open_sets
            self._open_sets = None
            self._emit_migrations(rest, "unpaired")
        if self._pending_starts is not None:
            self._unterminated(self._pending_starts)
            self._pending_starts = None
        if self.base_ns is not None:
            self.emit("off_cpu", self.off_cpu.table(self.base_ns))


@dataclass
class Prepared:
    """What the assembly of a block takes from the block and its scan alone (``prepare``):
    made on the thread that scanned it, while the blocks before are assembled. Rows are
    positions in the block; each kind's columns hold ``line`` as that position and ``call``
    as the row's position among the ``known`` lines (its call is decided in order)."""

    ev: np.ndarray  # the event lines
    kinds: np.ndarray  # their kind
    ctx: np.ndarray  # their task: tid, or -(cpu + 1) for the idle task
    top_cpu: int  # the highest CPU of an event line (-1: none), and its row
    top_row: int
    layouts: np.ndarray  # event lines per layout
    by_kind: np.ndarray  # event lines per kind + 1
    unknown: np.ndarray  # the lines of unknown events, and their names
    unknown_names: pa.Array | None
    is_known: np.ndarray  # which event lines are of a known kind, and those lines
    known: np.ndarray
    mig: dict[str, np.ndarray]  # the columns of each kind's rows
    mig_modes: tuple[pa.Array, pa.Array]  # the calls' mode and reason (null where blank)
    tlb: dict[str, np.ndarray]
    tlb_texts: pa.Array  # the receivers' lines (empty for the others)
    pte: dict[str, np.ndarray]
    fault: dict[str, np.ndarray]


def prepare(block: bytes, r: dict[str, np.ndarray]) -> Prepared:
    """The block's part of its assembly (see ``Prepared``); tlb_flush reasons printed without
    "(code)" are resolved in ``r`` by name, or the line marked malformed."""
    buf = np.frombuffer(block, dtype=np.uint8)
    status, kind = r["status"], r["kind"]
    name_only = np.nonzero((status == S.ST_EVENT) & (r["a1"] == S.REASON_NAME_ONLY))[0]
    if len(name_only):
        texts = _strings(buf, r["s1s"][name_only], r["s1e"][name_only]).to_pylist()
        for i, t in zip(name_only, texts, strict=True):
            code = REASON_TEXT.get(" ".join(t.lower().split()))
            if code is None:
                status[i] = S.ST_MALFORMED
                r["err"][i] = 7
            else:
                r["a1"][i] = code

    ev = np.nonzero(status == S.ST_EVENT)[0]
    kinds = kind[ev]
    tid = r["tid"][ev]
    cpu = r["cpu"][ev]
    top = int(np.argmax(cpu)) if len(ev) else 0
    unknown = ev[kinds == S.KIND_UNKNOWN]
    is_known = kinds >= 0
    known = ev[is_known]
    kk = kinds[is_known]
    ctx = np.where(tid > 0, tid, -(cpu.astype(np.int64) + 1)).astype(np.int64)
    ctx_known = ctx[is_known]

    def rows(sel: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """Columns ``names`` of the known rows ``sel`` (positions in ``known``)."""
        idx = known[sel]
        out = {}
        for c in names:
            if c == "line":
                out[c] = idx
            elif c == "ctx":
                out[c] = ctx_known[sel]
            elif c == "call":
                out[c] = sel
            elif c == "pid":
                p, t = r["pid"][idx], r["tid"][idx]
                out[c] = np.where(p >= 0, p, t).astype(np.int32)
            else:
                out[c] = r[c][idx]
        return out

    mig = rows(np.nonzero((kk == S.KIND_MIGRATE_START) | (kk == S.KIND_MIGRATE_END))[0],
               _CALL_COLS)  # fmt: skip
    at = mig["line"]
    modes = (
        _blank_null(_strings(buf, r["s0s"][at], r["s0e"][at])),
        _blank_null(_strings(buf, r["s1s"][at], r["s1e"][at])),
    )
    tlb = rows(np.nonzero(kk == S.KIND_TLB_FLUSH)[0], _TLB_COLS)
    at = tlb["line"]
    receiver = tlb["a1"] == REASON_RECEIVER
    tlb_texts = _strings(buf, np.where(receiver, r["ls"][at], -1), r["le"][at])
    return Prepared(
        ev=ev,
        kinds=kinds,
        ctx=ctx,
        top_cpu=int(cpu[top]) if len(ev) else -1,
        top_row=int(ev[top]) if len(ev) else 0,
        layouts=np.bincount(r["layout"][ev], minlength=3),
        by_kind=np.bincount(kinds.astype(np.int64) + 1, minlength=len(S.KIND_NAMES) + 1),
        unknown=unknown,
        unknown_names=_strings(buf, r["es"][unknown], r["ee"][unknown]) if len(unknown) else None,
        is_known=is_known,
        known=known,
        mig=mig,
        mig_modes=modes,
        tlb=tlb,
        tlb_texts=tlb_texts,
        pte=rows(np.nonzero((kk == S.KIND_SET_PTE) | (kk == S.KIND_REMOVE_PTE))[0], _PTE_COLS),
        fault=rows(np.nonzero(kk == S.KIND_PAGE_FAULT)[0], _FAULT_COLS),
    )


_TLB_COLS = ["line", "cpu", "pid", "ts", "a0", "a1", "call"]
_CALL_COLS = ["line", "kind", "cpu", "pid", "ts", "a0", "a1", "call"]
_REASON_LIST = pa.array([REASON_NAMES[k] for k in range(len(REASON_NAMES))], pa.string())
_PTE_COLS = ["line", "kind", "ctx", "cpu", "ts", "addr", "call", "a1"]
_FAULT_COLS = ["line", "cpu", "pid", "tid", "ts", "addr", "a0", "call"]


# x86-64 swap entries (arch/x86/include/asm/pgtable_64.h, since the L1TF change f62c44c03c76):
# the type in the top 5 bits, the offset inverted from bit 9 (_PAGE_BIT_PROTNONE + 1). A
# migration entry's offset is the page's PFN (include/linux/swapops.h make_*_migration_entry),
# with the young and dirty bits above the PFN's MAX_PHYSMEM_BITS - PAGE_SHIFT bits (34 with
# 4-level paging; the PFNs of machines below 64 TiB fit in them with 5-level paging too).
_SWP_TYPE_BITS, _SWP_OFFSET_SHIFT, _SWP_PFN_BITS = 5, 14, 34


def migration_entry_pfn(pte: np.ndarray) -> pa.Array:
    """The PFN of the page in each x86-64 migration entry ``pte`` (the ``pte=`` of a
    ``set_migration_pte`` line, its 64 bits as int64); null where the line had none."""
    raw = pte.view(np.uint64)
    offset = (~raw << np.uint64(_SWP_TYPE_BITS)) >> np.uint64(_SWP_OFFSET_SHIFT)
    pfn = (offset & np.uint64((1 << _SWP_PFN_BITS) - 1)).astype(np.int64)
    return pa.array(pfn, pa.int64(), mask=pte == S.MISSING)


def _select(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {c: v[mask] for c, v in cols.items()}


def _take(cols: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    """Rows ``idx`` of columns that are numpy or Arrow arrays."""
    sel = pa.array(idx, pa.int64())
    return {c: v[idx] if isinstance(v, np.ndarray) else v.take(sel) for c, v in cols.items()}


def _concat(a: Any, b: Any) -> Any:
    return np.concatenate([a, b]) if isinstance(a, np.ndarray) else pa.concat_arrays([a, b])


def _blank_null(arr: pa.Array) -> pa.Array:
    """``arr`` with empty strings null."""
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _calls_array(call: np.ndarray) -> pa.Array:
    """Call ids, null where -1 (outside any call)."""
    return pa.array(call, pa.int64(), mask=call < 0)


def _arrow_table(name: str, cols: dict[str, Any]) -> pa.Table:
    """Event table ``name`` from arrays (missing columns null, types cast)."""
    schema = table_schema(name)
    n = len(next(iter(cols.values())))
    arrays = [
        (v if isinstance(v := cols[f.name], pa.Array) else pa.array(v)).cast(f.type)
        if f.name in cols
        else pa.nulls(n, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _repeat(text: str, n: int) -> pa.Array:
    """``n`` times the same string."""
    raw = text.encode()
    offs = np.arange(n + 1, dtype=np.int32) * len(raw)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offs), pa.py_buffer(raw * n))


def _count(counter: Counter[Any], counts: np.ndarray, names: Any = None) -> None:
    """Add ``counts[k]`` to ``counter[names[k]]`` (``counter[k]`` without names) where not 0."""
    for k, c in enumerate(counts.tolist()):
        if c:
            counter[names[k] if names is not None else k] += c


_LOST = re.compile(r"\[LOST (\d+ )?EVENTS\]|LOST \d+ events", re.IGNORECASE)
# trace-cmd report and ftrace preambles that are not events
_HEADER = re.compile(
    r"\s*(cpus=\d+|version\s*=|CPU\s*\d+ is empty|CPU\d+ data recorded|tracer:|entries-in-buffer|"
    r"#|Warning:|\[.*\] *$)"
)
