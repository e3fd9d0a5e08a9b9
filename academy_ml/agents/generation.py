"""The generation agent: samples candidates, records them in the ledger, hands them over.

Every candidate is added to the knowledge base before anyone is told of it,
so the ledger (:meth:`~academy_ml.agents.knowledge.KnowledgeBase.pending`) is the
source of truth: a hand-over lost to a crash or a timeout is found again by
the analysis agent's sweep. Candidate ids are ``<name>-<n>`` and never
reused, even when a checkpoint is older than the last candidate recorded.

A generator that runs out of new candidates raises
:class:`~academy_ml.exceptions.GeneratorExhausted`: the agent delivers the
partial batch it carries, raises the event ``generator_exhausted`` and
samples no more until a retrain, :meth:`GenerationAgent.resume` or
:meth:`GenerationAgent.finish`. The default strategy finishes generation on
that event (the planner sees it and stops once the ledger drains); a spec's
``[[strategies]]`` may choose otherwise, e.g. ``then = [{ call = "retrain" }]``.

A finished agent samples nothing more, but its loop idles rather than ends:
:meth:`GenerationAgent.reopen` (the planner's, when a run finished at its
budget is resumed with a larger one) makes it sample again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from academy.agent import loop

from academy_ml.agents.knowledge import CandidateRecord, KnowledgeFactory, ModelVersion
from academy_ml.agents.strategic import (
    StrategicAgent,
    call_with_timeout,
    strategic_action,
    wait_any,
)
from academy_ml.agents.strategies import Call, OnEvent, Strategy
from academy_ml.exceptions import GeneratorExhausted

if TYPE_CHECKING:
    from academy.handle import Handle

    from academy_ml.agents.analysis import AnalysisAgent

__all__ = ["EXHAUSTED", "GenerationAgent", "Generator", "StatefulGenerator", "TrainingExample"]

logger = logging.getLogger(__name__)

#: The event raised when the generator has no new candidate left.
EXHAUSTED = "generator_exhausted"


class TrainingExample(NamedTuple):
    """One result a generator retrains on: the candidate's payload and what it scored."""

    payload: dict[str, Any]
    metrics: dict[str, float]
    flags: dict[str, bool]


class Generator(Protocol):
    """A generative model the generation agent wraps."""

    def sample(self, n: int) -> list[dict[str, Any]]:
        """Propose up to ``n`` new candidates (msgpack-encodable payloads).

        Raises:
            GeneratorExhausted: No new candidate is left; its ``partial`` holds
                the last ones found (they are still delivered).
        """
        ...

    def retrain(self, examples: Sequence[TrainingExample]) -> int:
        """Retrain on ``examples`` (best first) and return the new, higher model version."""
        ...


