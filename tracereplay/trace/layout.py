"""Where the row groups of a canonical trace file end.

A long stretch of ``access`` rows gets row groups of its own: a reader then finds the columns
that only other kinds of rows set (``src_node``, ``dst_node``, ``req_id``, ``mode``, ``order``)
all null in the group's statistics and decodes nothing of them, and validation takes the
group's rows by the compiled pass alone. A trace with a migration call every few hundred
thousand accesses would otherwise have a call row in every group, and every group would decode
those columns in full (a fifth of the decoding of a pmbench trace with migrations).

The rule, a function of the rows alone (the same rows give the same file whatever batches they
are written in): the rows are cut into *segments*, each maximal run of at least ``long_run``
consecutive ``access`` rows being one, and the rows between two such runs another; a segment is
cut into row groups of ``rows`` rows from its start, the last one fewer.
"""

from __future__ import annotations

import numpy as np


def long_run_rows(rows: int) -> int:
    """The shortest run of access rows that gets row groups of its own."""
    return max(1, rows // 16)


class RowGroups:
    """The row groups of a file written in batches: :meth:`cut` is given the rows not yet
    written and says how many of them fill which groups; the rest wait for more rows."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.long_run = long_run_rows(rows)
        # The first waiting row continues a long run (whose start is already written).
        self._head_long = False

    def cut(self, is_access: np.ndarray, *, final: bool) -> list[int]:
        """Sizes of the next row groups of the waiting rows (``is_access``: one bool per row).
        Unless ``final``, more rows may follow, so only groups that no later row can change
        are given: the last segment's whole groups, and none of a short run of access rows at
        the end (it may yet become long)."""
        n = len(is_access)
        if n == 0:
            return []
        rows = self.rows
        # Maximal runs of access rows: [starts[i], ends[i]).
        edges = np.flatnonzero(np.diff(is_access.astype(np.int8), prepend=0, append=0))
        starts, ends = edges[0::2], edges[1::2]
        long = ends - starts >= self.long_run
        if self._head_long and len(starts) and starts[0] == 0:
            long[0] = True
        segments: list[tuple[int, int, bool]] = []  # (start, end, a long run)
        pos = 0
        for s, e in zip(starts[long].tolist(), ends[long].tolist(), strict=True):
            if s > pos:
                segments.append((pos, s, False))
            segments.append((s, e, True))
            pos = e
        if pos < n:
            segments.append((pos, n, False))
        sizes: list[int] = []
        for k, (a, b, is_long) in enumerate(segments):
            if k == len(segments) - 1 and not final:
                if not is_long and is_access[-1]:
                    b = int(starts[-1])  # a short run at the end: it may become long
                sizes += [rows] * ((b - a) // rows)
                self._head_long = is_long
                break
            whole, rest = divmod(b - a, rows)
            sizes += [rows] * whole + ([rest] if rest else [])
        return sizes
