"""Where the move stage of a capture's slow mm_migrate_pages calls went: the migrating task off its CPU.

    python bench/move_stage_gaps.py sample_traces/compaction-writers.perf-script.zst
    python bench/move_stage_gaps.py CAPTURE --calls 4,6,10 --gap-us 20 --csv calls.csv

Reads a ``perf script -F comm,pid,tid,cpu,time,event,trace`` capture (plain or zstd) with
``migrate:*``, ``tlb:tlb_flush`` and ``exceptions:page_fault_user`` lines and measures, per call
(calls numbered in the order of their ``mm_migrate_pages_start`` lines, from 0, as the importer's
``req_id``):

- the stages: *unmap* from the start line to the batch flush (the task's last ``tlb_flush`` of
  reason 2, 3 or 4 before its first ``remove_migration_pte``; the last ``set_migration_pte``
  when there is none), *move* from there to the last ``remove_migration_pte`` (copy and remap,
  page after page, pages without a PTE included: they leave no line);
- the gaps: intervals longer than ``--gap-us`` between two consecutive lines of the migrating
  task inside the stage;
- off-CPU evidence for a gap, on the CPU of the line that opens it: a line of another task on
  that CPU inside the gap (perf's lines of one CPU come from the task running on it, so the
  migrating task was not running then), or the task's own ``tlb_flush`` of reason 0 ("flush on
  task switch", x86 ``switch_mm_irqs_off()``, traced while the outgoing task is still current)
  opening the gap. ``off_us`` sums the gaps with evidence (an upper bound of the time the task
  was off its CPU: a gap also holds the task's own work up to its switch); ``seen_us`` sums the
  spans from the first to the last line of other tasks inside them (a lower bound);
- stalls: faults of any task on a page (address >> 12) of the call from its
  ``set_migration_pte`` to its ``remove_migration_pte`` (both included; 1,027 on the shipped
  capture, the importer's count), and the faults of other tasks on the migrating CPU during
  the call.

Then it prints the requested calls, the spread of the move stage per page and per PTE over the
calls with ``--min-mapped`` mapped pages or more with and without the off-CPU time, Spearman correlations
of the move stage per page with the off-CPU time and with the stalls, and the least-squares fit
of call duration on pages, PTEs and flush rounds (no coefficient below 0, as
``tracereplay calibrate`` fits it) with and without the off-CPU time (``call_off_us``, the gaps
with evidence anywhere in the call) as a fourth term, and of the task's own time (duration minus
that time) on the three.

With ``--run RUN`` (an import and a ``-p batched`` replay of its trace, e.g. with the profile of
``tracereplay calibrate``) it also prints the model's unmapped-window p50 and p99 as
``measured_vs_model`` counts them, before and after each call's off-CPU gaps are inserted into
the model's plan of that call as pauses (a post-processing estimate; stalls not recomputed).

``tracereplay import`` applies the same gap rule to every capture (its ``off_cpu`` table,
``tracereplay/importer/_off_cpu.py``; on the shipped capture it finds the same 44 gaps); this
script stays as the exploration that led to it (stages, stalls, correlations, the pauses).

Timestamps are perf's per-CPU clock printed to the microsecond; a gap shorter than a few
microseconds is not resolved, and a task switch to a kernel thread (lazy TLB, no ``switch_mm``)
or to a task that traces nothing leaves no line: ``off_us`` misses such time.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tracereplay.calibrate import _nnls
from tracereplay.importer._measured import migration_entry_pfn

_LINE = re.compile(r"^\s*(.+?)\s+(-?\d+)/(-?\d+)\s+\[(\d+)\]\s+(\d+)\.(\d{6}):\s+(\S+):\s*(.*)$")
_SWITCH = "(0)"
_ROUND_REASONS = ("(2)", "(3)", "(4)")


def read_lines(path: str) -> pl.DataFrame:
    """One row a perf script line: line, comm, pid, tid, cpu, ts_us, event, payload."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    rows = []
    for n, text in enumerate(io.StringIO(raw.decode()), 1):
        m = _LINE.match(text)
        if m is None:
            continue
        comm, pid, tid, cpu, sec, usec, event, payload = m.groups()
        rows.append(
            (
                n,
                comm,
                int(pid),
                int(tid),
                int(cpu),
                int(sec) * 1_000_000 + int(usec),
                event,
                payload,
            )
        )
    cols = ["line", "comm", "pid", "tid", "cpu", "ts_us", "event", "payload"]
    df = pl.DataFrame(rows, schema=cols, orient="row")
    return df.with_columns(pl.col("ts_us") - pl.col("ts_us").min())


