"""Stores of the trace so far, for a policy whose decision depends on them.

Transactional migration (Nomad) aborts an attempt when the page was written while it was being
copied: the PTE's dirty bit is a fact of the past when the check is made. :class:`WriteLog`
keeps the (time, page) of every store read so far, from ``forget_before`` on, so the planner
can ask which pages were written in a window once the pre-pass has got past it.
"""

from __future__ import annotations

import numpy as np


class WriteLog:
    """Stores in time order: their times and page ids, as appended row group by row group."""

    def __init__(self) -> None:
        self._ts: list[np.ndarray] = []
        self._page: list[np.ndarray] = []

    def add(self, ts: np.ndarray, page: np.ndarray) -> None:
        if len(ts):
            self._ts.append(np.asarray(ts, np.int64))
            self._page.append(np.asarray(page, np.int64))

    def _joined(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self._ts) != 1:
            ts = np.concatenate(self._ts) if self._ts else np.zeros(0, np.int64)
            page = np.concatenate(self._page) if self._page else np.zeros(0, np.int64)
            self._ts, self._page = [ts], [page]
        return self._ts[0], self._page[0]

    def forget_before(self, t_ns: int) -> None:
        """Drop the stores before ``t_ns``: nobody will ask about them."""
        ts, page = self._joined()
        k = int(np.searchsorted(ts, t_ns, side="left"))
        self._ts, self._page = [ts[k:]], [page[k:]]

    def between(self, lo_ns: int, hi_ns: int) -> dict[int, np.ndarray]:
        """The stores with ``lo_ns <= ts_ns < hi_ns``: for each page written, its store times
        in order."""
        ts, page = self._joined()
        a, b = np.searchsorted(ts, [lo_ns, hi_ns], side="left")
        ts, page = ts[a:b], page[a:b]
        order = np.argsort(page, kind="stable")
        ts, page = ts[order], page[order]
        cuts = np.flatnonzero(np.diff(page)) + 1
        return {int(p[0]): t for p, t in zip(np.split(page, cuts), np.split(ts, cuts), strict=True)
                if len(p)}
