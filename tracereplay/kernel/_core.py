"""The compiled replay kernel: time-ordered accesses merged with migration operations.

One ``@njit`` function over named records of arrays (the classes below), arrays in and out; of the package it imports only a prefetch hint. State
lives in preallocated arrays owned by the caller and is carried from one chunk of accesses to
the next, so a trace streams through in row-group chunks.

Operations (sorted by time; an operation at time t is seen by an access at time t; after the
chunk's last access, operations up to ``op_limit`` are applied):
- ``OP_UNMAP``: a page's PTE becomes a migration entry until its remap time.
- ``OP_ROUND``: a flush round completes (its argument indexes the round arrays; ``r_gid`` numbers
  rounds across the run, as ``op_round`` of an unmap does). Its initiator (when in mm_cpumask) and every target
  invalidate the round's pages, or flush the whole address space when the round is full.
  CPUs outside the mask drop the translations silently: x86 catches them up when they next
  switch to the address space (lazy TLB), which costs no IPI. A *broadcast* round (INVLPGB,
  arm64 TLBI) invalidates every CPU's TLB, initiator included, and interrupts nobody: no IPI
  is counted and ``holding`` counts the CPUs other than the initiator that held a translation.

Accesses: L1 dTLB, then STLB, then a page walk. A page's row names the set it is looked up in:
a PMD-mapped folio's translation is one entry (its head page's id, set by vpn >> 9), in the
2 MiB array appended after the 4 KiB sets when the profile gives one (slots from ``l1_ways *
l1_sets`` on, ``l1h_ways`` ways), else in the 4 KiB sets. A hit on a page whose PTE is a migration entry is
a *stale hit* (the flush has not reached this CPU yet). A walk that finds a migration entry
*stalls* until the page's remap and fills no TLB entry.

Open loop (``delay`` None), trace timestamps are not delayed by stalls. Closed
loop, each CPU carries a delay (``delay``, the sum of its stalls so far) and an access is
judged at its effective time, trace time plus delay: against the window its page had at the
trace time (the operations up to it are applied) or, when a later unmap of the page falls by the
effective time, the latest such one whose call started by the trace time (``_unmap_ahead``).
Accesses are still processed in trace order and TLBs are those at the trace time. The mode is
a type, not a flag: numba compiles ``replay_chunk`` once per type of ``delay`` and prunes the
closed-loop branches from the open-loop specialization (``delay is None``), so that the common
open-loop replay carries none of their work or registers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tracereplay._prefetch import prefetch as _prefetch

OP_UNMAP = 0
OP_ROUND = 1

OUT_L1, OUT_L2, OUT_WALK, OUT_STALE, OUT_STALL = 0, 1, 2, 3, 4

# Columns of the per-CPU stats matrix, in cpu_stats order.
STAT_NAMES = (
    "accesses", "writes", "l1_hits", "l2_hits", "walks", "stale_hits", "stalls", "stall_ns",
    "ipis_received", "ipis_useful", "full_flushes", "entries_flushed", "irq_ns",
    "remote_accesses", "mem_ns",
)
(S_ACC, S_WRITES, S_L1, S_L2, S_WALKS, S_STALE, S_STALLS, S_STALL_NS, S_IPIS, S_USEFUL,
 S_FULL, S_ENTRIES, S_IRQ, S_REMOTE, S_MEM) = range(len(STAT_NAMES))

# Columns of the per-page matrix of what every access reads: 16 bytes a page, so that a page
# costs one cache line and the hot pages of a trace stay in cache.
(PG_B1, PG_B2, PG_NODE, PG_PENDING) = range(4)
N_PAGE_COLS = 4

_NEVER_USED = np.iinfo(np.int64).max  # above every LRU stamp
# LRU stamps are 32 bits (half the cache lines of a set); at this clock they are renumbered.
STAMP_MAX = np.iinfo(np.int32).max


# How many accesses ahead the loop prefetches a page's row, and the TLB sets it looks up
# (measured: 4/2 to 32/12 all help; 8/4 most, on the 20 M pareto trace).
AHEAD_PAGE = 8
AHEAD_SET = 4


@njit(cache=True, nogil=True, inline="always")
def _way(tag, c, b, ways, p):
    """The way of CPU c's TLB set starting at slot b that holds page p, or -1.

    No early exit: which way hits is random, so a scan without branches is faster. Unsigned
    indices (all are non-negative) spare the negative-index wraparound, which would otherwise
    make the scan gather instead of load.
    """
    hit = -1
    uc, ub = np.uint64(c), np.uint64(b)
    for w in range(ways):
        hit = w if tag[uc, ub + np.uint64(w)] == p else hit
    return hit


@njit(cache=True, nogil=True, inline="always")
def _drop(tag, c, b, ways, p):
    """Invalidate page p in CPU c's TLB set starting at slot b: 1 if it was there, else 0."""
    w = _way(tag, c, b, ways, p)
    if w < 0:
        return 0
    tag[np.uint64(c), np.uint64(b + w)] = -1
    return 1


