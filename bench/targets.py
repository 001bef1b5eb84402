"""The streaming replay's performance targets, against a C loop of the same TLB model and the floors.

    PYTHONPATH=. python bench/targets.py                  # 100 M and 200 M traces (about half an hour)
    PYTHONPATH=. python bench/targets.py --quick          # 20 M and 40 M versions (a few minutes)
    PYTHONPATH=. python bench/targets.py --out results.md --runs 5

Traces (``tracereplay generate pmbench --seed 2``, defaults otherwise: uniform over a 128 MiB
working set, 16 threads on a 32-CPU 2-node machine; generated once into ``--data``, default
``bench/.data/``, git-ignored): N accesses without migrations (``--migrate-every-ms 0``), the same
with ``migratepages`` every 50 ms, and 2 N accesses with migrations every 50 ms for memory alone.
N is 100 M, or 20 M with ``--quick``.

Targets, each a ratio of wall times measured on this machine:

1. ``tracereplay replay TRACE -p batched``, no migrations: at most 2.0x the loop of
   ``bench/tlb_loop.c`` over the same accesses (compiled here with ``gcc -O2 -march=native``);
2. the same command on the trace with migrations: at most 1.25x the trace without;
3. both default policies (no ``-p``): at most 1.25x ``-p batched`` on the same trace;
4. peak RSS of every command at most 1 GiB, the 2 N trace's included.

Methodology. A command is the whole thing a user waits for: a new interpreter
(``python -m tracereplay replay TRACE [-p batched] -o DIR``), imports, loading the compiled code
from a warm numba cache (a replay of ``sample_traces/tiny.parquet`` warms it first), the replay,
the event tables, the printed summary. Its wall time is taken around the child process and its
peak RSS from ``os.wait4``'s rusage of that child. The C loop's time is the loop alone
(``clock_gettime`` around it; reading its input is outside). Every measurement is repeated
``--runs`` times (default 3), the cases interleaved run by run so that a slow spell of the shared
host spreads over all of them; a ratio is taken between the best (lowest) times, and the range of
the ratios of the runs made side by side is shown beside it. The host has 2 cores shared with
other work: differences within the ranges are noise. CPU times (user + system of every thread;
the C loop's ``CLOCK_PROCESS_CPUTIME_ID``) are shown beside the wall times: they hardly depend on
the load, but a command's counts both cores, so a CPU-time ratio is a check on the work done, not
the target. Peak RSS is the child's ``ru_maxrss`` (what the target limits); its anonymous and
file-backed parts (``RssAnon``, ``RssFile`` of ``/proc/PID/status``, sampled every 50 ms) say
whether it is the replay's own memory or pages of mapped files (the trace, shared libraries).

The C loop is only a fair reference if it computes what the replay computes: its per-CPU L1 hits,
STLB hits, walks and remote accesses must equal the ``cpu_stats`` of the replay of the trace
without migrations (and of the kernel run in memory); the script prints the comparison and exits
with an error if they differ.

Floors, what the command cannot go below on these two cores:

(a) decoding alone: ``pyarrow.parquet.ParquetFile.iter_batches`` over the whole file, row group by
    row group, of the columns ``TraceReader.groups()`` decodes (every trace v1 column in the file
    but those a row group's statistics say are all null), memory-mapped, threads on, as the
    reader does; wall time (and CPU time: the decoder uses both cores);
(b) the kernel alone on the accesses held in memory (as ``bench/kernel.py``: ``KernelState.step``
    over every access, then the operations left; ``kernel_s``, time inside ``replay_chunk``; the
    first run warms up and is not counted), per policy;
(c) the interpreter's start and the imports: ``python -c "import tracereplay.cli"`` (and
    ``python -c pass`` for the interpreter alone);
(d) the replay without the command's start: ``tracereplay.replay.run`` timed in a fresh process
    after a replay of the tiny sample has loaded the compiled code (the time of that first replay
    is shown too: numba's start and loading the cached code).

Decoding and the kernel overlap in the replay (the kernel runs on a lane thread during the read),
so a command cannot be faster than max(a, b) + c; the table shows that bound beside each command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "sample_traces" / "tiny.parquet"
C_SOURCE = REPO / "bench" / "tlb_loop.c"
GIB = 1 << 30
COUNTERS = ("l1_hits", "l2_hits", "walks", "remote_accesses")
DEFAULT = "serial+batched"  # the label of a run without -p


@dataclass(frozen=True)
class Case:
    name: str
    trace: str  # key of the traces dict: nomig, mig50, big
    policies: tuple[str, ...]  # empty: the command's default (serial and batched)
    inproc: bool = True  # also time replay.run in-process (floor d)

    @property
    def label(self) -> str:
        return "+".join(self.policies) if self.policies else DEFAULT


CASES = (
    Case("nomig-batched", "nomig", ("batched",)),
    Case("mig50-batched", "mig50", ("batched",)),
    Case("nomig-default", "nomig", ()),
    Case("mig50-default", "mig50", ()),
    Case("big-default", "big", (), inproc=False),
)


def env() -> dict[str, str]:
    """The environment of every child: this checkout first on the path."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def spread(xs: Sequence[float], fmt: str = "{:.2f}") -> str:
    lo, hi = min(xs), max(xs)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


