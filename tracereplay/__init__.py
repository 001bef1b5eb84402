"""tracereplay: replay memory-access and page-migration traces through a model of per-CPU TLBs,
page tables and the Linux page-migration engine, and answer with SQL.

The front door::

    import tracereplay as tr

    trace = tr.load_trace("sample_traces/seed.parquet")        # validated, streaming
    results = tr.replay_trace("sample_traces/seed.parquet", "runs/seed",
                        profile=tr.load_profile(overrides=["batch_size=64"]))
    table = tr.run_query("policy_compare", ["runs/seed"])      # a pyarrow.Table

Submodules are imported on first use, so ``import tracereplay`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracereplay.errors import (
    BadInputError,
    ConfigError,
    ImportFormatError,
    OutputExistsError,
    OutputPathError,
    QueryError,
    ReplayError,
    TraceFormatError,
    TraceReplayError,
)
from tracereplay.machine import Machine

__version__ = "0.1.0"

# name -> (module, attribute): the public API, loaded lazily.
_LAZY = {
    "Trace": ("tracereplay.trace", "Trace"),
    "TraceSummary": ("tracereplay.trace", "TraceSummary"),
    "load_trace": ("tracereplay.trace", "load"),
    "write_trace": ("tracereplay.trace", "write"),
    "Profile": ("tracereplay.config", "Profile"),
    "load_profile": ("tracereplay.config", "load_profile"),
    "profile_names": ("tracereplay.config", "profile_names"),
    "replay_trace": ("tracereplay.replay", "run"),
    "PolicyResult": ("tracereplay.replay", "PolicyResult"),
    "POLICIES": ("tracereplay.migrate", "POLICIES"),
    "COPY_ENGINES": ("tracereplay.copy", "ENGINES"),
    "move_gbps": ("tracereplay.copy.throughput", "move_gbps"),
    "connect": ("tracereplay.query", "connect"),
    "list_queries": ("tracereplay.query", "list_queries"),
    "run_query": ("tracereplay.query", "run_query"),
    "import_kernel_trace": ("tracereplay.importer", "import_kernel_trace"),
    "import_lackey": ("tracereplay.importer", "import_lackey"),
    "PmbenchParams": ("tracereplay.generate.pmbench", "PmbenchParams"),
    "write_pmbench": ("tracereplay.generate.pmbench", "write_pmbench"),
    "run_batch": ("tracereplay.batch.run", "run_batch"),
}

if TYPE_CHECKING:
    from tracereplay.batch.run import run_batch
    from tracereplay.config import Profile, load_profile, profile_names
    from tracereplay.copy import ENGINES as COPY_ENGINES
    from tracereplay.copy.throughput import move_gbps
    from tracereplay.generate.pmbench import PmbenchParams, write_pmbench
    from tracereplay.importer import import_kernel_trace, import_lackey
    from tracereplay.migrate import POLICIES
    from tracereplay.query import connect, list_queries, run_query
    from tracereplay.replay import PolicyResult
    from tracereplay.replay import run as replay_trace
    from tracereplay.trace import Trace, TraceSummary
    from tracereplay.trace import load as load_trace
    from tracereplay.trace import write as write_trace


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tracereplay' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "COPY_ENGINES",
    "POLICIES",
    "BadInputError",
    "ConfigError",
    "ImportFormatError",
    "Machine",
    "OutputExistsError",
    "OutputPathError",
    "PmbenchParams",
    "PolicyResult",
    "Profile",
    "QueryError",
    "ReplayError",
    "Trace",
    "TraceFormatError",
    "TraceReplayError",
    "TraceSummary",
    "__version__",
    "connect",
    "import_kernel_trace",
    "import_lackey",
    "list_queries",
    "load_profile",
    "load_trace",
    "move_gbps",
    "profile_names",
    "replay_trace",
    "run_batch",
    "run_query",
    "write_pmbench",
    "write_trace",
]
