"""The machine a trace ran on: CPUs, NUMA nodes, which node each CPU sits on, page size."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tracereplay.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Machine:
    """CPUs ``0..cpus-1`` on NUMA nodes ``0..nodes-1``; ``cpu_node[c]`` is CPU c's node."""

    cpus: int
    nodes: int
    cpu_node: tuple[int, ...]
    page_size: int = 4096

    def __post_init__(self) -> None:
        if self.cpus < 1:
            raise ConfigError(f"machine: 'cpus' must be at least 1: {self.cpus}")
        if self.nodes < 1:
            raise ConfigError(f"machine: 'nodes' must be at least 1: {self.nodes}")
        if len(self.cpu_node) != self.cpus:
            raise ConfigError(
                f"machine: 'cpu_node' must list one node per CPU ({self.cpus}): {len(self.cpu_node)}"
            )
        bad = [n for n in self.cpu_node if not 0 <= n < self.nodes]
        if bad:
            raise ConfigError(f"machine: 'cpu_node' values must be in 0..{self.nodes - 1}: {bad[0]}")
        if self.page_size < 1 or self.page_size & (self.page_size - 1):
            raise ConfigError(f"machine: 'page_size' must be a power of two: {self.page_size}")

    @property
    def page_shift(self) -> int:
        return self.page_size.bit_length() - 1

    @classmethod
    def spread(cls, cpus: int, nodes: int, page_size: int = 4096) -> Machine:
        """A machine whose CPUs fill the nodes in order: the first cpus/nodes on node 0, ..."""
        per = -(-cpus // nodes)
        return cls(
            cpus=cpus,
            nodes=nodes,
            cpu_node=tuple(min(c // per, nodes - 1) for c in range(cpus)),
            page_size=page_size,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Machine:
        """Build from a ``tracereplay.machine`` JSON object (cpu_node defaults to spread)."""
        if not isinstance(d, dict):
            raise ConfigError(f"machine: must be a JSON object: {d!r}")
        unknown = set(d) - {"cpus", "nodes", "cpu_node", "page_size"}
        if unknown:
            raise ConfigError(f"machine: unknown key(s) {sorted(unknown)}")
        try:
            cpus = int(d["cpus"])
            nodes = int(d.get("nodes", 1))
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"machine: 'cpus' and 'nodes' must be integers: {d!r}") from e
        page_size = int(d.get("page_size", 4096))
        if "cpu_node" in d:
            return cls(cpus=cpus, nodes=nodes, cpu_node=tuple(int(x) for x in d["cpu_node"]),
                       page_size=page_size)
        return cls.spread(cpus, nodes, page_size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpus": self.cpus,
            "nodes": self.nodes,
            "cpu_node": list(self.cpu_node),
            "page_size": self.page_size,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))
