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

Views that are data rather than queries are generated here, ahead of the files:
``_seed_figures``, the seed's published figures, from ``tracereplay.seed``.
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
import pyarrow.compute as pc

from tracereplay import seed
from tracereplay._resources import load_schema, resource_dir
from tracereplay.errors import QueryError

__all__ = [
    "KEY_COLUMNS",
    "ColumnDoc",
    "QueryInfo",
    "Session",
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
    r"--\s+(?P<name>[a-z_][a-z0-9_]*)\s+(?P<type>[A-Z][A-Z0-9]*(?:\([A-Z0-9, ]+\))?)"
    r"(?:\s+\((?P<unit>[^)]*)\))?\s+(?P<doc>\S.*?)\s*$"
)
_DEFINES = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?P<kind>VIEW|MACRO|TABLE)\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)",
    re.IGNORECASE | re.MULTILINE,
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _seed_figures_sql() -> str:
    """``_seed_figures``: the figures of ``tracereplay.seed``, one row each."""
    rows = []
    for f in seed.FIGURES:
        value = "NULL" if f.change else repr(f.value_pct)
        change = repr(f.value_pct) if f.change else "NULL"
        cells = [_literal(v) for v in (f.name, f.label, f.metric, f.policy, seed.BASELINE_POLICY)]
        rows.append(f"({', '.join(cells)}, {value}::DOUBLE, {change}::DOUBLE, "
                    f"{_literal(seed.TRACE_SHA256)})")
    values = ",\n    ".join(rows)
    return (
        "-- _seed_figures: The seed's published figures; generated from tracereplay/seed.py\n"
        "--\n"
        f"-- Source: {seed.SOURCE}.\n"
        "-- One row per figure: the value of a metric of policy_compare for one policy, or the\n"
        "-- relative change of the metric from baseline_policy to that policy.\n"
        "--\n"
        "-- Columns:\n"
        "--   figure           VARCHAR       the figure's key (tracereplay.seed)\n"
        "--   label            VARCHAR       what it measures, in words\n"
        "--   metric           VARCHAR       the metric of policy_compare it gives\n"
        "--   policy           VARCHAR       the policy it was measured for\n"
        "--   baseline_policy  VARCHAR       the policy the seed's changes are measured from\n"
        "--   seed_value       DOUBLE        the measured value, in the metric's unit; NULL for a change\n"
        "--   seed_change_pct  DOUBLE  (%)   the measured change from baseline_policy; NULL for a value\n"
        "--   trace_sha256     VARCHAR       sha256 of the seed experiment's trace (sample_traces/seed.parquet)\n"
        "\n"
        "CREATE VIEW _seed_figures AS\n"
        "SELECT * FROM (VALUES\n"
        f"    {values}\n"
        ") AS seed(figure, label, metric, policy, baseline_policy, seed_value, seed_change_pct, "
        "trace_sha256);\n"
    )


_GENERATED = {"_seed_figures": _seed_figures_sql}

RUN_TRACES = "_run_traces"
"""The view of each policy directory's trace, from its ``run.json``: run, trace, policy,
trace_sha256 (NULL where the manifest gives none), faults_captured (a measured run whose
capture holds the page faults, so its stalls are known), closed_loop (a replay's mode; NULL for
a measured run and manifests that predate the mode), call_start (a replay's
``migrate.call_start``: 'queued' or 'trace'; NULL likewise)."""


def _run_traces_select(paths_sql: str, run_sql: str, policy_sql: str) -> str:
    """Rows of ``_run_traces`` from the ``run.json`` files ``paths_sql``: the corpus's trace id
    from the ``trace=<id>/`` of the path, the sha256 of the replayed trace from the manifest."""
    return (
        f"SELECT {run_sql}::VARCHAR AS run, "
        "nullif(regexp_extract(filename, 'trace=([^/]+)/policy=', 1), '')::VARCHAR AS trace, "
        f"{policy_sql}::VARCHAR AS policy, "
        "(json ->> '$.trace.sha256')::VARCHAR AS trace_sha256, "
        "((json -> '$.stalls') IS NOT NULL)::BOOLEAN AS faults_captured, "
        "(json ->> '$.closed_loop')::BOOLEAN AS closed_loop, "
        "(json ->> '$.config.migrate.call_start')::VARCHAR AS call_start "
        f"FROM read_json_objects({paths_sql}, filename = true)"
    )


