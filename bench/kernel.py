"""Speed of the compiled replay kernel alone, on one trace held in memory.

    PYTHONPATH=. python bench/kernel.py                 # 20 M pareto, no migrations
    PYTHONPATH=. python bench/kernel.py TRACE -n 7 --prefix 5000000
    PYTHONPATH=. python bench/kernel.py TRACE -p serial   # the flush rounds of another policy

Loads the trace once (pre-pass, planner, access arrays), runs one warm-up replay, then times
``KernelState.step`` over all accesses and then the operations left (the calls that start after the last
access) N times, each with a fresh state, and prints the best accesses per second measured by
``kernel_s`` (time inside ``replay_chunk``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from replay_helpers import kernel_setup, new_state  # noqa: E402

from tracereplay.config import load_profile  # noqa: E402
from tracereplay.kernel import NO_ACCESSES, NO_LIMIT, Accesses  # noqa: E402
from tracereplay.migrate import Planner  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", type=Path, nargs="?",
                    default=REPO / "bench" / ".data" / "20m-skewed-nomig.parquet")
    ap.add_argument("-n", type=int, default=5, help="timed runs (best is reported)")
    ap.add_argument("--prefix", type=int, help="replay only this many accesses")
    ap.add_argument("-p", "--policy", default="batched", help="migration policy (default: batched)")
    a = ap.parse_args()
    if not a.trace.is_file():
        ap.error(f"{a.trace}: no such trace (python bench/run.py --only 20m-skewed-nomig makes "
                 "the default one)")
    profile = load_profile()
    pre, _, acc = kernel_setup(a.trace, profile, a.policy)
    if a.prefix:
        acc = tuple(x[:a.prefix] for x in acc)
    rates = []
    for k in range(a.n + 1):
        state = new_state(pre, profile)
        planner = Planner(pre, profile, a.policy)
        state.add(list(planner), planner.masks(), pre.cpu_first_ns)
        state.step(Accesses(*acc))
        state.step(NO_ACCESSES, limit=NO_LIMIT)
        if k:  # the first run warms up
            rates.append(len(acc[0]) / state.kernel_s / 1e6)
    print(f"{len(acc[0])} accesses: best {max(rates):.1f} M/s, "
          f"runs {' '.join(f'{r:.1f}' for r in rates)}")


if __name__ == "__main__":
    main()
