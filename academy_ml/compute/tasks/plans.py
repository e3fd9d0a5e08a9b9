"""Plans an endpoint worker compiled, kept for requests that ask for them again.

Compiling a batch (decoding its specs under the allow-lists, lowering every
pipeline, keying every node) is the largest Python cost of a small task,
and an endpoint sees the same batch again: a retried task, an agent
re-scoring its incumbents, several agents proposing the same pipeline. A
worker process keeps the last :data:`MAX_PLANS` compilations, keyed by
everything a compilation depends on: the specs' bytes, the folds, the
scoring, the dataset's fingerprint (which names immutable content) and the
trust configuration the specs were decoded under. A request is still
checked against the plan its client compiled every time (``run_batch``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from academy_ml.compute.tasks import specs
from academy_ml.compute.tasks.request import BatchRequest
from academy_ml.compute.tasks.trust import Trust
from academy_ml.engine import compile_batch
from academy_ml.engine.data import Table, Target
from academy_ml.engine.plan import Plan
from academy_ml.exceptions import WireError

__all__ = ["MAX_PLANS", "Compiled", "PlanCache"]

#: Compilations a worker keeps (a plan of 1,000 pipelines holds a few MiB).
MAX_PLANS = 32


@dataclass(frozen=True)
class Compiled:
    """A request's batch as this endpoint compiles it.

    Attributes:
        plan: The plan of the pipelines this endpoint accepts (None: none).
        runnable: Batch indices of those pipelines, in plan order.
        refused: Why each other pipeline was refused, by batch index.
    """

    plan: Plan | None
    runnable: tuple[int, ...]
    refused: dict[int, str]

    @property
    def complete(self) -> bool:
        """Whether every pipeline of the batch is in the plan."""
        return not self.refused


class PlanCache:
    """The last ``max_plans`` compilations of a worker, least recently used out.

    Thread-safe; two threads compiling the same batch at once both compile
    it (the plan is the same), which is cheaper than making one wait.
    """

    def __init__(self, max_plans: int = MAX_PLANS) -> None:
        self.max_plans = max_plans
        self.hits = 0
        self.misses = 0
        self._plans: OrderedDict[Hashable, Compiled] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._plans)

    def compiled(self, task: BatchRequest, X: Table, y: Target) -> Compiled:
        """The plan of ``task``'s batch on its dataset (``X``, ``y``), compiled once.

        Raises:
            WireError: The specs as a whole are malformed, too large or deep,
                or the folds do not fit the dataset.
        """
        trust = Trust.from_env()
        key = _key(task, trust)
        with self._lock:
            found = self._plans.get(key)
            if found is not None:
                self._plans.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        made = _compile(task, X, y, trust)
        with self._lock:
            self._plans[key] = made
            self._plans.move_to_end(key)
            while len(self._plans) > self.max_plans:
                self._plans.popitem(last=False)
        return made

    def clear(self) -> None:
        """Forgets every plan (and the counters)."""
        with self._lock:
            self._plans.clear()
            self.hits = self.misses = 0


def _key(task: BatchRequest, trust: Trust) -> tuple[Any, ...]:
    specs_digest = hashlib.blake2b(task.pipelines, digest_size=16).digest()
    return (specs_digest, len(task.pipelines), task.folds_key(), task.scoring, task.dataset, trust)


def _compile(task: BatchRequest, X: Table, y: Target, trust: Trust) -> Compiled:
    # The folds are checked against the dataset's rows before anything is decoded.
    cv = task.folds(X.n_rows)
    decoded = specs.decode_each(task.pipelines, trust)
    runnable = tuple(i for i, p in enumerate(decoded) if not isinstance(p, WireError))
    refused = {i: f"WireError: {p}" for i, p in enumerate(decoded) if isinstance(p, WireError)}
    if not runnable:
        return Compiled(None, runnable, refused)
    # The endpoint compiles its own plan from the specs it decoded under its
    # allow-lists: a plan handed to it is never run.
    plan = compile_batch([decoded[i] for i in runnable], cv=cv, X=X, y=y, scoring=task.scoring)
    return Compiled(plan, runnable, refused)
