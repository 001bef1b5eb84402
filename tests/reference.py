"""A slow, obvious reference model of the replay kernel (tracereplay/kernel/_core.py).

Plain Python, one object per TLB set, written from the model's description rather than from
the kernel's code. The compiled kernel must agree with it exactly: same per-CPU counters, same
IPI usefulness per round, same stalls, same per-access outcomes and latencies.

Folios: a PMD-mapped folio (order page_shift - 3) is one translation, named by its first page:
an access to any of its pages looks it up in the 2 MiB array (set by vpn >> order), which is an
array of its own or the 4 KiB one as the profile says; every other page is its own translation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracereplay.config import MemoryConfig
from tracereplay.kernel import OP_UNMAP, STAT_NAMES

L1, L2, WALK, STALE, STALL = range(5)


class LruSet:
    """One TLB set: pages in least- to most-recently used order."""

    def __init__(self, ways: int) -> None:
        self.ways = ways
        self.pages: list[int] = []

    def lookup(self, page: int) -> bool:
        if page in self.pages:
            self.pages.remove(page)
            self.pages.append(page)
            return True
        return False

    def fill(self, page: int) -> None:
        if len(self.pages) == self.ways:
            self.pages.pop(0)
        self.pages.append(page)

    def drop(self, page: int) -> int:
        if page in self.pages:
            self.pages.remove(page)
            return 1
        return 0


class Tlb:
    def __init__(self, sets: int, ways: int) -> None:
        self.sets = [LruSet(ways) for _ in range(sets)]

    def set_of(self, vpn: int) -> LruSet:
        return self.sets[vpn % len(self.sets)]

    def all_pages(self) -> list[int]:
        return [p for s in self.sets for p in s.pages]


@dataclass
class Result:
    stats: list[dict[str, int]]
    holding: list[int]
    stalls: list[tuple[int, int, int, int]] = field(default_factory=list)  # idx, ns, batch, req
    outcomes: list[tuple[int, bool, int]] = field(default_factory=list)  # outcome, remote, latency
    stalls_at: list[int] = field(default_factory=list)  # each stall's effective time


def memory_ns(m: MemoryConfig, src: int, dst: int) -> int:
    """DRAM latency from a CPU on node src to a page on node dst (docs/model.md, Latency): the
    measured local and remote latencies, other node distances placed linearly between them."""
    if src == dst:
        return int(m.local_ns)
    if not m.distances:
        return int(m.remote_ns)
    extra = (m.remote_ns - m.local_ns) * (m.distances[src][dst] - 10)
    return int(m.local_ns + extra // (m.remote_distance - 10))


def replay(pre, profile, buffer, masks, ts, cpu, page, write, *, closed_loop=False) -> Result:  # type: ignore[no-untyped-def]
    """Replay all accesses (numpy arrays) against every operation of a schedule
    (a tracereplay.replay.OpBuffer holding all plans) and its mm_cpumask table.

    Closed loop: each CPU's delay is the sum of its stalls so far; an access is judged at its
    trace time plus that delay, against the page's latest window opened by then among those
    already open at its trace time and those of calls that started by its trace time. TLBs,
    flush rounds and the order of accesses stay those of the trace times."""
    ops, rounds = buffer.ops, buffer.rounds
    t, f, m = profile.tlb, profile.flush, profile.memory
    ncpu = pre.machine.cpus
    cpu_node = list(pre.machine.cpu_node)
    l1 = [Tlb(t.l1_sets, t.l1_ways) for _ in range(ncpu)]
    l2 = [Tlb(t.l2_sets, t.l2_ways) for _ in range(ncpu)]
    # The 2 MiB arrays: their own, or the same objects as the 4 KiB ones.
    l1h = [Tlb(t.l1_2m_entries // t.l1_2m_ways, t.l1_2m_ways) if t.l1_2m_entries else x
           for x in l1]
    l2h = [Tlb(t.l2_2m_entries // t.l2_2m_ways, t.l2_2m_ways) if t.l2_2m_entries else x
           for x in l2]
    node = [int(x) for x in pre.page_node]
    vpn = [int(x) for x in pre.page_vpn]
    owner = [int(x) for x in pre.page_pid]
    pmd = pre.machine.page_shift - 3
    huge = [int(x) == pmd for x in pre.page_order]

    def translation(p: int) -> int:
        """The page whose translation an access to page p uses."""
        return p - (vpn[p] % (1 << pmd)) if huge[p] else p

    def sets(c: int, q: int) -> tuple[LruSet, LruSet]:
        """CPU c's L1 dTLB and STLB sets of translation q."""
        if huge[q]:
            return l1h[c].set_of(vpn[q] >> pmd), l2h[c].set_of(vpn[q] >> pmd)
        return l1[c].set_of(vpn[q]), l2[c].set_of(vpn[q])
    # Per page: (until, dst node, batch, req, covering round) of its latest unmap.
    window: dict[int, tuple[int, int, int, int, int]] = {}
    res = Result(stats=[dict.fromkeys(STAT_NAMES, 0) for _ in range(ncpu)],
                 holding=[0] * len(rounds["gid"]))
    delay = [0] * ncpu

    def settle(p: int, now: int) -> None:
        """Apply a finished migration's node change."""
        if p in window and window[p][0] <= now:
            node[p] = window[p][1]

    def do_op(k: int) -> None:
        if ops["kind"][k] == OP_UNMAP:
            p = int(ops["arg"][k])
            if p in window:
                node[p] = window[p][1]
            window[p] = (int(ops["until"][k]), int(ops["dst"][k]), int(ops["batch"][k]),
                         int(ops["req"][k]), int(ops["round"][k]))
            return
        r = int(ops["arg"][k])
        gid = int(rounds["gid"][r])
        init, pid, full = int(rounds["cpu"][r]), int(rounds["pid_index"][r]), bool(rounds["full"][r])
        # A broadcast (INVLPGB, arm64 TLBI) reaches every CPU without interrupting any.
        broadcast = bool(rounds["broadcast"][r])
        mask = masks[rounds["mask_id"][r]]
        pages = [int(x) for x in buffer.r_pages[buffer.r_ptr[r]:buffer.r_ptr[r + 1]]]
        for c in range(ncpu):
            removed = 0
            useful = False
            if full:
                arrays = {id(x): x for x in (l1[c], l2[c], l1h[c], l2h[c])}.values()
                for tlb in arrays:
                    for one in tlb.sets:
                        for q in list(one.pages):
                            if owner[q] == pid:
                                useful |= q in window and window[q][4] == gid
                                removed += one.drop(q)
            else:
                for q in pages:
                    for one in sets(c, q):
                        got = one.drop(q)
                        removed += got
                        useful |= bool(got)
            st = res.stats[c]
            if c == init:
                if mask[c] or broadcast:
                    st["entries_flushed"] += removed
                    st["full_flushes"] += int(full)
            elif broadcast:
                st["entries_flushed"] += removed
                st["full_flushes"] += int(full)
                res.holding[gid] += int(useful)
            elif mask[c]:
                st["ipis_received"] += 1
                st["entries_flushed"] += removed
                st["full_flushes"] += int(full)
                st["irq_ns"] += f.ipi_responder_ns + (f.full_flush_ns if full else f.invlpg_ns * len(pages))
                if useful:
                    st["ipis_useful"] += 1
                    res.holding[gid] += 1

    k = 0
    n_ops = len(ops["ts"])
    for i in range(len(ts)):
        now = int(ts[i])
        while k < n_ops and ops["ts"][k] <= now:
            do_op(k)
            k += 1
        c, p = int(cpu[i]), translation(int(page[i]))
        set1, set2 = sets(c, p)
        settle(p, now)
        st = res.stats[c]
        st["accesses"] += 1
        st["writes"] += int(bool(write[i]))
        # The page at the access's effective time: its window (until, dst, batch, req) and the
        # node it was on before that window opened.
        at = now + delay[c] if closed_loop else now
        win = window[p][:4] if p in window else None
        before = node[p]
        later = [j for j in range(k, n_ops)
                 if ops["kind"][j] == OP_UNMAP and int(ops["arg"][j]) == p
                 and now < ops["ts"][j] <= at and ops["start"][j] <= now]
        if later:
            j = later[-1]
            if win is not None:
                before = win[1]  # the earlier window ended before this one opened
            win = (int(ops["until"][j]), int(ops["dst"][j]), int(ops["batch"][j]), int(ops["req"][j]))
        in_window = win is not None and at < win[0]
        if set1.lookup(p):
            level, trans = L1, t.l1_hit_ns
            st["l1_hits"] += 1
        elif set2.lookup(p):
            level, trans = L2, t.l2_hit_ns
            st["l2_hits"] += 1
        else:
            level, trans = WALK, t.walk_ns
            st["walks"] += 1
        where = before if in_window or win is None else win[1]
        stall = 0
        outcome = level
        if in_window and level == WALK:
            assert win is not None
            stall = win[0] - at
            where = win[1]
            outcome = STALL
            st["stalls"] += 1
            st["stall_ns"] += stall
            res.stalls.append((i, stall, win[2], win[3]))
            res.stalls_at.append(at)
            delay[c] += stall if closed_loop else 0
        elif in_window:
            outcome = STALE
            st["stale_hits"] += 1
        if outcome != STALL:
            if level in (L2, WALK):
                set1.fill(p)
            if level == WALK:
                set2.fill(p)
        remote = where != cpu_node[c]
        mem = memory_ns(m, cpu_node[c], where)
        st["remote_accesses"] += int(remote)
        st["mem_ns"] += trans + mem
        res.outcomes.append((outcome, remote, trans + mem + stall))
    while k < n_ops:
        do_op(k)
        k += 1
    return res
