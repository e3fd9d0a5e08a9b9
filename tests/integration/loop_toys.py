"""Toy agents' parts for the launch scenarios: a counting generator and a slow evaluation.

Importable by host processes (the scenarios put this directory on the
deployment's ``python_path``). Every evaluation appends its number to the
file named by ``$LOOP_TOYS_LOG``, so a test can tell whether any candidate
was evaluated twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgpack

from academy_ml.agents import TrainingExample


class Counter:
    """Proposes consecutive integers; each retrain moves them up by 1000."""

    def __init__(self) -> None:
        self.version = 0
        self.next = 0

    def sample(self, n: int) -> list[dict[str, Any]]:
        start = self.version * 1000 + self.next
        self.next += n
        return [{"x": x} for x in range(start, start + n)]

    def retrain(self, examples: Sequence[TrainingExample]) -> int:
        self.version += 1
        self.next = 0
        return self.version

    def state(self) -> dict[str, Any]:
        return {"version": self.version, "next": self.next}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.version, self.next = state["version"], state["next"]


def evaluate(payload: bytes) -> dict[str, Any]:
    """Score = the number, stable when even; takes ``$LOOP_TOYS_DELAY_S`` seconds."""
    x = msgpack.unpackb(payload)["x"]
    time.sleep(float(os.environ.get("LOOP_TOYS_DELAY_S", "0.02")))
    log = os.environ.get("LOOP_TOYS_LOG")
    if log:
        with Path(log).open("a") as file:
            file.write(f"{x}\n")
    return {"metrics": {"score": float(x)}, "flags": {"stable": x % 2 == 0}}


def write_deployment(directory: Path, deployment: str, planner: str = "") -> Path:
    """Write the three toy agent specs and a deployment config; return the config's path."""
    here = Path(__file__).parent
    (directory / "generation.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.GenerationAgent"\nname = "generation"\n'
        '[agent.init]\nbatch_size = 4\ngenerator = { class = "loop_toys.Counter" }\n'
        '[agent.handles]\nanalysis = "analysis"\n'
    )
    (directory / "analysis.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.AnalysisAgent"\nname = "analysis"\n'
        "[agent.init]\nsweep_interval_s = 1.0\n"
        'evaluator = { class = "academy_ml.agents.FunctionCalls", '
        'function = "loop_toys.evaluate" }\n'
        '[agent.handles]\nplanner = "planner"\n'
    )
    (directory / "planner.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "planner"\n'
        '[agent.init]\nmodel_name = "generation"\nreview_interval_s = 1.0\n' + planner + "\n"
        '[agent.handles]\ngeneration = "generation"\nanalysis = "analysis"\n'
    )
    config = directory / "deployment.toml"
    config.write_text(
        "[deployment]\n" + deployment + "\n"
        'agents = ["planner.toml", "analysis.toml", "generation.toml"]\n'
        f'python_path = ["{here}"]\nstop_with = "planner"\ncheckpoint_interval_s = 0.5\n'
    )
    return config


def stored(path: Path) -> tuple[dict[str, int], list[float]]:
    """A SQLite knowledge base's counts and every result's score, read after the run."""
    from academy_ml.agents.knowledge import SqliteKnowledgeBase

    async def read() -> tuple[dict[str, int], list[float]]:
        kb = SqliteKnowledgeBase(path)
        try:
            return await kb.counts(), [r.metrics["score"] for r in await kb.results()]
        finally:
            await kb.close()

    return asyncio.run(read())


def search_table() -> tuple[Any, Any]:
    """The pipeline-search scenario's dataset: 400 rows, 6 numeric and 1 categorical column."""
    from academy_ml.agents.search_space import synthetic_table

    return synthetic_table(400, n_numeric=6, n_categorical=1, seed=0)
