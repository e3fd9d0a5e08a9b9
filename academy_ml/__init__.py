"""academy_ml: federated agent middleware for ML workloads.

The pipeline engine compiles a batch of scikit-learn pipelines into one
deduplicated plan and runs it on a Rust runtime::

    import academy_ml as aml
    results = aml.evaluate(pipelines, X, y, cv=5, scoring="r2")
    plan = aml.compile(pipelines, cv=5)
    plan.stats.naive_ops, plan.stats.unique_ops

and keeps what it computed in a node-local cache for later batches::

    cache = aml.Cache()
    report = aml.run(aml.compile(pipelines, cv=5, X=X, y=y), cache=cache)
    report.executed, report.cache_hits
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from academy_ml import exceptions
from academy_ml.core.lazy import lazy_exports
from academy_ml.exceptions import (
    AcademyMLError,
    CacheError,
    DataError,
    NumericalError,
    ParameterError,
    PlanError,
    UnsupportedStepError,
)

if TYPE_CHECKING:
    from academy_ml.engine import (
        Options,
        PipelineResult,
        Plan,
        PlanStats,
        RunReport,
        evaluate,
    )
    from academy_ml.engine import compile_batch as compile
    from academy_ml.engine.cache import Cache, CacheStats
    from academy_ml.engine.progress import Progress
    from academy_ml.engine.run import run

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
    "Progress",
    "RunReport",
    "UnsupportedStepError",
    "__version__",
    "compile",
    "evaluate",
    "exceptions",
    "run",
]

#: The engine is imported on first use, so agent hosts, exchange clients and
#: ``academy-ml status`` never load the Rust extension or scikit-learn.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Cache": "academy_ml.engine.cache",
        "CacheStats": "academy_ml.engine.cache",
        "Options": "academy_ml.engine",
        "PipelineResult": "academy_ml.engine",
        "Plan": "academy_ml.engine",
        "PlanStats": "academy_ml.engine",
        "Progress": "academy_ml.engine.progress",
        "RunReport": "academy_ml.engine",
        "evaluate": "academy_ml.engine",
        "compile": "academy_ml.engine:compile_batch",
        "run": "academy_ml.engine.run:run",
    },
)
