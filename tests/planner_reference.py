"""A slow, obvious model of the migration planner, written from KERNEL.md and docs/model.md, for
``test_planner.py`` to compare :class:`tracereplay.migrate.Planner` against.

It shares nothing with ``tracereplay/migrate/`` but the shape of what it produces (the plan's
columns and their dtypes, the batch records): it takes the pre-pass's facts about the trace
(pages, when each appeared and where, the calls, mm_cpumask) and the profile, and walks every
call, page and attempt one at a time, in time order, with plain Python numbers.

The rules, as the documents state them:

- Calls run on their CPU one after another: a call starts at max(its time, the end of the
  CPU's previous call); of the calls waiting, the one that can start first goes first. With
  ``migrate.call_start = "trace"`` a call starts at its time, whatever the CPU is doing.
- A page named with ``mappings`` k (null: 1) is unmapped and remapped k times: each of its
  unmaps costs ``unmap_ns`` x k and its remap ``remap_ns`` x k (rmap_walk() visits every
  mapping). A whole-node call's pages have one mapping each.
- A page named with ``off_cpu_unmap_ns`` u and ``off_cpu_move_ns`` v (null: 0) makes its call
  wait u just before the page's unmap and v just before its move (its copy; in batched-copy,
  before its remap, the copy being the chunk's), on the attempt that unmaps it (transactional:
  its first attempt), counted as ``other`` time.
- A whole-node call (migrate_pages(2)) takes the pid's pages on ``src_node`` in address order
  when it starts; an explicit call (move_pages(2)) its listed pages, each once. Pages that do
  not exist yet are skipped (``absent_pages``), explicit pages already on the destination too
  (``skipped_on_dst``), and so are pages another call is still migrating (``skipped_busy``).
- Each attempt at a page costs ``other_ns`` and finds the page busy with ``fail_probability``
  (one draw of ``default_rng(seed)`` per attempt, in the order attempts are made).
- A flush round of n pages from CPU c with mm_cpumask m: the initiator flushes locally if it is
  in m (``invlpg_ns`` a page, or ``full_flush_ns`` for more than ``ceiling_pages`` pages, which
  makes the round a full flush), every other CPU in m gets an IPI, and the initiator waits
  ``ipi_initiator_ns + ipi_extra_target_ns * (targets - 1)`` for them. That is the ``ipi``
  mechanism. Under ``invlpgb``, a process whose mask holds at least ``min_cpus`` CPUs (the
  initiator counted if in it) is flushed by a broadcast instead: ``page_ns`` a page plus one
  ``tlbsync_ns``, no IPI, never a full flush; a smaller one as under ``ipi``. Under ``tlbi``
  every round is such a broadcast (``page_ns`` a page plus one ``dsb_ns``).
- serial (Linux <= 6.2): up to ``passes`` passes over the list; per page other, unmap, a round
  for that page at once, copy, remap. mm_cpumask is read before an attempt of a pass when the
  attempts since the last reading hold ``mm_cpumask_sample_pages`` base pages or more.
- batched (Linux >= 6.3): chunks of ``batch_pages``; mm_cpumask read when a chunk starts. Unmap
  every page (busy ones retried in later passes: ``passes`` for an async call, ``async_passes``
  for a sync one); if another CPU is in the mask (always under ``tlbi``: arm64 always defers),
  one round for the chunk's unmapped pages, else
  each page is flushed at its unmap; then per page copy, remap. A sync call retries each page
  still busy alone, like serial, up to ``sync_passes`` passes; an async call gives up on it.
- transactional (Nomad): per page, up to ``retries`` + 1 attempts, no busy draws; an attempt is
  other, copy (the page still mapped), unmap, a round for that page at once (mask read at the
  unmap), then remap. If the page was stored to at or after the copy began and before the
  unmap, the attempt is aborted (the remap restores the old PTE; the page stays where it is and
  is busy until then) and the page is tried again; after the last aborted attempt it is left.
  Every attempt is a row (aborted ones with status 2), numbered in the call's order.
- batched-copy (the batch-copy series): batched's chunks, unmap stage, flush and fallback (and
  its ``[policy.batched]`` knobs), but after the flush the chunk's pages are copied together by
  the copy engine, then each is remapped.
- Copy engines (``[copy]``; a page is a folio of ``page_size`` bytes; ``t(b, p)`` = ns to move
  b bytes at one page per p ns, rounded up):
  cpu: folio after folio, each ``folio_ns + t(bytes, page_ns)``;
  mt: ``used`` threads dispatched (``dispatch_ns`` each), used = folios if there are no more
  folios than threads (one folio a thread), else every thread copies ceil(bytes / threads) of
  every folio; the copy takes the slowest thread, but no less than t(all bytes, link_page_ns);
  the CPU knows every folio done at the end;
  dma: ``submit_ns``, ``descriptor_ns`` per descriptor (ceil(bytes / descriptor_bytes) a folio),
  the folios dealt to min(channels, folios) channels in order in near-equal shares (the first
  ones one more), each channel ``channel_descriptor_ns`` per descriptor plus t(bytes,
  channel_page_ns), the busiest channel but no less than t(all bytes, device_page_ns), then
  ``completion_ns``; the CPU knows every folio done at the end.
  A policy that copies page by page copies each page alone with the engine.
- Folios: the unit of everything above is the folio (a base page is a folio of one page). A
  call moves a folio whole, once, if any of its pages is named (whole-node: each folio of the
  pid on the node, by its first page). A chunk takes folios until it holds ``batch_pages``
  base pages or more. A folio is copied as one folio of its size in bytes. A flush of a folio drops its
  translations: one for a PMD-mapped folio (order page_shift - 3), one per page otherwise;
  but x86 flushes a folio's range in 4 KiB strides, so it counts (against ``ceiling_pages``
  and for ``invlpg_ns``) its base pages. Batches count base pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tracereplay.config import Profile
from tracereplay.prepass import PrePass

MIGRATED, FAILED, ABORTED = 0, 1, 2

ROUND_DTYPES = {
    "ts_ns": np.int64, "end_ns": np.int64, "cost_ns": np.int64, "cpu": np.int32,
    "pid_index": np.int32, "req_id": np.int64, "batch_id": np.int64, "pages": np.int32,
    "n_pages": np.int64, "gid": np.int64, "targets": np.int32, "full": np.bool_,
    "mask_id": np.int32, "page_list": np.int64, "broadcast": np.bool_,
}
PAGE_DTYPES = {
    "page": np.int64, "req_id": np.int64, "batch_id": np.int64, "cpu": np.int32, "pos": np.int32,
    "src_node": np.int32, "dst_node": np.int32, "unmap_ns": np.int64, "flush_ns": np.int64,
    "copy_start_ns": np.int64, "copy_end_ns": np.int64, "remap_ns": np.int64, "round": np.int64,
    "status": np.int8, "attempts": np.int32, "pages": np.int64, "span": np.int64,
}


class Plan:
    """One call's plan: its rounds and pages as columns, and its batches."""

    def __init__(self, start_ns: int, end_ns: int, rounds: list[dict[str, Any]],
                 pages: list[dict[str, Any]], batches: list[dict[str, Any]]) -> None:
        self.start_ns, self.end_ns, self.batches = start_ns, end_ns, batches
        for b in batches:  # a batch's first page usable again: its earliest remap
            remaps = [p["remap_ns"] for p in pages
                      if p["batch_id"] == b["batch_id"] and p["status"] == MIGRATED]
            b["first_remap_ns"] = min(remaps) if remaps else None
        page_list = [p for r in rounds for p in r.pop("page_list")]
        self.rounds = _columns(rounds, ROUND_DTYPES, page_list=page_list)
        self.pages = _columns(pages, PAGE_DTYPES)


