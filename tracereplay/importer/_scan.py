"""Line scanner for kernel trace text: ``perf script`` and ftrace / ``trace-cmd report``.

Both print one event per line in the same shape::

    perf script (default):        comm  tid [cpu] secs.frac: system:event: payload
    perf script -F comm,pid,tid,…: comm  pid/tid [cpu] secs.frac: system:event: payload
    ftrace trace, trace-cmd:      comm-tid [(tgid)] [cpu] [flags] secs.frac: event: payload

One compiled pass over a block of bytes splits lines, parses the header and, for the events the
importer knows, the payload keys it needs. Python then works on whole columns. A per-line Python
loop would cap the importer near 0.2 M lines/s; this pass runs at several M lines/s.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Line status.
ST_EVENT = 0
ST_BLANK = 1  # empty or a '#' comment
ST_MALFORMED = 2

# Layouts.
LAYOUT_ANY = 0
LAYOUT_PERF = 1
LAYOUT_FTRACE = 2

# Event kinds the importer turns into tables; anything else is KIND_UNKNOWN.
KIND_UNKNOWN = -1
KIND_TLB_FLUSH = 0
KIND_MIGRATE_START = 1
KIND_MIGRATE_END = 2
KIND_SET_PTE = 3
KIND_REMOVE_PTE = 4
KIND_PAGE_FAULT = 5

KIND_NAMES = (
    "tlb:tlb_flush",
    "migrate:mm_migrate_pages_start",
    "migrate:mm_migrate_pages",
    "migrate:set_migration_pte",
    "migrate:remove_migration_pte",
    "exceptions:page_fault_user",
)
# A user-space address is below 2^57 (5-level paging; 2^47 with 4 levels).
ADDR_LIMIT = 1 << 57

MISSING = -(2**62)
_I32_LIMIT = 2**31  # tids, pids and CPUs are stored in 32 bits
REASON_NAME_ONLY = -2  # tlb_flush reason printed without "(code)"

# Why a line is malformed: the rule it breaks.
ERRORS = {
    1: 'no "[cpu]" field',
    2: 'no task ("comm tid" or "comm-pid") before "[cpu]"',
    3: "line layout does not match the format (perf script vs ftrace)",
    4: 'no timestamp "secs.frac:" after "[cpu]"',
    5: 'no "event:" after the timestamp',
    6: "tlb_flush payload has no pages",
    7: "tlb_flush payload has no reason",
    8: "mm_migrate_pages payload has neither nr_succeeded nor nr_failed",
    9: "migration_pte payload has no hexadecimal addr",
    10: "number out of range",
    11: "page_fault_user payload has no hexadecimal address",
    12: "page_fault_user address is not below 2^57 (no user address is)",
    13: "page_fault_user payload has no hexadecimal error_code",
}


def _packed(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    data = "".join(words).encode()
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(w) for w in words])
    return np.frombuffer(data, dtype=np.uint8).copy(), offsets


# Event names (bare) and the system each must carry when one is printed.
EVENT_WORDS, EVENT_OFFS = _packed(
    [
        "tlb_flush",
        "mm_migrate_pages_start",
        "mm_migrate_pages",
        "set_migration_pte",
        "remove_migration_pte",
        "page_fault_user",
    ]
)
SYSTEM_WORDS, SYSTEM_OFFS = _packed(
    ["tlb", "migrate", "migrate", "migrate", "migrate", "exceptions"]
)
# Payload keys.
K_PAGES, K_REASON, K_MODE, K_NR_SUCCEEDED, K_NR_FAILED, K_ADDR, K_ORDER = range(7)
K_ADDRESS, K_ERROR_CODE, K_PTE = 7, 8, 9
# The value of each byte as a hexadecimal digit, -1 for a byte that is none.
_HEX = np.full(256, -1, np.int8)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
KEY_WORDS, KEY_OFFS = _packed(
    ["pages", "reason", "mode", "nr_succeeded", "nr_failed", "addr", "order", "address",
     "error_code", "pte"]
)


@njit(cache=True, nogil=True, inline="always")
def _u(i):
    """An index as unsigned: numba then skips the wrap-around of negative indices, a test and
    a branch at every byte the scanner reads (a quarter of its time). Every index passed is
    known to be >= 0."""
    return np.uint64(i)


@njit(cache=True, nogil=True, inline="always")
def _is_space(c: int) -> bool:
    return c == 32 or c == 9 or c == 13


@njit(cache=True, nogil=True, inline="always")
def _equal(buf, s, e, words, offs, k) -> bool:
    ws = offs[_u(k)]
    n = offs[_u(k + 1)] - ws
    if e - s != n:
        return False
    for i in range(n):  # noqa: SIM110  (numba: no generator expressions)
        if buf[_u(s + i)] != words[_u(ws + i)]:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def _find_value(buf, ps, pe, k) -> int:
    """Start of the value of key ``k`` in payload [ps, pe) (``key=v`` or ``key:v``), or -1."""
    ws = KEY_OFFS[_u(k)]
    n = KEY_OFFS[_u(k + 1)] - ws
    first = KEY_WORDS[_u(ws)]
    i = ps
    while i + n < pe:
        if buf[_u(i)] == first and (
            i == ps or _is_space(buf[_u(i - 1)]) or buf[_u(i - 1)] == 44) and (
            buf[_u(i + n)] == 61 or buf[_u(i + n)] == 58
        ):
            same = True
            for j in range(n):
                if buf[_u(i + j)] != KEY_WORDS[_u(ws + j)]:
                    same = False
                    break
            if same:
                v = i + n + 1
                while v < pe and buf[_u(v)] == 32:
                    v += 1
                return v
        i += 1
    return -1


@njit(cache=True, nogil=True, inline="always")
def _parse_int(buf, v, pe) -> int:
    """Signed decimal at v, or MISSING."""
    if v < 0 or v >= pe:
        return MISSING
    neg = False
    if buf[_u(v)] == 45:
        neg = True
        v += 1
    x = 0
    nd = 0
    while v < pe and 48 <= buf[_u(v)] <= 57 and nd < 18:
        x = x * 10 + (buf[_u(v)] - 48)
        v += 1
        nd += 1
    if nd == 0:
        return MISSING
    return -x if neg else x


@njit(cache=True, nogil=True, inline="always")
def _token_end(buf, v, pe) -> int:
    while v < pe and not _is_space(buf[_u(v)]) and buf[_u(v)] != 44:
        v += 1
    return v


@njit(cache=True, nogil=True, inline="always")
def _skip_separators(buf, v, pe) -> int:
    """The next token's start: past the spaces and commas at v."""
    while v < pe and (_is_space(buf[_u(v)]) or buf[_u(v)] == 44):
        v += 1
    return v


