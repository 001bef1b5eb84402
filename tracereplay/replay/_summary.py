"""The headline numbers of one policy's run directory."""

from __future__ import annotations

import os
from typing import Any

_SUMMARY_SQL = """
with m as (select * from read_parquet('{d}/migrations.parquet')),
     f as (select * from read_parquet('{d}/flushes.parquet')),
     b as (select * from read_parquet('{d}/batches.parquet')),
     s as (select * from read_parquet('{d}/stalls.parquet')),
     c as (select * from read_parquet('{d}/cpu_stats.parquet')),
     mm as (select count(*) filter (status = 'migrated') as migrated,
                   count(*) filter (status <> 'migrated') as failed,
                   quantile_disc(remap_ns - unmap_ns, 0.5) as window_p50,
                   max(remap_ns - unmap_ns) as window_max from m),
     ff as (select count(*) as rounds, coalesce(sum(targets), 0) as ipis,
                   coalesce(sum(targets_holding), 0) as holding from f),
     bb as (select count(*) as batches, coalesce(sum(unmap_ns), 0) as unmap,
                   coalesce(sum(flush_ns), 0) as flush, coalesce(sum(copy_ns), 0) as copy,
                   coalesce(sum(remap_ns), 0) as remap, coalesce(sum(other_ns), 0) as other from b),
     ss as (select count(*) as stalled, quantile_disc(stall_ns, 0.5) as p50,
                   quantile_disc(stall_ns, 0.99) as p99, max(stall_ns) as mx from s),
     cc as (select sum(accesses) as accesses, sum(l1_hits) as l1, sum(l2_hits) as l2,
                   sum(stale_hits) as stale, sum(remote_accesses) as remote from c)
select * from mm, ff, bb, ss, cc
"""


def summarise(policy_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The headline numbers of one policy's run directory (what ``tracereplay replay`` prints),
    computed by DuckDB over its event tables."""
    import duckdb

    con = duckdb.connect()
    try:
        cur = con.execute(_SUMMARY_SQL.format(d=str(policy_dir).replace("'", "''")))
        names = [d[0] for d in cur.description]
        row = dict(zip(names, cur.fetchone() or (), strict=True))
    finally:
        con.close()

    def num(key: str) -> int:
        return int(row[key] or 0)

    migrated = num("migrated")
    busy = sum(num(k) for k in ("unmap", "flush", "copy", "remap", "other"))
    accesses = num("accesses")
    opt = {k: (None if row[k] is None else int(row[k])) for k in ("window_p50", "window_max", "p50", "p99", "mx")}
    return {
        "pages_migrated": migrated,
        "pages_failed": num("failed"),
        "batches": num("batches"),
        "flush_rounds": num("rounds"),
        "ipis_sent": num("ipis"),
        "ipis_holding": num("holding"),
        "ipis_per_1000_pages": (1000 * num("ipis") / migrated) if migrated else None,
        "migration_ns": busy,
        "pages_per_s": (migrated * 1e9 / busy) if busy else None,
        **{f"{k}_share": (num(k) / busy if busy else None)
           for k in ("unmap", "flush", "copy", "remap", "other")},
        "window_p50_ns": opt["window_p50"],
        "window_max_ns": opt["window_max"],
        "stalled_accesses": num("stalled"),
        "stall_p50_ns": opt["p50"],
        "stall_p99_ns": opt["p99"],
        "stall_max_ns": opt["mx"],
        "accesses": accesses,
        "l1_hit_rate": num("l1") / accesses if accesses else None,
        "l2_hit_rate": num("l2") / accesses if accesses else None,
        "stale_hits": num("stale"),
        "remote_accesses": num("remote"),
    }
