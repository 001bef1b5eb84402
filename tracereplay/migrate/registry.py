"""The registry of migration policies.

A policy is a module of ``tracereplay.migrate`` whose ``migrate_call`` is decorated with
:func:`register`: its name, one-line description, the frozen config dataclass of its
``[policy.<name>]`` section, whether it replays when no policy is named, where it is listed, and
the old names of its config keys. ``tracereplay.migrate`` imports every public module of the
package, so adding a policy is adding a file; nothing outside the package names a policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tracereplay.migrate._engine import Call, Engine

# migrate_call(engine, call, pages, start_ns) -> end_ns: plan one call through the engine's verbs.
MigrateCall = Callable[["Engine", "Call", np.ndarray, int], int]
# horizon(engine, n_pages) -> ns: how far past its start a call of n_pages may read the trace's
# stores (PrePass.writes); the planner waits until the pre-pass has got that far.
Horizon = Callable[["Engine", int], int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """One registered policy."""

    name: str
    description: str  # one line, shown by --help and in listings
    config: type  # frozen dataclass of the policy's own knobs, [policy.<name>] in a profile
    migrate_call: MigrateCall
    default: bool  # replayed when no policy is named
    order: int  # where it is listed (POLICIES, DEFAULT_POLICIES): the older kernel first
    # Old config keys (from before the policies had sections) -> the field of ``config`` each sets.
    aliases: Mapping[str, str] = field(default_factory=dict)
    # The policy whose [policy.<name>] section this one reads: itself, or one whose kernel
    # constants it shares (batched-copy reads batched's).
    section: str = ""
    horizon: Horizon | None = None  # set by a policy that reads the stores during its calls


_registered: dict[str, Policy] = {}


def register(
    *, name: str, description: str, config: type, order: int, default: bool = False,
    aliases: Mapping[str, str] | None = None, section: str | None = None,
    horizon: Horizon | None = None,
) -> Callable[[MigrateCall], MigrateCall]:
    """Register the decorated ``migrate_call`` as policy ``name``."""
    params = getattr(config, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"policy '{name}': config {config.__name__} must be a frozen dataclass")
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set((aliases or {}).values()) - fields)
    if unknown:
        raise TypeError(f"policy '{name}': aliases name fields {config.__name__} lacks: {unknown}")

    def add(fn: MigrateCall) -> MigrateCall:
        if name in _registered and _registered[name].migrate_call is not fn:
            raise TypeError(f"policy '{name}' is registered twice")
        _registered[name] = Policy(name=name, description=description, config=config,
                                   migrate_call=fn, default=default, order=order,
                                   aliases=dict(aliases or {}), section=section or name,
                                   horizon=horizon)
        return fn

    return add


def registered() -> dict[str, Policy]:
    """Every registered policy by name, in listing order."""
    return dict(sorted(_registered.items(), key=lambda kv: (kv[1].order, kv[0])))

