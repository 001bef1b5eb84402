"""Answers of ``tracereplay query`` as tables that fit the terminal.

A table wider than the terminal is folded: its columns are printed in parts, each as wide as
the terminal allows, the leading text columns that name a row (``run``, ``trace``, ``policy``;
``metric`` and ``unit`` in ``policy_compare``) repeated in each part. A few rows whose keys tell them apart are printed sideways (a column
per row) when that fits and the columns would not. A cell is never cut; one too wide for any
terminal is folded by rich. NULL is shown as such, with what it means in a note under the
table, from the column's documentation when the query has one. ``--format csv`` or ``json``
gives every row whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

# Identifiers, not quantities: printed without thousands separators.
_IDS = {"vpn", "pid", "cpu", "node", "req_id", "batch_id", "flush_id", "pos_in_batch"}
_SEP = 3  # a column's share of the borders and padding of a rich table


def _float_format(values: Sequence[Any]) -> str:
    """One rule for a column of floats: two decimals (a whole number, such as a count carried
    in a DOUBLE, without them), or three significant digits when every value is below 0.1."""
    floats = [v for v in values if isinstance(v, float)]
    return ".3g" if floats and all(abs(v) < 0.1 for v in floats) else ",.2f"


def _float(v: float, fmt: str) -> str:
    if fmt == ",.2f" and v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return format(v, fmt)


def cells(table: pa.Table) -> list[list[str]]:
    """The rows of ``table`` as text, a column's numbers in one format."""
    columns = []
    for name in table.column_names:
        values = table.column(name).to_pylist()
        fmt = _float_format(values)
        col = []
        for v in values:
            if v is None:
                col.append("NULL")
            elif isinstance(v, bool):
                col.append("true" if v else "false")
            elif isinstance(v, float):
                col.append(_float(v, fmt))
            elif isinstance(v, int):
                col.append(str(v) if name in _IDS else f"{v:,}")
            else:
                col.append(str(v))
        columns.append(col)
    return [list(r) for r in zip(*columns, strict=True)] if columns else []


def _parts(widths: list[int], keys: list[int], room: int) -> list[list[int]]:
    """Column indexes in parts that each fit ``room`` characters, the key columns first in
    every part."""
    base = sum(widths[k] + _SEP for k in keys) + 1
    parts: list[list[int]] = []
    current: list[int] = []
    used = base
    for i, w in enumerate(widths):
        if i in keys:
            continue
        if current and used + w + _SEP > room:
            parts.append(current)
            current, used = [], base
        current.append(i)
        used += w + _SEP
    if current or not parts:
        parts.append(current)
    return [sorted([*keys, *part]) for part in parts]


def print_table(console: Console, table: pa.Table, title: str,
                null_reasons: dict[str, str] | None = None) -> None:
    """``table`` on ``console``, folded to its width (see the module's doc)."""
    names = table.column_names
    rows = cells(table)
    numeric = [pa.types.is_integer(f.type) or pa.types.is_floating(f.type) for f in table.schema]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    room = console.width
    # the leading text columns name a row (run, trace, policy; metric and unit too in
    # policy_compare): each part repeats them
    keys: list[int] = []
    for i in range(len(names)):
        if numeric[i] or sum(widths[k] + _SEP for k in [*keys, i]) > room // 2:
            break
        keys.append(i)
    if sum(widths) + _SEP * len(widths) + 1 <= room or not rows:
        parts = [list(range(len(names)))]
    else:
        parts = _parts(widths, keys, room)
    heads = _row_heads(rows, keys)
    if len(parts) > 1 and heads is not None:
        side = max(len(n) for n in names) + sum(max(len(h), *(len(r[i]) for i in range(len(names)) if i not in keys))
                                                + _SEP for h, r in zip(heads, rows, strict=True))
        if side + _SEP + 1 <= room:
            view = Table("", *heads, title=title, title_justify="left")
            for i, name in enumerate(names):
                if i not in keys:
                    view.add_row(name, *(r[i] for r in rows))
            for column in view.columns[1:]:
                column.justify = "right"
            console.print(view)
            _notes(console, table, null_reasons)
            return
    for n, part in enumerate(parts):
        caption = f"{title} (columns, part {n + 1} of {len(parts)})" if len(parts) > 1 else title
        view = Table(title=caption, title_justify="left")
        for i in part:
            view.add_column(names[i], justify="right" if numeric[i] else "left",
                            overflow="fold", min_width=min(widths[i], 12))
        for r in rows:
            view.add_row(*(r[i] for i in part))
        console.print(view)
    if len(parts) > 1:
        console.print(f"[dim]{len(names)} columns in {len(parts)} parts to fit {room} "
                      "characters; --format csv or --format json gives each row whole.[/]",
                      highlight=False)
    _notes(console, table, null_reasons)


def _row_heads(rows: list[list[str]], keys: list[int]) -> list[str] | None:
    """Headers for a sideways table: the rows' key values (NULL ones left out), when they
    tell the rows apart and there are few rows; else None."""
    if not keys or not 0 < len(rows) <= 8:
        return None
    heads = [" ".join(r[k] for k in keys if r[k] != "NULL") for r in rows]
    if any(not h for h in heads) or len(set(heads)) != len(heads):
        return None
    return heads


_NULL_CLAUSE = re.compile(r"NULL[^;]*")


def null_reasons(columns: Sequence[tuple[str, str]]) -> dict[str, str]:
    """What NULL means in each documented column (name, doc) whose doc says: the clause of the
    doc that starts with NULL."""
    out = {}
    for name, doc in columns:
        m = _NULL_CLAUSE.search(doc)
        if m:
            out[name] = m.group(0).strip().rstrip(".")
    return out


def _notes(console: Console, table: pa.Table, reasons: dict[str, str] | None) -> None:
    """A note for each column that holds NULL: what NULL means there."""
    nulls = [n for n in table.column_names if table.column(n).null_count]
    if not nulls:
        return
    reasons = reasons or {}
    explained = [f"{n}: {reasons[n]}" for n in nulls if n in reasons]
    others = [n for n in nulls if n not in reasons]
    lines = ["NULL is no value, not zero:", *explained]
    if others:
        lines.append(f"{', '.join(others)}: NULL where the value is unknown or not defined "
                     "for the row")
    console.print("[dim]" + "\n".join(lines) + "[/]", highlight=False)
