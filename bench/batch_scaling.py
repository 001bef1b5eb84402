"""Throughput of ``tracereplay batch`` with 1 and 2 (or more) workers, and worker memory.

    python bench/batch_scaling.py --count 50 --accesses 100000 --jobs 1 2 --repeat 3

Generates a corpus in a temporary directory, warms the compiled kernel's on-disk cache with one
replay, then runs the batch per --jobs value (--repeat times, alternating) into fresh results
directories. Reports per run the wall time end to end (the pool's start included), results per
second and their ratio to the first --jobs value, the CPU and wall seconds of a trace inside the
workers (CPU well below wall means the workers wait for cores) and a worker's peak RSS.

A machine may not give N processes N times the work of one (shared hosts, SMT siblings), so the
script first measures that ceiling with N copies of a pure-Python loop; compare the batch with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tracereplay.batch import ResultRecord, run_batch
from tracereplay.generate.corpus import write_corpus
from tracereplay.replay import run


def _spin(n: int) -> float:
    t = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t


def machine_ceiling(jobs: int, n: int = 30_000_000) -> float:
    """How many times the work of one process ``jobs`` processes get done on this machine."""
    alone = _spin(n)
    with ProcessPoolExecutor(jobs) as pool:
        t = time.perf_counter()
        list(pool.map(_spin, [n] * jobs))
        together = time.perf_counter() - t
    return jobs * alone / together


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--accesses", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--executor", default="local")
    ap.add_argument("--dir", help="Where the corpus and results go (default: a temporary "
                    "directory; /dev/shm leaves the disk out).")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        corpus = Path(tmp) / "corpus"
        paths = write_corpus(corpus, args.count, args.seed, accesses=args.accesses)
        size_mib = sum(p.stat().st_size for p in paths) / (1 << 20)
        run(paths[0], Path(tmp) / "warm")  # the kernel compiles once, into its cache
        print(f"corpus: {len(paths)} traces, {size_mib:.1f} MiB; cores: {os.cpu_count()}; "
              f"load average: {os.getloadavg()[0]:.2f}")
        for jobs in sorted(set(args.jobs) - {1}):
            print(f"machine ceiling for {jobs} processes: x{machine_ceiling(jobs):.2f}")
        base: float | None = None
        k = 0
        for rep in range(args.repeat):
            for jobs in args.jobs:
                k += 1
                records: list[ResultRecord] = []
                stamps: list[float] = []

                def on_result(rec: ResultRecord, records: list[ResultRecord] = records,
                              stamps: list[float] = stamps) -> None:
                    records.append(rec)
                    stamps.append(time.perf_counter())

                t0 = time.perf_counter()
                s = run_batch(corpus, Path(tmp) / f"results-{k}", jobs=jobs,
                              executor=args.executor, on_result=on_result)
                wall = time.perf_counter() - t0
                per_s = s.ok / wall
                base = base or per_s
                items = {r.trace: r for r in records}.values()
                cpu = statistics.mean(r.cpu_s for r in items)
                item_wall = statistics.mean(r.wall_s for r in items)
                print(f"[{rep}] -j {jobs}: {s.ok} results in {wall:.2f} s = {per_s:.1f}/s "
                      f"(x{per_s / base:.2f}), first after {stamps[0] - t0:.2f} s; "
                      f"a trace: {cpu * 1e3:.0f} ms CPU, "
                      f"{item_wall * 1e3:.0f} ms wall; peak worker RSS {s.peak_rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
