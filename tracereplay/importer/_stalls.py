"""Measured stalls and page owners: user page faults matched to migration windows.

No tracepoint says "this thread waited on a migration entry", but a capture that records
``exceptions:page_fault_user`` besides ``migrate:*`` shows it: ``set_migration_pte`` replaces a
page's PTE by a migration entry, a thread that touches the page then faults and sleeps in
``migration_entry_wait()`` until ``remove_migration_pte`` installs the new PTE and the old page
is unlocked (mm/migrate.c). So a fault on a page inside its window [unmap_ns, remap_ns] is a
stall, and ``remap_ns - ts_ns`` is a lower bound of its length: the thread wakes after the
remap (it still has to be scheduled and retry the access).

Windows are keyed by the virtual page alone: the migration tracepoints name the migrating task,
not the page's process. A fault inside several windows of the same page number (the page, or
pages of other processes at the same address, unmapped more than once) stalls until the first
of their remaps, the lower bound again.

The owner of a migrated page is the process that faulted on its address (the migrating task is
often another one: ``kcompactd``, a shell writing ``compact_memory``, ``migratepages``):

1. the one process whose faults fall inside the page's window, if exactly one does;
2. else the one process that faulted on that page number anywhere in the capture, if exactly one
   did;
3. else unknown (null): no fault, or faults by several processes (shared or forked mappings at
   the same address).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa


def measured_stalls(faults: pa.Table, migrations: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(migrations with ``pid`` set to each page's owner where unambiguous, stall rows).

    ``faults`` and ``migrations`` are the measured tables; the stall rows carry the ``stalls``
    columns, in fault order (time, then input line).
    """
    con = duckdb.connect()
    try:
        con.register("faults", faults)
        con.register("mig_in", migrations)
        con.execute("create temp table mig as select *, row_number() over () as _row from mig_in")
        con.execute(_INSIDE)
        stalls = con.sql(_STALLS).to_arrow_table()
        owners = con.sql(_OWNERS).to_arrow_table()
    finally:
        con.close()
    return owners.select(migrations.column_names).cast(migrations.schema), stalls


# Every (fault, window) pair with the fault inside the window.
_INSIDE = """
create temp table inside as
select f.ts_ns, f.cpu, f.pid, f.vpn, f.line, m._row, m.remap_ns, m.batch_id, m.req_id
from faults f join mig m
  on f.vpn = m.vpn and f.ts_ns between m.unmap_ns and m.remap_ns
where m.status = 'migrated'
"""

# One stall per fault: the window that closes first.
_STALLS = """
select ts_ns, cpu, pid, vpn, remap_ns - ts_ns as stall_ns, batch_id, req_id
from inside
qualify row_number() over (partition by line order by remap_ns, _row) = 1
order by ts_ns, line
"""

_OWNERS = """
with in_window as (
  select _row, min(pid) as pid from inside group by _row having count(distinct pid) = 1
), by_page as (
  select vpn, min(pid) as pid from faults group by vpn having count(distinct pid) = 1
)
select m.* exclude (pid, _row), coalesce(w.pid, p.pid) as pid
from mig m
left join in_window w on w._row = m._row
left join by_page p on p.vpn = m.vpn
order by m._row
"""