@runtime_checkable
class StatefulGenerator(Protocol):
    """A generator whose state the agent checkpoints with its own."""

    def state(self) -> dict[str, Any]:
        """The model's state (msgpack-encodable)."""
        ...

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a state returned by :meth:`state`."""
        ...


class GenerationAgent(StrategicAgent):
    """Samples candidates and sends them to the analysis agent, batch after batch.

    Args:
        generator: The model (checkpointed too when it is a :class:`StatefulGenerator`).
        analysis: Handle to the analysis agent.
        knowledge: See :class:`StrategicAgent`.
        batch_size: Candidates per batch.
        oversample: Payloads sampled per candidate kept; :meth:`choose` keeps
            ``batch_size`` of them (the first ones unless a subclass chooses).
        metric: Metric ranking the results the generator retrains on.
        train_flag: Flag the results it retrains on must carry (None: any).
        train_size: How many of the best results it retrains on.
        call_timeout_s: How long a hand-over may take before it is left to
            the analysis agent's sweep.
        **options: See :class:`StrategicAgent`.
    """

    def __init__(
        self,
        generator: Generator,
        analysis: Handle[AnalysisAgent],
        knowledge: KnowledgeFactory,
        *,
        batch_size: int = 8,
        oversample: int = 1,
        metric: str = "score",
        train_flag: str | None = None,
        train_size: int = 64,
        call_timeout_s: float = 30.0,
        **options: Any,
    ) -> None:
        super().__init__(knowledge, **options)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.generator = generator
        self.analysis = analysis
        self.batch_size = batch_size
        if oversample < 1:
            raise ValueError(f"oversample must be at least 1, got {oversample}")
        self.oversample = oversample
        self.metric = metric
        self.train_flag = train_flag
        self.train_size = train_size
        self.call_timeout_s = call_timeout_s
        self.state.update(
            model_version=0, generated=0, paused=False, finished=False, exhausted=False
        )
        self._resumed = asyncio.Event()
        self._unrecorded: list[dict[str, Any]] = []

    def strategies(self) -> Sequence[Strategy]:
        """Finish generation when the generator is exhausted."""
        return (Strategy("finish-when-exhausted", when=OnEvent(EXHAUSTED), then=[Call("finish")]),)

    def snapshot(self) -> None:
        """Put the generator's state into :attr:`state` before a checkpoint."""
        if isinstance(self.generator, StatefulGenerator):
            self.state["generator"] = self.generator.state()

    def restored(self) -> None:
        """Give a checkpointed generator state back to the generator."""
        saved = self.state.get("generator")
        if saved is not None and isinstance(self.generator, StatefulGenerator):
            self.generator.load_state(saved)

    async def choose(self, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Which ``batch_size`` of the sampled payloads become candidates (the first ones)."""
        return payloads[: self.batch_size]

    @loop
    async def generate(self, shutdown: asyncio.Event) -> None:
        """Sample, record and hand over batches until shutdown; idle while paused or finished."""

        async def step() -> None:
            idle = self.state["paused"] or self.state["exhausted"]
            if self.state["finished"] or (idle and not self._unrecorded):
                self._resumed.clear()
                await wait_any(shutdown, self._resumed)
            else:
                await self._generate_batch()

        await self.keep_stepping("generate", shutdown, step)

    async def _generate_batch(self) -> None:
        """Sample a batch, record it and hand it over; raise the event if the generator ran dry.

        A batch whose recording failed (knowledge base unreachable) is recorded
        by the next step before anything new is sampled.
        """
        if not self._unrecorded:
            try:
                sampled = self.generator.sample(self.batch_size * self.oversample)
            except GeneratorExhausted as error:
                logger.info("%s: generator exhausted: %s", self.name, error)
                sampled = error.partial
                self.state["exhausted"] = True
            if not sampled:  # nothing new, said or not: sampling again at once would spin
                self.state["exhausted"] = True
            self._unrecorded = await self.choose(sampled) if sampled else []
        version = self.state["model_version"]
        ids = []
        while self._unrecorded:
            ids.append(await self._record(self._unrecorded[0], version))
            del self._unrecorded[0]
        if ids:
            try:
                await call_with_timeout(self.analysis.submit(ids), self.call_timeout_s)
            except Exception as error:
                # The candidates are in the ledger; the analysis agent's sweep finds them.
                logger.warning("hand-over of %d candidates failed: %s", len(ids), error)
        if self.state["exhausted"]:
            await self.emit(EXHAUSTED)

    async def _record(self, payload: dict[str, Any], version: int) -> str:
        """Add one candidate under the next unused id; return the id."""
        while True:
            candidate = CandidateRecord(
                id=f"{self.name}-{self.state['generated']}", model_version=version, payload=payload
            )
            self.state["generated"] += 1
            if await self.kb.add_candidate(candidate):
                return candidate.id

    @strategic_action
    async def pause(self) -> None:
        """Stop sampling until :meth:`resume`."""
        self.state["paused"] = True

    @strategic_action
    async def resume(self) -> None:
        """Sample again after :meth:`pause` (or after the generator was exhausted)."""
        self.state["paused"] = False
        self.state["exhausted"] = False
        self._resumed.set()

    @strategic_action
    async def finish(self) -> None:
        """Stop sampling (for the rest of the run unless :meth:`reopen` is called)."""
        self.state["finished"] = True

    @strategic_action
    async def reopen(self) -> None:
        """Sample again after :meth:`finish` (a budget raised on a resumed run).

        A generator that had run dry is tried again: if it still finds nothing,
        generation finishes again on its own (``generator_exhausted``).
        """
        self.state["finished"] = False
        self.state["exhausted"] = False
        self._resumed.set()

    @strategic_action
    async def retrain(self) -> int:
        """Retrain the generator on the best results so far and register the new version.

        Raises:
            ValueError: The generator returned a version not above the current one.
        """
        records = await self.kb.top_k(self.metric, self.train_size, flag=self.train_flag)
        examples = []
        for record in records:
            candidate = await self.kb.candidate(record.candidate_id)
            if candidate is not None:
                examples.append(TrainingExample(candidate.payload, record.metrics, record.flags))
        version = self.generator.retrain(examples)
        if version <= self.state["model_version"]:
            raise ValueError(
                f"retrain returned version {version}, not above {self.state['model_version']}"
            )
        self.state["model_version"] = version
        # A retrained generator may find new candidates where the old one found none.
        self.state["exhausted"] = False
        self._resumed.set()
        await self.kb.register_model(
            ModelVersion(name=self.name, version=version, metrics={"train_size": len(examples)})
        )
        await self.checkpoint()
        return version