@njit(cache=True, nogil=True, inline="always")
def _key_at(buf, i, pe, k) -> int:
    """What ``_find_value`` returns for key ``k`` if its first match is at token start ``i``,
    or -1 when key ``k`` is not at ``i``. Keys start only at the payload's start or after a
    space or a comma, so a caller that knows the tokens before ``i`` are other keys can look
    here instead of searching the payload from its start."""
    ws = KEY_OFFS[_u(k)]
    n = KEY_OFFS[_u(k + 1)] - ws
    if i + n >= pe or (buf[_u(i + n)] != 61 and buf[_u(i + n)] != 58):
        return -1
    for j in range(n):
        if buf[_u(i + j)] != KEY_WORDS[_u(ws + j)]:
            return -1
    v = i + n + 1
    while v < pe and buf[_u(v)] == 32:
        v += 1
    return v


@njit(cache=True, nogil=True, inline="always")
def _word_end(buf, p, e, words, offs, k) -> int:
    """The end of word ``k`` when the bytes at ``p`` start with it, else -1. (Written out
    rather than through ``_equal``, and ``_find_value`` rather than through ``_key_at``: both
    shorter forms made the scanner a fifth slower, 0.50 → 0.60 s on cw15.)"""
    ws = offs[_u(k)]
    n = offs[_u(k + 1)] - ws
    if p + n > e:
        return -1
    for j in range(n):
        if buf[_u(p + j)] != words[_u(ws + j)]:
            return -1
    return p + n


_NOT_KNOWN = -9  # _known_event: not one of the known events as the kernel prints them


