"""The compiled importer's start-up in a process that only imports (``tracereplay import``).

The first compiled function a process calls, even one loaded from numba's on-disk cache, makes
numba load its registries once per process, and two of them probe for optional libraries the
importer's compiled code never uses:

- ``numba.np.arraymath`` checks whether SciPy's BLAS is there (for ``np.dot`` and friends in
  compiled code) by importing ``scipy.linalg.cython_blas``, which imports all of
  ``scipy.linalg``: 0.4 s of a 0.8 s start-up when SciPy is installed, as long as scanning a
  million lines;
- ``numba.core.typing.cffi_utils`` imports cffi and builds a ``cffi.FFI()`` (its C parser), to
  type cffi functions passed to compiled code: 0.05 s of the remaining 0.45 s.

The command answers both probes "not installed" without importing either: for the rest of that
process, numba's compiled ``np.dot`` would then refuse to compile, ``np.correlate`` and
``np.convolve`` loop instead of calling BLAS, and cffi functions cannot be passed to compiled
code, none of which the process does. Library calls of :func:`import_kernel_trace` leave numba,
SciPy and cffi as they are.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Each probed module, and the numba module whose import probes it.
_PROBES = {"scipy.linalg.cython_blas": "numba.np.arraymath",
           "cffi": "numba.core.typing.cffi_utils"}


@contextmanager
def without_optional_probes() -> Iterator[None]:
    """Within the block, numba's first start-up in this process finds neither SciPy's BLAS nor
    cffi (nothing changes for a probe that numba has already made, or for a library that is
    already loaded)."""
    hidden = [m for m, by in _PROBES.items() if m not in sys.modules and by not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        yield
    finally:
        for m in hidden:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]
