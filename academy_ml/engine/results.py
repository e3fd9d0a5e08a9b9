"""What evaluating one pipeline returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["PipelineResult"]


@dataclass(frozen=True)
class PipelineResult:
    """Cross-validated scores of one pipeline.

    With several metrics (``scoring`` a list or dict), ``scores`` holds every
    metric's fold scores and ``scoring``/``fold_scores`` are the first
    metric's; :meth:`cv_results` keys them as ``cross_validate`` does.

    Attributes:
        index: Position of the pipeline in the batch.
        pipeline: The estimator as given.
        scoring: The scoring name used (for a callable, its name; with
            several metrics, the first metric's name).
        fold_scores: One score per fold (NaN where the pipeline failed).
        error: None, or a message naming the failing step, fold and cause.
        backends: Which backend ran each step (``"rust"`` or ``"python"``),
            keyed by scikit-learn step path.
        scores: Several metrics' fold scores by metric name (a metric that
            failed is NaN and named in ``error``); empty for one metric.
    """

    index: int
    pipeline: Any
    scoring: str
    fold_scores: NDArray[np.float64]
    error: str | None = None
    backends: dict[str, Literal["rust", "python"]] = field(default_factory=dict)
    scores: dict[str, NDArray[np.float64]] = field(default_factory=dict)

    @property
    def mean_score(self) -> float:
        """Mean of the fold scores (NaN when the pipeline failed)."""
        if self.error is not None or len(self.fold_scores) == 0:
            return math.nan
        return float(np.mean(self.fold_scores))

    @property
    def mean_scores(self) -> dict[str, float]:
        """Mean fold score per metric (one entry, ``scoring``, for one metric)."""
        if not self.scores:
            return {self.scoring: self.mean_score}
        return {name: float(np.mean(folds)) for name, folds in self.scores.items()}

    def cv_results(self) -> dict[str, NDArray[np.float64]]:
        """Fold scores keyed as ``cross_validate`` keys them.

        ``{"test_score": ...}`` for one metric, ``{"test_<name>": ...}`` per
        metric for several.
        """
        if not self.scores:
            return {"test_score": self.fold_scores}
        return {f"test_{name}": folds for name, folds in self.scores.items()}

    @property
    def ok(self) -> bool:
        """Whether every fold produced a score."""
        return self.error is None
