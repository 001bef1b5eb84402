"""The compiled importer's start-up in a process that only imports (``tracereplay import``).

The first compiled function a process calls, even one loaded from numba's on-disk cache, makes
numba load its registries once per process; among them ``numba.np.arraymath`` checks whether
SciPy's BLAS is there (for ``np.dot`` and friends in compiled code) by importing
``scipy.linalg.cython_blas``, which imports all of ``scipy.linalg``: 0.4 s of a 0.8 s start-up
when SciPy is installed, as long as scanning a million lines. The importer's compiled code does
no linear algebra, so the command answers that check "no BLAS" without importing SciPy: for the
rest of that process, numba's compiled ``np.dot`` would then refuse to compile and
``np.correlate``/``np.convolve`` loop instead of calling BLAS, none of which the process uses.
Library calls of :func:`import_kernel_trace` leave numba and SciPy as they are.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

_BLAS = "scipy.linalg.cython_blas"


@contextmanager
def without_blas_probe() -> Iterator[None]:
    """Within the block, numba's first start-up in this process finds no SciPy BLAS (nothing
    changes when numba or SciPy has already loaded it)."""
    if _BLAS in sys.modules or "numba.np.arraymath" in sys.modules:
        yield
        return
    sys.modules[_BLAS] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        yield
    finally:
        if _BLAS in sys.modules and sys.modules[_BLAS] is None:
            del sys.modules[_BLAS]