@njit(cache=True, nogil=True, inline="always")
def _victim(tag, lru, c, b, ways):
    """The way a fill of CPU c's TLB set starting at slot b replaces: the first empty way, else
    the least recently used (stamps in a set are distinct). Branch-free: the minimum of keys in
    which empty ways come first, by index. Done only for a fill, after the lookup's scan: two
    scans without branches cost less than one with them.
    """
    v = 0
    best = _NEVER_USED
    uc, ub = np.uint64(c), np.uint64(b)
    for w in range(ways):
        j = ub + np.uint64(w)
        key = lru[uc, j] if tag[uc, j] >= 0 else w - ways
        v = w if key < best else v
        best = min(key, best)
    return v


@njit(cache=True, nogil=True)
def _rank_stamps(tag, lru, ways):
    """Renumber the LRU stamps of every set 1, 2, ... in their order (empty ways: 0), so that the
    clock can restart above ``ways`` with the same recency order."""
    rank = np.zeros(ways, lru.dtype)
    for c in range(tag.shape[0]):
        for b in range(0, tag.shape[1], ways):
            for w in range(ways):
                rank[w] = 0
                if tag[c, b + w] >= 0:
                    rank[w] = 1
                    for x in range(ways):
                        if tag[c, b + x] >= 0 and lru[c, b + x] < lru[c, b + w]:
                            rank[w] += 1
            lru[c, b:b + ways] = rank


class Accesses(NamedTuple):
    """One chunk of accesses in time order."""

    ts: np.ndarray  # int64 ns
    cpu: np.ndarray  # int32
    page: np.ndarray  # int32 page id
    write: np.ndarray  # bool


class Ops(NamedTuple):
    """Scheduled operations in time order (at equal times unmaps first)."""

    ts: np.ndarray  # int64 ns: an unmap's time, a round's completion
    kind: np.ndarray  # int8: OP_UNMAP or OP_ROUND
    arg: np.ndarray  # int64: the page (unmap) or the round's index in Rounds (round)
    round: np.ndarray  # int64: an unmap's flush round (gid)
    until: np.ndarray  # int64 ns: an unmap's remap time
    dst: np.ndarray  # int32: an unmap's destination node
    batch: np.ndarray  # int64: an unmap's batch id
    req: np.ndarray  # int64: an unmap's request id
    start: np.ndarray  # int64 ns: when an unmap's call starts (closed loop: who sees it early)


class Rounds(NamedTuple):
    """The flush rounds that operations name, and the mm_cpumask table they index."""

    gid: np.ndarray  # int64: the round's number in the run
    cpu: np.ndarray  # int32: initiator
    pid: np.ndarray  # int32: pid index
    full: np.ndarray  # bool: targets flush the whole address space
    mask_id: np.ndarray  # int32: row of masks
    masks: np.ndarray  # uint8 [n_masks, cpus]
    ptr: np.ndarray  # int64 [n + 1]: CSR of each round's pages
    pages: np.ndarray  # int64 page ids
    holding: np.ndarray  # int32, out: CPUs reached (not the initiator) that held a translation
    broadcast: np.ndarray  # the hardware reached every CPU: no IPI, nobody interrupted


