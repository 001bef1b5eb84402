"""``tracereplay query``: run a query of the library, a SQL file or SQL text over run directories."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.table import Table

from tracereplay._output import check_file, replacing
from tracereplay.cli._app import app, err, out
from tracereplay.cli._tables import null_reasons, print_table
from tracereplay.errors import QueryError
from tracereplay.query import connect, list_queries, query_info, run_query


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


MAX_TABLE_ROWS = 200
"""Rows printed as a table at most; the formats csv, json and parquet give them all."""


def _print_table(table: pa.Table, title: str, name: str | None, run_dirs: list[Path]) -> None:
    """Rows as a table that fits the terminal (``_tables``); no rows, with what the runs hold."""
    if table.num_rows == 0:
        counts = ", ".join(f"{t} {n:,}" for t, n in _event_counts(run_dirs).items())
        out.print(f"{title}: no rows. The runs hold {counts} rows"
                  + (" (a trace without migrate rows gives no migrations, flushes or batches)"
                     if "migrations 0" in counts else "") + ".", highlight=False)
        return
    if table.num_rows > MAX_TABLE_ROWS:
        err.print(
            f"showing {MAX_TABLE_ROWS} of {table.num_rows:,} rows; "
            "--format csv, json or parquet gives them all"
        )
        table = table.slice(0, MAX_TABLE_ROWS)
    reasons = null_reasons([(c.name, c.doc) for c in query_info(name).columns]) if name else {}
    print_table(out, table, title, reasons)


def _event_counts(run_dirs: list[Path]) -> dict[str, int]:
    con = connect(run_dirs, views=[])
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in ("migrations", "flushes", "batches", "stalls")}
    finally:
        con.close()


def _write(table: pa.Table, fmt: Format, output: Path | None) -> None:
    if output is None:
        if fmt is Format.csv:
            pacsv.write_csv(table, sys.stdout.buffer)
            sys.stdout.flush()
        else:
            sys.stdout.write(_json(table))
        return
    with replacing(output, "-o") as tmp:
        if fmt is Format.parquet:
            pq.write_table(table, tmp)
        elif fmt is Format.csv:
            pacsv.write_csv(table, tmp)
        else:
            tmp.write_text(_json(table), encoding="utf-8")


def _json(table: pa.Table) -> str:
    return json.dumps(table.to_pylist(), indent=1, default=str) + "\n"


RunsArg = typer.Argument(
    None,
    metavar="RUN...",
    help="Run directories: OUT/, OUT/policy=<name>/ or a corpus with trace=<id>/policy=<name>/.",
    show_default=False,
)
FormatOpt = typer.Option(
    None,
    "--format",
    "-f",
    help="Output format (default: table, or what the extension of -o names).",
    show_default=False,
)
OutputOpt = typer.Option(
    None,
    "--output",
    "-o",
    help="Write to FILE, in the format its extension names (.csv, .json, .parquet) unless "
    "--format is given; without -o, csv and json go to stdout.",
)
_EXTENSIONS = {".csv": Format.csv, ".json": Format.json, ".parquet": Format.parquet}


def _output_format(fmt: Format | None, output: Path | None) -> Format:
    """``fmt`` when given; else the format ``output``'s extension names; else a table."""
    if fmt is not None:
        return fmt
    if output is None:
        return Format.table
    known = _EXTENSIONS.get(output.suffix.lower())
    if known is None:
        ext = f"the extension '{output.suffix}'" if output.suffix else "a name without extension"
        raise QueryError(
            f"-o {output}: cannot tell the format from {ext} (known: "
            f"{', '.join(_EXTENSIONS)}); give --format csv, json or parquet"
        )
    return known


@app.command()
def query(
    name: str | None = typer.Argument(
        None, metavar="NAME|FILE.sql", help="A query of the library (see --list) or a SQL file."
    ),
    runs: list[Path] | None = RunsArg,
    sql: str | None = typer.Option(
        None, "--sql", help="SQL text to run instead of NAME (every run argument is a run)."
    ),
    fmt: Format | None = FormatOpt,
    output: Path | None = OutputOpt,
    list_: bool = typer.Option(False, "--list", help="List the queries of the library."),
) -> None:
    """Answer with SQL: run a query over the event tables of run directories."""
    if list_:
        if name is not None or runs or sql is not None:
            raise QueryError("--list takes no query, SQL or run directory")
        view = Table("query", "answers", title="queries", title_justify="left")
        for q, description in list_queries():
            view.add_row(q, description)
        out.print(view)
        return
    run_dirs = list(runs or [])
    if sql is not None:
        if name is not None:
            run_dirs.insert(0, Path(name))
        what: str | Path = sql
    elif name is None:
        raise QueryError("name a query (see tracereplay query --list), a SQL file or --sql TEXT")
    else:
        what = Path(name) if name.endswith(".sql") else name
    if not run_dirs:
        raise QueryError("name at least one run directory")
    # Where the answer goes is checked before the query runs.
    fmt = _output_format(fmt, output)
    if output is not None:
        if fmt is Format.table:
            raise QueryError("-o needs --format csv, json or parquet")
        check_file(output, "-o")
    elif fmt is Format.parquet:
        raise QueryError("--format parquet needs -o FILE")
    table = run_query(what, run_dirs)
    if fmt is Format.table:
        library = name if sql is None and name is not None and not name.endswith(".sql") else None
        _print_table(table, name if sql is None and name is not None else "SQL", library,
                     run_dirs)
    else:
        _write(table, fmt, output)
