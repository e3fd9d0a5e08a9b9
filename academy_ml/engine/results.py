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

    Attributes:
        index: Position of the pipeline in the batch.
        pipeline: The estimator as given.
        scoring: The scoring name used.
        fold_scores: One score per fold (NaN where the pipeline failed).
        error: None, or a message naming the failing step, fold and cause.
        backends: Which backend ran each step (``"rust"`` or ``"python"``),
            keyed by scikit-learn step path.
    """

    index: int
    pipeline: Any
    scoring: str
    fold_scores: NDArray[np.float64]
    error: str | None = None
    backends: dict[str, Literal["rust", "python"]] = field(default_factory=dict)

    @property
    def mean_score(self) -> float:
        """Mean of the fold scores (NaN when the pipeline failed)."""
        if self.error is not None or len(self.fold_scores) == 0:
            return math.nan
        return float(np.mean(self.fold_scores))

    @property
    def ok(self) -> bool:
        """Whether every fold produced a score."""
        return self.error is None
