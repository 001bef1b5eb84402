"""Turn a golden case's CSV event tables into a run directory, and answers into CSV text.

A case directory holds its input under ``runs/`` in the layout of real output
(``<run>/policy=<name>/<table>.csv``, or ``<corpus>/trace=<id>/policy=<name>/<table>.csv``);
columns a CSV leaves out are NULL, as are its empty cells. Tables a policy directory lacks are
written empty. Expected answers are ``expected/<query>.csv``.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pyarrow as pa

from tracereplay._resources import load_schema
from tracereplay.events import PolicyRunWriter, to_table

GOLDEN = Path(__file__).resolve().parent

_PARSE = {
    "bool": lambda s: {"true": True, "false": False}[s],
    "int8": int,
    "int16": int,
    "int32": int,
    "int64": int,
    "uint64": int,
    "float64": float,
    "string": str,
}


def read_table(name: str, path: Path) -> pa.Table:
    """Event table ``name`` from a CSV file typed by ``schemas/events.v1.json``."""
    types = {c["name"]: c["type"] for c in load_schema("events.v1")["tables"][name]["columns"]}
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
        header = list(rows[0]) if rows else next(csv.reader(path.open(encoding="utf-8")))
    columns = {c: [None if r[c] == "" else _PARSE[types[c]](r[c]) for r in rows] for c in header}
    return to_table(name, columns)


def build_runs(case: str, dest: Path) -> Path:
    """Write the run directories of golden case ``case`` under ``dest``; returns ``dest``."""
    src = GOLDEN / case / "runs"
    for policy_dir in sorted(p for p in src.rglob("policy=*") if p.is_dir()):
        rel = policy_dir.parent.relative_to(src)
        out = dest / rel
        out.mkdir(parents=True, exist_ok=True)
        policy = policy_dir.name.removeprefix("policy=")
        with PolicyRunWriter(out, policy) as w:
            for f in sorted(policy_dir.glob("*.csv")):
                w.write(f.stem, read_table(f.stem, f))
        w.commit({"tool": "golden", "case": case})
        manifest = policy_dir / "run.json"
        if manifest.is_file():  # a case may replace the manifest (e.g. to test its policy)
            shutil.copy(manifest, out / policy_dir.name / "run.json")
    return dest


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return format(v, ".10g")
    return str(v)


def to_csv(table: pa.Table) -> str:
    """CSV text of an answer: NULL is an empty cell, floats keep 10 significant digits."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.column_names)
    for row in table.to_pylist():
        w.writerow([_cell(row[c]) for c in table.column_names])
    return buf.getvalue()
