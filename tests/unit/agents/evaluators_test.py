"""AnalysisAgent with its evaluators, driven directly: batches, routing, a dataset prepared once."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from academy_ml.agents import AnalysisAgent, FunctionCalls, InProcess, PipelineBatches
from academy_ml.agents.knowledge import CandidateRecord, InMemoryKnowledge, InMemoryKnowledgeBase
from academy_ml.compute.placement import RUN_BATCH, LocalEndpoint
from academy_ml.compute.placement.endpoints import TaskFunction
from academy_ml.compute.tasks.specs import encode_pipelines
from academy_ml.engine.data import Table

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), 60.0)

    return asyncio.run(bounded())


async def poll(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(50.0):
        while not await check():
            await asyncio.sleep(0.01)


class Planner:
    """Takes the analysis agent's reports."""

    async def record_result(self, candidate_id: str, queue_depth: int) -> None:
        pass

    async def report_queue(self, queue_depth: int) -> None:
        pass


class Counted:
    """A real endpoint that notes the task functions submitted to it."""

    def __init__(self, name: str) -> None:
        self.inner = LocalEndpoint(name, workers=1)
        self.name = name
        self.tasks: list[str] = []

    @property
    def in_flight(self) -> int:
        return self.inner.in_flight

    def submit(self, fn: str | TaskFunction, payload: bytes) -> Future[Any]:
        self.tasks.append(fn if isinstance(fn, str) else fn.__name__)
        return self.inner.submit(fn, payload)

    def close(self) -> None:
        self.inner.close()

    @property
    def batches(self) -> int:
        return self.tasks.count(RUN_BATCH)


