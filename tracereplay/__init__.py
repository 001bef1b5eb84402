"""tracereplay: replay memory-access and page-migration traces through a model of per-CPU TLBs,
page tables and the Linux page-migration engine, and answer with SQL.
"""

from __future__ import annotations

from tracereplay.errors import (
    BadInputError,
    ConfigError,
    ImportFormatError,
    OutputExistsError,
    QueryError,
    ReplayError,
    TraceFormatError,
    TraceReplayError,
)
from tracereplay.machine import Machine

__version__ = "0.1.0"

__all__ = [
    "BadInputError",
    "ConfigError",
    "ImportFormatError",
    "Machine",
    "OutputExistsError",
    "QueryError",
    "ReplayError",
    "TraceFormatError",
    "TraceReplayError",
    "__version__",
]
