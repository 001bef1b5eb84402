"""Each compiled function is compiled once, whatever the trace: arrays that arrive writable or as
read-only views of Arrow buffers (columns with or without nulls, groups with or without
migrate rows) reach it as one type. A second specialisation would double the cold start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from tracereplay import generate
from tracereplay.kernel import _core
from tracereplay.migrate import _windows
from tracereplay.trace import _pages, _rows
from tracereplay.replay import run
out = sys.argv[1]
plain = out + "/plain.parquet"
generate.write_pmbench(plain, generate.PmbenchParams(accesses=3000, migrate_every_ms=0, seed=2))
run(plain, out + "/a", policies=["batched"])
run(sys.argv[2], out + "/b")  # migrations, map rows, nulls in cpu and write
print(json.dumps({f.__name__: len(f.signatures) for f in
                  (_core.replay_chunk, _pages.touch, _rows.first_bad_row,
                   _windows.folio_windows)}))
"""


def test_the_replay_compiles_each_function_once(tiny_trace: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(tiny_trace)],
                          check=True, capture_output=True, text=True)
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts == {"replay_chunk": 1, "touch": 1, "first_bad_row": 1, "folio_windows": 1}
