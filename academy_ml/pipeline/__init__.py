"""The pipeline engine: IR, scikit-learn translation, batch compiler, runner."""

from __future__ import annotations

from academy_ml.pipeline.evaluate import evaluate
from academy_ml.pipeline.lower import Options
from academy_ml.pipeline.plan import PLAN_VERSION, Plan, PlanStats, compile_batch
from academy_ml.pipeline.results import PipelineResult
from academy_ml.pipeline.run import RunReport

__all__ = [
    "PLAN_VERSION",
    "Options",
    "PipelineResult",
    "Plan",
    "PlanStats",
    "RunReport",
    "compile_batch",
    "evaluate",
]
