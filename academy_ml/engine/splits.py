"""Cross-validation folds, chosen exactly as ``cross_validate`` chooses them.

``cv`` is what ``cross_validate`` takes: a number of folds, any scikit-learn
splitter (group splitters read ``groups``), or an iterable of (train, test)
index arrays. Every split is checked before any work: integer (or boolean
mask) indices, 1-D, in range and non-empty, so a bad split is a
:class:`~academy_ml.exceptions.ParameterError` naming the fold and the
problem, never a fault deep in the runtime.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import check_cv

from academy_ml.engine.data import digest
from academy_ml.exceptions import DataError, ParameterError

__all__ = ["Folds", "check_cv_argument", "describe_cv", "make_folds", "split_with_groups"]

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
        TypeError: If ``cv`` is none of what ``cross_validate`` accepts.
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


def make_folds(cv: Any, y: NDArray[Any], *, classifier: bool, groups: Any = None) -> Folds:
    """The folds ``cross_validate(estimator, X, y, groups=groups, cv=cv)`` would use.

    Args:
        cv: An int, a scikit-learn splitter, or an iterable of (train, test).
        y: The target (stratification reads it).
        classifier: Whether the estimator is a classifier.
        groups: Group labels, one per row, for group splitters (others ignore them).

    Raises:
        ParameterError: If the splitter refuses (a group splitter without
            ``groups``, more folds than rows...) or a split is malformed:
            empty, out of range, not 1-D integers.
        DataError: If ``groups`` has not one label per row.
    """
    splitter = check_cv(cv, y, classifier=classifier)
    n_rows = len(y)
    placeholder = np.zeros((n_rows, 1))
    groups = _check_groups(groups, n_rows)
    train: list[IndexArray] = []
    test: list[IndexArray] = []
    try:
        for fold, (tr, te) in enumerate(splitter.split(placeholder, y, groups)):
            train.append(_check_indices(tr, n_rows, fold, "train", cv))
            test.append(_check_indices(te, n_rows, fold, "test", cv))
    except ValueError as exc:
        if isinstance(exc, ParameterError):
            raise
        raise ParameterError(f"cv={_short(cv)} cannot split these {n_rows} rows: {exc}") from exc
    if not train:
        raise ParameterError(f"cv={_short(cv)} produced no folds")
    return Folds(
        tuple(train),
        tuple(test),
        tuple(f"rows:{digest(a.tobytes())}" for a in train),
        tuple(f"rows:{digest(a.tobytes())}" for a in test),
    )


def split_with_groups(cv: Any, y: Any, groups: Any) -> Any:
    """``cv`` with ``groups`` applied: a splitter's splits as explicit index pairs.

    A splitter object splits the same way for every estimator kind, so its
    splits can be made here, once, with the groups a plan does not carry. A
    number of folds ignores ``groups`` with a UserWarning, as
    ``cross_validate``'s KFold and StratifiedKFold do.

    Raises:
        ParameterError: As :func:`make_folds`.
        DataError: If ``groups`` has not one label per row.
    """
    y = np.asarray(y)
    groups = _check_groups(groups, len(y))
    if groups is None:
        return cv
    if not hasattr(cv, "split"):
        if not isinstance(cv, list):
            warnings.warn(
                f"groups are ignored by cv={cv!r} (KFold or StratifiedKFold)",
                UserWarning,
                stacklevel=3,
            )
        return cv
    folds = make_folds(cv, y, classifier=False, groups=groups)
    return list(zip(folds.train, folds.test, strict=True))


def _check_groups(groups: Any, n_rows: int) -> NDArray[Any] | None:
    """``groups`` as a 1-D array of one label per row (None stays None)."""
    if groups is None:
        return None
    array = np.asarray(groups)
    if array.ndim != 1 or len(array) != n_rows:
        raise DataError(f"groups must hold one label per row ({n_rows}), got shape {array.shape}")
    return array


def _check_indices(rows: Any, n_rows: int, fold: int, part: str, cv: Any) -> IndexArray:
    """One side of a split as int64 row indices, or a ParameterError naming the problem."""
    where = f"fold {fold} of cv={_short(cv)}: the {part} indices"
    array = np.asarray(rows)
    if array.dtype == np.bool_:
        if array.shape != (n_rows,):
            raise ParameterError(
                f"{where} are a boolean mask of shape {array.shape}, not ({n_rows},)"
            )
        array = np.flatnonzero(array)
    if array.ndim != 1:
        raise ParameterError(f"{where} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ParameterError(f"{where} are empty")
    if not np.issubdtype(array.dtype, np.integer):
        raise ParameterError(f"{where} must be integers, got dtype {array.dtype}")
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= n_rows:
        bad = low if low < 0 else high
        raise ParameterError(f"{where} hold {bad}, outside the {n_rows} rows [0, {n_rows - 1}]")
    return np.ascontiguousarray(array, dtype=np.int64)


def _short(cv: Any) -> str:
    return f"{cv!r:.60}" if not isinstance(cv, list) else f"<{len(cv)} explicit splits>"


def describe_cv(cv: Any, *, classifier: bool) -> str:
    """A stable description of the splitter, for plans compiled without data."""
    if cv is None:
        cv = 5
    if isinstance(cv, int):
        kind = "StratifiedKFold" if classifier else "KFold"
        return f"{kind}(n_splits={cv})"
    return repr(cv)
