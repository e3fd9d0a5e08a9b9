"""Agent roles: Academy agents that host strategies and share a knowledge base.

* :class:`StrategicAgent`: the base; strategies fed by Academy loops,
  actions and events; firings logged; state checkpointed and restored.
* :class:`GenerationAgent`, :class:`AnalysisAgent`, :class:`PlannerAgent`:
  the generation -> analysis -> planner loop;
* :class:`Evaluator`: how the analysis agent evaluates candidates, one
  function call each (:class:`FunctionCalls`) or in compiled batches of
  pipelines placed on endpoints (:class:`PipelineBatches`);
  :class:`InProcess` is the unit tests' twin;
* :class:`PipelineGenerator`: the same loop over scikit-learn pipelines.

Launchable specs (TOML) for these classes live in the top-level ``agents/``
directory, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from academy_ml.core.lazy import lazy_exports

if TYPE_CHECKING:
    from academy_ml.agents.analysis import AnalysisAgent
    from academy_ml.agents.evaluators import (
        Evaluation,
        Evaluator,
        FunctionCalls,
        InProcess,
        PipelineBatches,
    )
    from academy_ml.agents.generation import (
        GenerationAgent,
        Generator,
        StatefulGenerator,
        TrainingExample,
    )
    from academy_ml.agents.pipelines import PipelineGenerator
    from academy_ml.agents.planner import PlannerAgent
    from academy_ml.agents.strategic import (
        StrategicAgent,
        call_with_timeout,
        strategic_action,
        wait_any,
    )

__all__ = [
    "AnalysisAgent",
    "Evaluation",
    "Evaluator",
    "FunctionCalls",
    "GenerationAgent",
    "Generator",
    "InProcess",
    "PipelineBatches",
    "PipelineGenerator",
    "PlannerAgent",
    "StatefulGenerator",
    "StrategicAgent",
    "TrainingExample",
    "call_with_timeout",
    "strategic_action",
    "wait_any",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AnalysisAgent": "academy_ml.agents.analysis",
        "Evaluation": "academy_ml.agents.evaluators",
        "Evaluator": "academy_ml.agents.evaluators",
        "FunctionCalls": "academy_ml.agents.evaluators",
        "InProcess": "academy_ml.agents.evaluators",
        "PipelineBatches": "academy_ml.agents.evaluators",
        "GenerationAgent": "academy_ml.agents.generation",
        "Generator": "academy_ml.agents.generation",
        "StatefulGenerator": "academy_ml.agents.generation",
        "TrainingExample": "academy_ml.agents.generation",
        "PipelineGenerator": "academy_ml.agents.pipelines",
        "PlannerAgent": "academy_ml.agents.planner",
        "StrategicAgent": "academy_ml.agents.strategic",
        "call_with_timeout": "academy_ml.agents.strategic",
        "strategic_action": "academy_ml.agents.strategic",
        "wait_any": "academy_ml.agents.strategic",
    },
)
