"""The report as one self-contained HTML page: styles inline, figures inline as SVG, no script
and nothing fetched, so it opens from disk anywhere."""

from __future__ import annotations

import html
from typing import Any

from tracereplay import __version__, seed
from tracereplay.report.data import MAX_SERIES, ReportData
from tracereplay.report.figures import Drawn

__all__ = ["render"]

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 62em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 2em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.chosen td { background: #fff4d6; font-weight: 600; }
figure { margin: 1.2em 0 2em; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
"""

_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("pages migrated", "pages_migrated", "int"),
    ("pages/s", "pages_per_s", "float"),
    ("% of best", "pct_of_best", "pct"),
    ("first folio p50", "first_folio_p50_ns", "ns"),
    ("first folio p99", "first_folio_p99_ns", "ns"),
    ("stall p99", "stall_p99_ns", "ns"),
    ("stalled accesses", "stalled_accesses", "int"),
    ("IPIs sent", "ipis_sent", "int"),
    ("useful IPIs", "ipis_useful", "int"),
)


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "–"
    if kind == "float":
        return f"{v:,.0f}"
    if kind == "pct":
        return f"{v:.1f}%"
    if kind == "ns":
        return f"{v / 1000:,.1f} µs"
    return f"{v:,}"


def _summary(d: ReportData) -> str:
    sweep = d.kind == "sweep"
    head = ["series", *(c[0] for c in _COLUMNS if sweep or c[1] != "pct_of_best")]
    if sweep:
        head.append("chosen")
    rows = []
    for r in d.summary:
        cells = [html.escape(r["series"])]
        cells += [_fmt(r[key], kind) for _, key, kind in _COLUMNS if sweep or key != "pct_of_best"]
        if sweep:
            cells.append("★" if r["chosen"] else "")
        cls = ' class="chosen"' if sweep and r["chosen"] else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    note = ("<p>Chosen: among the points of one trace and policy within 5% of the best pages/s, "
            "the one with the lowest first-folio p99 latency (query <code>tradeoff</code>).</p>"
            if sweep else "")
    return ("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) +
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>" + note)


def _seed(d: ReportData) -> str:
    if not d.seed:
        return ""
    rows = []
    for r in d.seed:
        change = r["seed_change_pct"] is not None
        model = r["change_pct"] if change else r["value"]
        published = r["seed_change_pct"] if change else r["seed_value"]
        label = f"{r['metric']}, {r['policy']}" + (f" vs {r['baseline_policy']}" if change else "")
        sign = "+" if change else ""
        rows.append(f"<tr><td>{html.escape(label)}</td><td>"
                    f"{'–' if model is None else format(model, sign + '.1f')}</td><td>"
                    f"{published:{sign}.1f}</td><td>{html.escape(str(r['unit']) if not change else '%')}"
                    "</td></tr>")
    return ("<h2>The seed experiment</h2><p class='meta'>" + html.escape(seed.SOURCE) + "</p>"
            "<table><thead><tr><th>figure</th><th>model</th><th>seed</th><th>unit</th></tr>"
            "</thead><tbody>" + "".join(rows) + "</tbody></table>")


def _figure(f: Drawn) -> str:
    return (f'<figure id="fig-{html.escape(f.id)}"><h2>{html.escape(f.title)}</h2>{f.svg}'
            f"<figcaption>{html.escape(f.reading)}</figcaption></figure>")


def render(d: ReportData, figures: list[Drawn], title: str | None = None) -> str:
    """The HTML text of the report."""
    what = {"run": "run directory", "batch": "batch results", "sweep": "sweep"}[d.kind]
    title = title or f"tracereplay report: {d.source}"
    left = (f"<p class='meta'>Figures per series show the first {MAX_SERIES} series; "
            f"{d.left_out} more are in the table only.</p>" if d.left_out else "")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='meta'>{what} <code>{html.escape(d.source)}</code>; "
        f"tracereplay {html.escape(__version__)}</p>"
        "<h2>Summary</h2>" + _summary(d) + _seed(d) + left +
        "".join(_figure(f) for f in figures) + "</body></html>\n"
    )