@njit(cache=True, nogil=True, inline="always")
def _known_event(buf, v, e):
    """(kind, end) of the event token at ``v`` when it is a known event, bare or with its
    system ("set_migration_pte:" or "migrate:set_migration_pte:"), followed by a space or the
    line's end (``end``: its last ':'); else (_NOT_KNOWN, -1). The general rule in
    ``scan_text`` gives the same for these tokens; this compares them directly, without first
    looking for the token's end and then its last ':'."""
    for k in range(6):
        p = _word_end(buf, v, e, SYSTEM_WORDS, SYSTEM_OFFS, k)
        if p >= 0 and p < e and buf[_u(p)] == 58:
            p = _word_end(buf, p + 1, e, EVENT_WORDS, EVENT_OFFS, k)
        else:
            p = _word_end(buf, v, e, EVENT_WORDS, EVENT_OFFS, k)
        if p >= 0 and p < e and buf[_u(p)] == 58 and (p + 1 == e or _is_space(buf[_u(p + 1)])):
            return k, p
    return _NOT_KNOWN, -1


@njit(cache=True, nogil=True)
def scan_text(
    buf,
    nl,
    layout_mode,
    ls,
    le,
    status,
    err,
    layout,
    kind,
    tid,
    pid,
    cpu,
    ts,
    es,
    ee,
    a0,
    a1,
    addr,
    s0s,
    s0e,
    s1s,
    s1e,
):
    """Scan every line of ``buf`` (which ends at a newline or at the end of input); ``nl`` holds
    the positions of its newlines, in order.

    Fills the per-line output arrays and returns the number of lines. Integer payload values
    are MISSING when absent; spans are -1 when absent.
    """
    n = len(buf)
    n_nl = len(nl)
    pos = 0
    line = 0
    while pos < n:
        # -- line bounds
        s = pos
        e = nl[_u(line)] if line < n_nl else n
        pos = e + 1
        if e > s and buf[_u(e - 1)] == 13:
            e -= 1
        ls[_u(line)] = s
        le[_u(line)] = e
        status[_u(line)] = ST_MALFORMED
        err[_u(line)] = 0
        layout[_u(line)] = 0
        kind[_u(line)] = KIND_UNKNOWN
        tid[_u(line)] = -1
        pid[_u(line)] = -1
        cpu[_u(line)] = -1
        ts[_u(line)] = 0
        es[_u(line)] = -1
        ee[_u(line)] = -1
        a0[_u(line)] = MISSING
        a1[_u(line)] = MISSING
        addr[_u(line)] = 0
        s0s[_u(line)] = -1
        s0e[_u(line)] = -1
        s1s[_u(line)] = -1
        s1e[_u(line)] = -1
        i = line
        line += 1

        b = s
        while b < e and _is_space(buf[_u(b)]):
            b += 1
        if b == e or buf[_u(b)] == 35:  # empty or '#'
            status[_u(i)] = ST_BLANK
            continue

        # -- "[cpu]": the first "[digits]" preceded by a space
        lb = -1
        rb = -1
        j = b + 1
        while j < e:
            if buf[_u(j)] == 91 and _is_space(buf[_u(j - 1)]):
                k = j + 1
                while k < e and 48 <= buf[_u(k)] <= 57:
                    k += 1
                if k > j + 1 and k < e and buf[_u(k)] == 93:
                    lb = j
                    rb = k
                    break
            j += 1
        if lb < 0:
            err[_u(i)] = 1
            continue
        c = 0
        for k in range(lb + 1, rb):
            c = min(c * 10 + (buf[_u(k)] - 48), _I32_LIMIT)  # stops growing once out of range
        if c >= _I32_LIMIT:
            err[_u(i)] = 10
            continue
        cpu[_u(i)] = c

        # -- task before "[cpu]"
        t1 = lb
        while t1 > b and _is_space(buf[_u(t1 - 1)]):
            t1 -= 1
        tgid = -1
        if t1 > b and buf[_u(t1 - 1)] == 41:  # ftrace "(tgid)" column
            k = t1 - 1
            while k > b and buf[_u(k)] != 40:
                k -= 1
            v = _parse_int(buf, _skip_spaces(buf, k + 1, t1), t1)
            if v != MISSING and v >= 0:
                tgid = v
            t1 = k
            while t1 > b and _is_space(buf[_u(t1 - 1)]):
                t1 -= 1
        t0 = t1
        while t0 > b and not _is_space(buf[_u(t0 - 1)]):
            t0 -= 1
        # perf: last token is "tid" or "pid/tid" and a comm precedes it
        lay = 0
        slash = -1
        # tid and pid parsed here, checked before they are stored (the arrays are 32-bit: a
        # MISSING or a value beyond them would not survive the store)
        tid_v = -1
        pid_v = -1
        digits = t1 > t0
        for k in range(t0, t1):
            ch = buf[_u(k)]
            if ch == 47 and slash < 0 and k > t0:
                slash = k
            elif not (48 <= ch <= 57 or (ch == 45 and (k == t0 or k == slash + 1))):
                digits = False
                break
        if digits and t0 > b and slash != t1 - 1:
            lay = LAYOUT_PERF
            if slash >= 0:
                pid_v = _parse_int(buf, t0, slash)
                tid_v = _parse_int(buf, slash + 1, t1)
            else:
                tid_v = _parse_int(buf, t0, t1)
        else:
            dash = -1
            for k in range(t1 - 1, b, -1):
                if buf[_u(k)] == 45:
                    dash = k
                    break
            if dash > b and dash + 1 < t1:
                ok = True
                for k in range(dash + 1, t1):
                    if not 48 <= buf[_u(k)] <= 57:
                        ok = False
                        break
                if ok:
                    lay = LAYOUT_FTRACE
                    tid_v = _parse_int(buf, dash + 1, t1)
                    pid_v = tgid
        if lay == 0 or tid_v == MISSING or pid_v == MISSING:
            err[_u(i)] = 2  # a lone "-" is no tid, "5/" no tid, "/6" no pid
            continue
        if layout_mode != LAYOUT_ANY and lay != layout_mode:
            err[_u(i)] = 3
            continue
        layout[_u(i)] = lay
        if not (-_I32_LIMIT <= tid_v < _I32_LIMIT and -_I32_LIMIT <= pid_v < _I32_LIMIT):
            err[_u(i)] = 10
            continue
        tid[_u(i)] = tid_v
        pid[_u(i)] = pid_v

        # -- optional flags token, then "secs.frac:"
        v = _skip_spaces(buf, rb + 1, e)
        tsv = -1
        for _attempt in range(2):
            tsv, w = _parse_ts(buf, v, e)
            v = _skip_spaces(buf, w, e)
            if tsv >= 0:
                break
        if tsv < 0:
            err[_u(i)] = 4
            continue
        ts[_u(i)] = tsv

        # -- "event:" (the colon followed by a space or the end of the line), and its kind
        kd, evend = _known_event(buf, v, e)
        if evend < 0:
            w = v
            while w < e and not _is_space(buf[_u(w)]):
                if buf[_u(w)] == 58 and (w + 1 == e or _is_space(buf[_u(w + 1)])):
                    evend = w
                    break
                w += 1
            if evend <= v:
                err[_u(i)] = 5
                continue
        es[_u(i)] = v
        ee[_u(i)] = evend
        ps = _skip_spaces(buf, evend + 1, e)
        pe = e
        while pe > ps and _is_space(buf[_u(pe - 1)]):
            pe -= 1

        if kd == _NOT_KNOWN:
            # which event: bare name after the last ':'; a printed system must match
            bare = v
            for k in range(evend - 1, v - 1, -1):
                if buf[_u(k)] == 58:
                    bare = k + 1
                    break
            kd = KIND_UNKNOWN
            for k in range(6):
                if _equal(buf, bare, evend, EVENT_WORDS, EVENT_OFFS, k):
                    if bare == v or _equal(buf, v, bare - 1, SYSTEM_WORDS, SYSTEM_OFFS, k):
                        kd = k
                    break
        kind[_u(i)] = kd
        status[_u(i)] = ST_EVENT

        # -- payload
        if kd == KIND_TLB_FLUSH:
            a0[_u(i)] = _parse_int(buf, _find_value(buf, ps, pe, K_PAGES), pe)
            if a0[_u(i)] == MISSING:
                status[_u(i)] = ST_MALFORMED
                err[_u(i)] = 6
                continue
            rv = _find_value(buf, ps, pe, K_REASON)
            if rv < 0 or rv >= pe:
                status[_u(i)] = ST_MALFORMED
                err[_u(i)] = 7
                continue
            # the code in parentheses: "reason:remote IPI send (4)"
            code = MISSING
            for k in range(pe - 1, rv, -1):
                if buf[_u(k)] == 41:
                    m = k - 1
                    while m > rv and 48 <= buf[_u(m)] <= 57:
                        m -= 1
                    if buf[_u(m)] == 40 and m < k - 1:
                        code = _parse_int(buf, m + 1, k)
                    break
                if not _is_space(buf[_u(k)]):
                    break
            if code == MISSING:
                code = _parse_int(buf, rv, pe)
                if code != MISSING and _token_end(buf, rv, pe) != pe:
                    code = MISSING
            if code == MISSING:
                code = REASON_NAME_ONLY
                s1s[_u(i)] = rv
                s1e[_u(i)] = pe
            a1[_u(i)] = code
        elif kd in (KIND_MIGRATE_START, KIND_MIGRATE_END):
            mv = _find_value(buf, ps, pe, K_MODE)
            if mv >= 0:
                s0s[_u(i)] = mv
                s0e[_u(i)] = _token_end(buf, mv, pe)
            rv = _find_value(buf, ps, pe, K_REASON)
            if rv >= 0:
                s1s[_u(i)] = rv
                s1e[_u(i)] = _token_end(buf, rv, pe)
            if kd == KIND_MIGRATE_END:
                a0[_u(i)] = _parse_int(buf, _find_value(buf, ps, pe, K_NR_SUCCEEDED), pe)
                a1[_u(i)] = _parse_int(buf, _find_value(buf, ps, pe, K_NR_FAILED), pe)
                if a0[_u(i)] == MISSING and a1[_u(i)] == MISSING:
                    status[_u(i)] = ST_MALFORMED
                    err[_u(i)] = 8
                    continue
        elif kd in (KIND_SET_PTE, KIND_REMOVE_PTE):
            av = _find_value(buf, ps, pe, K_ADDR)
            x, ok, w0 = _parse_hex_end(buf, av, pe)
            if not ok:
                status[_u(i)] = ST_MALFORMED
                err[_u(i)] = 9
                continue
            addr[_u(i)] = x
            # "addr=X, pte=Y order=Z", as the kernel prints it: each key is looked for where
            # the one before it ends; the payload is searched from its start otherwise
            pv = -1
            if av == ps + 5:  # "addr=" opens the payload: the next token is the first candidate
                pv = _key_at(buf, _skip_separators(buf, w0, pe), pe, K_PTE)
            if pv < 0:
                pv = _find_value(buf, ps, pe, K_PTE)
            x, ok, w = _parse_hex_end(buf, pv, pe)
            ov = -1
            if ok and av == ps + 5 and pv == _skip_separators(buf, w0, pe) + 4:
                ov = _key_at(buf, _skip_separators(buf, w, pe), pe, K_ORDER)
            if ov < 0:
                ov = _find_value(buf, ps, pe, K_ORDER)
            o = _parse_int(buf, ov, pe)
            a0[_u(i)] = 0 if o == MISSING else o
            # the PTE as printed (its 64 bits as int64; MISSING when absent or not hexadecimal)
            if ok:
                a1[_u(i)] = np.int64(x)
        elif kd == KIND_PAGE_FAULT:
            # "address=0x7f46300a5000 ip=0x55b789cab45b error_code=0x6"
            av = _find_value(buf, ps, pe, K_ADDRESS)
            x, ok, w = _parse_hex_end(buf, av, pe)
            if not ok:
                status[_u(i)] = ST_MALFORMED
                err[_u(i)] = 11
                continue
            if x >= np.uint64(ADDR_LIMIT):
                status[_u(i)] = ST_MALFORMED
                err[_u(i)] = 12
                continue
            addr[_u(i)] = x
            # as for the PTE keys above: the token after "address=X", else the one after it
            # (the kernel prints "ip=Y" between them)
            cv = -1
            if av == ps + 8:
                j = _skip_separators(buf, w, pe)
                cv = _key_at(buf, j, pe, K_ERROR_CODE)
                if cv < 0:
                    j = _skip_separators(buf, _token_end(buf, j, pe), pe)
                    cv = _key_at(buf, j, pe, K_ERROR_CODE)
            if cv < 0:
                cv = _find_value(buf, ps, pe, K_ERROR_CODE)
            code, ok = _parse_hex(buf, cv, pe)
            if not ok or code > np.uint64(0xFFFFFFFF):
                status[_u(i)] = ST_MALFORMED
                err[_u(i)] = 13
                continue
            a0[_u(i)] = np.int64(code)
    return line


