"""Replay benchmarks: accesses per second (kernel alone and end to end), peak memory, start-up.

    python bench/run.py                  # every workload, 200 M included (several minutes)
    python bench/run.py --quick          # seed sample and 20 M workloads only
    python bench/run.py --out docs/performance-latest.md

Workloads are generated with ``tracereplay generate pmbench`` (seeded, so every run replays the
same traces) into a cache directory (``--data``, default ``bench/.data``). Each replay runs in
a fresh process so that its peak RSS is its own. Reported:

- kernel M/s: accesses / time inside the compiled kernel (``replay_chunk``), warm cache;
- end-to-end M/s: accesses / wall time of ``replay.run`` (validation, pre-pass, planning,
  kernel, event tables), ``-p batched``, warm cache, in a fresh process: it includes loading
  the compiled code from the numba cache, measured apart on the tiny sample ("code loading"),
  and is also shown without it ("once loaded", what each further replay in a process costs);
- peak RSS of that process;
- command: wall time of ``tracereplay replay TRACE -p batched`` in a new interpreter, as a user
  runs it (interpreter start and imports included);
- cold start: ``tracereplay replay`` of the tiny sample with an empty numba cache, minus warm;
- reference ratio: kernel time vs the plain-Python reference model on a 1 M-access prefix.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# name: (generator arguments, description)
WORKLOADS: dict[str, tuple[list[str], str]] = {
    "seed": ([], "the bundled seed sample (sample_traces/seed.parquet)"),
    "20m-uniform": (["--accesses", "20000000", "--pattern", "uniform"], "20 M, uniform, migrations every 5 ms"),
    "20m-skewed": (["--accesses", "20000000", "--pattern", "pareto"], "20 M, pareto, migrations every 5 ms"),
    "20m-skewed-nomig": (["--accesses", "20000000", "--pattern", "pareto", "--migrate-every-ms", "0"],
                         "20 M, pareto, no migrations"),
    "20m-bigset": (["--accesses", "20000000", "--pattern", "uniform", "--map-mib", "16384",
                    "--set-mib", "16384", "--migrate-every-ms", "0"],
                   "20 M, uniform over 16 GiB (4 M pages), no migrations"),
    "200m-skewed": (["--accesses", "200000000", "--pattern", "pareto", "--migrate-every-ms", "50"],
                    "200 M, pareto, migrations every 50 ms"),
}
QUICK = ("seed", "20m-uniform", "20m-skewed", "20m-skewed-nomig", "20m-bigset")


def trace_for(name: str, data: Path) -> Path:
    if name == "seed":
        return REPO / "sample_traces" / "seed.parquet"
    path = data / f"{name}.parquet"
    if not path.exists():
        data.mkdir(parents=True, exist_ok=True)
        args, _ = WORKLOADS[name]
        subprocess.run([sys.executable, "-m", "tracereplay", "generate", "pmbench", "-o", str(path),
                        "--seed", "1", *args], check=True)
    return path


def one(trace: str, policies: list[str]) -> dict[str, float]:
    """Runs in a child process: replay and report times and peak RSS. The first replay in a
    process also loads the compiled code from the numba cache (and what numba imports); that
    fixed cost is measured apart, on the tiny sample, and added back for the end-to-end time."""
    from tracereplay.replay import run

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        run(REPO / "sample_traces" / "tiny.parquet", Path(d) / "tiny", policies=policies)
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = run(trace, Path(d) / "run", policies=policies)
        wall = time.perf_counter() - t0
    accesses = results[0].metrics["accesses"]
    return {
        "accesses": accesses,
        "wall_s": load + wall,
        "loaded_wall_s": wall,
        "load_s": load,
        "kernel_s": sum(r.kernel_s for r in results),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(trace: Path, policies: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    flags = [arg for p in policies for arg in ("-p", p)]
    out = subprocess.run([sys.executable, __file__, "--one", str(trace), *flags],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def command(trace: Path) -> float:
    """Wall time of ``tracereplay replay TRACE -p batched`` as a user runs it: interpreter start,
    imports, loading the compiled code, the replay, the summary (best of two, warm cache)."""
    def timed() -> float:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tracereplay", "replay", str(trace), "-p", "batched",
                            "-o", d, "--json"], check=True, capture_output=True)
            return time.perf_counter() - t0

    return min(timed() for _ in range(2))


def start_up() -> dict[str, float]:
    tiny = REPO / "sample_traces" / "tiny.parquet"

    def timed(env: dict[str, str]) -> float:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tracereplay", "replay", str(tiny), "-o", d, "--json"],
                           check=True, capture_output=True, env=env)
            return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = timed(env)
        warm = min(timed(env) for _ in range(2))
    return {"cold_s": cold, "warm_s": warm, "cold_extra_s": cold - warm}


def reference_ratio(trace: Path, prefix: int = 1_000_000) -> dict[str, float]:
    sys.path.insert(0, str(REPO / "tests"))
    import reference  # the plain-Python model of tests/
    from replay_helpers import all_ops, kernel_setup, new_state

    from tracereplay.config import load_profile
    from tracereplay.kernel import Accesses

    profile = load_profile()
    pre, planner, acc = kernel_setup(trace, profile, "batched")
    acc = tuple(a[:prefix] for a in acc)
    state = new_state(pre, profile)
    state.add(list(planner), planner.masks(), pre.cpu_first_ns)
    state.step(Accesses(*acc))
    kernel = state.kernel_s
    buffer, masks = all_ops(pre, profile, "batched")
    t0 = time.process_time()
    reference.replay(pre, profile, buffer, masks, *acc)
    python = time.process_time() - t0
    return {"accesses": len(acc[0]), "kernel_s": kernel, "python_s": python, "ratio": python / kernel}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("-p", "--policy", action="append")
    ap.add_argument("--quick", action="store_true", help="skip the 200 M workload")
    ap.add_argument("--only", nargs="+", choices=list(WORKLOADS), help="these workloads only")
    ap.add_argument("--data", type=Path, default=REPO / "bench" / ".data")
    ap.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.policy or ["batched"])))
        return
    names = a.only or (QUICK if a.quick else list(WORKLOADS))
    rows = []
    for name in names:
        trace = trace_for(name, a.data)
        child(trace, ["batched"])  # warm the numba cache and the page cache
        r = child(trace, ["batched"])
        r["command_s"] = command(trace)
        rows.append((name, r))
        print(f"{name}: {r['accesses'] / r['kernel_s'] / 1e6:.1f} M/s kernel, "
              f"{r['accesses'] / r['wall_s'] / 1e6:.2f} M/s end to end "
              f"({r['accesses'] / r['loaded_wall_s'] / 1e6:.2f} once loaded, "
              f"{r['accesses'] / r['command_s'] / 1e6:.2f} as a command), "
              f"{r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    su = start_up()
    ref = reference_ratio(trace_for("seed", a.data), prefix=1_000_000)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.platform()}",
        "",
        "| workload | accesses | kernel M/s | end-to-end M/s | wall s | of which code loading s "
        "| once loaded M/s | command s (M/s) | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(f"| {name}: {WORKLOADS[name][1]} | {r['accesses']:,} | "
                     f"{r['accesses'] / r['kernel_s'] / 1e6:.1f} | {r['accesses'] / r['wall_s'] / 1e6:.2f} | "
                     f"{r['wall_s']:.1f} | {r['load_s']:.2f} | "
                     f"{r['accesses'] / r['loaded_wall_s'] / 1e6:.2f} | "
                     f"{r['command_s']:.1f} ({r['accesses'] / r['command_s'] / 1e6:.2f}) | "
                     f"{r['peak_rss_mib']:.0f} |")
    lines += [
        "",
        f"Start-up (`tracereplay replay` of the tiny sample): cold {su['cold_s']:.1f} s, warm "
        f"{su['warm_s']:.1f} s: an empty numba cache adds {su['cold_extra_s']:.1f} s.",
        "",
        f"Reference model (tests/reference.py) on the seed sample's first {ref['accesses']:,} accesses: "
        f"kernel {ref['kernel_s'] * 1e3:.0f} ms, pure Python {ref['python_s']:.1f} s: "
        f"the kernel is {ref['ratio']:.0f}x faster.",
    ]
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
