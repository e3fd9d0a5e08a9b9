"""Cross-validation folds, chosen exactly as ``cross_val_score`` chooses them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import check_cv

from academy_ml.engine.data import digest

__all__ = ["Folds", "check_cv_argument", "describe_cv", "make_folds"]

IndexArray = NDArray[np.int64]


@dataclass(frozen=True)
class Folds:
    """Train/test row indices per fold, each named by its content hash."""

    train: tuple[IndexArray, ...]
    test: tuple[IndexArray, ...]
    train_names: tuple[str, ...]
    test_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.train)

    def arrays(self) -> dict[str, IndexArray]:
        """Every index array by name, as the runtime takes them."""
        names = self.train_names + self.test_names
        return dict(zip(names, self.train + self.test, strict=True))


def check_cv_argument(cv: Any) -> Any:
    """``cv`` as the compiler keeps it: an iterable of splits is read into a list.

    An iterable may be a one-shot generator, and the folds are made once per
    estimator kind.

    Raises:
        TypeError: If ``cv`` is none of what ``cross_val_score`` accepts.
    """
    if isinstance(cv, (str, bytes)):
        pass
    elif cv is None or isinstance(cv, Integral) or hasattr(cv, "split"):
        return cv
    elif isinstance(cv, Iterable):
        return list(cv)
    raise TypeError(
        f"cv must be None, an int, a scikit-learn splitter or an iterable of (train, test) "
        f"index arrays, got {type(cv).__name__} {cv!r:.80}"
    )


def make_folds(cv: Any, y: NDArray[Any], *, classifier: bool) -> Folds:
    """The folds ``cross_val_score(estimator, X, y, cv=cv)`` would use.

    Args:
        cv: An int, a scikit-learn splitter, or an iterable of (train, test).
        y: The target (stratification reads it).
        classifier: Whether the estimator is a classifier.
    """
    splitter = check_cv(cv, y, classifier=classifier)
    placeholder = np.zeros((len(y), 1))
    train: list[IndexArray] = []
    test: list[IndexArray] = []
    for tr, te in splitter.split(placeholder, y):
        train.append(np.ascontiguousarray(tr, dtype=np.int64))
        test.append(np.ascontiguousarray(te, dtype=np.int64))
    if not train:
        raise ValueError(f"cv={cv!r} produced no folds")
    return Folds(
        tuple(train),
        tuple(test),
        tuple(f"rows:{digest(a.tobytes())}" for a in train),
        tuple(f"rows:{digest(a.tobytes())}" for a in test),
    )


def describe_cv(cv: Any, *, classifier: bool) -> str:
    """A stable description of the splitter, for plans compiled without data."""
    if cv is None:
        cv = 5
    if isinstance(cv, int):
        kind = "StratifiedKFold" if classifier else "KFold"
        return f"{kind}(n_splits={cv})"
    return repr(cv)