@dataclass
class Call:
    call: int
    pid: int
    cpu: int
    start_us: int
    end_us: int
    pages: int
    ptes: int
    mapped: int
    rounds: int
    move_start_us: int | None = None
    move_end_us: int | None = None
    gaps: int = 0
    gap_us: int = 0
    off_gaps: int = 0
    off_us: int = 0
    seen_us: int = 0
    call_off_us: int = 0
    off_spans: list[tuple[int, int, int, bool, str]] = field(default_factory=list)
    stalls: int = 0
    others_faults_on_cpu: int = 0
    who: dict[str, int] = field(default_factory=dict)


def _off_cpu(
    t, ev, pay, cpu, gap_us, others, spans=None
) -> tuple[int, int, int, int, int, dict[str, int]]:
    """Gaps, their length, the gaps with off-CPU evidence, their length, the others' spans, who;
    appends each gap with evidence to ``spans`` as (cpu, from, to)."""
    o_ts, o_cpu, o_comm = others
    d = np.diff(t)
    big = np.flatnonzero(d > gap_us)
    off_gaps = off_us = seen_us = 0
    who: dict[str, int] = {}
    for b in big:
        a, z = t[b], t[b + 1]
        lo, hi = np.searchsorted(o_ts, a, "right"), np.searchsorted(o_ts, z, "left")
        inside = np.flatnonzero(o_cpu[lo:hi] == cpu[b]) + lo
        switched = ev[b] == "tlb:tlb_flush" and _SWITCH in pay[b]
        if len(inside) or switched:
            off_gaps += 1
            off_us += int(z - a)
            if spans is not None:
                names = sorted(set(o_comm[inside]))
                spans.append((int(cpu[b]), int(a), int(z), bool(switched), ";".join(names)))
            if len(inside):
                seen_us += int(o_ts[inside[-1]] - o_ts[inside[0]])
            for c in o_comm[inside]:
                who[c] = who.get(c, 0) + 1
    return len(big), int(d[big].sum()), off_gaps, off_us, seen_us, who