@njit(cache=True, nogil=True, inline="always")
def _parse_hex(buf, v, pe):
    """(value, ok) of the hexadecimal number at v ("0x" optional, at most 16 digits); the
    number must end at a space, a comma or the end of the payload."""
    x, ok, _end = _parse_hex_end(buf, v, pe)
    return x, ok


@njit(cache=True, nogil=True, inline="always")
def _parse_hex_end(buf, v, pe):
    """``_parse_hex``, and where the number ends."""
    if v >= 0 and v + 1 < pe and buf[_u(v)] == 48 and (buf[_u(v + 1)] | 32) == 120:
        v += 2
    x = np.uint64(0)
    nd = 0
    # A digit's value by table: letters and digits mix at random in a PTE or an address, so
    # a test per class would be mispredicted at every other digit.
    while v >= 0 and v < pe and nd <= 16:
        d = _HEX[buf[_u(v)]]
        if d < 0:
            break
        x = x * np.uint64(16) + np.uint64(d)
        v += 1
        nd += 1
    ok = 0 < nd <= 16 and (v >= pe or _is_space(buf[_u(v)]) or buf[_u(v)] == 44)
    return x, ok, v


@njit(cache=True, nogil=True, inline="always")
def _skip_spaces(buf, v, e) -> int:
    while v < e and _is_space(buf[_u(v)]):
        v += 1
    return v


