"""Time the migrating task spent off its CPU inside an ``mm_migrate_pages`` call.

A capture records no "task switched out" event unless ``sched:*`` is traced, but its lines say
it all the same: perf (and ftrace) write the events of one CPU from the task running on it, so
while another task's lines appear on the migrating task's CPU, the migrating task was not
running there. The rule (the one of ``bench/move_stage_gaps.py``, which measured it on the
shipped capture: docs/calibration.md):

- a **gap** is more than ``GAP_NS`` between two consecutive lines of the migrating task (its
  thread: the task that opened the call) inside the call, start and end lines included;
- the gap counts as **off-CPU time** when, on the CPU of the line that opens it,
  - a line of another task falls strictly inside it (``other_task``), or
  - that opening line is the task's own ``tlb:tlb_flush`` of reason 0 (``task_switch``): x86
    ``switch_mm_irqs_off()`` (arch/x86/mm/tlb.c), called from ``context_switch()`` before
    ``switch_to()``, traces ``trace_tlb_flush(TLB_FLUSH_ON_TASK_SWITCH, TLB_FLUSH_ALL)``
    (``TLB_FLUSH_ON_TASK_SWITCH`` = 0, include/linux/mm_types.h) while the outgoing task is
    still current, so the line carries the task being switched out;
- the whole gap is counted (an upper bound: it also holds the task's own work up to its switch
  and after it runs again; with perf's microsecond timestamps that is a few µs).

Each gap goes to the page step that comes next in the call: the unmap of the page whose
``set_migration_pte`` ends it or follows it first, or the move (copy and remap) of the page whose
``remove_migration_pte`` does; a gap after the call's last such line (before its end line) goes
to no page (stage ``other``). Lines are taken in file order, which is time order in perf script
and ftrace output; "inside" compares timestamps.

What the rule misses: a switch to a kernel thread that traces nothing (lazy TLB: no
``switch_mm()``, no reason-0 line) and time a hypervisor takes from a virtual CPU leave no line.

One compiled pass per block of lines; the calls still open at a block's end carry their last
line and what was seen since on its CPU to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from numba import njit

from tracereplay.events import to_table
from tracereplay.importer import _scan as S

# A gap is longer than this between two consecutive lines of the migrating task. Perf prints
# microseconds; the task's own lines come 1 to 10 µs apart while it migrates (one per PTE, per
# flush round), and the shipped capture's off-CPU total moves by less than 1% for thresholds
# from 10 to 100 µs (docs/calibration.md).
GAP_NS = 20_000
TLB_FLUSH_ON_TASK_SWITCH = 0  # include/linux/mm_types.h, enum tlb_flush_reason

# evidence bits
EV_SWITCH = 1
EV_OTHER = 2
EVIDENCE = {EV_SWITCH: "task_switch", EV_OTHER: "other_task", EV_SWITCH | EV_OTHER: "task_switch+other_task"}
# stages
STAGE_PENDING, STAGE_UNMAP, STAGE_MOVE = 0, 1, 2
STAGES = ("other", "unmap", "move")

# per-slot state columns (one slot per open call)
_S_CALL, _S_CTX, _S_TS, _S_CPU, _S_SWITCH, _S_FIRST, _S_N, _S_MAX, _S_NMAX, _S_PENDING = range(10)
_S_COLS = 10
# per-gap output columns
(_G_CALL, _G_CTX, _G_PID, _G_CPU, _G_START, _G_END, _G_EV, _G_OTHERS, _G_LINE, _G_STAGE,
 _G_VPN) = range(11)  # fmt: skip
_G_COLS = 11
_R_COLS = 4  # resolutions: call, line, stage, vpn


def _grown(a: np.ndarray) -> np.ndarray:
    b = np.empty((2 * a.shape[0], a.shape[1]), np.int64)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def find_gaps(ev, ts, cpu, ctx, pid, tid, kind, reason, call, addr, first_line, e0, slots,
              n_slots, gaps, n_gaps, res, n_res, gap_ns):
    """Scan the event lines ``ev[e0:]`` of a block in file order (the other arrays are the
    block's scan, but ``ctx`` and ``call``, one per event line: its task and the call that task
    is inside, -1 for none; ``slots[:n_slots]``: the calls open before line ``e0``).

    Adds a row to ``gaps`` per off-CPU gap (columns ``_G_*``; stage pending when no set/remove
    line ends it) and one to ``res`` per set/remove line that settles the pending gaps of its
    call (``call, line, stage, vpn``). Returns (e, n_slots, n_gaps, n_res): ``e`` is the line it
    stopped at, before the end when an array is full (the caller grows it and goes on from
    there; no array is reallocated inside the loop)."""
    for e in range(e0, len(ev)):
        if n_slots == slots.shape[0] or n_gaps == gaps.shape[0] or n_res == res.shape[0]:
            return e, n_slots, n_gaps, n_res
        k = call[e]
        if k < 0 and n_slots == 0:
            continue
        i = ev[e]
        t = ts[i]
        c = cpu[i]
        x = ctx[e]
        # another task's line on the CPU of an open gap
        for s in range(n_slots):
            if slots[s, _S_CPU] == c and slots[s, _S_CTX] != x and t > slots[s, _S_TS]:
                if slots[s, _S_N] == 0 or t < slots[s, _S_FIRST]:
                    slots[s, _S_FIRST] = t
                if slots[s, _S_N] == 0 or t > slots[s, _S_MAX]:
                    slots[s, _S_MAX] = t
                    slots[s, _S_NMAX] = 0
                if t == slots[s, _S_MAX]:
                    slots[s, _S_NMAX] += 1
                slots[s, _S_N] += 1
        if k < 0:
            continue
        s = -1
        for j in range(n_slots):
            if slots[j, _S_CALL] == k:
                s = j
                break
        kd = kind[i]
        step = STAGE_PENDING
        if kd == S.KIND_SET_PTE:
            step = STAGE_UNMAP
        elif kd == S.KIND_REMOVE_PTE:
            step = STAGE_MOVE
        if s < 0:
            # the call's first line (its start, or the first line after a capture's start)
            s = n_slots
            n_slots += 1
            slots[s, _S_CALL] = k
            slots[s, _S_CTX] = x
            slots[s, _S_PENDING] = 0
        else:
            a = slots[s, _S_TS]
            evid = 0
            if slots[s, _S_SWITCH]:
                evid |= EV_SWITCH
            others = 0
            if slots[s, _S_N] > 0 and slots[s, _S_FIRST] < t:
                evid |= EV_OTHER
                others = slots[s, _S_N]
                if slots[s, _S_MAX] >= t:
                    others -= slots[s, _S_NMAX]
            if t - a > gap_ns and evid:
                gaps[n_gaps, _G_CALL] = k
                gaps[n_gaps, _G_CTX] = x
                gaps[n_gaps, _G_PID] = pid[i] if pid[i] >= 0 else tid[i]
                gaps[n_gaps, _G_CPU] = slots[s, _S_CPU]
                gaps[n_gaps, _G_START] = a
                gaps[n_gaps, _G_END] = t
                gaps[n_gaps, _G_EV] = evid
                gaps[n_gaps, _G_OTHERS] = others
                gaps[n_gaps, _G_LINE] = first_line + i
                gaps[n_gaps, _G_STAGE] = step
                gaps[n_gaps, _G_VPN] = (np.int64(addr[i] >> np.uint64(12))
                                        if step != STAGE_PENDING else -1)
                n_gaps += 1
                if step == STAGE_PENDING:
                    slots[s, _S_PENDING] += 1
            if step != STAGE_PENDING and slots[s, _S_PENDING] > 0:
                res[n_res, 0] = k
                res[n_res, 1] = first_line + i
                res[n_res, 2] = step
                res[n_res, 3] = np.int64(addr[i] >> np.uint64(12))
                n_res += 1
                slots[s, _S_PENDING] = 0
        if kd == S.KIND_MIGRATE_END:
            n_slots -= 1
            slots[s] = slots[n_slots]
            continue
        slots[s, _S_TS] = t
        slots[s, _S_CPU] = c
        slots[s, _S_SWITCH] = kd == S.KIND_TLB_FLUSH and reason[i] == TLB_FLUSH_ON_TASK_SWITCH
        slots[s, _S_N] = 0
    return len(ev), n_slots, n_gaps, n_res


@dataclass
class OffCpuTracker:
    """The off-CPU gaps of the calls of a capture, block after block (``feed``), as an
    ``off_cpu`` table at the end (``table``)."""

    gap_ns: int = GAP_NS
    _slots: np.ndarray = field(default_factory=lambda: np.zeros((8, _S_COLS), np.int64))
    _n_slots: int = 0
    _gaps: list[np.ndarray] = field(default_factory=list)
    _res: list[np.ndarray] = field(default_factory=list)
    # the rows of one block, reused
    _gap_rows: np.ndarray = field(default_factory=lambda: np.empty((16, _G_COLS), np.int64))
    _res_rows: np.ndarray = field(default_factory=lambda: np.empty((16, _R_COLS), np.int64))

    def feed(
        self, r: dict[str, np.ndarray], ev: np.ndarray, ctx: np.ndarray, call: np.ndarray,
        line_no: np.ndarray,
    ) -> None:
        """The event lines ``ev`` of a scanned block (``r``), each with its task (``ctx``) and
        the call that task is inside (``call``, -1: none), and the block's line numbers."""
        if not self._n_slots and not (call >= 0).any():
            return
        gaps, res = self._gap_rows, self._res_rows
        e = n = m = 0
        while True:
            e, self._n_slots, n, m = find_gaps(
                ev, r["ts"], r["cpu"], ctx, r["pid"], r["tid"], r["kind"], r["a1"], call,
                r["addr"], int(line_no[0]), e, self._slots, self._n_slots, gaps, n, res, m,
                self.gap_ns,
            )
            if e == len(ev):
                break
            if self._n_slots == len(self._slots):
                self._slots = _grown(self._slots)
            if n == len(gaps):
                gaps = self._gap_rows = _grown(gaps)
            if m == len(res):
                res = self._res_rows = _grown(res)
        if n:
            self._gaps.append(gaps[:n].copy())
        if m:
            self._res.append(res[:m].copy())

    def table(self, base_ns: int) -> pa.Table:
        """The ``off_cpu`` rows, in the order their gaps end (times since ``base_ns``)."""
        g = np.concatenate(self._gaps) if self._gaps else np.zeros((0, _G_COLS), np.int64)
        res = np.concatenate(self._res) if self._res else np.zeros((0, _R_COLS), np.int64)
        # a gap that no set/remove line ended goes to the next one of its call, if any
        for i in np.flatnonzero(g[:, _G_STAGE] == STAGE_PENDING):
            after = np.flatnonzero((res[:, 0] == g[i, _G_CALL]) & (res[:, 1] > g[i, _G_LINE]))
            if len(after):
                j = after[np.argmin(res[after, 1])]
                g[i, _G_STAGE], g[i, _G_VPN] = res[j, 2], res[j, 3]
        stage = g[:, _G_STAGE]
        return to_table(
            "off_cpu",
            {
                "req_id": g[:, _G_CALL],
                "cpu": g[:, _G_CPU],
                "pid": g[:, _G_PID],
                "tid": np.where(g[:, _G_CTX] >= 0, g[:, _G_CTX], 0),
                "start_ns": g[:, _G_START] - base_ns,
                "end_ns": g[:, _G_END] - base_ns,
                "dur_ns": g[:, _G_END] - g[:, _G_START],
                "stage": pa.array([STAGES[k] for k in stage.tolist()], pa.string()),
                "vpn": pa.array(g[:, _G_VPN], pa.int64(), mask=stage == STAGE_PENDING),
                "evidence": pa.array([EVIDENCE[k] for k in g[:, _G_EV].tolist()], pa.string()),
                "other_lines": g[:, _G_OTHERS],
                "line": g[:, _G_LINE],
            },
        )