def _columns(rows: list[dict[str, Any]], dtypes: dict[str, Any], **lists: list[int]) -> dict[str, np.ndarray]:
    out = {}
    for k, dtype in dtypes.items():
        values = lists[k] if k in lists else [r[k] for r in rows]
        out[k] = np.array(values, dtype=dtype)
    return out


def _t(n_bytes: int, page_ns: int, page_size: int) -> int:
    return -(-(n_bytes * page_ns) // page_size)


def copy_batch(profile: Profile, page_size: int, sizes: list[int]) -> tuple[list[int], list[int], int]:
    """(start of each folio's copy, when it is known done, when the CPU goes on), ns from the
    copy's start, of ``sizes`` (bytes) copied together by the profile's engine."""
    c = profile.copy
    e = profile.copy_engines[c.engine]
    n = len(sizes)
    if not n:
        return [], [], 0
    if c.engine == "cpu":
        starts, ends, t = [], [], 0
        for b in sizes:
            starts.append(t)
            t += e.folio_ns + _t(b, e.page_ns, page_size)
            ends.append(t)
        return starts, ends, t
    if c.engine == "mt":
        if n <= c.threads:
            used = n
            slowest = max(_t(b, e.thread_page_ns, page_size) for b in sizes)
        else:
            used = c.threads
            slowest = _t(sum(-(-b // c.threads) for b in sizes), e.thread_page_ns, page_size)
        total = used * e.dispatch_ns + max(slowest, _t(sum(sizes), e.link_page_ns, page_size))
        return [0] * n, [total] * n, total
    assert c.engine == "dma"
    used = min(c.channels, n)
    busy = [0] * used
    i = 0
    descriptors = 0
    for ch in range(used):
        share = n // used + (1 if ch < n % used else 0)
        for b in sizes[i:i + share]:
            d = -(-b // e.descriptor_bytes)
            descriptors += d
            busy[ch] += d * e.channel_descriptor_ns + _t(b, e.channel_page_ns, page_size)
        i += share
    total = (e.submit_ns + descriptors * e.descriptor_ns
             + max(max(busy), _t(sum(sizes), e.device_page_ns, page_size)) + e.completion_ns)
    return [0] * n, [total] * n, total


class ReferencePlanner:
    """Plans every call of a pre-pass that has seen the whole trace."""

    def __init__(self, pre: PrePass, profile: Profile, policy: str,
                 stores: Sequence[tuple[int, int]] = ()) -> None:
        self.pre, self.profile, self.policy = pre, profile, policy
        self.stores = sorted(stores)  # (ts_ns, page) of every store of the trace
        self.cfg = profile.policy["batched" if policy == "batched-copy" else policy]
        self.page_size = pre.machine.page_size
        self.copy_ns = copy_batch(profile, self.page_size, [self.page_size])[2]  # a page alone
        self.m, self.f = profile.migrate, profile.flush
        self.rng = np.random.default_rng(profile.migrate.seed)
        n = pre.n_pages
        self.node = [int(x) for x in pre.page_node]
        self.busy_until = [0] * n  # remap of the page's last migration
        self.page_of = {(int(pre.page_pid[p]), int(pre.page_vpn[p])): p for p in range(n)}
        self.order = [int(x) for x in pre.page_order]
        self.pmd = pre.machine.page_shift - 3
        self.mask_ids: dict[tuple[bool, ...], int] = {}
        self.n_rounds = self.n_batches = 0
        self.calls = self.skipped_busy = self.skipped_on_dst = self.absent_pages = 0
        self.maps: dict[int, int] = {}  # mappings of each folio of the call being planned
        self.off: dict[int, tuple[int, int]] = {}  # its time off the CPU: before unmap, move

    # -- calls -------------------------------------------------------------------------

    def plans(self) -> list[Plan]:
        calls = self.pre.calls
        waiting: dict[int, list[int]] = {}
        for i in range(len(calls)):
            waiting.setdefault(calls.cpu[i], []).append(i)
        free: dict[int, int] = {}
        out = []
        while any(waiting.values()):
            queued = self.m.call_start == "queued"
            start, _, i = min((max(calls.ts_ns[q[0]], free.get(cpu, 0) if queued else 0),
                               calls.ts_ns[q[0]], q[0])
                              for cpu, q in waiting.items() if q)
            waiting[calls.cpu[i]].pop(0)
            pages = self.call_pages(i, start)
            if not pages:
                continue
            self.call = {"req_id": calls.req_id[i], "cpu": calls.cpu[i],
                         "pid_index": calls.pid_index[i], "dst": calls.dst_node[i],
                         "is_async": calls.is_async[i]}
            self.rounds: list[dict[str, Any]] = []
            self.rows: list[dict[str, Any]] = []
            self.batches: list[dict[str, Any]] = []
            if self.policy == "serial":
                end = self.serial(pages, start)
            elif self.policy == "transactional":
                end = self.transactional(pages, start)
            else:
                end = self.batched(pages, start)
            free[calls.cpu[i]] = end
            self.calls += 1
            out.append(Plan(start, end, self.rounds, self.rows, self.batches))
        return out

    # -- folios ------------------------------------------------------------------------

    def size(self, folio: int) -> int:
        """Base pages of the folio whose first page is ``folio``."""
        return 1 << self.order[folio]

    def head(self, page: int) -> int:
        return page - int(self.pre.page_vpn[page]) % self.size(page)

    def copy_alone(self, folio: int) -> int:
        """ns to copy the folio by itself."""
        return copy_batch(self.profile, self.page_size, [self.page_size * self.size(folio)])[2]

    def translations(self, folio: int) -> list[int]:
        if self.order[folio] == self.pmd:
            return [folio]
        return list(range(folio, folio + self.size(folio)))

    def call_pages(self, i: int, start: int) -> list[int]:
        pre, calls = self.pre, self.pre.calls
        pid_index, src, dst = calls.pid_index[i], calls.src_node[i], calls.dst_node[i]
        self.maps = {}  # a whole-node call's folios: one mapping each
        self.off = {}  # and no time off the CPU

        def exists(page: int) -> bool:
            return int(pre.page_first_ns[page]) <= start

        if src >= 0:
            if src == dst:
                return []
            mine = [p for p in range(pre.n_pages) if int(pre.page_pid[p]) == pid_index
                    and exists(p) and self.node[p] == src and self.head(p) == p]
            mine.sort(key=lambda p: int(pre.page_vpn[p]))  # the address space, walked in order
            pages = []
            for p in mine:
                if self.busy_until[p] > start:
                    self.skipped_busy += 1
                else:
                    pages.append(p)
            return pages
        pages, seen, heads = [], set(), set()
        for vpn, k, (off_u, off_m) in zip(calls.pages_vpn(i).tolist(),
                                          calls.pages_mappings(i).tolist(),
                                          calls.pages_off_cpu(i).tolist(), strict=True):
            if vpn in seen:
                continue  # a page listed twice moves once
            seen.add(vpn)
            p = self.page_of.get((pid_index, vpn))
            if p is None or not exists(p):
                self.absent_pages += 1
                continue
            p = self.head(p)
            if p in heads:
                continue  # so does a folio named by two of its pages
            heads.add(p)
            self.maps[p] = k
            self.off[p] = (off_u, off_m)
            if self.node[p] == dst:
                self.skipped_on_dst += 1
            elif self.busy_until[p] > start:
                self.skipped_busy += 1
            else:
                pages.append(p)
        return pages

    # -- steps -------------------------------------------------------------------------

    def attempt(self, page: int, attempts: dict[int, int], phases: dict[str, int]) -> bool:
        """One attempt at ``page`` (``other_ns``, counted by the caller's clock): True if it
        finds the page busy."""
        attempts[page] += 1
        phases["other"] += self.m.other_ns
        p = self.m.fail_probability
        return p > 0 and self.rng.random() < p

    def mask(self, t: int) -> tuple[bool, ...]:
        m = self.pre.mask(self.call["pid_index"], t, self.f.mm_cpumask, self.f.mm_cpumask_window_ns)
        return tuple(bool(x) for x in m)

    def flush_round(self, mask: tuple[bool, ...], ts: int, folios: list[int], batch_id: int) -> tuple[int, int]:
        """Record a flush round of the ``folios`` starting at ``ts``; returns (its gid, its
        cost)."""
        f = self.f
        pages = [q for folio in folios for q in self.translations(folio)]
        n = sum(self.size(folio) for folio in folios)
        local = mask[self.call["cpu"]]
        targets = sum(mask) - int(local)
        own = self.profile.mechanisms[f.mechanism]
        broadcast = f.mechanism == "tlbi" or (f.mechanism == "invlpgb" and sum(mask) >= own.min_cpus)
        if broadcast:
            full = False
            wait = own.dsb_ns if f.mechanism == "tlbi" else own.tlbsync_ns
            cost = own.page_ns * n + wait
            targets = 0
        else:
            full = n > f.ceiling_pages
            cost = (f.full_flush_ns if full else f.invlpg_ns * n) if local else 0
            if targets:
                cost += f.ipi_initiator_ns + f.ipi_extra_target_ns * (targets - 1)
        if mask not in self.mask_ids:
            self.mask_ids[mask] = len(self.mask_ids)
        gid = self.n_rounds
        self.n_rounds += 1
        self.rounds.append({
            "ts_ns": ts, "end_ns": ts + cost, "cost_ns": cost, "cpu": self.call["cpu"],
            "pid_index": self.call["pid_index"], "req_id": self.call["req_id"],
            "batch_id": batch_id, "pages": -1 if full else len(pages), "n_pages": len(pages),
            "gid": gid,
            "targets": targets, "full": full, "mask_id": self.mask_ids[mask],
            "page_list": list(pages), "broadcast": broadcast,
        })
        return gid, cost

    def moved(self, page: int, batch_id: int, pos: int, unmap: int, flush: int, copy_start: int,
              round_gid: int, attempts: int, copy_end: int | None = None,
              remap: int | None = None) -> int:
        """Record a page copied from ``copy_start`` and remapped; returns its remap time. By
        default the page is copied alone and remapped at once."""
        if copy_end is None:
            copy_end = copy_start + self.copy_alone(page)
        if remap is None:
            remap = copy_end + self.remap(page)
        self.rows.append({
            "page": page, "req_id": self.call["req_id"], "batch_id": batch_id,
            "cpu": self.call["cpu"], "pos": pos, "src_node": self.node[page],
            "dst_node": self.call["dst"], "unmap_ns": unmap, "flush_ns": flush,
            "copy_start_ns": copy_start, "copy_end_ns": copy_end, "remap_ns": remap,
            "round": round_gid, "status": MIGRATED, "attempts": attempts,
            "pages": self.size(page), "span": len(self.translations(page)),
        })
        self.node[page] = self.call["dst"]
        self.busy_until[page] = remap
        return remap

    def given_up(self, page: int, batch_id: int, attempts: int) -> None:
        self.rows.append({
            "page": page, "req_id": self.call["req_id"], "batch_id": batch_id,
            "cpu": self.call["cpu"], "pos": -1, "src_node": self.node[page],
            "dst_node": self.call["dst"], "unmap_ns": -1, "flush_ns": -1, "copy_start_ns": -1,
            "copy_end_ns": -1, "remap_ns": -1, "round": -1, "status": FAILED,
            "attempts": attempts, "pages": self.size(page),
            "span": len(self.translations(page)),
        })

    def batch(self, batch_id: int, kind: str, folios: list[int], moved: list[int], start: int,
              end: int, phases: dict[str, int]) -> None:
        assert sum(phases.values()) == end - start
        pages = sum(self.size(f) for f in folios)
        nr_succeeded = sum(self.size(f) for f in moved)
        self.batches.append({
            "batch_id": batch_id, "req_id": self.call["req_id"], "cpu": self.call["cpu"],
            "pid_index": self.call["pid_index"], "kind": kind,
            "mode": "async" if self.call["is_async"] else "sync", "pages": pages,
            "nr_succeeded": nr_succeeded, "nr_failed": pages - nr_succeeded, "start_ns": start,
            "end_ns": end, "unmap_ns": phases["unmap"], "flush_ns": phases["flush"],
            "copy_ns": phases["copy"], "remap_ns": phases["remap"], "other_ns": phases["other"],
            "folios": len(folios),
        })

    def unmap(self, folio: int) -> int:
        """ns to unmap every mapping of the folio."""
        return self.m.unmap_ns * self.maps.get(folio, 1)

    def remap(self, folio: int) -> int:
        """ns to remap every mapping of the folio."""
        return self.m.remap_ns * self.maps.get(folio, 1)

    def off_unmap(self, folio: int) -> int:
        """ns its task was off the CPU just before the folio's unmap."""
        return self.off.get(folio, (0, 0))[0]

    def off_move(self, folio: int) -> int:
        """ns its task was off the CPU just before the folio's move."""
        return self.off.get(folio, (0, 0))[1]

    def new_batch(self) -> int:
        self.n_batches += 1
        return self.n_batches - 1

    def one_by_one(self, pages: list[int], batch_id: int, passes: int, sample: int,
                   tried: int, t: int, phases: dict[str, int]) -> tuple[int, list[int], list[int]]:
        """unmap_and_move() of each folio, pass after pass: other, unmap, a round for its
        translations at once, copy, remap. Returns the end time, the folios still busy and
        those moved."""
        m = self.m
        attempts = dict.fromkeys(pages, tried)
        moved: list[int] = []
        for _ in range(passes):
            if not pages:
                break
            still = []
            held = 0  # base pages tried since mm_cpumask was last read
            for page in pages:
                if held == 0:
                    mask = self.mask(t)
                held += self.size(page)
                if held >= sample:
                    held = 0
                t += m.other_ns
                if self.attempt(page, attempts, phases):
                    still.append(page)
                    continue
                unmap = t + self.off_unmap(page) + self.unmap(page)
                gid, cost = self.flush_round(mask, unmap, [page], batch_id)
                flush = unmap + cost
                t = self.moved(page, batch_id, len(moved), unmap, flush,
                               flush + self.off_move(page), gid, attempts[page])
                moved.append(page)
                for phase, ns in (("unmap", self.unmap(page)), ("flush", cost),
                                  ("copy", self.copy_alone(page)), ("remap", self.remap(page)),
                                  ("other", self.off_unmap(page) + self.off_move(page))):
                    phases[phase] += ns
            pages = still
        return t, pages, moved

    # -- policies ----------------------------------------------------------------------

    def transactional(self, pages: list[int], start: int) -> int:
        m = self.m
        batch_id = self.new_batch()
        phases = dict.fromkeys(("unmap", "flush", "copy", "remap", "other"), 0)
        t, pos = start, 0
        moved: list[int] = []
        for page in pages:
            mine = range(page, page + self.size(page))  # the folio's pages
            copy = self.copy_alone(page)
            for attempt in range(1, self.cfg.retries + 2):
                off_u, off_m = ((self.off_unmap(page), self.off_move(page)) if attempt == 1
                                else (0, 0))
                copy_start = t + m.other_ns + off_m
                unmap = copy_start + copy + off_u + self.unmap(page)
                gid, cost = self.flush_round(self.mask(unmap), unmap, [page], batch_id)
                remap = unmap + cost + self.remap(page)
                dirty = any(p in mine and copy_start <= ts < unmap for ts, p in self.stores)
                self.rows.append({
                    "page": page, "req_id": self.call["req_id"], "batch_id": batch_id,
                    "cpu": self.call["cpu"], "pos": pos, "src_node": self.node[page],
                    "dst_node": self.call["dst"], "unmap_ns": unmap, "flush_ns": unmap + cost,
                    "copy_start_ns": copy_start, "copy_end_ns": copy_start + copy,
                    "remap_ns": remap, "round": gid, "status": ABORTED if dirty else MIGRATED,
                    "attempts": attempt, "pages": self.size(page),
                    "span": len(self.translations(page)),
                })
                pos += 1
                t = remap
                for phase, ns in (("other", m.other_ns + off_u + off_m), ("copy", copy),
                                  ("unmap", self.unmap(page)), ("flush", cost),
                                  ("remap", self.remap(page))):
                    phases[phase] += ns
                self.busy_until[page] = max(self.busy_until[page], remap)
                if not dirty:
                    self.node[page] = self.call["dst"]
                    moved.append(page)
                    break
        self.batch(batch_id, "transactional", pages, moved, start, t, phases)
        return t

    def serial(self, pages: list[int], start: int) -> int:
        batch_id = self.new_batch()
        phases = dict.fromkeys(("unmap", "flush", "copy", "remap", "other"), 0)
        end, left, moved = self.one_by_one(pages, batch_id, self.cfg.passes,
                                           self.cfg.mm_cpumask_sample_pages, 0, start, phases)
        for page in left:
            self.given_up(page, batch_id, self.cfg.passes)
        self.batch(batch_id, "serial", pages, moved, start, end, phases)
        return end

    def batched(self, pages: list[int], start: int) -> int:
        cfg, m = self.cfg, self.m
        t = start
        lo = 0
        while lo < len(pages):
            # migrate_pages(): folios join the chunk until it holds batch_pages pages or more.
            chunk, held = [], 0
            while lo < len(pages) and held < cfg.batch_pages:
                chunk.append(pages[lo])
                held += self.size(pages[lo])
                lo += 1
            batch_id = self.new_batch()
            chunk_start = t
            phases = dict.fromkeys(("unmap", "flush", "copy", "remap", "other"), 0)
            mask = self.mask(t)
            deferred = sum(mask) - int(mask[self.call["cpu"]]) > 0 or self.f.mechanism == "tlbi"
            passes = cfg.passes if self.call["is_async"] else cfg.async_passes
            attempts = dict.fromkeys(chunk, 0)
            unmapped: list[tuple[int, int, int, int]] = []  # page, unmap, flush, round
            remaining = chunk
            for _ in range(passes):
                if not remaining:
                    break
                still = []
                for page in remaining:
                    t += m.other_ns
                    if self.attempt(page, attempts, phases):
                        still.append(page)
                        continue
                    t += self.off_unmap(page) + self.unmap(page)
                    phases["unmap"] += self.unmap(page)
                    phases["other"] += self.off_unmap(page)
                    if deferred:
                        unmapped.append((page, t, -1, -1))
                    else:
                        # Nobody else can hold the translation: the PTE is flushed at once.
                        gid, cost = self.flush_round(mask, t, [page], batch_id)
                        unmapped.append((page, t, t + cost, gid))
                        t += cost
                        phases["flush"] += cost
                remaining = still
            if deferred and unmapped:
                # try_to_unmap_flush(): one round for every page the chunk unmapped.
                gid, cost = self.flush_round(mask, t, [u[0] for u in unmapped], batch_id)
                t += cost
                phases["flush"] += cost
                unmapped = [(page, unmap, t, gid) for page, unmap, _, _ in unmapped]
            if self.policy == "batched-copy":
                # Every page of the chunk copied together, then each remapped.
                starts, ends, total = copy_batch(self.profile, self.page_size,
                                                 [self.page_size * self.size(u[0]) for u in unmapped])
                copied = t
                t += total
                phases["copy"] += total
                for pos, (page, unmap, flush, gid) in enumerate(unmapped):
                    t += self.off_move(page) + self.remap(page)
                    phases["other"] += self.off_move(page)
                    self.moved(page, batch_id, pos, unmap, flush, copied + starts[pos], gid,
                               attempts[page], copy_end=copied + ends[pos], remap=t)
                    phases["remap"] += self.remap(page)
            else:
                for pos, (page, unmap, flush, gid) in enumerate(unmapped):
                    t = self.moved(page, batch_id, pos, unmap, flush, t + self.off_move(page),
                                   gid, attempts[page])
                    phases["other"] += self.off_move(page)
                    phases["copy"] += self.copy_alone(page)
                    phases["remap"] += self.remap(page)
            self.batch(batch_id, "batch", chunk, [u[0] for u in unmapped], chunk_start, t,
                       phases)
            if self.call["is_async"]:
                for page in remaining:
                    self.given_up(page, batch_id, passes)
                continue
            for page in remaining:
                # The sync fallback: the page alone, flushed at once, like serial.
                retry_id = self.new_batch()
                retry_start = t
                phases = dict.fromkeys(("unmap", "flush", "copy", "remap", "other"), 0)
                t, left, moved = self.one_by_one([page], retry_id, cfg.sync_passes, 1,
                                                 cfg.async_passes, t, phases)
                if left:
                    self.given_up(page, retry_id, cfg.async_passes + cfg.sync_passes)
                self.batch(retry_id, "sync_retry", [page], moved, retry_start, t, phases)
        return t

    # -- what the planner also reports ------------------------------------------------------

    def masks(self) -> np.ndarray:
        """The mm_cpumasks the rounds used, in order of first use (uint8 [masks, cpus]); one
        empty mask when there were none."""
        if not self.mask_ids:
            return np.zeros((1, self.pre.machine.cpus), np.uint8)
        return np.array(list(self.mask_ids), np.uint8)
