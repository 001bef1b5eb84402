"""Speed of ``tracereplay import`` on kernel-trace text, one or more checkouts side by side.

    python bench/import_speed.py FILE [FILE ...] [--tree DIR ...] [--repeat 5]

Each run is a fresh process (as ``tracereplay import`` is), importing FILE into a temporary run
directory with the code of one tree (default: this checkout); the trees take turns, so that a
machine whose load changes from one minute to the next slows them alike. A run reports
``lines_per_s`` and ``wall_s`` from its run.json (from opening the input to the last table
written), and the CPU seconds of all the process's threads over the command (its modules
already imported; the span of run.json's wall_s and the printing of the summary): on a shared
machine wall time rises with the load, CPU time much less. The summary
gives the median of each per tree and file, and the ratio of each tree's median lines/s to the
first tree's. The load average is printed before and after.

The first run of a tree after a change compiles its numba functions (run.json ``compile_s``,
left out of ``lines_per_s``); one warm-up run per tree and file is made and not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# The command itself (``tracereplay import SRC -o OUT``), its modules imported before the clock
# starts, as ``python -m tracereplay`` has by the time the import begins.
_CHILD = r"""
import json, pathlib, sys, time
import tracereplay.importer
from tracereplay.cli import main
src, out = sys.argv[1], sys.argv[2]
sys.argv = ["tracereplay", "import", src, "-o", out]
cpu = time.process_time()
try:
    main()
except SystemExit as e:
    if e.code:
        raise
cpu = time.process_time() - cpu
m = json.loads((pathlib.Path(out) / "policy=measured" / "run.json").read_text())
print(json.dumps({"lines": m["lines"], "lines_per_s": m["lines_per_s"], "wall_s": m["wall_s"],
                  "compile_s": m["compile_s"], "cpu_s": round(cpu, 3)}))
"""


def _run(tree: Path, src: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="import-speed-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(src), str(Path(tmp) / "run")],
            env=env, cwd=tree, check=True, capture_output=True, text=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--tree", action="append", type=Path,
                    help="a checkout to measure (repeatable; default: this one)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    trees = args.tree or [Path(__file__).resolve().parent.parent]
    print(f"load average before: {os.getloadavg()}")
    results: dict[tuple[int, Path], list[dict[str, float]]] = {}
    for src in args.files:
        for tree in trees:
            _run(tree, src)  # warm-up: compiles where needed
        for r in range(args.repeat):
            for t, tree in enumerate(trees):
                got = _run(tree, src)
                results.setdefault((t, src), []).append(got)
                print(f"  {src.name} tree {t} run {r}: {got['lines_per_s']:,} lines/s, "
                      f"wall {got['wall_s']} s, cpu {got['cpu_s']} s", flush=True)
    print(f"load average after: {os.getloadavg()}")
    for src in args.files:
        base = None
        for t, tree in enumerate(trees):
            runs = results[(t, src)]
            lps = statistics.median(x["lines_per_s"] for x in runs)
            wall = statistics.median(x["wall_s"] for x in runs)
            cpu = statistics.median(x["cpu_s"] for x in runs)
            base = base or lps
            print(f"{src.name}  {tree}: median {lps:,.0f} lines/s (best "
                  f"{max(x['lines_per_s'] for x in runs):,}), wall {wall:.3f} s, "
                  f"cpu {cpu:.3f} s, ratio {lps / base:.2f}")


if __name__ == "__main__":
    main()