# -- traces ----------------------------------------------------------------------------------

def trace_specs(quick: bool) -> dict[str, tuple[int, float]]:
    """Trace key -> (accesses, migrate-every-ms)."""
    n = 20_000_000 if quick else 100_000_000
    return {"nomig": (n, 0), "mig50": (n, 50), "big": (2 * n, 50)}


def trace_path(data: Path, accesses: int, every_ms: float) -> Path:
    mig = "nomig" if not every_ms else f"mig{every_ms:g}"
    return data / f"pmbench-{accesses // 1_000_000}m-{mig}.parquet"


def make_trace(path: Path, accesses: int, every_ms: float) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        say(f"generating {path.name} (a few minutes for 100 M accesses)")
        tmp = path.with_name(f"tmp-{path.name}")
        subprocess.run([sys.executable, "-m", "tracereplay", "generate", "pmbench", "-o", str(tmp),
                        "--accesses", str(accesses), "--seed", "2",
                        "--migrate-every-ms", f"{every_ms:g}"], check=True, env=env())
        tmp.rename(path)
    return path


def read_through(path: Path) -> None:
    """Read the file once so that every timed run finds it in the page cache."""
    with path.open("rb") as f:
        while f.read(16 << 20):
            pass


# -- children --------------------------------------------------------------------------------

def child(*args: str) -> dict[str, Any]:
    """Run this script with ``args`` in a fresh interpreter; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE,
                         text=True, env=env())
    return json.loads(out.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Timed:
    wall_s: float
    cpu_s: float  # user + system, all threads
    rss: int  # peak RSS (the kernel's count for the process), bytes
    anon: int = 0  # peak anonymous RSS (sampled), bytes
    file: int = 0  # peak file-backed RSS (sampled): mapped files and shared libraries, bytes


def _rss(pid: int) -> tuple[int, int]:
    """A process's anonymous and file-backed resident memory now, bytes (0, 0 once gone)."""
    anon = file = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    anon = int(line.split()[1]) * 1024
                elif line.startswith("RssFile:"):
                    file = int(line.split()[1]) * 1024
    except OSError:
        pass
    return anon, file


def timed_process(argv: list[str]) -> Timed:
    """Wall time, CPU time and peak RSS of a child process run to its end; its anonymous and
    file-backed RSS are sampled every 50 ms (peak RSS alone does not say which it is)."""
    anon = file = 0
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env())
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            a, f = _rss(p.pid)
            anon, file = max(anon, a), max(file, f)
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode:
            err.seek(0)
            sys.exit(f"{' '.join(argv)} failed ({p.returncode}):\n"
                     f"{err.read().decode(errors='replace')}")
    return Timed(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, anon, file)


def command(trace: Path, policies: Sequence[str], out: Path) -> Timed:
    flags = [a for p in policies for a in ("-p", p)]
    return timed_process([sys.executable, "-m", "tracereplay", "replay", str(trace), *flags,
                          "-o", str(out)])