class Pages(NamedTuple):
    """Per-page state, indexed by page id."""

    pid: np.ndarray  # int32 pid index
    row: np.ndarray  # int32 [n, N_PAGE_COLS]: what every access reads (PG_*)
    until: np.ndarray  # int64 ns: remap time of a pending migration
    batch: np.ndarray  # int64: its batch id
    req: np.ndarray  # int64: its request id
    round: np.ndarray  # int64: its flush round (gid)


class Cpus(NamedTuple):
    node: np.ndarray  # int32: each CPU's node
    first_ns: np.ndarray  # int64 [pids, cpus]: first access of each pid index on each CPU


class Tlbs(NamedTuple):
    """Every CPU's L1 dTLB and STLB (tags are page ids, -1 empty; LRU stamps of ``clock``)
    and the per-CPU counters (STAT_NAMES)."""

    l1_tag: np.ndarray  # int32 [cpus, l1 entries]
    l1_lru: np.ndarray  # int32
    l2_tag: np.ndarray  # int32 [cpus, l2 entries]
    l2_lru: np.ndarray  # int32
    clock: np.ndarray  # int64 [1]
    stats: np.ndarray  # int64 [cpus, len(STAT_NAMES)]


class Costs(NamedTuple):
    """TLB geometry and latencies, ns."""

    l1_sets: int
    l1_ways: int
    l2_sets: int
    l2_ways: int
    l1_hit_ns: int
    l2_hit_ns: int
    walk_ns: int
    local_ns: int
    remote_ns: int
    invlpg_ns: int
    full_flush_ns: int
    responder_ns: int
    l1h_ways: int  # ways of the 2 MiB sets appended after the l1_sets 4 KiB sets
    l2h_ways: int
    # int64 [nodes, nodes]: memory latency from a CPU on node i to a page on node j (local_ns on
    # the diagonal; remote_ns elsewhere, or scaled by node distance: tracereplay.distances).
    node_ns: np.ndarray


class Out(NamedTuple):
    """Stalls (always) and, with ``emit``, each access's outcome, remoteness and latency."""

    st_idx: np.ndarray  # int64: index of the stalled access in the chunk
    st_ns: np.ndarray  # int64
    st_batch: np.ndarray  # int64
    st_req: np.ndarray  # int64
    emit: bool
    outcome: np.ndarray  # int8 (OUT_*)
    remote: np.ndarray  # bool
    latency: np.ndarray  # int64 ns
    st_at: np.ndarray  # int64 ns: the stalled access's effective time (its trace time open loop)


@njit(cache=True, nogil=True, inline="always")
def _unmap_ahead(op_ts, op_kind, op_arg, op_start, cursor, p, ts, at):
    """Closed loop: the operation index of the latest unmap of page p after the cursor (so after
    trace time ts) and at or before effective time ``at`` whose call started by ``ts``, or -1."""
    found = -1
    for k in range(cursor, op_ts.shape[0]):
        if op_ts[k] > at:
            break
        if op_kind[k] == OP_UNMAP and op_arg[k] == p and op_start[k] <= ts:
            found = k
    return found


