"""Node distances (``memory.distances``) and the memory latency of each (CPU node, page node).

The matrix is the one ``numactl -H`` prints under "node distances" (``/sys/devices/system/
node/nodeN/distance``), i.e. the firmware's ACPI SLIT: row i is the CPU's node, column j the
memory's. The rules a matrix must follow are the ones Linux applies before it trusts a SLIT
(``slit_valid()`` in drivers/acpi/numa/srat.c): 10 (``LOCAL_DISTANCE``) on the diagonal, more
than 10 elsewhere; one byte a value, 255 meaning "unreachable" (ACPI 6.5, 5.2.17), which has no
latency. The matrix may be asymmetric: the SLIT stores both directions of every pair so that
they can differ (ACPI 6.5, 5.2.17).

Latency rule. The SLIT's distances are "the relative distance (memory latency)" of two
localities, normalised to 10 for local memory (ACPI 6.5, 5.2.17), but firmware values are
coarse (Linux's kernel documentation of the SLIT warns that they need not describe real
latency): a 2-socket Intel server says 21 for a remote latency about 1.6 times the local one
(``memory.local_ns`` and ``memory.remote_ns`` of profile intel-2s). So the measured pair anchors
the scale and the distances place the other pairs on it, linearly::

    latency(i, i) = local_ns
    latency(i, j) = local_ns + (remote_ns - local_ns) * (d[i][j] - 10) // (remote_distance - 10)

where ``remote_distance`` (``memory.remote_distance``) is the distance of the node pair at which
``remote_ns`` was measured, and ``//`` rounds down to a whole ns. A pair at that distance costs
``remote_ns`` exactly. Without a matrix every pair of different nodes costs ``remote_ns``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tracereplay.errors import ConfigError

LOCAL_DISTANCE = 10  # include/linux/topology.h; the SLIT's value for a locality to itself
UNREACHABLE = 255  # ACPI SLIT: no path between the localities


def distance_problem(distances: Any, nodes: int) -> str | None:
    """Why ``distances`` is not a valid node-distance matrix of ``nodes`` nodes (the rule it
    breaks, with where), or None when it is. An empty matrix (no distances) is valid."""
    if not isinstance(distances, list | tuple):
        return "must be a matrix (a list of rows of integers, as numactl -H prints it)"
    if not distances:
        return None
    if len(distances) != nodes or any(not isinstance(r, list | tuple) or len(r) != nodes
                                      for r in distances):
        return (f"must be a {nodes} x {nodes} matrix (machine.nodes = {nodes}: one row and one "
                "column per node)")
    for i, row in enumerate(distances):
        for j, d in enumerate(row):
            where = f"row {i}, column {j}"
            if not isinstance(d, int) or isinstance(d, bool):
                return f"must hold integers ({where} is {d!r})"
            if i == j and d != LOCAL_DISTANCE:
                return f"must be {LOCAL_DISTANCE} on the diagonal ({where} is {d})"
            if i != j and not LOCAL_DISTANCE < d < UNREACHABLE:
                return (f"must be above {LOCAL_DISTANCE} and below {UNREACHABLE} (unreachable) "
                        f"off the diagonal ({where} is {d})")
    return None


def remote_distances(distances: Sequence[Sequence[int]]) -> list[int]:
    """The distinct off-diagonal distances of a matrix, in order."""
    return sorted({d for i, row in enumerate(distances) for j, d in enumerate(row) if i != j})


def node_latency_ns(local_ns: int, remote_ns: int, distances: Sequence[Sequence[int]],
                    remote_distance: int, nodes: int) -> np.ndarray:
    """int64 [nodes, nodes]: the memory latency of an access from a CPU on node i to a page on
    node j, by the module's rule. Raises :class:`ConfigError` when the matrix is not one of
    ``nodes`` nodes (a trace that records a machine of another size)."""
    out = np.full((nodes, nodes), remote_ns, np.int64)
    if distances:
        problem = distance_problem(distances, nodes)
        if problem is not None:
            raise ConfigError(f"config 'memory.distances' {problem}: the replayed machine has "
                              f"{nodes} nodes; give its matrix (numactl -H) or none")
        d = np.asarray(distances, np.int64)
        out = local_ns + (remote_ns - local_ns) * (d - LOCAL_DISTANCE) // (
            remote_distance - LOCAL_DISTANCE)
    np.fill_diagonal(out, local_ns)
    return out