_RUN_TRACES_EMPTY = ("SELECT NULL::VARCHAR AS run, NULL::VARCHAR AS trace, NULL::VARCHAR AS policy, "
                     "NULL::VARCHAR AS trace_sha256, NULL::BOOLEAN AS faults_captured, "
                     "NULL::BOOLEAN AS closed_loop, NULL::VARCHAR AS call_start WHERE false")
"""Views generated from data of the package, by name, created before the query files."""


def _generated_sql() -> str:
    return "\n".join(make() for make in _GENERATED.values())


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
    fills: bool = False  # creates a table: holds rows of the run directories it was loaded over

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
        fills=any(m["kind"].upper() == "TABLE" for m in _DEFINES.finditer(sql)),
        columns=tuple(columns),
        sql=sql,
    )


@cache
def _catalog(directory: Path) -> tuple[QueryInfo, ...]:
    """The files of ``directory``, each after the files defining what it reads."""
    infos = {p.stem: _parse(p) for p in sorted(directory.glob("*.sql")) if p.name != LOAD_SQL_NAME}
    defined_in = {name: info.name for info in infos.values() for name in info.defines}
    tables = set(_table_names(include_optional=True)) | set(_GENERATED) | {RUN_TRACES}
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


def _sources(run_dir: Path, label: str, policy: str | None) -> tuple[list[_Source], bool]:
    if not run_dir.is_dir():
        what = "is not a directory" if run_dir.exists() else "does not exist"
        raise QueryError(f"run directory {label} {what}")
    tables = _table_names(include_optional=False)
    if (run_dir / "run.json").is_file() or any(
        (run_dir / f"{t}.parquet").is_file() for t in tables
    ):
        if run_dir.resolve().name.startswith("policy="):
            policy = None
        elif policy is None:
            policy = _policy_from_manifest(run_dir)
        return [_Source(label, (run_dir,), policy)], False
    if (run_dir / "sweep.json").is_file():
        return _sweep_sources(run_dir, label), True
    runs = tuple(sorted(p for p in run_dir.glob("policy=*") if p.is_dir()))
    corpus = tuple(sorted(p for p in run_dir.glob("trace=*/policy=*") if p.is_dir()))
    if not runs and not corpus:
        raise QueryError(
            f"{label} is not a run directory: it holds no policy=<name>/ or "
            f"trace=<id>/policy=<name>/ directories and no event tables"
        )
    found = [_Source(label, dirs, None) for dirs in (runs, corpus) if dirs]
    return found, bool(corpus)


def _sweep_sources(run_dir: Path, label: str) -> list[_Source]:
    """A sweep (tracereplay sweep): each point with results is a run, labelled by its
    directory (``label/migrate_batch_size=8``), holding trace=<id>/policy=<name>/."""
    try:
        points = json.loads((run_dir / "sweep.json").read_text(encoding="utf-8"))["points"]
        paths = [str(p["path"]) for p in points]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise QueryError(f"{label}/sweep.json: cannot read its points: {e}") from None
    found = []
    for path in paths:
        dirs = tuple(sorted(p for p in (run_dir / path).glob("trace=*/policy=*") if p.is_dir()))
        if dirs:
            found.append(_Source(f"{label}/{path}", dirs, None))
    if not found:
        raise QueryError(f"sweep {label} holds no results yet")
    return found


def _resolve(
    run_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], policy: str | None
) -> _Loaded:
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
        found, is_corpus = _sources(Path(label), label, policy)
        sources.extend(found)
        corpus = corpus or is_corpus
    return _Loaded(tuple(sources), len({s.run for s in sources}), corpus)


