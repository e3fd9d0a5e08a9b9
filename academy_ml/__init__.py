"""academy_ml: federated agent middleware for ML workloads.

The pipeline engine compiles a batch of scikit-learn pipelines into one
deduplicated plan and runs it on a Rust runtime::

    import academy_ml as aml
    results = aml.evaluate(pipelines, X, y, cv=5, scoring="r2")
    plan = aml.compile(pipelines, cv=5)
    plan.stats.naive_ops, plan.stats.unique_ops
"""

from __future__ import annotations

from academy_ml import exceptions
from academy_ml.exceptions import (
    AcademyMLError,
    DataError,
    NumericalError,
    ParameterError,
    PlanError,
    UnsupportedStepError,
)
from academy_ml.pipeline import Options, PipelineResult, Plan, PlanStats, compile_batch, evaluate

__version__ = "0.1.0"

__all__ = [
    "AcademyMLError",
    "DataError",
    "NumericalError",
    "Options",
    "ParameterError",
    "PipelineResult",
    "Plan",
    "PlanError",
    "PlanStats",
    "UnsupportedStepError",
    "__version__",
    "compile",
    "evaluate",
    "exceptions",
]


#: ``aml.compile(pipelines, cv=5)``, the public name of the batch compiler (see
#: :func:`academy_ml.pipeline.compile_batch`).
compile = compile_batch
