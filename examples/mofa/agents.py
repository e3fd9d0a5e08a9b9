"""The MOFA loop's agents: academy_ml's roles with the surrogate's choice of what to simulate.

* :class:`MofaGeneration` samples ``oversample`` times more linkers than it
  keeps and asks the planner which to simulate.
* :class:`MofaPlanner` is academy_ml's planner (backpressure, retrain by
  strategy, budget) plus a surrogate of CO2 uptake, refit by its own
  strategy as a batch of pipelines on academy_ml's runtime and node cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from academy.agent import action

import academy_ml as aml
from academy_ml.agents import GenerationAgent, PlannerAgent, call_with_timeout
from academy_ml.agents.strategies import (
    Call,
    Interval,
    OnCall,
    Predicate,
    Strategy,
    StrategyContext,
)
from mofa.surrogate import Surrogate

if TYPE_CHECKING:
    from academy.handle import Handle

__all__ = ["MofaGeneration", "MofaPlanner"]

logger = logging.getLogger(__name__)


class MofaGeneration(GenerationAgent):
    """A generation agent whose planner picks the linkers worth simulating.

    Args:
        planner: Handle to the :class:`MofaPlanner`.
        *args: See :class:`~academy_ml.agents.GenerationAgent`.
        **kwargs: See :class:`~academy_ml.agents.GenerationAgent`.
    """

    def __init__(self, *args: Any, planner: Handle[MofaPlanner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.planner = planner

    async def choose(self, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The planner's choice of ``batch_size`` payloads (else the first ones)."""
        try:
            chosen: list[int] = await call_with_timeout(
                self.planner.select(payloads, self.batch_size), self.call_timeout_s
            )
        except Exception as error:
            logger.warning("planner did not choose (%s); keeping the first samples", error)
            return payloads[: self.batch_size]
        return [payloads[i] for i in chosen]


class MofaPlanner(PlannerAgent):
    """The planner with a surrogate of CO2 uptake that chooses what to simulate.

    Args:
        *args: See :class:`~academy_ml.agents.PlannerAgent`.
        retrain: Whether the retrain strategy exists (``--no-retrain`` runs without it).
        refit_every: New uptake results that trigger a surrogate refit.
        explore: Share of each batch chosen at random rather than by the surrogate.
        seed: Seed of the random choices.
        **kwargs: See :class:`~academy_ml.agents.PlannerAgent`.
    """

    def __init__(
        self,
        *args: Any,
        retrain: bool = True,
        refit_every: int = 16,
        explore: float = 0.25,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.retrain = retrain
        self.refit_every = refit_every
        self.explore = explore
        self.surrogate = Surrogate(cache=aml.Cache(), seed=seed, threads=1)
        self._rng = np.random.default_rng(seed)
        self.state.update(fitted_on=0, surrogate="none")

    def strategies(self) -> Sequence[Strategy]:
        """The planner's strategies (without retrain when disabled), then the surrogate refit."""
        kept = [s for s in super().strategies() if self.retrain or s.name != "retrain"]
        refit = Strategy(
            "refit-surrogate",
            when=OnCall("record_result") | Interval(self.review_interval_s),
            if_=Predicate(self.refit_due, f"{self.refit_every} new results since the last fit"),
            then=[Call("refit_surrogate")],
        )
        return (*kept, refit)

    def restored(self) -> None:
        """A restored planner refits its surrogate at the next review."""
        self.state["fitted_on"] = 0

    async def refit_due(self, context: StrategyContext) -> bool:
        """Enough results arrived since the surrogate was last fit."""
        results = (await self.kb.counts())["results"]
        return bool(results - context.state["fitted_on"] >= self.refit_every)

    async def refit_surrogate(self) -> str:
        """Refit the surrogate on every result with an uptake (one pipeline batch)."""
        records = [r for r in await self.kb.results() if "uptake" in r.metrics]
        payloads, uptakes = [], []
        for record in records:
            candidate = await self.kb.candidate(record.candidate_id)
            if candidate is not None:
                payloads.append(candidate.payload)
                uptakes.append(record.metrics["uptake"])
        self.state["fitted_on"] = (await self.kb.counts())["results"]
        report = await asyncio.to_thread(self.surrogate.fit, payloads, uptakes)
        self.state["surrogate"] = f"{report.best} (CV r2 {report.best_score:.2f})"
        self.state["surrogate_ops"] = [report.naive_ops, report.unique_ops, report.executed]
        return f"{report.best}: r2 {report.best_score:.2f} on {report.n_samples}"

    @action
    async def select(self, payloads: list[dict[str, Any]], k: int) -> list[int]:
        """Indices of ``k`` payloads to simulate: the surrogate's best, some at random."""
        return self.surrogate.select(payloads, k, explore=self.explore, rng=self._rng)
