"""tracereplay report: one self-contained HTML page, checked as written and as a real browser
(Debian's headless chromium) renders it from disk."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tracereplay.batch import run_batch
from tracereplay.generate.corpus import write_corpus
from tracereplay.replay import run as replay
from tracereplay.report import write_report
from tracereplay.sweep import parse_vary, run_sweep

RUN_FIGURES = ["phases", "stalls", "windows", "ipis", "timeline"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[str]]]:
    base = tmp_path_factory.mktemp("report")
    # a small pmbench + migratepages trace whose accesses stall on pages being migrated
    trace = write_corpus(base / "corpus", 1, seed=7, accesses=20_000, max_set_mib=1)[0]
    replay(trace, base / "run")
    run_sweep([trace], base / "sweep", [parse_vary("migrate.batch_size=1,4,16")],
              policies=["batched"], jobs=1)
    run_batch(base / "corpus", base / "batch", jobs=1)
    out = {}
    for name in ("run", "sweep", "batch"):
        figures = write_report(base / name, base / f"{name}.html")
        out[name] = (base / f"{name}.html", [f.id for f in figures])
    return out


def test_a_run_report_has_every_figure_with_a_title_units_and_a_reading(reports) -> None:  # type: ignore[no-untyped-def]
    path, ids = reports["run"]
    assert ids == RUN_FIGURES
    text = path.read_text(encoding="utf-8")
    for fid in ids:
        m = re.search(rf'<figure id="fig-{fid}"><h2>([^<]+)</h2>(<svg.*?</svg>)'
                      r"<figcaption>([^<]+)</figcaption>", text, re.S)
        assert m is not None, fid
        title, svg, reading = m.groups()
        assert title and len(reading) > 20
        assert "(" in svg  # axis labels carry their unit in parentheses, drawn as paths
    # the seed's figures apply to runs of the seed's trace only (tracereplay.seed)
    assert "The seed experiment" not in text
    assert "batched" in text and "serial" in text


def test_a_sweep_report_draws_the_curve_with_the_chosen_point(reports) -> None:  # type: ignore[no-untyped-def]
    path, ids = reports["sweep"]
    assert ids == ["sweep-migrate_batch_size", *RUN_FIGURES]
    text = path.read_text(encoding="utf-8")
    assert 'class="chosen"' in text
    assert text.count("migrate_batch_size=") >= 3


def test_a_batch_report_draws_each_trace_and_policy(reports) -> None:  # type: ignore[no-untyped-def]
    path, ids = reports["batch"]
    assert ids == RUN_FIGURES
    text = path.read_text(encoding="utf-8")
    assert "batch results" in text
    assert re.search(r"<td>pmb-0000-[^<]*-[0-9a-f]{8} batched</td>", text)


def test_the_page_is_self_contained(reports) -> None:  # type: ignore[no-untyped-def]
    for path, _ in reports.values():
        text = path.read_text(encoding="utf-8")
        assert "<script" not in text
        assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", text)  # nothing fetched
        assert "@import" not in text and "url(http" not in text
        # each figure's ids are its own
        ids = re.findall(r'\bid="([^"]+)"', text)
        assert len(ids) == len(set(ids))


# --- in a real browser -------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="Debian's chromium is not installed (.ci/run installs it)")


def _render(page: Path, png: Path, height: int = 6000) -> str:
    """Load ``page`` from disk in headless chromium, screenshot it; returns the console lines."""
    r = subprocess.run(
        [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--enable-logging=stderr", "--v=0", f"--window-size=1200,{height}",
         f"--screenshot={png}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert png.is_file(), r.stderr[-2000:]
    return "\n".join(line for line in r.stderr.splitlines() if ":CONSOLE" in line)


def _ink(png: Path) -> tuple[int, int, int]:
    """Pixels that are not white, and the width and height of the box around them."""
    a = np.asarray(Image.open(png).convert("L"))
    ink = a < 240
    ys, xs = np.nonzero(ink)
    if not len(xs):
        return 0, 0, 0
    return int(ink.sum()), int(xs.max() - xs.min()), int(ys.max() - ys.min())


@needs_chromium
def test_the_browser_check_sees_a_console_error(tmp_path: Path) -> None:
    # the console check below would pass on a broken page if chromium did not report to it
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFn()</script></body></html>")
    assert "undefinedFn" in _render(bad, tmp_path / "bad.png", 400)


@needs_chromium
@pytest.mark.parametrize("name", ["run", "sweep"])
def test_the_report_loads_from_disk_with_no_console_error_and_every_figure_drawn(
        reports, name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, ids = reports[name]
    console = _render(path, tmp_path / "page.png")
    assert console == ""
    ink, width, height = _ink(tmp_path / "page.png")
    assert width > 600 and height > 1500 and ink > 50_000
    text = path.read_text(encoding="utf-8")
    for fid in ids:
        # the page with only this figure shown: it must draw something sizeable by itself
        alone = tmp_path / f"{fid}.html"
        alone.write_text(text.replace(
            "</style>", f"body > *:not(#fig-{fid}) {{ display: none; }}</style>", 1),
            encoding="utf-8")
        png = tmp_path / f"{fid}.png"
        assert _render(alone, png, 1600) == ""
        ink, width, height = _ink(png)
        assert width > 300 and height > 150 and ink > 5_000, (fid, ink, width, height)