def cpu_stats(run_dir: Path, policy: str) -> dict[str, list[int]]:
    import pyarrow.parquet as pq

    t = pq.read_table(run_dir / f"policy={policy}" / "cpu_stats.parquet").sort_by("cpu")
    return {c: t.column(c).to_pylist() for c in ("accesses", *COUNTERS)}


def kernel_child(trace: str, policies: list[str], runs: int, c_input: str | None) -> dict[str, Any]:
    """Floor (b); with ``c_input`` also write the C loop's input from the same accesses."""
    import numpy as np

    sys.path.insert(0, str(REPO / "tests"))
    from replay_helpers import kernel_setup, new_state

    from tracereplay.config import load_profile
    from tracereplay.kernel import NO_ACCESSES, NO_LIMIT, STAT_NAMES, Accesses
    from tracereplay.migrate import Planner

    profile = load_profile()
    pre, _, acc = kernel_setup(Path(trace), profile, policies[0])
    _, cpu, page, _ = acc
    if c_input:
        write_c_input(Path(c_input), pre, profile, cpu, page)
    result: dict[str, Any] = {"accesses": len(page), "kernel_s": {}, "cpu_s": {}, "stats": {}}
    for policy in policies:
        times, cpu_times = [], []
        for k in range(runs + 1):
            state = new_state(pre, profile)
            planner = Planner(pre, profile, policy)
            state.add(list(planner), planner.masks(), pre.cpu_first_ns)
            c0 = time.thread_time()
            state.step(Accesses(*acc))
            state.step(NO_ACCESSES, limit=NO_LIMIT)
            if k:  # the first run warms up
                times.append(state.kernel_s)
                cpu_times.append(time.thread_time() - c0)
        result["kernel_s"][policy] = times
        result["cpu_s"][policy] = cpu_times
        stats = state.stats
        result["stats"][policy] = {n: stats[:, STAT_NAMES.index(n)].astype(np.int64).tolist()
                                   for n in ("accesses", *COUNTERS)}
    return result


def write_c_input(path: Path, pre: Any, profile: Any, cpu: Any, page: Any) -> None:
    """The input of tlb_loop.c (its header comment describes the layout)."""
    import numpy as np

    t = profile.tlb
    n_pages = pre.n_pages
    tmp = path.with_name(f"tmp-{path.name}")
    with tmp.open("wb") as f:
        f.write(b"TLBLOOP1")
        f.write(np.array([len(page), n_pages], "<i8").tobytes())
        f.write(np.array([pre.machine.cpus, t.l1_entries, t.l1_ways, t.l2_entries, t.l2_ways, 0],
                         "<i4").tobytes())
        f.write(np.asarray(pre.machine.cpu_node, "<i4").tobytes())
        f.write(np.asarray(pre.page_vpn[:n_pages], "<i8").tobytes())
        f.write(np.asarray(pre.page_node[:n_pages], "<i4").tobytes())
        f.write(np.asarray(cpu, "<i4").tobytes())
        f.write(np.asarray(page, "<i4").tobytes())
    tmp.rename(path)


