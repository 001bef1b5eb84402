"""A measured run (``policy=measured``) as a trace v1 that ``tracereplay replay`` can run.

- every user page fault is an ``access`` row: its time, CPU, process, address, and a store when
  the error code says so;
- every complete ``mm_migrate_pages`` call is a request (``req_id``) of ``migrate`` rows at the
  call's start, on the CPU that ran it: one per physical page it unmapped (the pfn of its
  migration entries), with ``mappings`` = the ``set_migration_pte`` lines of that page in the
  call (one per PTE: the rmap walk visits each), and one per page it moved without unmapping
  any PTE (``mappings`` 0). A request is one address space (trace v1, as
  ``move_pages(2)``): that of the process owning most of the call's pages whose owner is known
  (see ``_stalls``), else the migrating task's; a page of another owner in the same call is
  put there too, where that owner's faults do not meet it (rare: compaction takes pages by
  physical address, and one pageblock mostly holds one process's pages);
- a ``map`` row at time 0 places each migrated page on ``src_node``.

Pages without a PTE (page cache nobody maps, pages of exited processes …) are moved by the same
calls, cost the same copy and lengthen the windows of the pages after them, but leave no
``set_migration_pte``: ``nr_succeeded`` counts them (72,798 pages against 16,648 PTEs in one
capture). Each becomes a page of its own in the migrating task's address space at an address
above every user address (``UNMAPPED_BASE``), spread evenly among the call's mapped pages (the
tracepoints do not say where in the list they were).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracereplay.errors import ImportFormatError
from tracereplay.importer._trace import write_trace
from tracereplay.machine import Machine

PAGE_SIZE = 4096
# Above the 56-bit user space of 5-level paging, below the trace's 2^57 limit: no real address.
UNMAPPED_BASE = 1 << 56


def write_as_trace(
    run: Path, out: Path, *, src_node: int, dst_node: int, source: Path, machine: Machine | None
) -> dict[str, int]:
    """Write the trace of ``run`` at ``out``; returns its row counts by what they stand for."""
    mig = pl.read_parquet(run / "migrations.parquet")
    calls = pl.read_parquet(run / "batches.parquet").select(
        "req_id", "start_ns", "nr_succeeded", call_cpu="cpu", call_pid="pid", call_mode="mode"
    )
    faults_path = run / "faults.parquet"
    faults = pl.read_parquet(faults_path) if faults_path.exists() else None
    mig = mig.filter(pl.col("req_id").is_not_null())
    # A request is one address space (as a move_pages(2) call is): the process owning most of
    # the call's pages whose owner is known, else the migrating task.
    owner = (
        mig.filter(pl.col("pid").is_not_null())
        .group_by("req_id", "pid")
        .agg(n=pl.len())
        .sort(["req_id", "n", "pid"], descending=[False, True, False])
        .unique(subset="req_id", keep="first")
        .select("req_id", owner="pid")
    )
    calls = calls.join(owner, on="req_id", how="left").with_columns(
        call_pid=pl.coalesce("owner", "call_pid")
    )
    # A page mapped by several processes (shared libraries, forks) is unmapped once per
    # mapping, each at its own address: one call of the capture of docs/importing.md unmapped
    # 4,447 PTEs of 408 physical pages. The migration entry names the physical page (pfn), so
    # a page is a pfn of the call (a row without one is a page of its own), written once with
    # its mappings: the set_migration_pte lines of that pfn in the call, each an rmap step.
    mapped = (
        mig.join(calls, on="req_id", how="inner")
        .with_columns(
            known=pl.col("pid").is_not_null(),
            unmap_order=pl.int_range(pl.len()),
            page=pl.coalesce(pl.col("pfn"), -1 - pl.col("vpn")),
        )
        # the address a page is written at: one faulted on (known owner) first, then the
        # first unmapped; its place in the call: its first unmap
        .sort(["req_id", "page", "known", "unmap_order"], descending=[False, False, True, False])
        .group_by("req_id", "page", maintain_order=True)
        .agg(
            pl.col("vpn"), pl.first("known"), pl.first("call_pid"), pl.first("nr_succeeded"),
            mappings=pl.len().cast(pl.Int32), unmap_order=pl.min("unmap_order"),
        )
    )
    mapped = _distinct_addresses(mapped)
    named = mapped.height
    # A call moves nr_succeeded pages; should it name more (a capture cut short), it keeps
    # that many: those with a known owner first (the ones faulted on), then in unmap order.
    mapped = (
        mapped.sort(["req_id", "known", "unmap_order"], descending=[False, True, False])
        .filter(pl.int_range(pl.len()).over("req_id") < pl.col("nr_succeeded").fill_null(0))
        .sort("unmap_order")
        .with_columns(pid=pl.col("call_pid"), vaddr=pl.col("vpn").cast(pl.UInt64) * PAGE_SIZE)
    )
    per_call = mapped.group_by("req_id").agg(n_mapped=pl.len())
    calls = calls.join(per_call, on="req_id", how="left").with_columns(
        n_unmapped=(pl.col("nr_succeeded").fill_null(0) - pl.col("n_mapped").fill_null(0)).clip(0)
    )
    n_unmapped = calls["n_unmapped"].sum()
    unmapped = (
        calls.filter(pl.col("n_unmapped") > 0)
        .select(pl.all().repeat_by("n_unmapped").explode())
        .with_columns(k=pl.int_range(pl.len()).over("req_id"))
        .with_columns(
            pid=pl.col("call_pid"),
            vaddr=(pl.int_range(pl.len(), dtype=pl.UInt64) * PAGE_SIZE + UNMAPPED_BASE),
            # spread evenly among the mapped pages of the call
            order=(pl.col("k") + 0.5) / pl.col("n_unmapped"),
        )
    )
    mapped = mapped.with_columns(
        order=(pl.int_range(pl.len()).over("req_id") + 0.5) / pl.len().over("req_id")
    )
    cols = ["req_id", "start_ns", "call_cpu", "call_mode", "pid", "vaddr", "order", "mappings"]
    unmapped = unmapped.with_columns(mappings=pl.lit(0, pl.Int32))  # no PTE maps them
    mapped = mapped.join(calls.select("req_id", "start_ns", "call_cpu", "call_mode"),
                         on="req_id", how="left")
    rows = pl.concat([mapped.select(cols), unmapped.select(cols)]).sort(
        ["start_ns", "req_id", "order"], maintain_order=True
    )
    if not rows.height:
        raise ImportFormatError(
            f"{source}: --as-trace: no complete mm_migrate_pages call that moved a page, so "
            "there is no migration to write"
        )
    maps = rows.unique(subset=["pid", "vaddr"], keep="first", maintain_order=True).select(
        ts_ns=pl.lit(0, pl.Int64),
        kind=pl.lit("map"),
        pid=pl.col("pid"),
        vaddr=pl.col("vaddr"),
        dst_node=pl.lit(src_node, pl.Int32),
    )
    gaps = _gaps(run)
    off_cpu = _off_cpu_columns(gaps, mig, mapped)
    if off_cpu is not None:
        rows = rows.join(off_cpu, on=["req_id", "vaddr"], how="left", maintain_order="left")
    extra = [] if off_cpu is None else ["off_cpu_unmap_ns", "off_cpu_move_ns"]
    migrates = rows.select(
        *extra,
        ts_ns=pl.col("start_ns"),
        kind=pl.lit("migrate"),
        cpu=pl.col("call_cpu"),
        pid=pl.col("pid"),
        vaddr=pl.col("vaddr"),
        dst_node=pl.lit(dst_node, pl.Int32),
        req_id=pl.col("req_id"),
        mappings=pl.col("mappings"),
        mode=pl.when(pl.col("call_mode") == "MIGRATE_ASYNC")
        .then(pl.lit("async"))
        .otherwise(pl.lit("sync")),
    )
    parts = [maps, migrates]
    if faults is not None and faults.height:
        parts.append(faults.select(
            "ts_ns", kind=pl.lit("access"), cpu="cpu", pid="pid", vaddr="address", write="write",
        ))  # fmt: skip
    table = pl.concat(parts, how="diagonal_relaxed").sort("ts_ns", maintain_order=True)
    write_trace(table.to_arrow(), out, extra={"tracereplay.source": str(source)},
                machine=machine)  # fmt: skip
    return {
        "accesses": faults.height if faults is not None else 0,
        "migrate_rows": migrates.height,
        "pages_without_pte": int(n_unmapped or 0),
        "pages_with_pte": mapped.height,
        "ptes": int(mapped["mappings"].sum() or 0),
        "pages_beyond_nr_succeeded": named - mapped.height,
        "maps": maps.height,
        **_off_cpu_counts(gaps, off_cpu),
    }


def _distinct_addresses(pages: pl.DataFrame) -> pl.DataFrame:
    """One address (``vpn``) for each page of a call, from its list of addresses, none taken
    twice in a call (two processes forked from one map different pages at one address): the
    pages with fewer addresses choose first (then in unmap order), each its first address not
    taken; a page left without one gets an address above user space, as a page without a PTE
    does."""
    first = pages.with_columns(vpn=pl.col("vpn").list.first())
    taken = first.select("req_id", "vpn").is_duplicated()
    if not taken.any():
        return first
    used: dict[int, set[int]] = {}
    out = [0] * pages.height
    spare = (UNMAPPED_BASE >> 12) + (1 << 40)  # beyond the addresses of pages without a PTE
    rows = pages.select("req_id", "vpn", "unmap_order").rows()
    for i in sorted(range(len(rows)), key=lambda i: (len(set(rows[i][1])), rows[i][2])):
        req, vpns, _ = rows[i]
        mine = used.setdefault(req, set())
        vpn = next((v for v in vpns if v not in mine), None)
        if vpn is None:
            vpn, spare = spare, spare + 1
        mine.add(vpn)
        out[i] = vpn
    return pages.with_columns(vpn=pl.Series(out, dtype=pl.Int64))


def _gaps(run: Path) -> pl.DataFrame | None:
    path = run / "off_cpu.parquet"
    return pl.read_parquet(path) if path.exists() else None


def _off_cpu_columns(gaps: pl.DataFrame | None, mig: pl.DataFrame, pages: pl.DataFrame
                     ) -> pl.DataFrame | None:
    """``off_cpu_unmap_ns`` and ``off_cpu_move_ns`` of the written pages (``pages``: req_id,
    page, vaddr), from the run's ``off_cpu`` gaps (``gaps``, None without the table); None
    when no gap lands on one of them.

    A gap of stage ``unmap`` goes to the page of the first ``set_migration_pte`` of its call with
    its ``vpn`` at or after its end (the line that ends it, or the task's next such line), one of
    stage ``move`` to that of the first such ``remove_migration_pte``; several on one page add
    up. A gap of stage ``other``, of a call the trace does not have, or on a page it does not
    write (beyond ``nr_succeeded``) goes nowhere: ``_off_cpu_counts`` counts them."""
    if gaps is None or not gaps.height:
        return None
    mig = mig.with_columns(page=pl.coalesce(pl.col("pfn"), -1 - pl.col("vpn")))
    landed = []
    for stage, at in (("unmap", "unmap_ns"), ("move", "remap_ns")):
        g = gaps.filter(pl.col("stage") == stage).select("req_id", "vpn", "end_ns", "dur_ns")
        steps = mig.filter(pl.col(at).is_not_null()).select("req_id", "vpn", "page", at=at)
        landed.append(
            g.sort("end_ns")
            .join_asof(
                steps.sort("at"), left_on="end_ns", right_on="at", by=["req_id", "vpn"],
                strategy="forward", check_sortedness=False,
            )
            .filter(pl.col("page").is_not_null())
            .group_by("req_id", "page")
            .agg(pl.sum("dur_ns").alias(f"off_cpu_{stage}_ns"), pl.len().alias(f"{stage}_gaps"))
        )
    per_page = pages.select("req_id", "page", "vaddr")
    for part in landed:
        per_page = per_page.join(part, on=["req_id", "page"], how="left")
    per_page = per_page.filter(
        pl.col("off_cpu_unmap_ns").is_not_null() | pl.col("off_cpu_move_ns").is_not_null()
    )
    if not per_page.height:
        return None
    return per_page.select(
        "req_id", "vaddr", "off_cpu_unmap_ns", "off_cpu_move_ns",
        gaps=pl.sum_horizontal("unmap_gaps", "move_gaps"),
    )  # fmt: skip


def _off_cpu_counts(gaps: pl.DataFrame | None, written: pl.DataFrame | None
                    ) -> dict[str, int]:
    """The off-CPU gaps the trace carries and those it leaves out: how many, how long (nothing
    for a capture without a gap)."""
    if gaps is None or not gaps.height:
        return {}
    n = gaps.height
    total = int(gaps["dur_ns"].sum())
    kept_n = kept = 0
    if written is not None:
        kept_n = int(written["gaps"].sum())
        kept = int(written.select(pl.sum("off_cpu_unmap_ns") + pl.sum("off_cpu_move_ns")).item())
    return {
        "off_cpu_gaps": kept_n,
        "off_cpu_ns": kept,
        "off_cpu_gaps_dropped": n - kept_n,
        "off_cpu_dropped_ns": total - kept,
    }
