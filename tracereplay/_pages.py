"""Compiled helpers of the pre-pass: a hash table from (pid index, vpn) to dense page ids, and
the first-touch scan. Arrays in, arrays out; nothing of the package is imported.

Keys are ``pid_index << 45 | vpn`` (int64, vpn < 2^45); the table is open addressing with linear
probing, ``-1`` marks an empty slot, and its capacity is a power of two kept at least twice the
number of keys by the caller.
"""

from __future__ import annotations

import numpy as np
from numba import njit

VPN_BITS = 45
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True)
def _slot(key, bits):  # type: ignore[no-untyped-def]
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(64 - bits))


@njit(cache=True, nogil=True)
def lookup(tkeys, tvals, keys, out):  # type: ignore[no-untyped-def]
    """out[i] = page id of keys[i], or -1 when absent."""
    bits = np.int64(np.log2(tkeys.shape[0]) + 0.5)
    mask = tkeys.shape[0] - 1
    for i in range(keys.shape[0]):
        k = keys[i]
        s = _slot(k, bits)
        out[i] = -1
        while tkeys[s] != -1:
            if tkeys[s] == k:
                out[i] = tvals[s]
                break
            s = (s + 1) & mask


@njit(cache=True, nogil=True)
def rehash(tkeys, tvals, nkeys, nvals):  # type: ignore[no-untyped-def]
    """Move every key of (tkeys, tvals) into the larger empty table (nkeys, nvals)."""
    bits = np.int64(np.log2(nkeys.shape[0]) + 0.5)
    mask = nkeys.shape[0] - 1
    for j in range(tkeys.shape[0]):
        k = tkeys[j]
        if k == -1:
            continue
        s = _slot(k, bits)
        while nkeys[s] != -1:
            s = (s + 1) & mask
        nkeys[s] = k
        nvals[s] = tvals[j]


@njit(cache=True, nogil=True)
def touch(  # type: ignore[no-untyped-def]
    is_access, is_map, ts, cpu, pidx, vpn, dst,
    tkeys, tvals, n_pages,
    page_first_ns, page_first_cpu, page_map_node, page_pidx, page_vpn, cpu_first_ns,
):
    """First-touch scan of one chunk of rows in time order; returns the new page count.

    A page is created by its first access or ``map`` row; an access records its CPU as the first
    toucher, a ``map`` row its declared node (the first one wins). ``cpu_first_ns[pid, cpu]`` is
    the first access of each pid on each CPU.
    """
    bits = np.int64(np.log2(tkeys.shape[0]) + 0.5)
    mask = tkeys.shape[0] - 1
    never = np.iinfo(np.int64).max
    for i in range(ts.shape[0]):
        acc = is_access[i]
        if not acc and not is_map[i]:
            continue
        k = (np.int64(pidx[i]) << VPN_BITS) | vpn[i]
        s = _slot(k, bits)
        page = -1
        while tkeys[s] != -1:
            if tkeys[s] == k:
                page = tvals[s]
                break
            s = (s + 1) & mask
        if page == -1:
            page = n_pages
            n_pages += 1
            tkeys[s] = k
            tvals[s] = page
            page_first_ns[page] = ts[i]
            page_first_cpu[page] = -1
            page_map_node[page] = -1
            page_pidx[page] = pidx[i]
            page_vpn[page] = vpn[i]
        if acc:
            if page_first_cpu[page] == -1:
                page_first_cpu[page] = cpu[i]
            if cpu_first_ns[pidx[i], cpu[i]] == never:
                cpu_first_ns[pidx[i], cpu[i]] = ts[i]
        elif page_map_node[page] == -1:
            page_map_node[page] = dst[i]
    return n_pages
