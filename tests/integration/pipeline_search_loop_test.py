"""Scenario: agents search scikit-learn pipelines; analysis runs them as batches on the runtime.

Launched from spec files (``up`` on Academy's in-process exchange): a
generation agent proposes pipelines (explore, then exploit after each
retrain), an :class:`AnalysisAgent` with a ``PipelineBatches`` evaluator
compiles the candidates waiting together into one plan and places it on an
endpoint, where ``run_batch`` runs it against the node cache, and the
planner retrains by strategy. Every candidate gets exactly one result;
scores equal scikit-learn's ``cross_val_score``; later batches reuse what
earlier ones cached. A search space smaller than the budget runs dry:
generation finishes by its default strategy, the planner stops, and the run
still ends with one result each.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from loop_toys import search_table
from sklearn.model_selection import cross_val_score

from academy_ml.agents.knowledge import InMemoryKnowledgeBase, unseal_state
from academy_ml.agents.strategic import CHECKPOINT_KIND
from academy_ml.compute.tasks.specs import decode_pipelines
from academy_ml.deploy.launch import RunOutcome, load_deployment, up


def search(tmp_path: Path, kb: InMemoryKnowledgeBase, *, budget: int, generator: str) -> RunOutcome:
    """Run the search deployment to its end; ``generator`` adds PipelineGenerator options."""
    here = Path(__file__).parent
    (tmp_path / "generation.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.GenerationAgent"\nname = "generation"\n'
        '[agent.init]\nbatch_size = 8\ntrain_flag = "ok"\ntrain_size = 8\n'
        "generator = { class = 'academy_ml.agents.PipelineGenerator', "
        f"numeric = ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'], categorical = ['cat0'], {generator} }}\n"
        '[agent.handles]\nanalysis = "analysis"\n'
    )
    (tmp_path / "analysis.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.AnalysisAgent"\nname = "analysis"\n'
        "[agent.init]\nsweep_interval_s = 1.0\n"
        'evaluator = { class = "academy_ml.agents.PipelineBatches", '
        'dataset = "loop_toys.search_table", cv = 3, scoring = "r2", batch_size = 8 }\n'
        '[agent.handles]\nplanner = "planner"\n[placement]\nendpoint = "pool"\n'
    )
    (tmp_path / "planner.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "planner"\n'
        f'[agent.init]\nbudget = {budget}\nretrain_after = 8\nretrain_flag = "ok"\n'
        'model_name = "generation"\nreview_interval_s = 0.5\n'
        '[agent.handles]\ngeneration = "generation"\nanalysis = "analysis"\n'
    )
    config = tmp_path / "deployment.toml"
    config.write_text(
        '[deployment]\nname = "search"\n'
        'agents = ["planner.toml", "analysis.toml", "generation.toml"]\n'
        f'python_path = ["{here}"]\nstop_with = "planner"\n'
        '[endpoints.pool]\nkind = "local"\nworkers = 1\n'
    )
    # Generous: two busy loops beside it make this several times slower than idle.
    return asyncio.run(up(load_deployment(config), knowledge=kb, timeout_s=600))


def test_pipeline_search_loop_batches_on_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACADEMY_ML_CACHE_DIR", str(tmp_path / "cache"))
    kb = InMemoryKnowledgeBase()
    outcome = search(tmp_path, kb, budget=40, generator="max_k = 4")
    assert outcome.reason == "done"

    async def read() -> tuple[dict[str, int], list[tuple[bytes, float]], int, dict[str, int]]:
        results = await kb.results()
        scored = []
        for result in results:
            assert "failed" not in result.flags, result.error
            candidate = await kb.candidate(result.candidate_id)
            assert candidate is not None
            scored.append((candidate.payload["pipeline"], result.metrics["score"]))
        model = await kb.latest_model("generation")
        saved = await kb.load_checkpoint("analysis")
        assert saved is not None
        state = unseal_state(CHECKPOINT_KIND, saved)
        return await kb.counts(), scored, 0 if model is None else model.version, state

    counts, scored, version, state = asyncio.run(read())
    assert counts["pending"] == 0
    assert counts["results"] == counts["candidates"] >= 40
    assert version >= 1  # retrained by the planner's strategy
    assert state["batches"] < counts["results"]  # candidates went out together
    assert state["cache_hits"] > 0  # later batches reused earlier ones' intermediates
    X, y = search_table()
    for spec, score in scored[:: max(1, len(scored) // 4)]:
        (pipeline,) = decode_pipelines(spec)
        expected = cross_val_score(pipeline, X, y, cv=3, scoring="r2").mean()
        assert score == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_a_search_space_smaller_than_the_budget_ends_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACADEMY_ML_CACHE_DIR", str(tmp_path / "cache"))
    kb = InMemoryKnowledgeBase()
    # 45 linear pipelines exist (see generate_test); the budget asks for more.
    outcome = search(tmp_path, kb, budget=1000, generator="max_k = 2, models = ['linear']")
    assert outcome.reason == "done"

    async def read() -> tuple[dict[str, int], list[str], list[str], list[str]]:
        results = await kb.results()
        saved = await kb.load_checkpoint("generation")
        generation = {} if saved is None else unseal_state(CHECKPOINT_KIND, saved)
        generation_fired = [f.strategy for f in await kb.firings(agent="generation") if f.fired]
        planner_fired = [f.strategy for f in await kb.firings(agent="planner") if f.fired]
        assert generation["finished"]  # (a retrain after it may have reset "exhausted")
        return await kb.counts(), [r.candidate_id for r in results], generation_fired, planner_fired

    counts, ids, generation_fired, planner_fired = asyncio.run(read())
    assert counts["pending"] == 0
    assert counts["results"] == counts["candidates"] == 45
    assert len(set(ids)) == len(ids) == 45
    assert generation_fired == ["finish-when-exhausted"]
    assert "generation-finished" in planner_fired
    assert "budget" not in planner_fired