@njit(cache=True, nogil=True, inline="always")
def _parse_ts(buf, v, e):
    """(ns, end) of the token at v (up to the next space or e) when it is "secs.frac:", else
    (-1, end): one pass over the token."""
    secs = 0
    k = v
    while k < e and 48 <= buf[_u(k)] <= 57:
        secs = secs * 10 + (buf[_u(k)] - 48)
        k += 1
    ok = 0 < k - v <= 11 and k < e and buf[_u(k)] == 46
    frac = 0
    nf = 0
    if ok:
        k += 1
        f0 = k
        while k < e and 48 <= buf[_u(k)] <= 57:
            if nf < 9:
                frac = frac * 10 + (buf[_u(k)] - 48)
                nf += 1
            k += 1
        ok = k > f0 and k < e and buf[_u(k)] == 58 and (k + 1 == e or _is_space(buf[_u(k + 1)]))
    if ok:
        for _ in range(9 - nf):
            frac *= 10
        return secs * 1_000_000_000 + frac, k + 1
    while k < e and not _is_space(buf[_u(k)]):
        k += 1
    return -1, k


@njit(cache=True, nogil=True)
def gather(buf, starts, ends, limit):
    """Concatenate spans of ``buf`` (each cut at ``limit`` bytes on a UTF-8 boundary).

    Returns (data, offsets) for an Arrow string array; a span with start < 0 is empty.
    """
    m = len(starts)
    offs = np.zeros(m + 1, dtype=np.int32)
    total = 0
    for r in range(m):
        if starts[r] >= 0:
            ln = ends[r] - starts[r]
            if ln > limit:
                ln = limit
                while ln > 0 and (buf[starts[r] + ln] & 0xC0) == 0x80:
                    ln -= 1
            total += ln
        offs[r + 1] = total
    data = np.empty(total, dtype=np.uint8)
    for r in range(m):
        o = offs[r]
        for k in range(offs[r + 1] - o):
            data[o + k] = buf[starts[r] + k]
    return data, offs