@njit(cache=True, nogil=True)
def replay_chunk(acc, op_limit, ops, cursor, rounds, pg, cpus, tlb, costs, out, delay):
    """Replay the accesses of ``acc`` merged with ``ops`` from ``cursor`` on, then the
    operations up to ``op_limit``; returns (next cursor, stalls written to ``out``).

    ``delay``: None (open loop), or int64 [cpus], each CPU's stalls so far in ns, read and
    updated (closed loop: a stall delays the later accesses of its CPU)."""
    a_ts, a_cpu, a_page, a_write = acc.ts, acc.cpu, acc.page, acc.write
    op_ts, op_kind, op_arg, op_until, op_dst = ops.ts, ops.kind, ops.arg, ops.until, ops.dst
    op_round, op_batch, op_req, op_start = ops.round, ops.batch, ops.req, ops.start
    r_gid, r_cpu, r_pid, r_full, r_mask_id = rounds.gid, rounds.cpu, rounds.pid, rounds.full, rounds.mask_id
    masks, r_ptr, r_pages, r_holding = rounds.masks, rounds.ptr, rounds.pages, rounds.holding
    r_broadcast = rounds.broadcast
    page_pid, page, page_until = pg.pid, pg.row, pg.until
    page_batch, page_req, page_round = pg.batch, pg.req, pg.round
    cpu_node, cpu_first_ns = cpus.node, cpus.first_ns
    l1_tag, l1_lru, l2_tag, l2_lru = tlb.l1_tag, tlb.l1_lru, tlb.l2_tag, tlb.l2_lru
    clock, stats = tlb.clock, tlb.stats
    st_idx, st_ns, st_batch, st_req, st_at = out.st_idx, out.st_ns, out.st_batch, out.st_req, out.st_at
    emit, out_outcome, out_remote, out_latency = out.emit, out.outcome, out.remote, out.latency
    # Locals, not record reads in the loop.
    l1_sets = costs.l1_sets
    l1_ways = costs.l1_ways
    l2_sets = costs.l2_sets
    l2_ways = costs.l2_ways
    l1_hit_ns = costs.l1_hit_ns
    l2_hit_ns = costs.l2_hit_ns
    walk_ns = costs.walk_ns
    node_ns = costs.node_ns
    n_nodes = node_ns.shape[0]
    irq_full_ns = costs.responder_ns + costs.full_flush_ns
    responder_ns = costs.responder_ns
    invlpg_ns = costs.invlpg_ns
    # Slots from l1_base on are the 2 MiB array's (l1h_ways ways a set).
    l1_base = l1_sets * l1_ways
    l2_base = l2_sets * l2_ways
    l1h_ways = costs.l1h_ways
    l2h_ways = costs.l2h_ways
    ncpu = cpu_node.shape[0]
    l1_entries = l1_tag.shape[1]
    l2_entries = l2_tag.shape[1]
    n_ops = op_ts.shape[0]
    n_acc = a_ts.shape[0]
    n_st = 0
    tick = clock[0]
    # Access counters by (cpu, (level * nodes + page node) * 2 + write), folded into stats at
    # the end: one increment per access instead of five read-modify-writes of stats.
    tally = np.zeros((ncpu, 3 * n_nodes * 2), np.int64)
    i = 0
    while True:
        # Next event: the operation if it is not later than the next access.
        if i < n_acc:
            ts = a_ts[i]
            take_op = cursor < n_ops and op_ts[cursor] <= ts
        else:
            # After the chunk's last access: operations up to op_limit.
            if cursor >= n_ops or op_ts[cursor] > op_limit:
                break
            take_op = True
        if take_op:
            k = cursor
            cursor += 1
            if op_kind[k] == OP_UNMAP:
                p = op_arg[k]
                if page[p, PG_PENDING] >= 0:
                    page[p, PG_NODE] = page[p, PG_PENDING]
                page[p, PG_PENDING] = op_dst[k]
                page_until[p] = op_until[k]
                page_batch[p] = op_batch[k]
                page_req[p] = op_req[k]
                page_round[p] = op_round[k]
                continue
            # OP_ROUND
            r = op_arg[k]
            init = r_cpu[r]
            pid = r_pid[r]
            full = r_full[r]
            m = r_mask_id[r]
            s0 = r_ptr[r]
            s1 = r_ptr[r + 1]
            holding = 0
            bcast = r_broadcast[r] != 0
            for c in range(ncpu):
                if c != init and masks[m, c] == 0 and cpu_first_ns[pid, c] > op_ts[k]:
                    continue  # never ran the process: holds none of its translations
                removed = 0
                useful = False
                if full:
                    for e in range(l1_entries):
                        q = l1_tag[c, e]
                        if q >= 0 and page_pid[q] == pid:
                            if page_round[q] == r_gid[r]:
                                useful = True
                            l1_tag[c, e] = -1
                            removed += 1
                    for e in range(l2_entries):
                        q = l2_tag[c, e]
                        if q >= 0 and page_pid[q] == pid:
                            if page_round[q] == r_gid[r]:
                                useful = True
                            l2_tag[c, e] = -1
                            removed += 1
                else:
                    # A page is in a set at most once (filled only on a miss): the branch-free
                    # scan of the access path finds its way.
                    for j in range(s0, s1):
                        q = r_pages[j]
                        uq = np.uint64(q)
                        b1 = page[uq, PG_B1]
                        b2 = page[uq, PG_B2]
                        hit = (_drop(l1_tag, c, b1, l1_ways if b1 < l1_base else l1h_ways, q)
                               + _drop(l2_tag, c, b2, l2_ways if b2 < l2_base else l2h_ways, q))
                        removed += hit
                        useful = useful or hit > 0
                in_mask = masks[m, c] != 0
                if c == init:
                    if in_mask or bcast:
                        stats[c, S_ENTRIES] += removed
                        if full:
                            stats[c, S_FULL] += 1
                elif bcast:
                    # A broadcast invalidation: every CPU's TLB, no interrupt.
                    stats[c, S_ENTRIES] += removed
                    if full:
                        stats[c, S_FULL] += 1
                    if useful:
                        holding += 1
                elif in_mask:
                    stats[c, S_IPIS] += 1
                    stats[c, S_ENTRIES] += removed
                    if full:
                        stats[c, S_FULL] += 1
                        stats[c, S_IRQ] += irq_full_ns
                    else:
                        stats[c, S_IRQ] += responder_ns + invlpg_ns * (s1 - s0)
                    if useful:
                        stats[c, S_USEFUL] += 1
                        holding += 1
            r_holding[r] = holding
            continue

        # An access. Indices on its path are unsigned (all are non-negative): numba then computes
        # no negative-index wraparound.
        # The page row and TLB sets it reads are often not in cache: prefetch those of accesses
        # a little ahead (the sets once their page's row is in).
        ahead = np.uint64(min(i + AHEAD_PAGE, n_acc - 1))
        _prefetch(page, a_page[ahead] * N_PAGE_COLS)
        ahead = np.uint64(min(i + AHEAD_SET, n_acc - 1))
        q = np.uint64(a_page[ahead])
        e = a_cpu[ahead] * l2_entries + page[q, PG_B2]
        _prefetch(l2_tag, e)  # and the set's last way: a set may straddle two lines
        _prefetch(l2_tag, e + l2_ways - 1)
        _prefetch(l2_lru, e)
        _prefetch(l2_lru, e + l2_ways - 1)
        e = a_cpu[ahead] * l1_entries + page[q, PG_B1]
        _prefetch(l1_tag, e)
        _prefetch(l1_lru, e)
        ui = np.uint64(i)
        c = a_cpu[ui]
        p = a_page[ui]
        uc, up = np.uint64(c), np.uint64(p)  # c and p stay signed for comparisons
        tick += 1
        if tick > STAMP_MAX:
            _rank_stamps(l1_tag[:, :l1_base], l1_lru[:, :l1_base], l1_ways)
            _rank_stamps(l2_tag[:, :l2_base], l2_lru[:, :l2_base], l2_ways)
            if l1_entries > l1_base:
                _rank_stamps(l1_tag[:, l1_base:], l1_lru[:, l1_base:], l1h_ways)
            if l2_entries > l2_base:
                _rank_stamps(l2_tag[:, l2_base:], l2_lru[:, l2_base:], l2h_ways)
            tick = max(l1_ways, l2_ways, l1h_ways, l2h_ways) + 1
        # A page without a pending node is not migrating: its remap time has passed (an unmap
        # always sets both), so page_until is read only for pages that have one.
        migrating = False
        if page[up, PG_PENDING] >= 0:
            if ts >= page_until[up]:
                page[up, PG_NODE] = page[up, PG_PENDING]
                page[up, PG_PENDING] = -1
            else:
                migrating = True
        level = 2  # 0 L1 dTLB, 1 STLB, 2 page walk
        b1 = page[up, PG_B1]
        b2 = page[up, PG_B2]
        ways1 = l1_ways if b1 < l1_base else l1h_ways
        ways2 = l2_ways if b2 < l2_base else l2h_ways
        w = _way(l1_tag, c, b1, ways1, p)
        if w >= 0:
            l1_lru[uc, np.uint64(b1 + w)] = tick
            level = 0
        else:
            w = _way(l2_tag, c, b2, ways2, p)
            if w >= 0:
                l2_lru[uc, np.uint64(b2 + w)] = tick
                level = 1
        if level == 0:
            trans = l1_hit_ns
            outcome = OUT_L1
        elif level == 1:
            trans = l2_hit_ns
            outcome = OUT_L2
        else:
            trans = walk_ns
            outcome = OUT_WALK
        node = page[up, PG_NODE]
        stall = 0
        at = ts  # the access's effective time
        k_win = -1
        if delay is not None:  # noqa: SIM102 (alone, so that numba prunes it in open loop)
            if delay[uc] > 0:
                at = ts + delay[uc]
                k_win = _unmap_ahead(op_ts, op_kind, op_arg, op_start, cursor, p, ts, at)
                if k_win >= 0:
                    # A later window, opened by the effective time (an earlier one has ended).
                    if page[up, PG_PENDING] >= 0:
                        node = page[up, PG_PENDING]
                    migrating = at < op_until[k_win]
                    if not migrating:
                        node = op_dst[k_win]
                elif migrating and at >= page_until[up]:
                    migrating = False  # remapped by the effective time
                    node = page[up, PG_PENDING]
        if migrating:
            if level == 2:
                # Faults on the migration entry and sleeps until the remap; no TLB fill.
                if k_win >= 0:
                    stall = op_until[k_win] - at
                    node = op_dst[k_win]
                    st_batch[n_st] = op_batch[k_win]
                    st_req[n_st] = op_req[k_win]
                else:
                    stall = page_until[up] - at
                    node = page[up, PG_PENDING]
                    st_batch[n_st] = page_batch[up]
                    st_req[n_st] = page_req[up]
                outcome = OUT_STALL
                stats[c, S_STALLS] += 1
                stats[c, S_STALL_NS] += stall
                st_idx[n_st] = i
                st_ns[n_st] = stall
                st_at[n_st] = at
                n_st += 1
                if delay is not None:
                    delay[uc] += stall
            else:
                outcome = OUT_STALE
                stats[c, S_STALE] += 1
        if level >= 1 and outcome != OUT_STALL:
            # Fill the L1 dTLB (from the STLB or the walk); the STLB only after a walk.
            v = _victim(l1_tag, l1_lru, c, b1, ways1)
            l1_tag[uc, np.uint64(b1 + v)] = p
            l1_lru[uc, np.uint64(b1 + v)] = tick
        if outcome == OUT_WALK:
            v = _victim(l2_tag, l2_lru, c, b2, ways2)
            l2_tag[uc, np.uint64(b2 + v)] = p
            l2_lru[uc, np.uint64(b2 + v)] = tick
        # Branch-free write bit: loads and stores interleave at random.
        tally[uc, (level * n_nodes + node) * 2 + a_write[ui]] += 1
        if emit:
            out_outcome[i] = outcome
            out_remote[i] = node != cpu_node[uc]
            out_latency[i] = trans + node_ns[cpu_node[uc], node] + stall
        i += 1
    clock[0] = tick
    for c in range(ncpu):
        cn = cpu_node[c]
        for j in range(tally.shape[1]):
            n = tally[c, j]
            lv, nd = j // (2 * n_nodes), (j // 2) % n_nodes
            stats[c, S_ACC] += n
            stats[c, S_WRITES] += n * (j % 2)
            stats[c, S_L1 + lv] += n  # S_L1, S_L2, S_WALKS are adjacent
            stats[c, S_REMOTE] += n * (nd != cn)
            tr = l1_hit_ns if lv == 0 else l2_hit_ns if lv == 1 else walk_ns
            stats[c, S_MEM] += n * (tr + node_ns[cn, nd])
    return cursor, n_st
