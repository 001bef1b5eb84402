"""Copy engines: what copying a list of folios costs the migrating CPU.

Each engine is a module of this package that registers its cost function with its name,
description and config (``registry``); every public module here is imported, so the registry
knows them all. The profile's ``[copy]`` section chooses one (``copy.engine``) and gives the
counts (``copy.threads``, ``copy.channels``); ``[copy.<name>]`` holds each engine's costs.
A policy asks a :class:`Copier` for the times of the folios it copies, given each folio's size
in bytes, and knows nothing of the engine.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import numpy as np

from tracereplay.copy.registry import Copied, CopyEngine, Setup, registered


def _import_engines() -> None:
    """Import every public module of the package: each engine registers itself."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_") and module.name not in ("registry", "throughput"):
            importlib.import_module(f"{__name__}.{module.name}")


_import_engines()
ENGINES: dict[str, CopyEngine] = registered()

__all__ = ["ENGINES", "Copied", "Copier", "CopyEngine", "Setup"]


class Copier:
    """The profile's copy engine for a machine whose base page is ``page_size`` bytes."""

    def __init__(self, profile: Any, page_size: int) -> None:
        c = profile.copy
        self.name = c.engine
        self._cost = ENGINES[c.engine].cost
        self._cfg = profile.copy_engines[c.engine]
        self.setup = Setup(threads=c.threads, channels=c.channels, page_size=page_size)
        self._alone: dict[int, int] = {}

    def batch(self, sizes: np.ndarray) -> Copied:
        """Copy the folios of ``sizes`` (bytes each) together, in list order."""
        sizes = np.asarray(sizes, np.int64)
        if not len(sizes):
            empty = np.zeros(0, np.int64)
            return Copied(start_ns=empty, end_ns=empty, total_ns=0)
        return self._cost(self._cfg, self.setup, sizes)

    def alone(self, size: int) -> int:
        """ns to copy one folio of ``size`` bytes by itself."""
        got = self._alone.get(size)
        if got is None:
            got = self._alone[size] = self.batch(np.array([size], np.int64)).total_ns
        return got
