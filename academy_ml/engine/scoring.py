"""Scoring: which names the runtime computes natively, and what ``scoring=`` may be.

``aml.evaluate`` takes what ``cross_validate`` takes: a scikit-learn scoring
name, a callable ``scorer(estimator, X, y)`` (``make_scorer`` objects
included), a list or tuple of names, or a dict of name -> name or callable.
A plan (and so an endpoint request) holds one scoring name per pipeline:
callables are never sent anywhere, since they could only travel as pickles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sklearn.metrics import f1_score, get_scorer_names, jaccard_score, precision_score, recall_score

from academy_ml.engine.ops import Metric
from academy_ml.exceptions import ParameterError

__all__ = [
    "NATIVE_METRICS",
    "PREDICTED_METRICS",
    "Scorer",
    "Scorers",
    "check_scoring",
    "describe_scorer",
    "is_native",
    "parse_scoring",
]

#: What scores one fold: a scikit-learn scoring name or a callable
#: ``scorer(estimator, X, y) -> float``.
Scorer = str | Callable[..., Any]

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


#: Label metrics the runtime does not compute, but which read only a
#: classifier's predicted labels: scored here from the runtime's predictions
#: (the fit and predict stay native), with the function and arguments
#: scikit-learn's scorer of that name uses.
PREDICTED_METRICS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    **{
        name: (function, {"average": "binary"})
        for name, function in (
            ("precision", precision_score),
            ("recall", recall_score),
            ("jaccard", jaccard_score),
        )
    },
    **{
        f"{name}_{average}": (function, {"pos_label": None, "average": average})
        for name, function in (
            ("f1", f1_score),
            ("precision", precision_score),
            ("recall", recall_score),
            ("jaccard", jaccard_score),
        )
        for average in ("macro", "micro", "weighted")
    },
}


@dataclass(frozen=True)
class Scorers:
    """``scoring=`` read into named scorers.

    Attributes:
        named: Metric name -> scorer, in the order given (for a dict, its
            keys; for a list, the names; for one callable or None,
            ``"score"``; None stands for each estimator's default).
        multi: Whether several metrics were asked for (a list, tuple or
            dict, even of one), so results are keyed ``test_<name>`` as
            ``cross_validate`` keys them.
    """

    named: dict[str, Scorer | None]
    multi: bool


def check_scoring(scoring: object) -> str:
    """Returns ``scoring`` if it is a scikit-learn scoring name.

    A compiled plan and an endpoint request take only names; ``aml.evaluate``
    also takes callables, lists and dicts (see :func:`parse_scoring`).

    Raises:
        ParameterError: If it is not one, naming the close matches; for a
            callable, saying why it cannot go into a plan or a request.
    """
    if callable(scoring):
        raise ParameterError(
            f"scoring must be a scikit-learn scoring name here, got the callable {scoring!r:.80}: "
            "plans and endpoint requests take names only, since a callable could only reach an "
            "endpoint as a pickle; aml.evaluate scores with callables locally"
        )
    if not isinstance(scoring, str):
        raise ParameterError(
            f"scoring must be a scikit-learn scoring name (a string), got {scoring!r:.80}"
        )
    names = get_scorer_names()
    if scoring not in names:
        close = [n for n in names if scoring.lower() in n or n in scoring.lower()][:5]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ParameterError(f"unsupported scoring name {scoring!r}{hint}")
    return scoring


def parse_scoring(scoring: object) -> Scorers:
    """Reads ``scoring`` as ``cross_validate`` does.

    Args:
        scoring: None, a name, a callable, a list or tuple of distinct names,
            or a non-empty dict of string keys to names or callables.

    Raises:
        ParameterError: For an unknown name, a repeated name, an empty list
            or dict, a non-string key, or a value that is none of these.
    """
    if scoring is None:
        return Scorers({"score": None}, multi=False)
    if isinstance(scoring, str):
        return Scorers({check_scoring(scoring): scoring}, multi=False)
    if callable(scoring):
        return Scorers({"score": scoring}, multi=False)
    if isinstance(scoring, (list, tuple)):
        if not scoring:
            raise ParameterError("scoring is an empty list: name at least one metric")
        names = [check_scoring(name) for name in scoring]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ParameterError(f"scoring names {', '.join(repeated)} more than once")
        return Scorers({name: name for name in names}, multi=True)
    if isinstance(scoring, Mapping):
        if not scoring:
            raise ParameterError("scoring is an empty dict: give at least one name -> scorer")
        named: dict[str, Scorer | None] = {}
        for key, value in scoring.items():
            if not isinstance(key, str):
                raise ParameterError(f"scoring dict keys must be strings, got {key!r:.80}")
            named[key] = value if callable(value) else check_scoring(value)
        return Scorers(named, multi=True)
    raise ParameterError(
        "scoring must be None, a scikit-learn scoring name, a callable scorer(estimator, X, y), "
        f"a list or tuple of names, or a dict of name -> scorer; got {type(scoring).__name__} "
        f"{scoring!r:.80}"
    )


def describe_scorer(scorer: Scorer) -> str:
    """A readable name for a scorer, for results and error messages."""
    if isinstance(scorer, str):
        return scorer
    return getattr(scorer, "__name__", None) or repr(scorer)


def is_native(scoring: Scorer) -> bool:
    """Whether the runtime computes ``scoring`` itself."""
    return isinstance(scoring, str) and scoring in NATIVE_METRICS