_I64 = ("ls", "le", "ts", "es", "ee", "a0", "a1", "s0s", "s0e", "s1s", "s1e")
_I32 = ("tid", "pid", "cpu")
_I8 = ("status", "err", "layout", "kind")


class ScanBuffers:
    """Output arrays that successive scans reuse (fresh arrays cost a page fault for every
    4 KiB they are written to, about a quarter of a scan). A scan's result stays valid until
    the next scan into the same buffers."""

    def __init__(self) -> None:
        self._out: dict[str, np.ndarray] = {}
        self._size = -1

    def take(self, n: int) -> dict[str, np.ndarray]:
        if n > self._size:
            self._size = max(n, self._size + self._size // 4)
            size = self._size
            self._out = {k: np.empty(size, np.int64) for k in _I64}
            self._out.update({k: np.empty(size, np.int32) for k in _I32})
            self._out.update({k: np.empty(size, np.int8) for k in _I8})
            self._out["addr"] = np.empty(size, np.uint64)
        return self._out


def newlines(block: bytes) -> np.ndarray:
    """The positions of the newlines of ``block`` (numpy, which releases the GIL: a thread can
    find them while another scans, or while the compiled scanner loads)."""
    return np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)


def scan(
    block: bytes, layout_mode: int = LAYOUT_ANY, buffers: ScanBuffers | None = None,
    nl: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Scan a block of whole lines; returns one array per field, one entry per line (views of
    ``buffers`` when given). ``nl``: the block's ``newlines``, when known."""
    buf = np.frombuffer(block, dtype=np.uint8)
    if nl is None:
        nl = newlines(block)
    out = (buffers or ScanBuffers()).take(len(nl) + 1)
    m = scan_text(
        buf, nl, layout_mode,
        out["ls"], out["le"], out["status"], out["err"], out["layout"], out["kind"],
        out["tid"], out["pid"], out["cpu"], out["ts"], out["es"], out["ee"],
        out["a0"], out["a1"], out["addr"], out["s0s"], out["s0e"], out["s1s"], out["s1e"],
    )  # fmt: skip
    return {k: v[:m] for k, v in out.items()}


@njit(cache=True, nogil=True)
def assign_calls(ctx, kind, open_ctx, open_call, next_call):
    """The migration call each row is inside, in row order.

    ``open_ctx``/``open_call`` are the calls open per task when the rows begin; a start opens
    call ``next_call`` (then the next id), an end closes its task's call and still belongs to
    it. Returns (call, open_ctx, open_call, next_call) with call -1 outside any call and the
    calls still open after the last row. Each task's open call sits beside it in an
    open-addressing table.
    """
    n = len(ctx)
    size = 16
    while size < 2 * (n + len(open_ctx)):
        size *= 2
    keys = np.empty(size, np.int64)
    vals = np.full(size, -2, np.int64)  # -2: free slot, -1: no open call
    for j in range(len(open_ctx)):
        h = _ctx_slot(keys, vals, open_ctx[j], size)
        keys[h] = open_ctx[j]
        vals[h] = open_call[j]
    call = np.empty(n, np.int64)
    for i in range(n):
        c = ctx[i]
        h = _ctx_slot(keys, vals, c, size)
        if vals[h] == -2:
            keys[h] = c
            vals[h] = -1
        prev = vals[h]
        k = kind[i]
        if k == KIND_MIGRATE_START:
            cur = np.int64(next_call)
            next_call += 1
        elif k == KIND_MIGRATE_END:
            cur = np.int64(-1)
        else:
            cur = prev
        call[i] = prev if k == KIND_MIGRATE_END else cur
        vals[h] = cur
    still = np.flatnonzero(vals >= 0)
    return call, keys[still], vals[still], next_call


@njit(cache=True, nogil=True, inline="always")
def _ctx_slot(keys, vals, c, size):
    """The slot of task ``c`` in the table: its own, or the free one where it would go."""
    h = np.uint64(c) * np.uint64(0x9E3779B97F4A7C15)
    j = np.int64((h ^ (h >> np.uint64(29))) & np.uint64(size - 1))
    while vals[j] != -2 and keys[j] != c:
        j = (j + 1) & (size - 1)
    return j


def pair_table(size: int = 1024) -> np.ndarray:
    """An empty table for ``pair_fifo`` (``size``: a power of two)."""
    table = np.empty((size, 5), np.int64)
    table[:, 3] = -2
    return table


@njit(cache=True, nogil=True, inline="always")
def _pte_home(a, c, k, mask):
    """The home slot of key (addr ``a``, ctx ``c``, call ``k``) in ``pair_fifo``'s table."""
    h = np.uint64(a) * np.uint64(0x9E3779B97F4A7C15)
    h ^= np.uint64(c) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= np.uint64(k) * np.uint64(0x165667B19E3779F9)
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@njit(cache=True, nogil=True)
def pair_fifo(ctx, call, addr, is_set, table):
    """Pair each remove with the oldest open set of the same (ctx, call, addr), in row order.

    Returns (partner, orphan, table): partner[i] is the row of the remove closing set i (-1:
    open); orphan[j] is True for a remove that found no open set. The open sets of a key are a
    queue (``nxt`` links rows) whose head and tail sit beside the key in an open-addressing
    table: ``table`` (rows of addr, ctx, call, head, tail; head -2 marks a free slot), all free
    on entry and again on return, is kept by the caller for the next block. A key leaves the
    table when its queue empties (backward-shift deletion), so the table holds only the keys
    with open sets (a migration batch's pages, a few hundred) and stays small and in cache; it
    doubles when half full.
    """
    n = len(ctx)
    partner = np.full(n, -1, np.int64)
    orphan = np.zeros(n, np.bool_)
    nxt = np.full(n, -1, np.int64)
    size = len(table)
    mask = size - 1
    live = 0
    for i in range(n):
        a, c, k = addr[i], ctx[i], call[i]
        j = _pte_home(a, c, k, mask)
        while table[j, 3] != -2 and not (
            table[j, 0] == a and table[j, 1] == c and table[j, 2] == k
        ):
            j = (j + 1) & mask
        if is_set[i]:
            if table[j, 3] == -2:
                if 2 * (live + 1) > size:  # grow, then find the key's free slot anew
                    old = table
                    size *= 2
                    mask = size - 1
                    table = np.empty((size, 5), np.int64)
                    table[:, 3] = -2
                    for o in range(len(old)):
                        if old[o, 3] != -2:
                            q = _pte_home(old[o, 0], old[o, 1], old[o, 2], mask)
                            while table[q, 3] != -2:
                                q = (q + 1) & mask
                            for f in range(5):
                                table[q, f] = old[o, f]
                    j = _pte_home(a, c, k, mask)
                    while table[j, 3] != -2:
                        j = (j + 1) & mask
                table[j, 0] = a
                table[j, 1] = c
                table[j, 2] = k
                table[j, 3] = i
                live += 1
            else:
                nxt[table[j, 4]] = i
            table[j, 4] = i
        elif table[j, 3] != -2:
            s = table[j, 3]
            partner[s] = i
            if nxt[s] >= 0:
                table[j, 3] = nxt[s]
            else:  # the queue is empty: the key leaves, later keys of its run shift back
                live -= 1
                table[j, 3] = -2
                q = j
                while True:
                    q = (q + 1) & mask
                    if table[q, 3] == -2:
                        break
                    home = _pte_home(table[q, 0], table[q, 1], table[q, 2], mask)
                    # move q back to the hole j unless its home lies cyclically in (j, q]
                    if (q > j and (home <= j or home > q)) or (q < j and home <= j and home > q):
                        for f in range(5):
                            table[j, f] = table[q, f]
                        table[q, 3] = -2
                        j = q
        else:
            orphan[i] = True
    if live:
        table[:, 3] = -2
    return partner, orphan, table


@njit(cache=True, nogil=True)
def flush_rounds(reason, ts, cpu, send, receiver, window, final):
    """Join IPI receivers (reason ``receiver``) to the latest round (reason ``send``) sent from
    another CPU at most ``window`` ns before them.

    Returns (joined, targets, cut): rows from ``cut`` on wait for more lines (unless ``final``):
    the first round within ``window`` of the latest time may still gain receivers. ``joined``
    marks the receivers before ``cut`` that found their round, ``targets[i]`` counts those of
    round i.
    """
    n = len(reason)
    joined = np.zeros(n, np.bool_)
    round_of = np.full(n, -1, np.int64)
    targets = np.zeros(n, np.int64)
    cut = n
    if n == 0:
        return joined, targets, cut
    r_i = -1
    r_ts = 0
    r_cpu = 0
    last_ts = ts[0]
    for i in range(n):
        last_ts = max(last_ts, ts[i])
        if reason[i] == send:
            r_i = i
            r_ts = ts[i]
            r_cpu = cpu[i]
        elif reason[i] == receiver and r_i >= 0 and ts[i] - r_ts <= window and cpu[i] != r_cpu:
            joined[i] = True
            round_of[i] = r_i
    if not final:
        for i in range(n):
            if reason[i] == send and ts[i] >= last_ts - window:
                cut = i
                break
    for i in range(cut, n):
        joined[i] = False
    for i in range(cut):
        if joined[i]:
            targets[round_of[i]] += 1
    return joined, targets, cut
