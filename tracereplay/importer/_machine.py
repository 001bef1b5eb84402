"""The machine a capture came from: ``--cpus``/``--nodes``, else the capture's own header.

- ``perf script --header`` prints ``# nrcpus avail : 2`` (``nrcpus online`` when avail is
  missing) and, with ``-I``, ``# node0 cpu list : 0-1`` per NUMA node;
- ``trace-cmd report`` starts with ``cpus=2``.

The options win over the header. Without either, the trace carries no machine and the cost
profile supplies one at replay.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tracereplay.errors import ConfigError, ImportFormatError
from tracereplay.machine import Machine

_HEAD = 64 * 1024  # headers sit at the top of the file
_NRCPUS = re.compile(rb"^#\s*nrcpus (avail|online)\s*:\s*(\d+)\s*$", re.M)
_NODE = re.compile(rb"^#\s*node(\d+) cpu list\s*:\s*([0-9,\-]*)\s*$", re.M)
_TRACE_CMD_CPUS = re.compile(rb"^\s*cpus=(\d+)\s*$", re.M)


def _cpu_list(text: str) -> list[int]:
    out: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def header_machine(head: bytes) -> dict[str, Any]:
    """What the capture's header says: ``cpus``, ``nodes``, ``cpu_node`` (each when said)."""
    head = head[:_HEAD]
    said: dict[str, Any] = {}
    found = {m.group(1): int(m.group(2)) for m in _NRCPUS.finditer(head)}
    cpus = found.get(b"avail", found.get(b"online"))
    if cpus is None and (m := _TRACE_CMD_CPUS.search(head[:4096])):
        cpus = int(m.group(1))
    if cpus is not None:
        said["cpus"] = cpus
    nodes = {int(m.group(1)): _cpu_list(m.group(2).decode()) for m in _NODE.finditer(head)}
    if nodes:
        said["nodes"] = max(nodes) + 1
        if cpus is not None:
            cpu_node = [-1] * cpus
            for n, cs in nodes.items():
                for c in cs:
                    if c < cpus:
                        cpu_node[c] = n
            if -1 not in cpu_node:
                said["cpu_node"] = cpu_node
    return said


def captured_machine(
    head: bytes, cpus: int | None, nodes: int | None, source: Path
) -> tuple[Machine | None, str | None]:
    """The machine (None when nothing says it) and where it came from."""
    if cpus is not None and cpus < 1:
        raise ImportFormatError(f"--cpus must be at least 1: {cpus}")
    if nodes is not None and nodes < 1:
        raise ImportFormatError(f"--nodes must be at least 1: {nodes}")
    said = header_machine(head)
    if cpus is None and nodes is None and not said.get("cpus"):
        return None, None
    n_cpus = cpus if cpus is not None else said.get("cpus")
    if n_cpus is None:
        raise ImportFormatError(
            f"{source}: --nodes needs --cpus: the capture's header does not say how many CPUs"
        )
    n_nodes = nodes if nodes is not None else said.get("nodes", 1)
    cpu_node = said.get("cpu_node")
    origin = "header" if cpus is None and nodes is None else "options"
    try:
        if cpu_node is not None and len(cpu_node) == n_cpus and max(cpu_node) < n_nodes:
            return Machine(cpus=n_cpus, nodes=n_nodes, cpu_node=tuple(cpu_node)), origin
        return Machine.spread(n_cpus, n_nodes), origin
    except ConfigError as e:
        raise ImportFormatError(f"{source}: the captured machine: {e}") from None


def check_cpus(
    machine: Machine | None, max_cpu: int, line: int, source: Path, origin: str | None
) -> None:
    """A CPU in the capture must be one of the machine's."""
    if machine is not None and max_cpu >= machine.cpus:
        said = "--cpus" if origin == "options" else "the capture's header"
        raise ImportFormatError(
            f"{source}:{line}: CPU {max_cpu} is beyond the {machine.cpus} CPUs {said} gives "
            f"[rule: cpu < cpus]"
        )


def trace_machine(machine: Machine | None, src_node: int, dst_node: int) -> Machine | None:
    """The machine the ``--as-trace`` trace carries: the captured one, with nodes up to
    ``src_node``/``dst_node``. Trace v1 moves a page between two nodes and the model skips a
    page already on its target, so a capture from one node (compaction moves pages within
    it) is replayed as moves from node 0 to a second node; the copy then costs what the
    profile says of a cross-node copy (which ``calibrate`` fits to the capture)."""
    if machine is None:
        return None
    nodes = max(machine.nodes, src_node + 1, dst_node + 1)
    if nodes == machine.nodes:
        return machine
    return Machine(
        cpus=machine.cpus, nodes=nodes, cpu_node=machine.cpu_node, page_size=machine.page_size
    )