def measure(df: pl.DataFrame, gap_us: int) -> list[Call]:
    starts = df.filter(pl.col("event") == "migrate:mm_migrate_pages_start")
    ends = df.filter(pl.col("event") == "migrate:mm_migrate_pages")
    ts, line = df["ts_us"].to_numpy(), df["line"].to_numpy()
    pid_all, cpu_all = df["pid"].to_numpy(), df["cpu"].to_numpy()
    ev_all, pay_all, comm_all = (
        df["event"].to_numpy(),
        df["payload"].to_numpy(),
        df["comm"].to_numpy(),
    )
    faults = df.filter(pl.col("event") == "exceptions:page_fault_user").with_columns(
        (
            pl.col("payload").str.extract(r"address=0x([0-9a-f]+)").str.to_integer(base=16) // 4096
        ).alias("vpn")
    )
    calls: list[Call] = []
    ends_by_pid = {p: g for p, g in ends.group_by("pid")}
    used: dict[int, int] = {}
    for n, (s_line, s_ts, pid, cpu) in enumerate(
        starts.select("line", "ts_us", "pid", "cpu").iter_rows()
    ):
        e = ends_by_pid[(pid,)]
        k = used.get(pid, 0)
        used[pid] = k + 1
        e_line, e_ts, e_pay = e["line"][k], e["ts_us"][k], e["payload"][k]
        kv = dict(re.findall(r"(\w+)=(\d+)", e_pay))
        i0, i1 = np.searchsorted(line, s_line), np.searchsorted(line, e_line)
        own = np.flatnonzero(pid_all[i0 : i1 + 1] == pid) + i0
        others_idx = np.flatnonzero(pid_all[i0 : i1 + 1] != pid) + i0
        others = (ts[others_idx], cpu_all[others_idx], comm_all[others_idx])
        t, ev, pay, cp = ts[own], ev_all[own], pay_all[own], cpu_all[own]
        sets = np.flatnonzero(ev == "migrate:set_migration_pte")
        rms = np.flatnonzero(ev == "migrate:remove_migration_pte")
        rounds = sum(
            1 for j in np.flatnonzero(ev == "tlb:tlb_flush") if pay[j].endswith(_ROUND_REASONS)
        )
        ptes = np.array(
            [int(pay[j].split("pte=")[1].split()[0], 16) for j in sets], np.uint64
        ).view(np.int64)
        mapped = len(set(migration_entry_pfn(ptes).to_pylist()))
        c = Call(
            n,
            pid,
            cpu,
            int(s_ts),
            int(e_ts),
            int(kv.get("nr_succeeded", 0)) + int(kv.get("nr_failed", 0)),
            len(sets),
            mapped,
            rounds,
        )
        *_, c.call_off_us, _, _ = _off_cpu(t, ev, pay, cp, gap_us, others, c.off_spans)
        if len(rms):
            before = [
                j
                for j in range(rms[0])
                if ev[j] == "tlb:tlb_flush" and pay[j].endswith(_ROUND_REASONS)
            ]
            before = before or [j for j in range(rms[0]) if ev[j] == "migrate:set_migration_pte"]
            if before:
                a, z = before[-1], rms[-1]
                c.move_start_us, c.move_end_us = int(t[a]), int(t[z])
                sl = slice(a, z + 1)
                c.gaps, c.gap_us, c.off_gaps, c.off_us, c.seen_us, c.who = _off_cpu(
                    t[sl], ev[sl], pay[sl], cp[sl], gap_us, others
                )
            # stalls: faults on a page of the call inside its window
            addr = {}
            for j in sets:
                addr.setdefault(int(pay[j].split("addr=")[1].split(",")[0], 16) >> 12, []).append(
                    [t[j], None]
                )
            for j in rms:
                v = int(pay[j].split("addr=")[1].split(",")[0], 16) >> 12
                for w in addr.get(v, []):
                    if w[1] is None:
                        w[1] = t[j]
                        break
            f = faults.filter(pl.col("ts_us").is_between(s_ts, e_ts))
            for vpn, fts in f.select("vpn", "ts_us").iter_rows():
                c.stalls += any(w[1] is not None and w[0] <= fts <= w[1] for w in addr.get(vpn, []))
            c.others_faults_on_cpu = f.filter(
                (pl.col("pid") != pid) & (pl.col("cpu") == cpu)
            ).height
        calls.append(c)
    return calls


def table(calls: list[Call]) -> pl.DataFrame:
    rows = []
    for c in calls:
        move = None if c.move_start_us is None else c.move_end_us - c.move_start_us  # type: ignore[operator]
        rows.append(
            {
                "call": c.call,
                "cpu": c.cpu,
                "t_ms": c.start_us / 1e3,
                "dur_us": c.end_us - c.start_us,
                "pages": c.pages,
                "ptes": c.ptes,
                "mapped": c.mapped,
                "rounds": c.rounds,
                "move_us": move,
                "gaps": c.gaps,
                "gap_us": c.gap_us,
                "off_gaps": c.off_gaps,
                "off_us": c.off_us,
                "seen_us": c.seen_us,
                "call_off_us": c.call_off_us,
                "stalls": c.stalls,
                "others_faults_on_cpu": c.others_faults_on_cpu,
                "who": ";".join(
                    f"{k}:{v}" for k, v in sorted(c.who.items(), key=lambda kv: -kv[1])
                ),
            }
        )
    return pl.DataFrame(rows)


