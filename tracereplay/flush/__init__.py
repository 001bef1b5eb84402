"""TLB-flush mechanisms: what a flush round costs and whom it touches.

A migration policy decides when a flush happens and which pages it covers; the mechanism the
profile names (``flush.mechanism``) decides how the CPUs' TLBs are reached: ``ipi`` (x86 rounds
of IPIs to mm_cpumask), ``invlpgb`` (AMD broadcast invalidation and one TLBSYNC), ``tlbi``
(arm64 broadcast TLBI and one DSB). Each is a module of this package with its config section
(``[flush.<name>]``) and its sources; every public module is imported, so adding one is adding a
file.
"""

from __future__ import annotations

import importlib
import pkgutil

from tracereplay.errors import ConfigError
from tracereplay.flush.registry import Mechanism, Round, Scope, registered


def _import_mechanisms() -> None:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_") and module.name != "registry":
            importlib.import_module(f"{__name__}.{module.name}")


_import_mechanisms()
MECHANISMS: dict[str, Mechanism] = registered()

__all__ = ["MECHANISMS", "Mechanism", "Round", "Scope", "mechanism"]


def mechanism(name: str) -> Mechanism:
    """The registered mechanism ``name``."""
    if name not in MECHANISMS:
        raise ConfigError(f"unknown flush mechanism '{name}'; known: {', '.join(MECHANISMS)}")
    return MECHANISMS[name]
