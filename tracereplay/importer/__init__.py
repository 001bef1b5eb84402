"""Importers of real traces into tracereplay's tables.

- Kernel traces (``perf script`` text, ftrace ``trace`` text, ``trace-cmd report`` text, or a
  ``perf.data`` file through ``perf script``) become a run directory ``policy=measured/`` with the
  same event tables a replay writes: :func:`import_kernel_trace`.
- valgrind lackey output (``--tool=lackey --trace-mem=yes``) becomes a trace of accesses:
  :func:`import_lackey`.
"""

from __future__ import annotations

from tracereplay.importer._kernel import ImportResult, detect_format, import_kernel_trace
from tracereplay.importer.lackey import LackeyResult, import_lackey

__all__ = ["ImportResult", "LackeyResult", "detect_format", "import_kernel_trace", "import_lackey"]