def toy_data() -> tuple[Any, Any]:
    """60 rows, 3 numeric columns, a linear target with noise."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=60)


def ridge(alpha: float) -> Any:
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


async def add(kb: InMemoryKnowledgeBase, payloads: dict[str, Any]) -> list[str]:
    for cid, payload in payloads.items():
        await kb.add_candidate(CandidateRecord(id=cid, model_version=0, payload=payload))
    return list(payloads)


async def evaluated(agent: AnalysisAgent, kb: InMemoryKnowledgeBase, ids: list[str]) -> None:
    await agent.submit(ids)

    async def done() -> bool:
        return all([await kb.results_for(cid) for cid in ids])

    await poll(done)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACADEMY_ML_CACHE_DIR", str(tmp_path / "cache"))


def test_a_redirect_moves_the_next_batch_to_the_named_endpoint() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        primary, backup = Counted("primary"), Counted("backup")
        analysis = AnalysisAgent(
            PipelineBatches(f"{__name__}.toy_data", cv=3, batch_size=2, batch_wait_s=30.0),
            Planner(),  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
            endpoint=primary,
            backups={"backup": backup},
            owns_endpoints=True,
        )
        await analysis.agent_on_startup()
        spec = {f"a{i}": {"pipeline": encode_pipelines([ridge(a)])} for i, a in enumerate((1, 2))}
        await evaluated(analysis, kb, await add(kb, spec))
        assert (primary.batches, backup.batches) == (1, 0)
        # The primary holds the batch's intermediates: only the redirect sends the next away.
        assert await analysis.redirect("backup") == "backup"
        spec = {f"b{i}": {"pipeline": encode_pipelines([ridge(a)])} for i, a in enumerate((1, 3))}
        await evaluated(analysis, kb, await add(kb, spec))
        assert (primary.batches, backup.batches) == (1, 1)
        (result,) = await kb.results_for("b1")
        X, y = toy_data()
        expected = cross_val_score(ridge(3), X, y, cv=3).mean()
        assert result.metrics["score"] == pytest.approx(expected, rel=1e-6)
        assert analysis.state["batches"] == 2
        await analysis.agent_on_shutdown()

    run(main)


def test_the_dataset_is_prepared_once_for_every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from academy_ml.compute.tasks import request
    from academy_ml.engine import compile_batch

    compiled_on: list[Any] = []

    def spy(pipelines: Any, **kwargs: Any) -> Any:
        compiled_on.append(kwargs["X"])
        return compile_batch(pipelines, **kwargs)

    monkeypatch.setattr(request, "compile_batch", spy)

    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        analysis = AnalysisAgent(
            PipelineBatches(f"{__name__}.toy_data", cv=3, batch_size=1),
            Planner(),  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
        )
        await analysis.agent_on_startup()
        for alpha in (1, 2, 3):
            spec = {f"c{alpha}": {"pipeline": encode_pipelines([ridge(alpha)])}}
            await evaluated(analysis, kb, await add(kb, spec))
        await analysis.agent_on_shutdown()

    run(main)
    assert len(compiled_on) == 3
    assert isinstance(compiled_on[0], Table)  # prepared already, not an Arrow table
    assert all(features is compiled_on[0] for features in compiled_on)


def test_a_bad_spec_fails_its_candidate_and_not_its_batch() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        analysis = AnalysisAgent(
            PipelineBatches(f"{__name__}.toy_data", cv=3, batch_size=2, batch_wait_s=30.0),
            Planner(),  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
        )
        await analysis.agent_on_startup()
        spec = {"good": {"pipeline": encode_pipelines([ridge(1)])}, "bad": {"pipeline": b"\x00"}}
        await evaluated(analysis, kb, await add(kb, spec))
        (good,) = await kb.results_for("good")
        (bad,) = await kb.results_for("bad")
        assert good.flags == {"ok": True}
        assert bad.flags == {"failed": True}
        assert bad.error is not None
        assert bad.error.startswith("WireError")
        assert analysis.state["batches"] == 1
        assert analysis.state["executed"] > 0
        await analysis.agent_on_shutdown()

    run(main)


def score(payload: bytes) -> dict[str, Any]:
    x = msgpack.unpackb(payload)["x"]
    if x < 0:
        raise ValueError("negative")
    return {"metrics": {"score": float(x)}}


def test_candidates_waiting_together_go_out_as_one_batch_and_a_failed_batch_is_retried() -> None:
    async def main() -> None:
        kb = InMemoryKnowledgeBase()
        twin = InProcess(f"{__name__}.score", batch_size=3, batch_wait_s=30.0)
        analysis = AnalysisAgent(
            twin,
            Planner(),  # type: ignore[arg-type]
            InMemoryKnowledge(kb),
            endpoint=LocalEndpoint("here", workers=1),
            owns_endpoints=True,
            max_attempts=2,
            strategies=[
                {
                    "name": "count",
                    "when": [{"on_event": "evaluation_failed"}],
                    "then": [{"set_state": {"seen_failure": True}}],
                }
            ],
        )
        await analysis.agent_on_startup()
        await evaluated(analysis, kb, await add(kb, {f"c{x}": {"x": x} for x in (1, 2, 3)}))
        assert twin.routes == [("here", ["c1", "c2", "c3"])]
        twin.routes.clear()
        # One negative x fails the whole call: tried again (max_attempts), then failed.
        await evaluated(analysis, kb, await add(kb, {f"c{x}": {"x": x} for x in (4, -5, 6)}))
        assert [ids for _, ids in twin.routes] == [["c4", "c-5", "c6"]] * 2
        for cid in ("c4", "c6"):
            assert (await kb.results_for(cid))[0].flags == {"failed": True}
        assert (await kb.results_for("c-5"))[0].error == "ValueError: negative"
        assert analysis.state["consecutive_failures"] == 2  # once per batch, not per candidate
        assert analysis.state["seen_failure"] is True
        await analysis.agent_on_shutdown()

    run(main)


def test_an_in_memory_knowledge_factory_shares_one_base_and_stays_in_its_process() -> None:
    kb = InMemoryKnowledgeBase()
    factory = InMemoryKnowledge(kb)
    assert factory.open() is kb
    assert factory.open() is kb
    with pytest.raises(TypeError, match="cannot leave its process"):
        pickle.dumps(factory)


def test_evaluators_pickle_until_they_start() -> None:
    """Academy may ship an agent to its executor before its startup."""
    for evaluator in (
        PipelineBatches(f"{__name__}.toy_data", cv=3),
        FunctionCalls(f"{__name__}.score"),
        InProcess(f"{__name__}.score"),
    ):
        copy = pickle.loads(pickle.dumps(evaluator))
        assert type(copy) is type(evaluator)
