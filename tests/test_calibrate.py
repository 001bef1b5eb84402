"""Fitting the cost profile to a capture's measured calls (tracereplay calibrate)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tracereplay.calibrate import fit_capture, write_profile
from tracereplay.config import load_profile
from tracereplay.errors import ImportFormatError
from tracereplay.importer import import_kernel_trace

# (pages, PTEs, flush rounds); each call lasts pages x 1000 + PTEs x 500 + rounds x 20,000 ns
CALLS = [(10, 2, 1), (20, 0, 0), (4, 4, 2), (30, 10, 1)]


def capture(path: Path, off_cpu_us: dict[int, int] | None = None) -> Path:
    """perf script text of CALLS, one after the other on CPU 1 (times in us); a call of
    ``off_cpu_us`` is that much longer: its task switches out (a reason-0 flush) when its own
    work is done, another task runs on CPU 1, and the call ends when the task is back."""
    off_cpu_us = off_cpu_us or {}
    lines, t = [], 1_000_000
    sh = "  sh 9/9 [001] {:d}.{:06d}: {}\n"

    def at(us: int, text: str) -> None:
        lines.append(sh.format(us // 1_000_000, us % 1_000_000, text))

    for k, (pages, ptes, rounds) in enumerate(CALLS):
        dur_us = (pages * 1000 + ptes * 500 + rounds * 20_000) // 1000
        at(t, "migrate:mm_migrate_pages_start: mode=MIGRATE_SYNC reason=compaction")
        for p in range(ptes):
            at(
                t + 1,
                f"migrate:set_migration_pte: addr={0x7F0000000000 + (k * 64 + p) * 4096:x}, pte=1 order=0",
            )
        for _ in range(rounds):
            at(t + 1, "tlb:tlb_flush: pages:1 reason:remote IPI send (4)")
        for p in range(ptes):
            at(
                t + 1,
                f"migrate:remove_migration_pte: addr={0x7F0000000000 + (k * 64 + p) * 4096:x}, pte=1 order=0",
            )
        if k in off_cpu_us:
            at(t + dur_us, "tlb:tlb_flush: pages:-1 reason:flush on task switch (0)")
            u = t + dur_us + 1
            lines.append(f"  k 7/7 [001] {u // 1_000_000}.{u % 1_000_000:06d}: sched:sched_stat_runtime: x\n")
            dur_us += off_cpu_us[k]
        at(
            t + dur_us,
            f"migrate:mm_migrate_pages: nr_succeeded={pages} nr_failed=0 mode=MIGRATE_SYNC reason=compaction",
        )
        t += dur_us + 100
    path.write_text("".join(lines))
    return path




def test_an_exactly_linear_capture_gives_back_its_costs(tmp_path: Path) -> None:
    import_kernel_trace(capture(tmp_path / "c.txt"), tmp_path / "run")
    fit = fit_capture(tmp_path / "run")
    assert fit.coefficients == pytest.approx({"page_ns": 1000, "pte_ns": 500, "round_ns": 20_000})
    assert fit.residuals["rms_ns"] == pytest.approx(0, abs=1e-6)
    # unmap + remap = 500 ns a PTE (charged once per mapping), split 200:150 as intel-2s;
    # other + copy = 1000 ns, split 150:350; the calls start at their measured times
    assert fit.values == {
        "migrate.unmap_ns": 286, "migrate.remap_ns": 214, "migrate.other_ns": 300,
        "copy.cpu.page_ns": 700, "flush.ipi_initiator_ns": 20_000, "migrate.call_start": "trace",
    }  # fmt: skip
    out = write_profile(fit, tmp_path / "my.toml")
    data = tomllib.loads(out.read_text())
    assert "machine" not in data
    assert data["copy"]["cpu"]["page_ns"] == 700 and data["flush"]["ipi_initiator_ns"] == 20_000
    assert data["migrate"]["call_start"] == "trace"
    assert set(data["sources"]) == set(fit.values)
    assert all("c.txt" in s for s in data["sources"].values())
    assert all("least squares over 4 calls" in s for k, s in data["sources"].items()
               if k != "migrate.call_start")
    assert "measured times" in data["sources"]["migrate.call_start"]
    p = load_profile(config_file=out)
    assert p.copy_engines["cpu"].page_ns == 700
    assert p.migrate.call_start == "trace"
    assert p.sources["copy.cpu.page_ns"].startswith("calibrate: ")


def test_the_fit_is_of_the_calls_own_time_without_their_time_off_the_cpu(tmp_path: Path) -> None:
    # call 1 (20 pages: 20 us of work) and call 3 (55 us) spend 300 and 40 us off the CPU
    import_kernel_trace(capture(tmp_path / "c.txt", {1: 300, 3: 40}), tmp_path / "run")
    fit = fit_capture(tmp_path / "run")
    assert fit.coefficients == pytest.approx({"page_ns": 1000, "pte_ns": 500, "round_ns": 20_000})
    assert fit.residuals["rms_ns"] == pytest.approx(0, abs=1e-6)
    assert (fit.residuals["off_cpu_ns"], fit.residuals["off_cpu_calls"]) == (340_000, 2)
    assert fit.residuals["total_duration_ns"] == 31_000 + 20_000 + 46_000 + 55_000


def test_a_negative_coefficient_is_dropped_and_the_rest_refitted(tmp_path: Path) -> None:
    import numpy as np

    from tracereplay.calibrate import _nnls

    a = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 1.0]])
    # unconstrained: 2 per unit of the first column and -1 per unit of the second
    b = a @ np.array([2.0, -1.0])
    x = _nnls(a, b)
    assert x[1] == 0 and x[0] == pytest.approx((a[:, 0] @ b) / (a[:, 0] @ a[:, 0]))


def test_calibrate_needs_an_import_and_refuses_to_overwrite(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="not an import's run directory"):
        fit_capture(tmp_path)
    import_kernel_trace(capture(tmp_path / "c.txt"), tmp_path / "run")
    fit = fit_capture(tmp_path / "run")
    write_profile(fit, tmp_path / "my.toml")
    from tracereplay.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        write_profile(fit, tmp_path / "my.toml")
