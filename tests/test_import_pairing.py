"""``pair_fifo`` (the set/remove pairing of the kernel-trace import) against a plain-Python
queue per key, on random rows that make its table grow and delete keys out of probe runs."""

from collections import defaultdict, deque

import numpy as np
import pytest

from tracereplay.importer import _scan as S


def _reference(ctx, call, addr, is_set):
    partner = [-1] * len(ctx)
    orphan = [False] * len(ctx)
    open_sets: dict[tuple[int, int, int], deque[int]] = defaultdict(deque)
    for i, key in enumerate(zip(addr.tolist(), ctx.tolist(), call.tolist(), strict=True)):
        if is_set[i]:
            open_sets[key].append(i)
        elif open_sets[key]:
            partner[open_sets[key].popleft()] = i
        else:
            orphan[i] = True
    return partner, orphan


@pytest.mark.parametrize("seed", range(6))
def test_pair_fifo_matches_a_queue_per_key(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    # few distinct values: keys repeat, queues grow past one set, removes find none
    ctx = rng.integers(1, 4, n).astype(np.int64)
    call = rng.integers(-1, 3, n).astype(np.int64)
    addr = rng.integers(0, 400, n).astype(np.int64) << 12
    is_set = rng.random(n) < 0.55
    table = S.pair_table(16)
    for _ in range(2):  # the table comes back empty and is used again
        partner, orphan, table = S.pair_fifo(ctx, call, addr, is_set, table)
        want_partner, want_orphan = _reference(ctx, call, addr, is_set)
        assert partner.tolist() == want_partner
        assert orphan.tolist() == want_orphan
        assert len(table) > 16  # it grew
        assert (table[:, 3] == -2).all()