def _read_parquet(paths_sql: str) -> str:
    return (
        f"read_parquet({paths_sql}, hive_partitioning = true, hive_types_autocast = false, "
        f"union_by_name = true)"
    )


def _columns(table: str) -> list[tuple[str, str]]:
    """The key columns, then the schema's columns of ``table``, with their DuckDB types."""
    return [("run", "VARCHAR"), ("trace", "VARCHAR"), ("policy", "VARCHAR"), *_table_columns(table)]


def _table_view(table: str, selects: Sequence[str]) -> str:
    """``CREATE VIEW table`` over files not known yet: the key columns, then the schema's
    columns with their types.

    The typed empty first branch of the union gives every column (a NULL where a file lacks
    it, e.g. ``trace`` outside corpora) and the schema's types, whatever the files hold.
    """
    columns = _columns(table)
    empty = "SELECT " + ", ".join(f"NULL::{t} AS {c}" for c, t in columns) + " WHERE false"
    union = "\n    UNION ALL BY NAME\n    ".join([empty, *selects])
    projection = ",\n    ".join(f"{c}::{t} AS {c}" for c, t in columns)
    return f"CREATE OR REPLACE VIEW {table} AS\nSELECT\n    {projection}\nFROM (\n    {union}\n);\n"


def _table_sql(
    con: duckdb.DuckDBPyConnection, table: str, loaded: _Loaded, *, required: bool
) -> str:
    """``CREATE VIEW table`` over the files of ``loaded``, with the columns of ``_table_view``.

    The files are known, so each source is one projection of its scan that casts the columns
    the files have and gives NULL for those they lack: a view that costs a query no more to
    bind than the scan (every library view reads several of them, each more than once).
    """
    columns = _columns(table)
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
        scan = _read_parquet(paths)
        try:
            present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        except duckdb.Error as e:
            raise QueryError(f"cannot read the event tables: {e}") from None
        given = {"run": _literal(source.run)}
        if source.policy is not None:
            given["policy"] = _literal(source.policy)
        cells = []
        for name, sql_type in columns:
            value = given.get(name) or (f'"{name}"' if name in present else "NULL")
            cells.append(f"{value}::{sql_type} AS {name}")
        selects.append(f"SELECT\n    {', '.join(cells)}\nFROM {scan}")
    if not selects:
        return _table_view(table, [])
    return f"CREATE OR REPLACE VIEW {table} AS\n" + "\nUNION ALL\n".join(selects) + ";\n"


def _library_sql() -> str:
    return "\n".join([_generated_sql(), *(q.sql for q in _queries())])


