"""Read-only views for the arguments a compiled function only reads.

numba compiles one specialisation per argument type, and a read-only array (a zero-copy view
of an Arrow buffer) is another type than a writable one of the same dtype. Arrays that arrive
either way are handed over as read-only views, so each function compiles once.
"""

from __future__ import annotations

import numpy as np


def frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (no copy)."""
    v = a.view()
    v.flags.writeable = False
    return v
