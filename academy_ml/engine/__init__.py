"""The pipeline engine: IR, scikit-learn translation, batch compiler, runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from academy_ml.core.lazy import lazy_exports

if TYPE_CHECKING:
    from academy_ml.engine.evaluation import evaluate
    from academy_ml.engine.lower import Options
    from academy_ml.engine.plan import PLAN_VERSION, Plan, PlanStats, compile_batch
    from academy_ml.engine.results import PipelineResult
    from academy_ml.engine.run import RunReport

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "evaluate": "academy_ml.engine.evaluation",
        "Options": "academy_ml.engine.lower",
        "PLAN_VERSION": "academy_ml.engine.plan",
        "Plan": "academy_ml.engine.plan",
        "PlanStats": "academy_ml.engine.plan",
        "compile_batch": "academy_ml.engine.plan",
        "PipelineResult": "academy_ml.engine.results",
        "RunReport": "academy_ml.engine.run",
    },
)
