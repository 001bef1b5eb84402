"""A first run that compiles says so, and speeds are measured without the compilation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from tracereplay._compile import compile_time, timing
from tracereplay.cli.import_ import _speed
from tracereplay.importer import import_kernel_trace

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "import"


def test_compile_time_counts_a_compilation_and_not_a_second_call() -> None:
    @njit(cache=False)
    def add_one(x: np.ndarray) -> np.ndarray:
        return x + 1

    with compile_time() as first:
        add_one(np.zeros(3))
    with compile_time() as second:
        add_one(np.zeros(3))
    assert first.seconds > 0
    assert second.seconds == 0


def test_the_speed_leaves_the_compilation_out() -> None:
    assert timing(19_392, 7.894, 7.4) == {"wall_s": 7.894, "compile_s": 7.4, "lines_per_s": 39_255}
    m = {"lines": 19_392, **timing(19_392, 7.894, 7.4)}
    assert _speed(m) == ("19,392 lines in 7.894 s, of which 7.4 s compiling the importer (first "
                         "run after installing; later runs load it from the cache): 0.494 s "
                         "(39,255 lines/s) without it")
    m = {"lines": 19_392, **timing(19_392, 0.5, 0.0)}
    assert _speed(m) == "19,392 lines in 0.5 s (38,784 lines/s)"


def test_an_import_records_its_compile_time(tmp_path: Path) -> None:
    res = import_kernel_trace(FIXTURES / "perf-default.txt", tmp_path / "r")
    assert res.manifest["compile_s"] >= 0
    # wall_s and compile_s are kept to the millisecond, so the work time they give is known
    # within 1 ms: lines_per_s is the lines over the unrounded work time, in that interval.
    work = res.manifest["wall_s"] - res.manifest["compile_s"]
    lines = res.manifest["lines"]
    assert lines / (work + 0.001) - 1 <= res.manifest["lines_per_s"] <= lines / max(work - 0.001, 1e-9) + 1
