"""Pipeline search's generator: candidates are scikit-learn pipelines.

:class:`PipelineGenerator` proposes pipelines the way an exploring agent does
(:mod:`academy_ml.agents.search_space`) and, once retrained, breeds new ones
from the best results (``exploit``). An :class:`~academy_ml.agents.AnalysisAgent`
with a :class:`~academy_ml.agents.evaluators.PipelineBatches` evaluator
cross-validates them in batches on the runtime.

A candidate's payload is ``{"candidate": {...}, "pipeline": <spec bytes>}``;
specs name classes only from trusted modules and are decoded without
unpickling (:mod:`academy_ml.compute.tasks.specs`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from academy_ml.agents.generation import TrainingExample
from academy_ml.agents.search_space import Candidate, Task, exploit, explore_candidates
from academy_ml.compute.tasks.specs import encode_pipelines
from academy_ml.exceptions import GeneratorExhausted

__all__ = ["PipelineGenerator"]

logger = logging.getLogger(__name__)


class PipelineGenerator:
    """Proposes pipelines over known columns: explores, then exploits the best results.

    Args:
        numeric: Numeric column names of the dataset.
        categorical: Categorical column names.
        task: ``"regression"`` or ``"classification"``.
        seed: Makes the proposals reproducible.
        max_k: Largest PCA / SelectKBest size.
        models: Model families to propose (None: all of the task's).
    """

    def __init__(
        self,
        numeric: Sequence[str],
        categorical: Sequence[str] = (),
        *,
        task: Task = "regression",
        seed: int = 0,
        max_k: int = 8,
        models: Sequence[str] | None = None,
    ) -> None:
        self.numeric, self.categorical = list(numeric), list(categorical)
        self.models = None if models is None else tuple(models)
        self.task: Task = task
        self.seed = seed
        self.max_k = max_k
        self.version = 0
        self.rounds = 0
        self.elite: list[Candidate] = []
        self.elite_scores: list[float] = []
        self.seen: set[Candidate] = set()

    def sample(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` pipelines not proposed before, as payloads.

        Children of the best results first; when those run out, explored ones.

        Raises:
            GeneratorExhausted: Not one pipeline is left that was not proposed before.
        """
        self.rounds += 1
        seed = self.seed * 1_000_003 + self.rounds
        options: dict[str, Any] = {"task": self.task, "max_k": self.max_k, "models": self.models}
        fresh: dict[Candidate, None] = {}
        sources: list[Callable[[], list[Candidate]]] = []
        if self.elite:
            scores = self.elite_scores
            sources.append(
                functools.partial(exploit, self.elite, 4 * n, scores=scores, seed=seed, **options)
            )
        sources.append(functools.partial(explore_candidates, 4 * n, seed=seed, **options))
        for propose in sources:
            try:
                proposed = propose()
            except GeneratorExhausted as exhausted:
                proposed = exhausted.partial
            fresh.update((c, None) for c in proposed if c not in self.seen)
            if len(fresh) >= n:
                break
        if not fresh:
            raise GeneratorExhausted(
                f"no pipeline left that was not proposed before ({len(self.seen)} proposed)"
            )
        chosen = list(fresh)[:n]
        self.seen.update(chosen)
        return [self.payload(c) for c in chosen]

    def payload(self, candidate: Candidate) -> dict[str, Any]:
        """A candidate's payload: its choices and its pipeline's spec."""
        pipeline = candidate.build(self.numeric, self.categorical, self.task)
        return {
            "candidate": dataclasses.asdict(candidate),
            "pipeline": encode_pipelines([pipeline]),
        }

    def retrain(self, examples: Sequence[TrainingExample]) -> int:
        """Breed later proposals from these results (best first); returns the new version."""
        self.elite = [Candidate(**e.payload["candidate"]) for e in examples]
        self.elite_scores = [e.metrics["score"] for e in examples]
        self.version += 1
        return self.version
