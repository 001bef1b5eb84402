"""The model's ``move_pages()`` throughput from the cost functions alone: GB/s for moving
``total_bytes`` of folios of one size from one node to the other, as Shivank Garg's benchmark
does (one process, one thread, one ``move_pages()`` call; "Accelerate page migration with batch
copying and hardware offload", linux-mm, 8 May 2026).

It lays the call out as the policies do (docs/model.md), in closed form, without a trace: the
folios in chunks of ``batch_pages`` base pages (a folio that crosses the limit stays in its
chunk, so a chunk holds at least one folio); the benchmark's process runs only on the migrating
CPU, so no other CPU is in mm_cpumask and each folio is flushed locally as it is unmapped, with
no IPIs: one range of its pages in 4 KiB strides, ``flush.invlpg_ns`` a page up to
``flush.ceiling_pages`` and ``flush.full_flush_ns`` above (a 2 MiB folio counts 512). Per folio
one attempt (``migrate.other_ns``), one unmap and one remap. The copy: ``batched`` copies each
folio by itself with the engine between flush and remap; ``batched-copy`` copies the chunk's
folios together. Busy pages are not modelled here (the benchmark's pages are private).
``tests/test_copy.py`` checks that replays of ``tracereplay generate move-pages`` traces take
exactly this time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.config import Profile, replace
from tracereplay.copy import Copier

GIB = 1 << 30


def move_ns(profile: Profile, *, folio_bytes: int, total_bytes: int = GIB,
            batch_pages: int | None = None, batch_copy: bool = True) -> int:
    """Model time of moving ``total_bytes`` of ``folio_bytes`` folios in one call, ns."""
    page = profile.machine.page_size
    if folio_bytes % page or total_bytes % folio_bytes:
        raise ValueError(f"folios of {folio_bytes} bytes do not tile {total_bytes} bytes of "
                         f"{page}-byte pages")
    pages = folio_bytes // page
    n = total_bytes // folio_bytes
    batch = profile.policy["batched"].batch_pages if batch_pages is None else batch_pages
    per_chunk = max(1, -(-batch // pages))  # folios until the chunk reaches batch pages
    m, f = profile.migrate, profile.flush
    flush = f.full_flush_ns if pages > f.ceiling_pages else f.invlpg_ns * pages
    per_folio = m.other_ns + m.unmap_ns + flush + m.remap_ns
    copier = Copier(profile, page)
    full, rest = divmod(n, per_chunk)

    def chunk_copy(k: int) -> int:
        if batch_copy:
            return copier.batch(np.full(k, folio_bytes, np.int64)).total_ns
        return k * copier.alone(folio_bytes)

    copy = full * chunk_copy(per_chunk) + (chunk_copy(rest) if rest else 0)
    return n * per_folio + copy


def move_gbps(profile: Profile, *, folio_bytes: int, total_bytes: int = GIB,
              batch_pages: int | None = None, batch_copy: bool = True) -> float:
    """GB/s (10^9 bytes a second) of :func:`move_ns`."""
    return total_bytes / move_ns(profile, folio_bytes=folio_bytes, total_bytes=total_bytes,
                                 batch_pages=batch_pages, batch_copy=batch_copy)


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the throughput table: a label, how it is replayed, GB/s per folio size."""

    label: str
    engine: str
    count: int  # threads or channels (0 for the cpu engine)
    policy: str
    gbps: tuple[float, ...]


FOLIO_KIB = (4, 16, 64, 256, 1024, 2048)  # the sizes of the published table


def table(profile: Profile, *, batch_pages: int | None = None,
          channels: tuple[int, ...] = (1, 2, 4, 16),
          threads: tuple[int, ...] = (1, 4, 8, 16)) -> list[Row]:
    """The model's GB/s for each folio size of the published table: the CPU engine with
    ``batched`` (the vanilla kernel), DMA with each channel count and mt with each thread
    count with ``batched-copy`` (the series)."""
    runs = [("vanilla, cpu engine", "cpu", 0, "batched")]
    runs += [(f"dma, {c} channel{'s' * (c > 1)}", "dma", c, "batched-copy") for c in channels]
    runs += [(f"mt, {t} thread{'s' * (t > 1)}", "mt", t, "batched-copy") for t in threads]
    rows = []
    for label, engine, count, policy in runs:
        changes: dict[str, object] = {"copy__engine": engine}
        if engine == "dma":
            changes["copy__channels"] = count
        if engine == "mt":
            changes["copy__threads"] = count
        p = replace(profile, **changes)
        gbps = tuple(move_gbps(p, folio_bytes=kib * 1024, batch_pages=batch_pages,
                               batch_copy=policy == "batched-copy") for kib in FOLIO_KIB)
        rows.append(Row(label, engine, count, policy, gbps))
    return rows
