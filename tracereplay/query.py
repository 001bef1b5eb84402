"""SQL over run directories: the event tables as DuckDB views, and the query library.

``connect`` registers one view per event table (``flushes``, ``migrations``, ``batches``,
``stalls``, ``cpu_stats``; ``accesses`` and ``skipped`` when written) over one or several run
directories, then every view of ``queries/*.sql``. Each view leads with the key columns ``run``
(the run directory as given), ``trace`` (the ``trace=<id>/`` partition of a corpus, NULL
elsewhere) and ``policy`` (the ``policy=<name>/`` partition; ``policy_compare`` has ``metric``
and ``unit`` before it), so one query answers for a run, for several runs side by side, or for a
corpus.

A query file documents itself in its leading comment: ``-- name: one-line description``, a
``Reads:`` line naming the tables and views it reads (which orders the files), and a
``Columns:`` block with each output column, its type and its unit. ``load_sql`` turns the same
files into one script that a DuckDB CLI user runs without tracereplay (``queries/_load.sql``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import pyarrow as pa

from tracereplay._resources import load_schema, resource_dir
from tracereplay.errors import QueryError

__all__ = [
    "KEY_COLUMNS",
    "ColumnDoc",
    "QueryInfo",
    "connect",
    "list_queries",
    "load_sql",
    "query_info",
    "run_query",
]

KEY_COLUMNS = ("run", "trace", "policy")
"""Columns every event view and every library view starts with (``policy_compare`` puts
``metric`` and ``unit`` before ``policy``)."""

LOAD_SQL_NAME = "_load.sql"
"""The generated script for the DuckDB CLI, in ``queries/``."""

_DUCKDB_TYPES = {
    "bool": "BOOLEAN",
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "uint64": "UBIGINT",
    "float64": "DOUBLE",
    "string": "VARCHAR",
}

_NAME_LINE = re.compile(r"--\s*(?P<name>_?[a-z][a-z0-9_]*)\s*:\s*(?P<description>.*\S)\s*$")
_COLUMN_LINE = re.compile(
    r"--\s+(?P<name>[a-z_][a-z0-9_]*)\s+(?P<type>[A-Z][A-Z0-9]*)"
    r"(?:\s+\((?P<unit>[^)]*)\))?\s+(?P<doc>\S.*?)\s*$"
)
_DEFINES = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:VIEW|MACRO)\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)",
    re.IGNORECASE | re.MULTILINE,
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnDoc:
    """One output column of a query, as its header documents it."""

    name: str
    type: str
    unit: str | None
    doc: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryInfo:
    """A file of ``queries/``: the view it defines, its header and what it depends on."""

    name: str
    description: str
    path: Path
    reads: tuple[str, ...]
    defines: tuple[str, ...]
    columns: tuple[ColumnDoc, ...]
    sql: str

    @property
    def public(self) -> bool:
        """A query of the library (files starting with ``_`` hold helpers)."""
        return not self.name.startswith("_")


def _parse(path: Path) -> QueryInfo:
    sql = path.read_text(encoding="utf-8")
    lines = sql.splitlines()
    header: list[str] = []
    for line in lines:
        if not line.startswith("--"):
            break
        header.append(line)
    first = _NAME_LINE.match(header[0]) if header else None
    if first is None or first["name"] != path.stem:
        raise QueryError(f"{path}: a query file must start with '-- {path.stem}: <description>'")
    reads: tuple[str, ...] = ()
    columns: list[ColumnDoc] = []
    in_columns = False
    for line in header[1:]:
        text = line[2:].strip()
        if text.startswith("Reads:"):
            reads = tuple(r.strip() for r in text[6:].strip().rstrip(".").split(",") if r.strip())
        elif text.startswith("Columns:"):
            in_columns = True
        elif in_columns and text:
            m = _COLUMN_LINE.match(line)
            if m is None:
                raise QueryError(f"{path}: cannot read the column line {line!r}")
            columns.append(ColumnDoc(name=m["name"], type=m["type"], unit=m["unit"], doc=m["doc"]))
    return QueryInfo(
        name=path.stem,
        description=first["description"],
        path=path,
        reads=reads,
        defines=tuple(m["name"] for m in _DEFINES.finditer(sql)),
        columns=tuple(columns),
        sql=sql,
    )


@cache
def _catalog(directory: Path) -> tuple[QueryInfo, ...]:
    """The files of ``directory``, each after the files defining what it reads."""
    infos = {p.stem: _parse(p) for p in sorted(directory.glob("*.sql")) if p.name != LOAD_SQL_NAME}
    defined_in = {name: info.name for info in infos.values() for name in info.defines}
    tables = set(_table_names(include_optional=True))
    ordered: list[QueryInfo] = []
    state: dict[str, str] = {}

    def visit(info: QueryInfo, chain: tuple[str, ...]) -> None:
        if state.get(info.name) == "done":
            return
        if state.get(info.name) == "visiting":
            raise QueryError(f"queries read each other in a cycle: {' -> '.join(chain)}")
        state[info.name] = "visiting"
        for read in info.reads:
            if read in tables:
                continue
            if read not in defined_in:
                raise QueryError(f"{info.path}: reads '{read}', which no query file defines")
            if defined_in[read] != info.name:
                dep = infos[defined_in[read]]
                visit(dep, (*chain, dep.name))
        state[info.name] = "done"
        ordered.append(info)

    for info in infos.values():
        visit(info, (info.name,))
    return tuple(ordered)


def _queries() -> tuple[QueryInfo, ...]:
    return _catalog(resource_dir("queries"))


def list_queries() -> list[tuple[str, str]]:
    """(name, one-line description) of every query of the library, by name."""
    return sorted((q.name, q.description) for q in _queries() if q.public)


def query_info(name: str) -> QueryInfo:
    """The header of library query ``name``."""
    for q in _queries():
        if q.public and q.name == name:
            return q
    known = ", ".join(n for n, _ in list_queries())
    raise QueryError(f"unknown query '{name}'; the queries are: {known}")


# --- run directories -------------------------------------------------------------------------


def _table_names(*, include_optional: bool) -> list[str]:
    tables = load_schema("events.v1")["tables"]
    return [n for n, t in tables.items() if include_optional or not t.get("optional", False)]


def _table_columns(table: str) -> list[tuple[str, str]]:
    spec = load_schema("events.v1")["tables"][table]
    return [(c["name"], _DUCKDB_TYPES[c["type"]]) for c in spec["columns"]]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class _Source:
    """Policy directories of one run directory that share a layout (so one read_parquet)."""

    run: str
    dirs: tuple[Path, ...]
    policy: str | None  # when the single policy directory is not named policy=<name>


@dataclass(frozen=True, slots=True)
class _Loaded:
    sources: tuple[_Source, ...]
    runs: int
    corpus: bool


def _policy_from_manifest(policy_dir: Path) -> str:
    manifest = policy_dir / "run.json"
    try:
        policy = json.loads(manifest.read_text(encoding="utf-8")).get("policy")
    except (OSError, ValueError):
        policy = None
    if not isinstance(policy, str) or not policy:
        raise QueryError(
            f"{policy_dir}: cannot tell the policy: the directory is not named policy=<name> "
            f"and {manifest.name} names none"
        )
    return policy


def _sources(run_dir: Path, label: str) -> tuple[list[_Source], bool]:
    if not run_dir.is_dir():
        what = "is not a directory" if run_dir.exists() else "does not exist"
        raise QueryError(f"run directory {label} {what}")
    tables = _table_names(include_optional=False)
    if (run_dir / "run.json").is_file() or any(
        (run_dir / f"{t}.parquet").is_file() for t in tables
    ):
        named = run_dir.resolve().name.startswith("policy=")
        policy = None if named else _policy_from_manifest(run_dir)
        return [_Source(label, (run_dir,), policy)], False
    runs = tuple(sorted(p for p in run_dir.glob("policy=*") if p.is_dir()))
    corpus = tuple(sorted(p for p in run_dir.glob("trace=*/policy=*") if p.is_dir()))
    if not runs and not corpus:
        raise QueryError(
            f"{label} is not a run directory: it holds no policy=<name>/ or "
            f"trace=<id>/policy=<name>/ directories and no event tables"
        )
    found = [_Source(label, dirs, None) for dirs in (runs, corpus) if dirs]
    return found, bool(corpus)


def _resolve(run_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> _Loaded:
    if isinstance(run_dirs, str | os.PathLike):
        run_dirs = [run_dirs]
    labels = [os.path.normpath(os.fspath(d)) for d in run_dirs]
    if not labels:
        raise QueryError("no run directory given")
    seen: set[str] = set()
    sources: list[_Source] = []
    corpus = False
    for label in labels:
        if label in seen:
            raise QueryError(f"run directory {label} is given twice")
        seen.add(label)
        found, is_corpus = _sources(Path(label), label)
        sources.extend(found)
        corpus = corpus or is_corpus
    return _Loaded(tuple(sources), len(labels), corpus)


def _read_parquet(paths_sql: str) -> str:
    return (
        f"read_parquet({paths_sql}, hive_partitioning = true, hive_types_autocast = false, "
        f"union_by_name = true)"
    )


def _table_view(table: str, selects: Sequence[str]) -> str:
    """``CREATE VIEW table``: the key columns, then the schema's columns with their types.

    The typed empty first branch of the union gives every column (a NULL where a file lacks
    it, e.g. ``trace`` outside corpora) and the schema's types, whatever the files hold.
    """
    columns = [("run", "VARCHAR"), ("trace", "VARCHAR"), ("policy", "VARCHAR")]
    columns += _table_columns(table)
    empty = "SELECT " + ", ".join(f"NULL::{t} AS {c}" for c, t in columns) + " WHERE false"
    union = "\n    UNION ALL BY NAME\n    ".join([empty, *selects])
    projection = ",\n    ".join(f"{c}::{t} AS {c}" for c, t in columns)
    return f"CREATE VIEW {table} AS\nSELECT\n    {projection}\nFROM (\n    {union}\n);\n"


def _table_sql(table: str, loaded: _Loaded, *, required: bool) -> str:
    selects = []
    for source in loaded.sources:
        files = []
        for d in source.dirs:
            f = d / f"{table}.parquet"
            if f.is_file():
                files.append(f)
            elif required:
                raise QueryError(f"run {source.run}: {d} has no table '{table}' ({table}.parquet)")
        if not files:
            continue
        paths = "[" + ", ".join(_literal(str(f.resolve())) for f in files) + "]"
        keys = [f"{_literal(source.run)} AS run"]
        if source.policy is not None:
            keys.append(f"{_literal(source.policy)} AS policy")
        selects.append(f"SELECT {', '.join(keys)}, * FROM {_read_parquet(paths)}")
    return _table_view(table, selects)


def _library_sql() -> str:
    return "\n".join(q.sql for q in _queries())


def _execute(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> None:
    try:
        con.execute(sql)
    except duckdb.Error as e:
        raise QueryError(f"{what}: {e}") from None


def _open(
    run_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> tuple[duckdb.DuckDBPyConnection, _Loaded]:
    loaded = _resolve(run_dirs)
    parts = [_table_sql(t, loaded, required=True) for t in _table_names(include_optional=False)]
    optional = set(_table_names(include_optional=True)) - set(_table_names(include_optional=False))
    parts += [_table_sql(t, loaded, required=False) for t in sorted(optional)]
    con = duckdb.connect()
    _execute(con, "\n".join(parts), "cannot read the event tables")
    for q in _queries():
        _execute(con, q.sql, f"query file {q.path.name}")
    return con, loaded


def connect(
    run_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the event tables of ``run_dirs`` and the library.

    Each of ``run_dirs`` may be a policy directory (``policy=<name>/``), a run directory holding
    ``policy=*/`` directories, or a corpus holding ``trace=*/policy=*/``. A missing directory or
    a policy directory without one of the event tables raises ``QueryError``.
    """
    con, _ = _open(run_dirs)
    return con


