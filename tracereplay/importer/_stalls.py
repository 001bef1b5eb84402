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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from tracereplay.events import table_schema


def measured_stalls(faults: pa.Table, migrations: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(migrations with ``pid`` set to each page's owner where unambiguous, stall rows).

    ``faults`` and ``migrations`` are the measured tables; the stall rows carry the ``stalls``
    columns, in fault order (time, then input line). One compiled pass over the faults and the
    windows of their pages, grouped by page number.
    """
    f_ts = _ints(faults, "ts_ns")
    f_vpn = _ints(faults, "vpn")
    f_pid = _ints(faults, "pid")
    m_vpn = _ints(migrations, "vpn")
    migrated = pc.equal(migrations.column("status"), "migrated").to_numpy(zero_copy_only=False)
    unmap = _ints(migrations, "unmap_ns")
    remap = _ints(migrations, "remap_ns")
    # the faults grouped by page; each migration row's group (-1: no fault on its page)
    fo = np.argsort(f_vpn, kind="stable")
    pages, starts = np.unique(f_vpn[fo], return_index=True)
    # (a hash lookup: the rows are many, the faulted pages few, and the rows' pages unsorted)
    group = pc.index_in(pa.array(m_vpn), value_set=pa.array(pages)).fill_null(-1)
    group = group.to_numpy().astype(np.int64)
    bounds = np.append(starts, len(fo)).astype(np.int64)
    stall_win, owner = _match(f_ts[fo], f_pid[fo], bounds, group, migrated, unmap, remap)
    stall_win[fo] = stall_win.copy()
    hit = np.flatnonzero(stall_win >= 0)
    order = np.lexsort((_ints(faults, "line")[hit], f_ts[hit]))
    hit, win = hit[order], stall_win[hit[order]]
    sel = pa.array(hit)
    wins = pa.array(win)
    stalls = pa.Table.from_arrays(
        [
            faults.column("ts_ns").take(sel),
            faults.column("cpu").take(sel),
            faults.column("pid").take(sel),
            faults.column("vpn").take(sel),
            pa.array(remap[win] - f_ts[hit], pa.int64()),
            migrations.column("batch_id").take(wins),
            migrations.column("req_id").take(wins),
        ],
        schema=table_schema("stalls"),
    )
    pid = migrations.schema.get_field_index("pid")
    owned = migrations.set_column(
        pid, migrations.schema.field(pid), pa.array(owner, pa.int32(), mask=owner == _NONE)
    )
    return owned, stalls


def _ints(table: pa.Table, name: str) -> np.ndarray:
    """Column ``name`` as int64 (0 where null)."""
    col = table.column(name)
    return col.fill_null(0).to_numpy().astype(np.int64, copy=False)


_NONE = -(2**40)  # no pid (pids are int32)
_MANY = -(2**41)  # more than one pid


@njit(cache=True, nogil=True)
def _match(ts, pid, bounds, group, migrated, unmap, remap):
    """(the window each fault stalls in, -1 for none; the owner of each migration row, _NONE
    for none). The faults are grouped by page, ``bounds[g]:bounds[g + 1]`` the faults of group
    ``g`` and ``group[m]`` that of migration row ``m``. A fault's window is the one containing
    it that closes first (then the first row); owners by the two rules of the module docstring.
    """
    nf = len(ts)
    nm = len(group)
    stall_win = np.full(nf, -1, np.int64)
    owner = np.full(nm, _NONE, np.int64)
    for m in range(nm):
        g = group[m]
        if g < 0:
            continue
        one = _NONE  # the one pid faulting inside the window, or _MANY
        if migrated[m]:
            for f in range(bounds[g], bounds[g + 1]):
                t = ts[f]
                if t < unmap[m] or t > remap[m]:
                    continue
                best = stall_win[f]
                if best < 0 or remap[m] < remap[best]:
                    stall_win[f] = m
                if one == _NONE:
                    one = pid[f]
                elif one != pid[f]:
                    one = _MANY
        if one in (_NONE, _MANY):
            one = pid[bounds[g]]  # else the one pid faulting on the page, if only one does
            for f in range(bounds[g], bounds[g + 1]):
                if pid[f] != one:
                    one = _NONE
                    break
        owner[m] = one
    return stall_win, owner
