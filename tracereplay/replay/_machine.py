"""The machine of a replay when the trace records its own and the configuration names one too.

A trace that records its machine (``tracereplay.machine``) is replayed on it: its CPU numbers
and nodes are the recorded ones. A machine value set by one's own file (``--profile PATH``,
``--config``) or ``--set`` that equals the trace's is no conflict. One that differs: from a file
(a machine file is reused over many traces), the trace's value wins and a note says so; from
``--set`` (a request for this run that cannot be honoured), it is an error that says how to
resolve it.
"""

from __future__ import annotations

import warnings

from tracereplay.config import Profile
from tracereplay.errors import ConfigError, ConfigNote
from tracereplay.machine import Machine


def conflicts(profile: Profile, trace: Machine) -> list[tuple[str, object, object, str]]:
    """(key, configured value, the trace's value, where the value came from) for each machine
    key set by the user that differs from the trace's machine. An empty ``cpu_node`` (CPUs
    spread over the nodes) states nothing, so it never differs."""
    mine = profile.machine
    out = []
    # A trace records CPUs, nodes and pages, not the instruction set: machine.arch is the
    # configuration's.
    for key in sorted(k for k in profile.overridden
                      if k.startswith("machine.") and k != "machine.arch"):
        name = key.removeprefix("machine.")
        value = getattr(mine, name)
        theirs = getattr(trace, name)
        if name == "cpu_node":
            if not value:
                continue
            value, theirs = list(value), list(theirs)
        if value != theirs:
            out.append((key, value, theirs, profile.origins.get(key, "")))
    return out


def check(profile: Profile, trace: Machine, trace_path: str) -> list[str]:
    """Raise for a ``--set`` that contradicts the trace's machine; warn (``ConfigNote``) and
    return a note for each file value that does."""
    found = conflicts(profile, trace)
    for key, value, theirs, source in found:
        if source.startswith("--set"):
            raise ConfigError(
                f"{trace_path}: the trace records its machine, with {key} = {theirs!r}; "
                f"'{source}' asks for {value!r}. Drop the --set (the trace's machine is used), "
                "or generate the trace for that machine (e.g. generate pmbench --cpus N --nodes N)")
    notes = [f"{trace_path}: the trace records {key} = {theirs!r}; the trace's value is used, "
             f"not {value!r} from {source}" for key, value, theirs, source in found]
    for note in notes:
        warnings.warn(note, ConfigNote, stacklevel=3)
    return notes
