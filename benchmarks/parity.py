"""Score comparison shared by the benchmarks that check parity with scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np

Scores = np.ndarray[Any, np.dtype[np.float64]]


def difference(scores: Scores, reference: Scores) -> float:
    """Largest absolute difference; a NaN on one side only counts as infinite."""
    if scores.shape != reference.shape:
        return float("inf")
    diff = np.abs(scores - reference)
    diff[np.isnan(scores) & np.isnan(reference)] = 0.0
    return float(np.max(np.nan_to_num(diff, nan=np.inf), initial=0.0))
