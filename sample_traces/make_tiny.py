"""Write ``tiny.parquet``: a 13-row trace small enough to follow by hand.

Run from the repository root: ``python sample_traces/make_tiny.py`` (same bytes every time).

Machine: 4 CPUs on 2 nodes (CPUs 0-1 on node 0, CPUs 2-3 on node 1), 4 KiB pages. One process
(pid 42) touches four pages A-D, then CPU 3 migrates A and B explicitly to node 1 (one
move_pages call, req_id 0), and later moves every page on node 1 back to node 0 (one
migrate_pages call, req_id 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

from tracereplay import Machine, trace

PID = 42
A, B, C, D = 0x10000, 0x11000, 0x12000, 0x13000  # vpn 16, 17, 18, 19

COLUMNS = ("ts_ns", "kind", "cpu", "vaddr", "write", "src_node", "dst_node", "req_id", "mode")
ROWS = [
    # first touches place A and B on node 0 (CPUs 0, 1), C and D on node 1 (CPUs 2, 3)
    (0, "access", 0, A + 0x10, True, None, None, None, None),
    (100, "access", 1, B, True, None, None, None, None),
    (200, "access", 2, C + 0x80, True, None, None, None, None),
    (300, "access", 3, D, False, None, None, None, None),
    (400, "access", 0, A + 0x18, False, None, None, None, None),
    (500, "access", 2, B + 0x40, False, None, None, None, None),  # remote: B is on node 0
    # move_pages(A, B -> node 1) on CPU 3: one call, two pages
    (1000, "migrate", 3, A, None, None, 1, 0, "sync"),
    (1000, "migrate", 3, B, None, None, 1, 0, "sync"),
    (1200, "access", 1, A, False, None, None, None, None),
    (1300, "access", 0, B + 0x8, True, None, None, None, None),
    # migrate_pages(node 1 -> node 0) on CPU 3: all four pages are on node 1 by now
    (2000, "migrate", 3, None, None, 1, 0, 1, "sync"),
    (2500, "access", 2, C, False, None, None, None, None),
    (2600, "access", 3, D + 0x100, True, None, None, None, None),
]


def tiny_table() -> pa.Table:
    columns = {name: [row[i] for row in ROWS] for i, name in enumerate(COLUMNS)}
    columns["pid"] = [PID] * len(ROWS)
    return pa.table(columns)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("tiny.parquet")
    trace.write(tiny_table(), out, machine=Machine.spread(4, 2))
    print(f"wrote {out}: {len(ROWS)} rows")


if __name__ == "__main__":
    main()
