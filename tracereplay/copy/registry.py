"""The registry of copy engines.

A copy engine is a module of ``tracereplay.copy`` whose cost function is decorated with
:func:`register`: its name, one-line description and the frozen config dataclass of its
``[copy.<name>]`` section. ``tracereplay.copy`` imports every public module of the package, so
adding an engine is adding a file; a policy asks the engine for the time of a list of folios and
never names an engine or its constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np


class Copied(NamedTuple):
    """What copying a list of folios together costs the migrating CPU, ns from the copy's start:
    when each folio's copy starts and when the CPU knows it is done, and when the CPU goes on."""

    start_ns: np.ndarray  # int64 per folio
    end_ns: np.ndarray  # int64 per folio
    total_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    """What an engine's cost function is given besides its own section: the ``[copy]``
    section's counts and the machine's base page (bandwidths are given as ns per base page)."""

    threads: int
    channels: int
    page_size: int


# cost(config of [copy.<name>], setup, folio sizes in bytes (int64, at least one)) -> Copied
CostFn = Callable[[Any, Setup, np.ndarray], Copied]


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyEngine:
    """One registered copy engine."""

    name: str
    description: str  # one line, shown in listings and by config show
    config: type  # frozen dataclass of the engine's costs, [copy.<name>] in a profile
    cost: CostFn
    order: int  # where it is listed


_registered: dict[str, CopyEngine] = {}


def register(*, name: str, description: str, config: type, order: int) -> Callable[[CostFn], CostFn]:
    """Register the decorated cost function as copy engine ``name``."""
    params = getattr(config, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"copy engine '{name}': config {config.__name__} must be a frozen dataclass")

    def add(fn: CostFn) -> CostFn:
        if name in _registered and _registered[name].cost is not fn:
            raise TypeError(f"copy engine '{name}' is registered twice")
        _registered[name] = CopyEngine(name=name, description=description, config=config,
                                       cost=fn, order=order)
        return fn

    return add


def registered() -> dict[str, CopyEngine]:
    """Every registered copy engine by name, in listing order."""
    return dict(sorted(_registered.items(), key=lambda kv: (kv[1].order, kv[0])))


def bytes_ns(n_bytes: np.ndarray | int, page_ns: int, page_size: int) -> np.ndarray:
    """ns to move ``n_bytes`` at a bandwidth of one base page (``page_size`` bytes) per
    ``page_ns`` ns, rounded up to a whole ns (exact for whole pages)."""
    b = np.asarray(n_bytes, np.int64)
    return -(-(b * page_ns) // page_size)