def decode_child(trace: str) -> dict[str, Any]:
    """Floor (a): decode what TraceReader.groups() decodes, and nothing else."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tracereplay import trace as tr

    # The reader's own rule for the chunks it skips (in trace/read.py once trace is a package).
    try:
        from tracereplay.trace.read import _all_null  # type: ignore[import-not-found]
    except ImportError:
        from tracereplay.trace import _all_null  # type: ignore[attr-defined,no-redef]

    columns = list(tr.TraceReader(trace, hash_file=False).columns)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    pf = pq.ParquetFile(pa.memory_map(trace))
    rows = 0
    for g in range(pf.num_row_groups):
        read = [c for c in columns if c not in _all_null(pf, g, columns)]
        for batch in pf.iter_batches(batch_size=1 << 20, row_groups=[g], columns=read,
                                     use_threads=True):
            rows += batch.num_rows
    return {"rows": rows, "columns": columns, "wall_s": time.perf_counter() - wall0,
            "cpu_s": time.process_time() - cpu0}


def inproc_child(trace: str, policies: list[str]) -> dict[str, Any]:
    """Floor (d): replay.run in this process, after a replay of the tiny sample."""
    import resource

    from tracereplay.replay import DEFAULT_POLICIES, run

    pols = policies or list(DEFAULT_POLICIES)
    with tempfile.TemporaryDirectory(dir=Path(trace).parent) as d:
        t0 = time.perf_counter()
        run(TINY, Path(d) / "tiny", policies=pols)
        load = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        results = run(trace, Path(d) / "run", policies=pols)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"load_s": load, "run_s": wall, "cpu_s": cpu, "kernel_s": sum(r.kernel_s for r in results),
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


# -- the C loop ------------------------------------------------------------------------------

def build_c(data: Path) -> Path:
    exe = data / "tlb_loop"
    subprocess.run(["gcc", "-O2", "-march=native", "-o", str(exe), str(C_SOURCE)], check=True)
    return exe


def run_c(exe: Path, c_input: Path) -> dict[str, Any]:
    out = subprocess.run([str(exe), str(c_input)], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout)


# -- the report ------------------------------------------------------------------------------

def check_counters(c: dict[str, Any], replay: dict[str, list[int]],
                   kernel: dict[str, list[int]]) -> list[str]:
    """The C loop's counters against the replay's and the in-memory kernel's; exits on a
    difference."""
    lines = ["| counter | C loop | `replay -p batched` (cpu_stats) | kernel in memory | agree |",
             "|---|---:|---:|---:|---|"]
    bad = []
    for name in ("accesses", *COUNTERS):
        cv = [c["accesses"]] if name == "accesses" else c[name]
        rv, kv = replay[name], kernel[name]
        # Per CPU, not only the sums (the C loop prints one total of accesses).
        ok = sum(rv) == sum(kv) == cv[0] if name == "accesses" else cv == rv == kv
        lines.append(f"| {name} | {sum(cv):,} | {sum(rv):,} | {sum(kv):,} | "
                     f"{'yes, every CPU' if ok and name != 'accesses' else 'yes' if ok else 'NO'} |")
        if not ok:
            bad.append(name)
    print("\n".join(lines), flush=True)
    if bad:
        sys.exit(f"the C loop and tracereplay disagree on {', '.join(bad)}: the ratio to the C "
                 "loop means nothing until they agree")
    return lines


def machine_line() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import numba
    import pyarrow

    gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    return (f"{platform.machine()}, {model}, {os.cpu_count()} CPUs (shared with other work), "
            f"Linux {platform.release()}, Python {platform.python_version()}, numba "
            f"{numba.__version__}, pyarrow {pyarrow.__version__}, gcc {gcc}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 M-access traces (40 M for memory)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions of every measurement")
    ap.add_argument("--data", type=Path, default=REPO / "bench" / ".data")
    ap.add_argument("--out", type=Path, help="also write the tables (Markdown) here")
    ap.add_argument("--kernel", help=argparse.SUPPRESS)
    ap.add_argument("--decode", help=argparse.SUPPRESS)
    ap.add_argument("--inproc", help=argparse.SUPPRESS)
    ap.add_argument("--c-input", help=argparse.SUPPRESS)
    ap.add_argument("-p", "--policy", action="append", default=[], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.kernel:
        print(json.dumps(kernel_child(a.kernel, a.policy, a.runs, a.c_input)))
        return
    if a.decode:
        print(json.dumps(decode_child(a.decode)))
        return
    if a.inproc:
        print(json.dumps(inproc_child(a.inproc, a.policy)))
        return
    if a.runs < 1:
        ap.error("--runs must be at least 1")

    data = a.data.resolve()
    load0 = os.getloadavg()
    traces = {k: make_trace(trace_path(data, n, ms), n, ms) for k, (n, ms) in trace_specs(a.quick).items()}
    exe = build_c(data)
    scratch = Path(tempfile.mkdtemp(prefix="targets-", dir=data))
    try:
        report = measure(a, traces, exe, scratch, data)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load1 = os.getloadavg()
    head = [f"Machine: {machine_line()}. Load average {load0[0]:.1f} at the start, "
            f"{load1[0]:.1f} at the end; {a.runs} runs of everything, min–max shown.", ""]
    text = "\n".join(head + report) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


def measure(a: argparse.Namespace, traces: dict[str, Path], exe: Path, scratch: Path,
            data: Path) -> list[str]:
    runs = a.runs
    say("warming the numba cache")
    command(TINY, [], scratch / "warm")
    for t in traces.values():
        read_through(t)

    say("(b) kernel in memory, and the C loop's input")
    c_input = data / f"{traces['nomig'].stem}.tlbloop"
    fresh = c_input.exists() and c_input.stat().st_mtime > traces["nomig"].stat().st_mtime
    k_nomig = child("--kernel", str(traces["nomig"]), "-p", "batched", "--runs", str(runs),
                    *(() if fresh else ("--c-input", str(c_input))))
    k_mig = child("--kernel", str(traces["mig50"]), "-p", "batched", "-p", "serial",
                  "--runs", str(runs))
    n = {"nomig": k_nomig["accesses"], "mig50": k_mig["accesses"]}

    say("(a) decoding, (c) start")
    dec = {k: [child("--decode", str(traces[k])) for _ in range(runs)] for k in ("nomig", "mig50")}
    timed_process([sys.executable, "-c", "import tracereplay.cli"])  # warm the file cache
    bare = [timed_process([sys.executable, "-c", "pass"]) for _ in range(runs)]
    start = [timed_process([sys.executable, "-c", "import tracereplay.cli"]) for _ in range(runs)]

    say("C loop, commands and in-process replays")
    c_runs: list[dict[str, Any]] = []
    cmd: dict[str, list[Timed]] = {c.name: [] for c in CASES}
    inproc: dict[str, list[dict[str, Any]]] = {c.name: [] for c in CASES}
    loads: list[float] = []
    counters: list[str] = []
    for r in range(runs):
        c_runs.append(run_c(exe, c_input))
        say(f"  run {r + 1}: C loop: {c_runs[-1]['loop_s']:.2f} s")
        for case in CASES:
            out = scratch / f"{case.name}-{r}"
            loads.append(os.getloadavg()[0])
            t = command(traces[case.trace], case.policies, out)
            cmd[case.name].append(t)
            say(f"  run {r + 1}: {case.name}: {t.wall_s:.2f} s, CPU {t.cpu_s:.2f} s, "
                f"{t.rss / 2**20:.0f} MiB, load {loads[-1]:.1f}")
            if case.name == "nomig-batched" and not counters:
                # Checked at once: nothing else is worth measuring if they disagree.
                counters = check_counters(c_runs[0], cpu_stats(out, "batched"),
                                          k_nomig["stats"]["batched"])
            if case.trace == "big":
                n[case.trace] = sum(cpu_stats(out, "batched")["accesses"])
            shutil.rmtree(out)
            if case.inproc:
                inproc[case.name].append(child("--inproc", str(traces[case.trace]),
                                               *(x for p in case.policies for x in ("-p", p))))
    return report(traces, n, c_runs, cmd, inproc, k_nomig, k_mig, dec, bare, start, loads,
                  counters)


def status(best: float, runs: list[float], limit: float) -> str:
    """Met or not by the best runs; flagged when the runs side by side fall on both sides."""
    verdict = "met" if best <= limit else "**not met**"
    if min(runs) <= limit < max(runs):
        verdict += " (runs on both sides)"
    return verdict


def mib(x: float) -> float:
    return x / 2**20


def report(traces: dict[str, Path], n: dict[str, int], c_runs: list[dict[str, Any]],
           cmd: dict[str, list[Timed]], inproc: dict[str, list[dict[str, Any]]],
           k_nomig: dict[str, Any], k_mig: dict[str, Any], dec: dict[str, list[dict[str, Any]]],
           bare: list[Timed], start: list[Timed], loads: list[float],
           counters: list[str]) -> list[str]:
    lines = ["### Counters: the C loop against the replay (trace without migrations)", ""]
    lines += counters
    lines += ["", f"Load average (1 min) before each command: {spread(loads, '{:.1f}')}.", ""]

    wall = {k: [t.wall_s for t in v] for k, v in cmd.items()}
    cpu = {k: [t.cpu_s for t in v] for k, v in cmd.items()}
    wall["C"] = [r["loop_s"] for r in c_runs]
    cpu["C"] = [r["loop_cpu_s"] for r in c_runs]

    def ratio(x: str, y: str, t: dict[str, list[float]]) -> tuple[float, list[float]]:
        """The ratio of the best runs, and the ratios of the runs made side by side."""
        return min(t[x]) / min(t[y]), [u / v for u, v in zip(t[x], t[y], strict=True)]

    targets = [
        ("`replay -p batched`, no migrations ÷ C loop", "nomig-batched", "C", 2.0),
        ("`-p batched`: migrations every 50 ms ÷ none", "mig50-batched", "nomig-batched", 1.25),
        ("default policies ÷ `-p batched`, migrations every 50 ms", "mig50-default",
         "mig50-batched", 1.25),
        ("default policies ÷ `-p batched`, no migrations", "nomig-default", "nomig-batched", 1.25),
    ]
    lines += ["### Targets", "",
              "| target | wall, best runs | wall, run by run | limit | | CPU time, best (run by run) |",
              "|---|---:|---:|---:|---|---:|"]
    for what, x, y, limit in targets:
        rw, pw = ratio(x, y, wall)
        rc, pc = ratio(x, y, cpu)
        lines.append(f"| {what} | {rw:.2f}x | {spread(pw, '{:.2f}x')} | ≤ {limit:.2f}x | "
                     f"{status(rw, pw, limit)} | {rc:.2f}x ({spread(pc, '{:.2f}x')}) |")
    for label, names in (("peak RSS, every command on the N-access traces",
                          [c.name for c in CASES if c.trace != "big"]),
                         ("peak RSS, the 2 N-access trace, default policies", ["big-default"])):
        top = max(t.rss for nm in names for t in cmd[nm])
        anon = max(t.anon for nm in names for t in cmd[nm])
        lines.append(f"| {label} | {mib(top):,.0f} MiB | anonymous {mib(anon):,.0f} MiB | "
                     f"≤ 1,024 MiB | {'met' if top <= GIB else '**not met**'} | |")
    lines += [""]

    lines += ["### Runs", "",
              "Peak RSS is the kernel's count for the process (what the target limits); "
              "anonymous and file-backed (mapped files, the trace included, and shared "
              "libraries) are the peaks of each, sampled every 50 ms.", "",
              "| run | trace | accesses | wall s | CPU s | M accesses/s (best wall) | "
              "peak RSS MiB | anonymous | file-backed |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|",
              f"| C loop (`tlb_loop.c`, the loop only) | {traces['nomig'].name} | {n['nomig']:,} | "
              f"{spread(wall['C'])} | {spread(cpu['C'])} | {n['nomig'] / min(wall['C']) / 1e6:.1f} "
              "| | | |"]
    for case in CASES:
        k = case.name
        flags = " ".join("-p " + p for p in case.policies) or "(serial, batched)"
        rss = [mib(t.rss) for t in cmd[k]]
        anon = [mib(t.anon) for t in cmd[k]]
        file = [mib(t.file) for t in cmd[k]]
        lines.append(f"| `replay {flags}` | {traces[case.trace].name} | {n[case.trace]:,} | "
                     f"{spread(wall[k])} | {spread(cpu[k])} | "
                     f"{n[case.trace] / min(wall[k]) / 1e6:.1f} | {spread(rss, '{:,.0f}')} | "
                     f"{spread(anon, '{:,.0f}')} | {spread(file, '{:,.0f}')} |")
    lines += [""]

    dw = {k: [d["wall_s"] for d in v] for k, v in dec.items()}
    dc = {k: [d["cpu_s"] for d in v] for k, v in dec.items()}
    kern = {("nomig", "batched"): (k_nomig["kernel_s"]["batched"], k_nomig["cpu_s"]["batched"]),
            ("mig50", "batched"): (k_mig["kernel_s"]["batched"], k_mig["cpu_s"]["batched"]),
            ("mig50", "serial"): (k_mig["kernel_s"]["serial"], k_mig["cpu_s"]["serial"])}
    cols = dec["nomig"][0]["columns"]
    lines += ["### Floors", "",
              f"Decoded columns: {', '.join(cols)} (the trace v1 columns the file has; chunks "
              "that a row group's statistics say are all null are skipped, as the reader does).",
              "", "| floor | trace | wall s | CPU s | M accesses/s (best wall) |",
              "|---|---|---:|---:|---:|"]
    for k in ("nomig", "mig50"):
        lines.append(f"| (a) decoding alone | {traces[k].name} | {spread(dw[k])} | "
                     f"{spread(dc[k])} | {n[k] / min(dw[k]) / 1e6:.1f} |")
    for (k, p), (ws, cs) in kern.items():
        lines.append(f"| (b) kernel alone in memory, `{p}` | {traces[k].name} | {spread(ws)} | "
                     f"{spread(cs)} | {n[k] / min(ws) / 1e6:.1f} |")
    lines.append(f"| (c) `python -c pass` | | {spread([t.wall_s for t in bare])} | "
                 f"{spread([t.cpu_s for t in bare])} | |")
    lines.append(f"| (c) `python -c \"import tracereplay.cli\"` | | "
                 f"{spread([t.wall_s for t in start])} | {spread([t.cpu_s for t in start])} | |")
    for case in CASES:
        ip = inproc[case.name]
        if ip:
            lines.append(f"| (d) `replay.run` in process, {case.label} | {traces[case.trace].name} | "
                         f"{spread([x['run_s'] for x in ip])} | {spread([x['cpu_s'] for x in ip])} | "
                         f"{n[case.trace] / min(x['run_s'] for x in ip) / 1e6:.1f} |")
    first = [x["load_s"] for v in inproc.values() for x in v]
    lines.append(f"| first replay in a process (numba's start, loading the cached code), tiny "
                 f"sample | | {spread(first)} | | |")
    lines += [""]

    sw, sc = min(t.wall_s for t in start), min(t.cpu_s for t in start)
    lines += ["### The commands against their floors", "",
              "Bound = max(decoding, kernel) + start, wall times of the best runs. With two "
              "policies the kernel is both policies' kernels added up (each runs on a thread of "
              "its own, but there are two cores and the decoder uses both); without migrations "
              "both policies do the batched kernel's work. On a loaded host the floors' wall "
              "times are inflated as the command's are, so the CPU columns compare work: the "
              "floors' CPU time added up against the command's (all its threads); the "
              "difference is the validation, the pre-pass, planning, event tables, the summary "
              "and handing chunks between threads.", "",
              "| command | trace | decoding s | kernel s | start s | bound s | `replay.run` s (d) "
              "| command s | ÷ bound | floors CPU s | command CPU s | beyond the floors, CPU s |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for case in CASES:
        if case.trace == "big":
            continue
        pols = case.policies or ("serial", "batched")
        keys = [(case.trace, p if case.trace == "mig50" else "batched") for p in pols]
        kw = sum(min(kern[k][0]) for k in keys)
        kc = sum(min(kern[k][1]) for k in keys)
        d_w, d_c = min(dw[case.trace]), min(dc[case.trace])
        bound = max(d_w, kw) + sw
        ipw = min(x["run_s"] for x in inproc[case.name])
        cw, cc = min(wall[case.name]), min(cpu[case.name])
        floors = d_c + kc + sc
        lines.append(f"| {case.label} | {traces[case.trace].name} | {d_w:.1f} | {kw:.1f} | "
                     f"{sw:.1f} | {bound:.1f} | {ipw:.1f} | {cw:.1f} | {cw / bound:.2f}x | "
                     f"{floors:.1f} | {cc:.1f} | {cc - floors:.1f} |")
    lines += [""]
    return lines


if __name__ == "__main__":
    main()
