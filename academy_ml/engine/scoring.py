"""Scoring names: which the runtime computes natively, and validation."""

from __future__ import annotations

from sklearn.metrics import get_scorer_names

from academy_ml.engine.ops import Metric

__all__ = ["NATIVE_METRICS", "check_scoring", "is_native"]

#: scikit-learn scoring names the runtime computes, by runtime metric name.
NATIVE_METRICS: dict[str, Metric] = {
    "r2": "r2",
    "neg_mean_squared_error": "neg_mean_squared_error",
    "neg_root_mean_squared_error": "neg_root_mean_squared_error",
    "neg_mean_absolute_error": "neg_mean_absolute_error",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "f1": "f1",
    "roc_auc": "roc_auc",
    "neg_log_loss": "neg_log_loss",
}

#: Metrics that read class labels (the classifier's target coding).
CLASSIFICATION_METRICS = frozenset(
    {"accuracy", "balanced_accuracy", "f1", "roc_auc", "neg_log_loss"}
)


def check_scoring(scoring: object) -> str:
    """Returns ``scoring`` if it is a scikit-learn scoring name.

    Raises:
        ValueError: If it is not one, naming the close matches.
    """
    if not isinstance(scoring, str):
        raise ValueError(f"scoring must be a scikit-learn scoring name (a string), got {scoring!r}")
    names = get_scorer_names()
    if scoring not in names:
        close = [n for n in names if scoring.lower() in n or n in scoring.lower()][:5]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unsupported scoring name {scoring!r}{hint}")
    return scoring


def is_native(scoring: str) -> bool:
    """Whether the runtime computes ``scoring`` itself."""
    return scoring in NATIVE_METRICS
