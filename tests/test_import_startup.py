"""The import command's start-up: numba's probes for optional libraries are answered "not
installed" inside the block, and nothing of that outlives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each check runs in a new interpreter: numba makes its probes once per process.
_PROBE = r"""
import json, sys
mode = sys.argv[1]
if mode == "loaded":
    import cffi  # a library the process had already loaded stays usable
from tracereplay.importer import _scan as S
from tracereplay.importer._startup import without_optional_probes
with without_optional_probes():
    S.scan(b"")  # numba's start-up
    inside = {m: m in sys.modules and sys.modules[m] is not None
              for m in ("cffi", "scipy.linalg")}
import numba.core.typing.cffi_utils as cu
left = [m for m, v in sys.modules.items() if v is None and m in ("cffi", "scipy.linalg.cython_blas")]
print(json.dumps({"inside": inside, "cffi_supported": cu.SUPPORTED, "left": left}))
"""


def _probe(mode: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_start_up_imports_neither_cffi_nor_scipy_and_leaves_no_trace() -> None:
    got = _probe("fresh")
    assert got == {"inside": {"cffi": False, "scipy.linalg": False}, "cffi_supported": False,
                   "left": []}


def test_a_library_already_loaded_is_left_as_it_is() -> None:
    pytest.importorskip("cffi")
    got = _probe("loaded")
    assert got["inside"] == {"cffi": True, "scipy.linalg": False}
    assert got["cffi_supported"] is True
    assert got["left"] == []