# --- queries ---------------------------------------------------------------------------------


def _split(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> list[str]:
    try:
        statements = [s.query for s in con.extract_statements(sql)]
    except duckdb.Error as e:
        raise QueryError(f"{what}: {e}") from None
    if not statements:
        raise QueryError(f"{what}: holds no SQL statement")
    return statements


def _user_sql(con: duckdb.DuckDBPyConnection, sql: str, what: str, view: str | None) -> pa.Table:
    """Run a user's statements; the answer is the last one's rows, or view ``view``."""
    statements = _split(con, sql, what)
    try:
        for statement in statements[:-1]:
            con.execute(statement)
        last = statements[-1]
        kind = con.extract_statements(last)[0].type
        if kind == duckdb.StatementType.SELECT:
            return con.sql(last).to_arrow_table()
        con.execute(last)
        views = {r[0] for r in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
        if view is not None and view in views:
            return con.sql(f'FROM "{view}"').to_arrow_table()
    except duckdb.Error as e:
        raise QueryError(f"{what}: {e}") from None
    hint = f" and defines no view named '{view}'" if view is not None else ""
    raise QueryError(f"{what}: the last statement returns no rows{hint}")


def run_query(
    query: str | os.PathLike[str],
    run_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> pa.Table:
    """Run ``query`` over ``run_dirs`` and return its rows.

    ``query`` is the name of a library query (``flush_counts``), the path of a ``.sql`` file, or
    SQL text. A file or text may hold several statements: the rows of the last one are the
    answer, or, when it creates a view named like the file, that view's rows. Every view of the
    library can be read from either.

    A library query's answer leaves out ``run`` when one run directory is given and ``trace``
    when none of them is a corpus; SQL of one's own gets exactly the columns it selects.
    """
    con, loaded = _open(run_dirs)
    text = os.fspath(query)
    if isinstance(query, os.PathLike) or text.endswith(".sql"):
        path = Path(text)
        try:
            sql = path.read_text(encoding="utf-8")
        except OSError as e:
            raise QueryError(f"cannot read query file {path}: {e.strerror or e}") from None
        return _user_sql(con, sql, f"query file {path}", path.stem)
    if _IDENTIFIER.fullmatch(text):
        info = query_info(text)
        try:
            table = con.sql(f'FROM "{info.name}"').to_arrow_table()
        except duckdb.Error as e:
            raise QueryError(f"query '{info.name}': {e}") from None
        drop = []
        if loaded.runs == 1:
            drop.append("run")
        if not loaded.corpus:
            drop.append("trace")
        return table.drop_columns([c for c in drop if c in table.column_names])
    return _user_sql(con, text, "SQL", None)


# --- the DuckDB CLI --------------------------------------------------------------------------


def load_sql() -> str:
    """The script that gives a DuckDB CLI user the views of ``connect`` over one run.

    It reads the variable ``run``, a glob of policy directories (``out/policy=*``,
    ``corpus/trace=*/policy=*`` or one ``out/policy=serial``), set before it is read::

        duckdb -cmd "SET VARIABLE run = 'out/policy=*'" -cmd ".read queries/_load.sql" \\
            -c "FROM policy_compare"
    """
    head = (
        "-- Generated from schemas/events.v1.json and queries/*.sql by tracereplay.query."
        "load_sql();\n"
        "-- do not edit. Set the variable run to a glob of policy directories first:\n"
        '--   duckdb -cmd "SET VARIABLE run = \'out/policy=*\'" -cmd ".read queries/_load.sql" '
        '-c "FROM policy_compare"\n'
    )
    parts = [head]
    for table in _table_names(include_optional=False):
        paths = f"getvariable('run') || '/{table}.parquet'"
        select = f"SELECT getvariable('run') AS run, * FROM {_read_parquet(paths)}"
        parts.append(_table_view(table, [select]))
    parts.append(_library_sql())
    return "\n".join(parts)