def _execute(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> None:
    try:
        con.execute(sql)
    except duckdb.Error as e:
        raise QueryError(f"{what}: {e}") from None


def _needed(views: Iterable[str]) -> list[QueryInfo]:
    """The query files that define ``views`` and what they read, in catalog order."""
    catalog = _queries()
    defined_in = {name: q for q in catalog for name in q.defines}
    needed: set[str] = set()
    todo = list(views)
    while todo:
        name = todo.pop()
        if name not in defined_in:
            if name in _GENERATED or name == RUN_TRACES or name in _table_names(include_optional=True):
                continue
            raise QueryError(f"no query file defines a view named '{name}'")
        q = defined_in[name]
        if q.name not in needed:
            needed.add(q.name)
            todo.extend(q.reads)
    return [q for q in catalog if q.name in needed]


def _point(
    con: duckdb.DuckDBPyConnection,
    run_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    policy: str | None,
) -> _Loaded:
    """(Re)create the event-table views of ``con`` over ``run_dirs``."""
    loaded = _resolve(run_dirs, policy)
    required = _table_names(include_optional=False)
    optional = sorted(set(_table_names(include_optional=True)) - set(required))
    parts = [_table_sql(con, t, loaded, required=True) for t in required]
    parts += [_table_sql(con, t, loaded, required=False) for t in optional]
    selects = []
    for source in loaded.sources:
        files = [d / "run.json" for d in source.dirs if (d / "run.json").is_file()]
        if files:
            paths = "[" + ", ".join(_literal(str(f.resolve())) for f in files) + "]"
            policy_sql = (_literal(source.policy) if source.policy is not None
                          else "coalesce(nullif(regexp_extract(filename, 'policy=([^/]+)/run.json', 1), ''), json ->> '$.policy')")
            selects.append(_run_traces_select(paths, _literal(source.run), policy_sql))
    parts.append(f"CREATE OR REPLACE VIEW {RUN_TRACES} AS\n"
                 + "\nUNION ALL\n".join(selects or [_RUN_TRACES_EMPTY]) + ";\n")
    _execute(con, "\n".join(parts), "cannot read the event tables")
    return loaded


def _create(con: duckdb.DuckDBPyConnection, infos: Iterable[QueryInfo]) -> None:
    _execute(con, _generated_sql(), "generated views")
    for q in infos:
        _execute(con, q.sql, f"query file {q.path.name}")


def _open(
    run_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    policy: str | None = None,
    infos: Iterable[QueryInfo] | None = None,
) -> tuple[duckdb.DuckDBPyConnection, _Loaded]:
    con = duckdb.connect()
    try:
        loaded = _point(con, run_dirs, policy)
        _create(con, _queries() if infos is None else infos)
    except BaseException:
        con.close()
        raise
    return con, loaded


class Session:
    """One DuckDB connection with library views, read over one run directory after another.

    Binding the views is most of the time of a query over a small run; a session binds them
    once and then only points the event tables at the next run directories (and fills again
    the helper tables of the library, e.g. ``_policies``). Not for several threads at once.
    """

    def __init__(self, views: Iterable[str] | None = None) -> None:
        self._infos = tuple(_queries() if views is None else _needed(views))
        self._con: duckdb.DuckDBPyConnection | None = None

    def read(
        self,
        run_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        policy: str | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """The connection, its views over ``run_dirs`` (as ``connect`` takes them)."""
        if self._con is None:
            self._con, _ = _open(run_dirs, policy, self._infos)
            return self._con
        _point(self._con, run_dirs, policy)
        for q in self._infos:
            if q.fills:
                _execute(self._con, q.sql, f"query file {q.path.name}")
        return self._con


def connect(
    run_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    policy: str | None = None,
    views: Iterable[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the event tables of ``run_dirs`` and the library.

    Each of ``run_dirs`` may be a policy directory (``policy=<name>/``), a run directory holding
    ``policy=*/`` directories, or a corpus holding ``trace=*/policy=*/``. A missing directory or
    a policy directory without one of the event tables raises ``QueryError``. ``policy`` names
    the policy of a policy directory whose name and ``run.json`` do not (one being written);
    otherwise a directory not named ``policy=<name>`` takes it from its ``run.json``.
    ``views`` limits the library views to those named and what they read: binding a view
    costs time, and a caller that reads a few opens faster.
    """
    con, _ = _open(run_dirs, policy, None if views is None else _needed(views))
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
        return _params_as_columns(table.drop_columns([c for c in drop if c in table.column_names]))
    return _user_sql(con, text, "SQL", None)


def _params_as_columns(table: pa.Table) -> pa.Table:
    """A library answer's ``params`` (a sweep point's value by partition column) as one column
    per key in its place, typed as DuckDB types hive partitions: integers, else floats, else
    text."""
    if "params" not in table.column_names:
        return table
    maps = table.column("params").to_pylist()
    rows = [dict(m) if m else {} for m in maps]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    at = table.column_names.index("params")
    table = table.remove_column(at)
    for key in reversed(keys):
        values = [r.get(key) for r in rows]
        array = pa.array(values, pa.string())
        for kind in (pa.int64(), pa.float64()):
            try:
                array = pc.cast(array, kind)
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        table = table.add_column(at, key, array)
    return table


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
    select = _run_traces_select("getvariable('run') || '/run.json'", "getvariable('run')",
                                "json ->> '$.policy'")
    parts.append(f"CREATE OR REPLACE VIEW {RUN_TRACES} AS\n{select};\n")
    parts.append(_library_sql())
    return "\n".join(parts)
