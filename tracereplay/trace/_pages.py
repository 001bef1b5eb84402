"""Compiled helpers of the pre-pass: a hash table from (pid index, vpn) to dense page ids, and
the first-touch scan. Arrays in, arrays out; of the package only a prefetch hint is imported.

Keys are ``pid_index << 45 | vpn`` (int64, vpn < 2^45); the table is open addressing with linear
probing over rows ``[key, value]`` (a probe reads one cache line), ``-1`` marks an empty slot,
and its capacity is a power of two kept at least twice the number of keys by the caller. A
value is the page id, with ``UNTOUCHED`` set while a page created by a ``map`` row has had no
access yet.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tracereplay._prefetch import prefetch

VPN_BITS = 45
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
UNTOUCHED = np.int64(1) << 62
PAGE_MASK = UNTOUCHED - 1
# How many rows ahead the scan prefetches the table row its key hashes to (a table of 4 M
# pages, 256 MiB: the scan of 20 M rows 2.9-3.1 s -> 1.1-1.2 s; a table that fits in cache
# gains nothing).
AHEAD = 32


@njit(cache=True, nogil=True)
def _slot(key, bits):
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(64 - bits))


@njit(cache=True, nogil=True)
def lookup(table, keys, out):
    """out[i] = page id of keys[i], or -1 when absent."""
    bits = np.int64(np.log2(table.shape[0]) + 0.5)
    mask = table.shape[0] - 1
    for i in range(keys.shape[0]):
        k = keys[i]
        s = _slot(k, bits)
        out[i] = -1
        while table[s, 0] != -1:
            if table[s, 0] == k:
                out[i] = table[s, 1] & PAGE_MASK
                break
            s = (s + 1) & mask


@njit(cache=True, nogil=True)
def rehash(table, bigger):
    """Move every entry of ``table`` into the larger empty table ``bigger``."""
    bits = np.int64(np.log2(bigger.shape[0]) + 0.5)
    mask = bigger.shape[0] - 1
    for j in range(table.shape[0]):
        k = table[j, 0]
        if k == -1:
            continue
        s = _slot(k, bits)
        while bigger[s, 0] != -1:
            s = (s + 1) & mask
        bigger[s, 0] = k
        bigger[s, 1] = table[j, 1]


# The most base pages one row creates (a map row of a PMD-sized folio, order 9 of 4 KiB pages;
# larger base pages have a larger PMD order, checked by the caller).
MAX_FOLIO_PAGES = 1 << 13
BAD_PLACED, BAD_OVERLAP = 0, 1


@njit(cache=True, nogil=True)
def _find(table, key, bits, mask):
    """(slot, value) of ``key``: its slot and value, or the empty slot it would go in and -1."""
    s = _slot(key, bits)
    while table[s, 0] != -1:
        if table[s, 0] == key:
            return s, table[s, 1]
        s = (s + 1) & mask
    return s, np.int64(-1)


@njit(cache=True, nogil=True)
def _folio_clash(table, bits, mask, pi, v, order, page_order, page_vpn):
    """Whether the map row of the folio (pid index ``pi``, first vpn ``v``, ``order``) breaks
    a rule: -1 no (none of its pages exists: create them; or it is the same folio declared
    again: nothing to do, returned as -2), BAD_PLACED (an access touched one of its pages),
    BAD_OVERLAP (a page of it belongs to another folio)."""
    n = 1 << order
    found = 0
    for j in range(n):
        _, value = _find(table, (pi << VPN_BITS) | (v + j), bits, mask)
        if value == -1:
            continue
        if (value & UNTOUCHED) == 0:
            return BAD_PLACED
        page = value & PAGE_MASK
        if page_order[page] != order or page < j or page_vpn[page - j] != v:
            return BAD_OVERLAP
        found += 1
    if found == 0:
        return -1
    return -2 if found == n else BAD_OVERLAP


@njit(cache=True, nogil=True)
def touch(
    start, o, a, kind, other_dst, ts, cpu, pidx, vaddr, shift, cpu_node,
    table, n_pages, page_first_ns, page_node, page_pidx, page_vpn, cpu_first_ns, out,
    other_order, page_order,
):
    """First-touch scan of one row group in time order from row ``start`` (``o`` rows before
    it are not accesses, ``a`` are); returns (new page count, next row, o, a, bad row, why).
    It stops early, before a row when the page arrays or half the table could not take a
    folio, for the caller to grow them and call again from that row. ``out[a]`` receives the
    page id of the a-th access row.

    ``kind`` holds row kinds (0 access, 2 map; others are passed over); ``other_dst`` and
    ``other_order`` are the ``dst_node`` and folio order of each row that is not an access,
    in order; ``pidx`` each row's pid index. A page is created by its first access (on the
    node of the accessing CPU, a base page) or ``map`` row (on its declared node; a second
    map row of the same folio before any access changes nothing). A map row of order k
    creates the 2^k pages of its folio with consecutive ids, the first one its head, and
    ``page_order`` of each is k. A map row of a page that an access has touched breaks the
    rule map-before-access (why BAD_PLACED), one whose folio overlaps another folio the rule
    folio-overlap (BAD_OVERLAP): the scan stops and returns that row as the bad row (else
    -1). ``cpu_first_ns[pid, cpu]`` is the first access of each pid on each CPU.
    """
    bits = np.int64(np.log2(table.shape[0]) + 0.5)
    mask = table.shape[0] - 1
    never = np.iinfo(np.int64).max
    sh = np.uint64(shift)
    full = min(page_vpn.shape[0], table.shape[0] // 2) - MAX_FOLIO_PAGES
    last = ts.shape[0] - 1
    for i in range(start, ts.shape[0]):
        if n_pages >= full:
            return n_pages, i, o, a, -1, -1
        j = min(i + AHEAD, last)
        prefetch(table, 2 * _slot((np.int64(pidx[j]) << VPN_BITS) | np.int64(vaddr[j] >> sh), bits))
        k = kind[i]
        dst = -1
        order = 0
        if k != 0:
            dst = other_dst[o]
            order = other_order[o]
            o += 1
            if k != 2:
                continue
        pi = np.int64(pidx[i])
        v = np.int64(vaddr[i] >> sh)
        if order > 0:
            # A map row of a large folio: all of its pages, or none.
            clash = _folio_clash(table, bits, mask, pi, v, order, page_order, page_vpn)
            if clash >= 0:
                return n_pages, i, o, a, i, clash
            if clash == -1:
                for f in range(1 << order):
                    s, _ = _find(table, (pi << VPN_BITS) | (v + f), bits, mask)
                    page = n_pages
                    n_pages += 1
                    table[s, 0] = (pi << VPN_BITS) | (v + f)
                    table[s, 1] = page | UNTOUCHED
                    page_first_ns[page] = ts[i]
                    page_pidx[page] = pi
                    page_vpn[page] = v + f
                    page_node[page] = dst
                    page_order[page] = order
            continue
        key = (pi << VPN_BITS) | v
        s = _slot(key, bits)
        value = -1
        while table[s, 0] != -1:
            if table[s, 0] == key:
                value = table[s, 1]
                break
            s = (s + 1) & mask
        if value == -1:
            page = n_pages
            n_pages += 1
            table[s, 0] = key
            page_first_ns[page] = ts[i]
            page_pidx[page] = pi
            page_vpn[page] = v
            page_order[page] = 0
            if k == 0:
                page_node[page] = cpu_node[cpu[i]]
                table[s, 1] = page
            else:
                page_node[page] = dst
                table[s, 1] = page | UNTOUCHED
            value = table[s, 1]
        page = value & PAGE_MASK
        if k == 0:
            out[a] = page
            a += 1
            c = cpu[i]
            if value & UNTOUCHED:
                table[s, 1] = page
            if cpu_first_ns[pi, c] == never:
                cpu_first_ns[pi, c] = ts[i]
        elif (value & UNTOUCHED) == 0:
            return n_pages, i, o, a, i, BAD_PLACED
        elif page_order[page] != 0:
            return n_pages, i, o, a, i, BAD_OVERLAP
    return n_pages, ts.shape[0], o, a, -1, -1
