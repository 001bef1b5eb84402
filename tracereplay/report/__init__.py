"""``write_report(path, out)``: one self-contained HTML page of figures for a run directory, a
batch results directory or a sweep.

The modules: ``data`` reads what the figures draw through the query library, ``figures``
draws each with matplotlib as inline SVG (title, axis units, a one-line reading), ``page``
lays them out with the summary table and the seed's figures where they apply.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from tracereplay.report.data import ReportData, load
from tracereplay.report.figures import Drawn, draw_all
from tracereplay.report.page import render

__all__ = ["Drawn", "ReportData", "draw_all", "load", "render", "write_report"]


def write_report(path: str | os.PathLike[str], out: str | os.PathLike[str],
                 *, title: str | None = None) -> list[Drawn]:
    """Write the report of ``path`` to ``out`` (whole or not at all); returns its figures."""
    data = load(path)
    figures = draw_all(data)
    target = Path(out)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(render(data, figures, title), encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return figures
