"""Hash-consed plan graph.

Every node is keyed by its operation, canonical parameters and the keys of
its inputs, so identical work requested by many pipelines (or folds) becomes
one node.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from academy_ml.engine.data import digest

__all__ = ["Graph"]

Op = dict[str, Any]


def canonical(op: Op) -> str:
    """Canonical text of an operation: sorted keys, exact float reprs."""
    return json.dumps(op, sort_keys=True, separators=(",", ":"), allow_nan=True)


@dataclass
class Graph:
    """An append-only DAG of runtime operations.

    Attributes:
        dedupe: Whether equal keys share a node (common subexpression
            elimination); off for the naive count and the no-CSE ablation.
    """

    dedupe: bool = True
    nodes: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    _by_key: dict[str, int] = field(default_factory=dict)

    def add(self, op: Op, inputs: Sequence[int] = (), *, salt: str = "") -> int:
        """Adds (or finds) a node and returns its id.

        Args:
            op: The operation, as the runtime's plan names it.
            inputs: Ids of the nodes it reads.
            salt: Extra key material for sources (the dataset fingerprint).
        """
        key = digest(canonical(op), salt, *(self.keys[i] for i in inputs))
        if self.dedupe and key in self._by_key:
            return self._by_key[key]
        node_id = len(self.nodes)
        self.nodes.append({"op": op, "inputs": list(inputs), "key": key})
        self.keys.append(key)
        self._by_key.setdefault(key, node_id)
        return node_id

    def mark(self) -> int:
        """A point to roll back to."""
        return len(self.nodes)

    def rollback(self, mark: int) -> None:
        """Forgets every node added since ``mark``."""
        for key in self.keys[mark:]:
            if self._by_key.get(key, -1) >= mark:
                del self._by_key[key]
        del self.nodes[mark:]
        del self.keys[mark:]

    def op_count(self) -> int:
        """Nodes that do work (sources excluded)."""
        return sum(1 for n in self.nodes if not n["op"]["kind"].startswith("source"))
