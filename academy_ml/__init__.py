"""academy_ml: federated agent middleware for ML workloads.

The pipeline engine compiles a batch of scikit-learn pipelines into one
deduplicated plan and runs it on a Rust runtime::

    import academy_ml as aml
    results = aml.evaluate(pipelines, X, y, cv=5, scoring="r2")
    plan = aml.compile(pipelines, cv=5)
    plan.stats.naive_ops, plan.stats.unique_ops

and keeps what it computed in a node-local cache for later batches::

    cache = aml.Cache()
    report = aml.compile(pipelines, cv=5, X=X, y=y).run(cache=cache)
    report.executed, report.cache_hits
"""

from __future__ import annotations

from academy_ml import exceptions
from academy_ml.cache import Cache, CacheStats
from academy_ml.exceptions import (
    AcademyMLError,
    CacheError,
    DataError,
    NumericalError,
    ParameterError,
    PlanError,
    UnsupportedStepError,
)
from academy_ml.pipeline import (
    Options,
    PipelineResult,
    Plan,
    PlanStats,
    RunReport,
    compile_batch,
    evaluate,
)

__version__ = "0.1.0"

__all__ = [
    "AcademyMLError",
    "Cache",
    "CacheError",
    "CacheStats",
    "DataError",
    "NumericalError",
    "Options",
    "ParameterError",
    "PipelineResult",
    "Plan",
    "PlanError",
    "PlanStats",
    "RunReport",
    "UnsupportedStepError",
    "__version__",
    "compile",
    "evaluate",
    "exceptions",
]


#: ``aml.compile(pipelines, cv=5)``, the public name of the batch compiler (see
#: :func:`academy_ml.pipeline.compile_batch`).
compile = compile_batch
