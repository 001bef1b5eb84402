"""The windows of the folios a batched stretch unmapped, folio after folio: a compiled loop.

Within a chunk each folio's times follow from those of the folios before it (its unmap ends
after theirs, its move starts when theirs end), so the windows are one pass over the rows; the
chunks' own times (when each starts, when its moves start) come in, already costed. Arrays in,
arrays out; nothing of the package is imported. Every array is int64 but ``deferred`` (bool),
all C-contiguous, so that one compilation serves every call.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def folio_windows(
    k, chunk_start, chunk_moves, chunk_copy, deferred, batch_id,
    attempt, other_ns, unmaps, local, pause_move, copy, remaps, copied_start, copied_end,
    batch_copy,
):
    """Per chunk ``j`` (``k[j]`` rows, the chunks' rows one after another): it starts at
    ``chunk_start[j]``, its moves at ``chunk_moves[j]`` (after its flush), and with
    ``batch_copy`` its folios are copied together, taking ``chunk_copy[j]``. A ``deferred``
    chunk has one flush round (if it unmapped a folio); any other flushes each folio as it
    is unmapped, one round each.

    Per row (a folio unmapped): ``attempt``, which attempt of its chunk's unmap stage unmapped
    it (each attempt takes ``other_ns`` first); ``unmaps``, its unmap (with the time its task
    was off the CPU before it); ``local``, its own flush (0 in a deferred chunk);
    ``pause_move``, the time off the CPU before its move; ``copy`` and ``remaps``, its copy by
    itself and its remap; with ``batch_copy``, ``copied_start``/``copied_end``, its copy in the
    chunk's, from the copy's start.

    Returns per row: position in its chunk's moves, batch id, unmap end, flush end, copy start
    and end, remap end, and the round that flushed it (the stretch's rounds numbered from 0 in
    order)."""
    n = len(attempt)
    pos = np.empty(n, np.int64)
    batch = np.empty(n, np.int64)
    unmap = np.empty(n, np.int64)
    flush = np.empty(n, np.int64)
    copy_start = np.empty(n, np.int64)
    copy_end = np.empty(n, np.int64)
    remap = np.empty(n, np.int64)
    rnd = np.empty(n, np.int64)
    r = 0
    next_round = 0
    for j in range(len(k)):
        unmapped = chunk_start[j]  # the chunk's unmap steps so far (and local flushes)
        moved = chunk_moves[j] + (chunk_copy[j] if batch_copy else 0)  # its moves so far
        for i in range(k[j]):
            unmapped += unmaps[r]
            unmap[r] = unmapped + (attempt[r] + 1) * other_ns
            unmapped += local[r]
            if deferred[j]:
                flush[r], rnd[r] = chunk_moves[j], next_round
            else:
                flush[r], rnd[r] = unmap[r] + local[r], next_round + i
            if batch_copy:
                # The chunk's pauses before moves fall among its remaps, each before its folio's.
                copy_start[r] = chunk_moves[j] + copied_start[r]
                copy_end[r] = chunk_moves[j] + copied_end[r]
                moved += pause_move[r] + remaps[r]
            else:
                copy_start[r] = moved + pause_move[r]
                copy_end[r] = copy_start[r] + copy[r]
                moved = copy_end[r] + remaps[r]
            remap[r] = moved
            pos[r], batch[r] = i, batch_id[j]
            r += 1
        next_round += (1 if k[j] else 0) if deferred[j] else k[j]
    return pos, batch, unmap, flush, copy_start, copy_end, remap, rnd
