"""The compiled line scanner against the rules it documents, in plain Python.

The scanner takes shortcuts for lines laid out as the kernel prints them (a known event token
compared whole; each payload key looked for where the one before it ends). Whatever the layout,
its answers must be those of the general rules: the event is the token up to the first ':'
followed by a space or the line's end, named by its part after the last ':' (a printed system
must match); a payload key is found at its first match at the payload's start or after a space
or a comma, followed by '=' or ':', its value after any spaces.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from tracereplay.importer import _scan as S

_SEPARATORS = " \t\r,"


def _find_value(payload: str, key: str) -> int:
    n = len(key)
    for i in range(len(payload)):
        if i + n >= len(payload):
            break
        if (payload.startswith(key, i) and (i == 0 or payload[i - 1] in _SEPARATORS)
                and payload[i + n] in "=:"):
            v = i + n + 1
            while v < len(payload) and payload[v] == " ":
                v += 1
            return v
    return -1


def _parse_hex(payload: str, v: int) -> tuple[int, bool]:
    if v < 0:
        return 0, False
    if payload[v : v + 2] in ("0x", "0X") and v + 1 < len(payload):
        v += 2
    digits = ""
    while v < len(payload) and payload[v] in "0123456789abcdefABCDEF" and len(digits) <= 16:
        digits += payload[v]
        v += 1
    ok = 0 < len(digits) <= 16 and (v >= len(payload) or payload[v] in _SEPARATORS)
    return (int(digits, 16) if digits else 0), ok


def _parse_int(payload: str, v: int) -> int:
    if v < 0 or v >= len(payload):
        return S.MISSING
    neg = payload[v] == "-"
    v += neg
    digits = ""
    while v < len(payload) and payload[v].isdigit() and len(digits) < 18:
        digits += payload[v]
        v += 1
    if not digits:
        return S.MISSING
    return -int(digits) if neg else int(digits)


def _expected_kind(token_and_rest: str) -> int | None:
    """The kind of the event at the start of ``token_and_rest`` (None: no event token)."""
    end = -1
    for w, ch in enumerate(token_and_rest):
        if ch in " \t\r":
            break
        if ch == ":" and (w + 1 == len(token_and_rest) or token_and_rest[w + 1] in " \t\r"):
            end = w
            break
    if end <= 0:
        return None
    token = token_and_rest[:end]
    system, _, bare = token.rpartition(":")
    for k, full in enumerate(S.KIND_NAMES):
        want_system, want_bare = full.split(":")
        if bare == want_bare:
            return k if system in ("", want_system) and (system or ":" not in token) else -1
    return -1


def _scan_one(line: str) -> dict[str, int]:
    r = S.scan(line.encode(), S.LAYOUT_PERF)
    return {k: int(v[0]) for k, v in r.items()}


def _payloads(rng: random.Random, keys: tuple[str, ...]) -> list[str]:
    """Payloads around the kernel's layout: keys reordered, repeated, missing, spaced, glued to
    other words, ':' for '=', values that are not numbers."""
    values = ["0x7f0d38ba2000", "7f0d38ba2000", "e7ffffffdfc7c000", "0", "3", "zz", "0x",
              "12345678901234567", "-1", "0x6", "0x1ffffffff"]
    out = []
    for _ in range(1500):
        parts = []
        for _ in range(rng.randint(0, 5)):
            key = rng.choice((*keys, "x" + rng.choice(keys), rng.choice(keys) + "s", "nr"))
            sep = rng.choice(["=", "=", "=", ":", "= ", "=  "])
            parts.append(key + sep + rng.choice(values))
        glue = [rng.choice([" ", ", ", ",", "  ", "\t"]) for _ in parts]
        text = "".join(p + g for p, g in zip(parts, glue, strict=True))
        # half of them open as the kernel's do, where the scanner's shortcuts start
        opening = rng.choice(["", f"{keys[0]}=0x7f0d38ba2000, ", f"{keys[0]}=7f0d38ba2000 "
                              f"{keys[1]}={rng.choice(values)} "])
        out.append((opening + text).rstrip())
    # the kernel's own layouts, and near misses of them
    out += [
        "addr=7f0d38ba2000, pte=e7ffffffdfc7c000 order=0",
        "addr=7f0d38ba2000, pte=e7ffffffdfc7c000 order=9 order=1",
        "addr=7f0d38ba2000, order=2 pte=e7ffffffdfc7c000",
        "addr=7f0d38ba2000, pte= e7ffffffdfc7c000 order=3",
        "addr=7f0d38ba2000, pte=e7ffffffdfc7c00z order=4",
        "addr= 7f0d38ba2000, pte=1 order=5",
        "addr=7f0d38ba2000,pte=1,order=6",
        "addr=7f0d38ba2000, xpte=1 pte=2 order=7",
        "addr=7f0d38ba2000, order=2 pte=3 order=4",
        "addr=7f0d38ba2000, pte=3 pte=4 order=5",
        "address=0x7f46300a5000 ip=0x55b789cab45b error_code=0x6",
        "address=0x7f46300a5000 error_code=0x7 ip=0x55b789cab45b",
        "address=0x7f46300a5000 ip= error_code=0x4 error_code=0x5",
        "address=0x7f46300a5000 ip=0x1 xerror_code=0x2 error_code=0x3",
        "address=0x7f46300a5000 ip=0x1 error_code= 0x2",
        "address= 0x7f46300a5000 ip=0x1 error_code=0x2",
        "address=0x7f46300a5000",
        "address=0x7f46300a5000 ip=0x1",
    ]
    return out


@pytest.mark.parametrize("event", ["migrate:set_migration_pte", "migrate:remove_migration_pte"])
def test_pte_payload_keys_follow_the_first_match_rule(event: str) -> None:
    rng = random.Random(7)
    for payload in _payloads(rng, ("addr", "pte", "order")):
        got = _scan_one(f"sh 9/9 [001] 1.000001: {event}: {payload}")
        addr, ok = _parse_hex(payload, _find_value(payload, "addr"))
        if not ok:
            assert (got["status"], got["err"]) == (S.ST_MALFORMED, 9), payload
            continue
        assert got["status"] == S.ST_EVENT, payload
        assert got["addr"] == addr, payload
        order = _parse_int(payload, _find_value(payload, "order"))
        assert got["a0"] == (0 if order == S.MISSING else order), payload
        pte, ok = _parse_hex(payload, _find_value(payload, "pte"))
        assert got["a1"] == (np.uint64(pte).view(np.int64) if ok else S.MISSING), payload


def test_fault_payload_keys_follow_the_first_match_rule() -> None:
    rng = random.Random(11)
    for payload in _payloads(rng, ("address", "ip", "error_code")):
        got = _scan_one(f"w 5/6 [000] 1.000004: exceptions:page_fault_user: {payload}")
        address, ok = _parse_hex(payload, _find_value(payload, "address"))
        code, code_ok = _parse_hex(payload, _find_value(payload, "error_code"))
        want_err = (11 if not ok else 12 if address >= S.ADDR_LIMIT
                    else 13 if not code_ok or code > 0xFFFFFFFF else 0)
        assert got["err"] == want_err, payload
        if not want_err:
            assert (got["status"], got["addr"], got["a0"]) == (S.ST_EVENT, address, code), payload


def test_event_tokens_are_named_by_their_last_part_and_a_matching_system() -> None:
    tokens = [f"{full}:" for full in S.KIND_NAMES] + [f"{full.split(':')[1]}:" for full in
                                                       S.KIND_NAMES]
    tokens += [
        "tlb:mm_migrate_pages:", "migrate:tlb_flush:", "x:migrate:set_migration_pte:",
        "migrate:set_migration_pte:x:", "migrate:set_migration_pte", "migrate::",
        "migrate:set_migration_pte_2:", "migrate:mm_migrate_pages_star:", "tlb:tlb_flush:x",
        "exceptions:page_fault_use:", "sched:sched_switch:", "tlb:tlb_flush::", ":tlb_flush:",
    ]
    for token in tokens:
        for after in ("", " pages:-1 reason:x (4)", "\taddr=1"):
            line = f"w 5/6 [000] 1.000000: {token}{after}"
            want = _expected_kind(f"{token}{after}")
            got = _scan_one(line)
            if want is None:
                assert (got["status"], got["err"]) == (S.ST_MALFORMED, 5), line
            else:
                assert got["kind"] == want, line