def _fit(y, cols):
    x = np.column_stack(cols).astype(float)
    coef = _nnls(x, y.astype(float))
    res = y - x @ coef
    return coef, 1 - (res**2).sum() / ((y - y.mean()) ** 2).sum(), np.sqrt((res**2).mean())


def _nearest_rank(x: np.ndarray, q: float) -> int:
    x = np.sort(x)
    return int(x[int(np.ceil(q * len(x))) - 1])


def paused_windows(run: str, calls: list[Call], policy: str = "batched") -> None:
    """The model's unmapped windows in ``run`` (as measured_vs_model counts them) before and
    after each call's off-CPU gaps are inserted into its plan as pauses: every time of the
    call's plan at or after a gap's start (itself moved by the earlier gaps) moves by the gap's
    length. A post-processing estimate of a planner that pauses a call while its task is off its
    CPU; the replay's stalls are not recomputed."""
    import duckdb

    sql = (
        "select req_id, unmap_ns, remap_ns from read_parquet('{}/policy={}/migrations.parquet') "
        "where status = 'migrated' and vpn < (1::BIGINT << 44)"
    )
    meas = duckdb.sql(sql.format(run, "measured")).pl()
    model = duckdb.sql(sql.format(run, policy)).pl()
    spans = {
        c.call: sorted((lo * 1000, hi * 1000) for _, lo, hi, _, _ in c.off_spans) for c in calls
    }

    def paused(t: int, gaps: list[tuple[int, int]]) -> int:
        for lo, hi in gaps:
            if t >= lo:
                t += hi - lo
        return t

    req, u, r = (model[c].to_numpy() for c in ("req_id", "unmap_ns", "remap_ns"))
    u2 = np.array([paused(int(t), spans.get(int(k), [])) for t, k in zip(u, req, strict=True)])
    r2 = np.array([paused(int(t), spans.get(int(k), [])) for t, k in zip(r, req, strict=True)])
    w_meas = (meas["remap_ns"] - meas["unmap_ns"]).to_numpy()
    print(f"\nunmapped windows of {run} (nearest rank), ns:        p50        p99")
    for name, w in (
        ("measured", w_meas),
        (f"{policy}", r - u),
        (f"{policy}, off-CPU gaps as pauses", r2 - u2),
    ):
        p50, p99 = _nearest_rank(w, 0.5), _nearest_rank(w, 0.99)
        ratio = (
            ""
            if name == "measured"
            else (
                f"   ({p50 / _nearest_rank(w_meas, 0.5):.2f}, "
                f"{p99 / _nearest_rank(w_meas, 0.99):.2f})"
            )
        )
        print(f"  {name:38s} {p50:>10,} {p99:>10,}{ratio}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--calls", default="4,6,8,10", help="calls to show line by line")
    ap.add_argument("--gap-us", type=int, default=20, help="a gap is longer than this, µs")
    ap.add_argument(
        "--min-mapped",
        type=int,
        default=50,
        help="the large calls have this many mapped pages (distinct PFNs of their PTEs) or more",
    )
    ap.add_argument("--csv", help="write the per-call table here")
    ap.add_argument(
        "--run",
        help="a run directory holding the import (policy=measured) and a replay of its "
        "trace: print its windows with the off-CPU gaps inserted as pauses",
    )
    ap.add_argument(
        "--spans",
        help="write the off-CPU gaps here: call, cpu, from_ns, to_ns (the import's clock), whether the "
        "task's switch line opens it, the other tasks seen in it",
    )
    a = ap.parse_args(argv)
    calls = measure(read_lines(a.capture), a.gap_us)
    t = table(calls)
    if a.spans:
        rows = [
            (c.call, cpu, lo * 1000, hi * 1000, sw, who)
            for c in calls
            for cpu, lo, hi, sw, who in c.off_spans
        ]
        pl.DataFrame(
            rows, schema=["call", "cpu", "from_ns", "to_ns", "switch_line", "others"], orient="row"
        ).write_csv(a.spans)
    if a.csv:
        t.write_csv(a.csv)
    pl.Config.set_tbl_rows(100)
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(220)
    pl.Config.set_fmt_str_lengths(60)
    show = [int(x) for x in a.calls.split(",") if x]
    print(t.filter(pl.col("call").is_in(show)))
    big = t.filter(pl.col("mapped") >= a.min_mapped).with_columns(
        (pl.col("move_us") / pl.col("mapped")).alias("move_per_mapped"),
        ((pl.col("move_us") - pl.col("off_us")) / pl.col("mapped")).alias("own_per_mapped"),
        (pl.col("move_us") / pl.col("pages")).alias("move_per_page"),
        ((pl.col("move_us") - pl.col("off_us")) / pl.col("pages")).alias("own_per_page"),
        (pl.col("move_us") / pl.col("ptes")).alias("move_per_pte"),
        ((pl.col("move_us") - pl.col("off_us")) / pl.col("ptes")).alias("own_per_pte"),
    )
    print(
        f"\n{big.height} calls with >= {a.min_mapped} mapped pages; move stage, µs (p10 / p50 / p90 / max):"
    )
    for col in (
        "move_per_mapped",
        "own_per_mapped",
        "move_per_page",
        "own_per_page",
        "move_per_pte",
        "own_per_pte",
    ):
        q = np.percentile(big[col].to_numpy(), [10, 50, 90, 100])
        print(f"  {col:14s} " + " / ".join(f"{v:.2f}" for v in q))
    print(
        f"  calls with off-CPU evidence in the move stage: {big.filter(pl.col('off_us') > 0).height}"
    )
    for y in ("move_per_mapped", "move_per_page", "own_per_page"):
        for col in ("off_us", "stalls", "others_faults_on_cpu", "t_ms", "cpu"):
            r = big.select(pl.corr(y, col, method="spearman")).item()
            print(f"  Spearman({y}, {col}) = {r:.2f}")
    every = t.filter(pl.col("pages") > 0)
    y = every["dur_us"].to_numpy()
    base = [every[c].to_numpy() for c in ("pages", "ptes", "rounds")]
    for name, cols in (
        ("pages, ptes, rounds", base),
        ("+ call_off_us", [*base, every["call_off_us"].to_numpy()]),
    ):
        coef, r2, rms = _fit(y, cols)
        print(
            f"\nfit of call duration on {name} over {len(y)} calls: "
            + ", ".join(f"{c * 1e3:,.0f} ns" if i < 3 else f"{c:.2f} x" for i, c in enumerate(coef))
            + f"; R² {r2:.3f}, RMS {rms:,.0f} µs"
        )
    own = y - every["call_off_us"].to_numpy()
    coef, r2, rms = _fit(own, base)
    print(
        "fit of the task's own time (duration - call_off_us) on pages, ptes, rounds: "
        + ", ".join(f"{c * 1e3:,.0f} ns" for c in coef)
        + f"; R² {r2:.3f}, RMS {rms:,.0f} µs"
    )
    off = every.filter(pl.col("call_off_us") > 0)
    print(
        f"calls with off-CPU evidence: {off.height}, {off['call_off_us'].sum() / 1e3:.2f} ms of "
        f"{every['dur_us'].sum() / 1e3:.2f} ms in calls"
    )
    if a.run:
        paused_windows(a.run, calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
