"""The report's figures, drawn with matplotlib as inline SVG: each has a title, axis units and
a one-line reading of what it shows."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures are written, never shown

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from tracereplay.report.data import PHASES, ReportData

__all__ = ["Drawn", "draw_all"]

_COLORS = {"unmap": "#4c72b0", "flush": "#c44e52", "copy": "#55a868", "remap": "#8172b2",
           "other": "#937860"}
_RC: dict[str, Any] = {"svg.hashsalt": "tracereplay", "svg.fonttype": "path", "font.size": 9,
       "axes.spines.top": False, "axes.spines.right": False}


@dataclass(frozen=True, slots=True)
class Drawn:
    """One figure: its id, title, reading and SVG text."""

    id: str
    title: str
    reading: str
    svg: str


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # the XML prolog and doctype do not belong inside HTML


def _us(ns: float) -> str:
    return f"{ns / 1000:,.1f} µs"


def phases(d: ReportData) -> Drawn | None:
    if not d.phases:
        return None
    names = list(d.phases)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(names)))
    left = np.zeros(len(names))
    for p in PHASES:
        ms = np.array([d.phases[n][p] / 1e6 for n in names])
        ax.barh(names, ms, left=left, color=_COLORS[p], label=p)
        left += ms
    ax.invert_yaxis()
    ax.set_xlabel("migration time (ms, sum of batch durations)")
    ax.legend(ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    top = max(names, key=lambda n: sum(d.phases[n].values()))
    tot = sum(d.phases[top].values()) or 1
    share = {p: d.phases[top][p] / tot for p in PHASES}
    big = max(share, key=lambda p: share[p])
    reading = (f"{top} spends the most time migrating ({sum(d.phases[top].values()) / 1e6:,.2f} ms), "
               f"{share[big]:.0%} of it in {big}.")
    return Drawn("phases", "Migration time split per policy", reading, _svg(fig))


def _cdf(values: dict[str, np.ndarray], xlabel: str, fid: str, title: str,
         what: str) -> Drawn | None:
    values = {k: v for k, v in values.items() if len(v)}
    if not values:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for name, v in values.items():
        y = np.arange(1, len(v) + 1) / len(v)
        ax.step(v / 1000, y, where="post", label=f"{name} (n={len(v):,})")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of " + what + " at or below")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    p99 = {k: float(np.quantile(v, 0.99, method="inverted_cdf")) for k, v in values.items()}
    lo, hi = min(p99, key=lambda k: p99[k]), max(p99, key=lambda k: p99[k])
    reading = (f"p99 {what}: {hi} {_us(p99[hi])}" +
               (f", {lo} {_us(p99[lo])}." if lo != hi else "."))
    return Drawn(fid, title, reading, _svg(fig))


def stalls(d: ReportData) -> Drawn | None:
    return _cdf(d.stalls, "stall (µs, log scale)", "stalls",
                "CDF of stall time per policy", "stalled accesses")


def windows(d: ReportData) -> Drawn | None:
    return _cdf(d.windows, "unmapped window: remap - unmap (µs, log scale)", "windows",
                "CDF of the unmapped window per policy", "migrated pages")


def ipis(d: ReportData) -> Drawn | None:
    rows = {k: v for k, v in d.rounds.items() if v[0]}
    if not rows:
        return None
    names = list(rows)
    sent = np.array([rows[n][1] / rows[n][0] for n in names])
    useful = np.array([rows[n][2] / rows[n][0] for n in names])
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.5 * len(names)))
    y = np.arange(len(names))
    ax.barh(y - 0.2, sent, height=0.4, color="#c44e52", label="IPIs sent")
    ax.barh(y + 0.2, useful, height=0.4, color="#55a868", label="IPIs that found a translation")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("IPIs per flush round that sent IPIs")
    ax.legend(frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    parts = [f"{n}: {rows[n][2] / max(rows[n][1], 1):.0%} useful of {rows[n][1]:,} IPIs in "
             f"{rows[n][0]:,} rounds" for n in names[:3]]
    return Drawn("ipis", "IPIs and useful IPIs per flush round", "; ".join(parts) + ".", _svg(fig))


def timeline(d: ReportData) -> Drawn | None:
    c = d.call
    if not c or not c["batches"]:
        return None
    bs = c["batches"]
    t0 = bs[0]["start_ns"]
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.28 * len(bs)))
    for i, b in enumerate(bs):
        x = (b["start_ns"] - t0) / 1000
        for p in PHASES:
            w = (b[f"{p}_ns"] or 0) / 1000
            if w:
                ax.broken_barh([(x, w)], (i - 0.4, 0.8), color=_COLORS[p],
                               label=p if i == 0 else None)
            x += w
        if b["first_remap_ns"] is not None:
            ax.plot([(b["first_remap_ns"] - t0) / 1000], [i], marker="|", color="black",
                    markersize=9, label="first page usable again" if i == 0 else None)
    ax.set_yticks(range(len(bs)), [f"batch {b['batch_id']} ({b['pages']} p)" for b in bs],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time since the call's first batch started (µs)")
    ax.legend(ncol=6, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=7)
    first = bs[0]
    ff = None if first["first_remap_ns"] is None else first["first_remap_ns"] - first["start_ns"]
    cut = f" (first {len(bs)} of {c['total']} batches)" if c["total"] > len(bs) else ""
    reading = (f"{c['series']}, call {c['req_id']}{cut}: each batch's phases laid end to end; "
               f"its first page is usable again {_us(ff) if ff is not None else '–'} after the "
               "batch starts.")
    return Drawn("timeline", f"Timeline of one migration call ({c['series']})", reading, _svg(fig))


def _numeric(values: list[Any]) -> np.ndarray | None:
    try:
        return np.array([float(v) for v in values])
    except (TypeError, ValueError):
        return None


def sweep_curves(d: ReportData) -> list[Drawn]:
    """For each varied key: pages/s and first-folio latency p99 against it, the chosen point
    marked, one line per trace and policy (the other keys at each of their values)."""
    out = []
    for k in d.keys:
        col = k["column"]
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in d.summary:
            params = dict(r["params"] or {})
            if col not in params:
                continue
            rest = " ".join(f"{c}={v}" for c, v in params.items() if c != col)
            name = " ".join(x for x in (r["trace"], r["policy"], rest) if x)
            groups.setdefault(name, []).append({**r, "x": params[col]})
        if not groups:
            continue
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
        numeric = True
        chosen_text = []
        for name, rs in groups.items():
            xs = _numeric([r["x"] for r in rs])
            numeric = numeric and xs is not None
            order = np.argsort(xs) if xs is not None else np.arange(len(rs))
            rs = [rs[i] for i in order]
            x = [float(r["x"]) for r in rs] if xs is not None else [r["x"] for r in rs]
            pps = [r["pages_per_s"] or 0 for r in rs]
            ff = [(r["first_folio_p99_ns"] or 0) / 1000 for r in rs]
            (line,) = a1.plot(x, pps, marker="o", label=name)
            a2.plot(x, ff, marker="o", color=line.get_color(), label=name)
            for r, xi, yp, yf in zip(rs, x, pps, ff, strict=True):
                if r["chosen"]:
                    a1.plot([xi], [yp], marker="*", markersize=16, color=line.get_color(),
                            markeredgecolor="black", linestyle="none")
                    a2.plot([xi], [yf], marker="*", markersize=16, color=line.get_color(),
                            markeredgecolor="black", linestyle="none")
                    chosen_text.append(f"{name}: {col}={r['x']} ({r['pct_of_best']:.0f}% of the "
                                       f"best pages/s, first folio {_us(r['first_folio_p99_ns'] or 0)})")
        for ax in (a1, a2):
            ax.set_xlabel(k["key"])
            ax.grid(alpha=0.3)
            if numeric:
                xs_all = [float(v) for v in k["values"]]
                if min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 10:
                    ax.set_xscale("log", base=2)
        a1.set_ylabel("pages migrated per second (M pages/s)")
        a1.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}"))
        a2.set_ylabel("first-folio latency p99 (µs)")
        a1.legend(frameon=False, fontsize=7)
        reading = ("Chosen (star: lowest first-folio p99 within 5% of the best pages/s): "
                   + "; ".join(chosen_text) + ".") if chosen_text else "No point was chosen."
        out.append(Drawn(f"sweep-{col}", f"Pages/s and first-folio latency against {k['key']}",
                         reading, _svg(fig)))
    return out


_DRAWERS: tuple[Callable[[ReportData], Drawn | None], ...] = (phases, stalls, windows, ipis, timeline)


def _scoped(svg: str, prefix: str) -> str:
    """The SVG with its element ids (and the references to them) prefixed, so that several
    figures inline in one page never share an id."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    return re.sub(r"#([A-Za-z_][\w.-]*)",
                  lambda m: f"#{prefix}-{m.group(1)}" if m.group(1) in ids else m.group(0), svg)


def draw_all(d: ReportData) -> list[Drawn]:
    """Every figure the data has, sweep curves first."""
    with plt.rc_context(_RC):  # type: ignore[arg-type]
        drawn = sweep_curves(d)
        drawn += [f for f in (draw(d) for draw in _DRAWERS) if f is not None]
    return [Drawn(f.id, f.title, f.reading, _scoped(f.svg.rstrip(), f.id)) for f in drawn]
