"""The pipeline IR: what the compiler needs to know of one pipeline.

A pipeline is a native prefix (steps the Rust runtime runs, possibly a
ColumnTransformer over column subsets), then either a native model or a
foreign tail: the remaining scikit-learn steps, run by the Python backend on
the matrices the native prefix produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: Estimator parameters exactly as the runtime's plan names them.
Params = dict[str, Any]

#: A ColumnTransformer column selector, as scikit-learn accepts it.
ColumnSelector = Any


@dataclass(frozen=True)
class NativeStep:
    """A step the Rust runtime runs.

    Attributes:
        path: The step's name as scikit-learn addresses it (``pre__num__scale``).
        label: The estimator's class name, for messages.
        estimator: The runtime's estimator spec (``{"name": "ridge", ...}``).
    """

    path: str
    label: str
    estimator: Params

    @property
    def name(self) -> str:
        """The runtime's name for the estimator."""
        return str(self.estimator["name"])

    @property
    def stateless(self) -> bool:
        """Whether fitting learns nothing from rows, so it may run before the split."""
        return self.name == "polynomial_features"

    @property
    def is_model(self) -> bool:
        """Whether the step is a final predictor."""
        return self.name in MODELS


@dataclass(frozen=True)
class Branch:
    """One ColumnTransformer entry: columns and the native steps applied to them."""

    path: str
    columns: ColumnSelector
    steps: tuple[NativeStep, ...]


@dataclass(frozen=True)
class ColumnStep:
    """A ColumnTransformer whose every branch is native."""

    path: str
    branches: tuple[Branch, ...]
    #: True when ``remainder="passthrough"``.
    passthrough_rest: bool
    #: Selectors of ``"drop"`` entries: their columns are not remainder.
    dropped: tuple[ColumnSelector, ...] = ()


Step = NativeStep | ColumnStep


@dataclass
class PipelineIR:
    """One pipeline, split into what Rust runs and what Python runs.

    Attributes:
        source: The user's estimator, as given.
        classifier: Whether scikit-learn treats it as a classifier.
        prefix: Native transformer steps, in order.
        model: The native final model, or None when the tail is foreign.
        tail: The foreign remainder as (path, estimator) pairs (empty when the
            whole pipeline is native).
    """

    source: Any
    classifier: bool
    prefix: list[Step] = field(default_factory=list)
    model: NativeStep | None = None
    tail: list[tuple[str, Any]] = field(default_factory=list)

    def backends(self) -> dict[str, Literal["rust", "python"]]:
        """Which backend runs each step, keyed by scikit-learn step path."""
        out: dict[str, Literal["rust", "python"]] = {}
        for step in self.prefix:
            if isinstance(step, ColumnStep):
                out[step.path] = "rust"
                for branch in step.branches:
                    for inner in branch.steps:
                        out[inner.path] = "rust"
            else:
                out[step.path] = "rust"
        if self.model is not None:
            out[self.model.path] = "rust"
        for path, _ in self.tail:
            out[path] = "python"
        return out


#: Runtime names of the native final models.
MODELS = frozenset(
    {
        "linear_regression",
        "ridge",
        "logistic_regression",
        "k_neighbors",
        "decision_tree",
        "random_forest",
    }
)
