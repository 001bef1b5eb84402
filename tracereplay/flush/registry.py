"""The registry of TLB-flush mechanisms.

A mechanism is a module of ``tracereplay.flush`` that registers, with :func:`register`, its
name, a one-line description, the frozen config dataclass of its ``[flush.<name>]`` section,
the architectures it exists on, and its two functions: whether a batched unmap defers its
flush (``defers``) and what one flush round costs and whom it touches (``round``). A policy
asks the engine for a round; the engine asks the profile's mechanism; nothing else names a
mechanism or its constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """What a flush round covers, as the initiator sees it."""

    local: bool  # the initiator is in mm_cpumask (it ran the process): its TLB may hold entries
    targets: int  # other CPUs in mm_cpumask
    pages: int  # pages the round invalidates
    cpus: int  # CPUs of the machine


@dataclass(frozen=True, slots=True, kw_only=True)
class Round:
    """One flush round as a mechanism does it."""

    cost_ns: int  # the initiator's time, waiting included
    full: bool  # CPUs flush the whole address space instead of the pages
    ipis: int  # IPIs sent (each receiver interrupted)
    broadcast: bool  # the hardware invalidates every CPU's TLB: no IPI, no receiver interrupted


# defers(flush, own, scope) -> bool; round(flush, own, scope) -> Round. ``flush`` is the
# profile's [flush] section, ``own`` the mechanism's [flush.<name>] section.
Defers = Callable[[Any, Any, Scope], bool]
RoundCost = Callable[[Any, Any, Scope], Round]


@dataclass(frozen=True, slots=True, kw_only=True)
class Mechanism:
    """One registered flush mechanism."""

    name: str
    description: str  # one line, shown in listings
    config: type  # frozen dataclass of its own knobs, [flush.<name>] in a profile
    arches: tuple[str, ...]  # machine.arch values it exists on
    defers: Defers
    round: RoundCost
    order: int  # where it is listed


_registered: dict[str, Mechanism] = {}


def register(*, name: str, description: str, config: type, arches: tuple[str, ...], order: int,
             defers: Defers, round: RoundCost) -> Mechanism:
    """Register mechanism ``name``; returns it."""
    params = getattr(config, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"flush mechanism '{name}': config {config.__name__} must be a frozen dataclass")
    if name in _registered:
        raise TypeError(f"flush mechanism '{name}' is registered twice")
    m = Mechanism(name=name, description=description, config=config, arches=arches, order=order,
                  defers=defers, round=round)
    _registered[name] = m
    return m


def registered() -> dict[str, Mechanism]:
    """Every registered mechanism by name, in listing order."""
    return dict(sorted(_registered.items(), key=lambda kv: (kv[1].order, kv[0])))
