"""Hash-consed plan graph.

Every node is keyed by its operation, canonical parameters and the keys of
its inputs, so identical work requested by many pipelines (or folds) becomes
one node.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from academy_ml.engine.data import digest
from academy_ml.engine.ops import UNKEYED, Node, Op

__all__ = ["Graph", "canonical", "is_source"]

# One encoder for every node: json.dumps would build one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=True)


def canonical(op: Op) -> str:
    """Canonical text of an operation: sorted keys, exact float reprs.

    Fields in :data:`~academy_ml.engine.ops.UNKEYED` are left out.
    """
    unkeyed = UNKEYED.get(op["kind"])
    if unkeyed is None:
        return _CANONICAL.encode(op)
    return _CANONICAL.encode({k: v for k, v in op.items() if k not in unkeyed})


@dataclass
class Graph:
    """An append-only DAG of runtime operations.

    Attributes:
        dedupe: Whether equal keys share a node (common subexpression
            elimination); off for the naive count and the no-CSE ablation.
    """

    dedupe: bool = True
    nodes: list[Node] = field(default_factory=list)
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
        return sum(1 for n in self.nodes if not is_source(n["op"]))


def is_source(op: Op) -> bool:
    """Whether ``op`` reads the dataset rather than computing."""
    return op["kind"] in ("source_x", "source_y")
