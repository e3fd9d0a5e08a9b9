"""academy_ml: federated agent middleware for ML workloads.

The pipeline engine compiles a batch of scikit-learn pipelines into one
deduplicated plan and runs it on a Rust runtime::

    import academy_ml as aml
    results = aml.evaluate(pipelines, X, y, cv=5, scoring="r2")
    plan = aml.compile(pipelines, cv=5)
    plan.stats.naive_ops, plan.stats.unique_ops
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


def compile(
    pipelines: Iterable[Any],
    cv: Any = 5,
    *,
    X: Any = None,
    y: Any = None,
    scoring: str | None = None,
    options: Options | None = None,
) -> Plan:
    """Compiles a batch of pipelines into one deduplicated plan.

    Args:
        pipelines: scikit-learn estimators or Pipelines.
        cv: Number of folds or a scikit-learn splitter.
        X: Features. Without X and y the plan is symbolic: its stats are
            exact, but it cannot run.
        y: Target.
        scoring: A scikit-learn scoring name (None: each estimator's default).
        options: Compiler switches (for ablations).

    Returns:
        The plan; ``plan.stats`` reports ``naive_ops`` and ``unique_ops``.
    """
    return compile_batch(list(pipelines), cv, X=X, y=y, scoring=scoring, options=options)
