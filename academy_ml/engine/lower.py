"""Lowering one pipeline's IR into plan nodes for every fold.

Stateless work before the first fitted step runs once on the whole table and
is split afterwards (pinned across folds); fitted steps are expanded per fold
(fit on the train rows, applied to train and test rows); Ridge and
LinearRegression fits read a shared Gram node, so every penalty and every
pipeline with the same design matrix reuses one factorisation.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Literal, cast

from academy_ml.engine import ops
from academy_ml.engine.graph import Graph, is_source
from academy_ml.engine.ir import Branch, ColumnStep, NativeStep, PipelineIR
from academy_ml.engine.scoring import CLASSIFICATION_METRICS, NATIVE_METRICS

__all__ = ["Binding", "CompileError", "Lowered", "Options", "ToPython", "lower"]

ColumnKind = Literal["num", "cat", "mixed"]


class ToPython(Exception):
    """The pipeline must run on the Python backend from its first step."""


class CompileError(Exception):
    """The pipeline cannot run at all; the message names the cause."""


@dataclass(frozen=True)
class Options:
    """Compiler switches (all on by default; the benchmark ablates them)."""

    cse: bool = True
    hoist: bool = True
    share_gram: bool = True
    share_neighbors: bool = True


@dataclass(frozen=True)
class Binding:
    """What the compiler knows of the data, for one task type.

    Attributes:
        x_salt: Dataset fingerprint (or ``"unbound"``).
        folds: (train index name, test index name) per fold.
        target: Target name per kind (``"raw"``, ``"codes"``); absent when
            that view of ``y`` does not exist.
        columns: Column positions of X (symbolic names when unbound).
        kinds: Per column position, ``"cat"`` or ``"num"``, or None when
            compiling without data (every column then counts as numeric).
        resolve: Turns a ColumnTransformer selector into column positions
            (into symbolic names when unbound).
        fill_code: Turns a categorical fill value into its code.
        classes: Distinct labels of y (classification), or None when unknown.
        missing: Column positions holding NaN (empty when unbound).
    """

    x_salt: str
    folds: tuple[tuple[str, str], ...]
    target: dict[str, str]
    columns: tuple[Any, ...]
    kinds: tuple[ColumnKind, ...] | None
    resolve: Any
    fill_code: Any
    classes: tuple[Any, ...] | None
    missing: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Lowered:
    """Where a pipeline's results come from.

    Attributes:
        scores: Per fold, the score node (native model), else empty.
        matrices: Per fold, (train, test) matrix nodes feeding a foreign tail.
        labels: Node id -> (step description, fold) for error messages.
        naive_ops: Operations the pipeline would take alone, fold by fold:
            no common work shared, nothing hoisted out of the folds (the
            Gram and neighbour rewrites on, so a fit counts alike in both).
    """

    scores: tuple[int, ...]
    matrices: tuple[tuple[int, int], ...]
    labels: dict[int, tuple[str, int | None]]
    naive_ops: int


@dataclass
class _Stage:
    """Where a pipeline's data is after some steps.

    ``naive_full`` says whether the naive lowering (nothing hoisted) would
    still hold it whole: it splits at the first fitted step, where hoisting
    may keep the data whole longer. Naive counts follow from that.
    ``missing`` says whether the data may still hold NaN (until an imputer).
    """

    full: int | None
    folds: list[tuple[int, int]] | None
    kind: ColumnKind
    columns: tuple[Any, ...] | None
    naive_full: bool
    missing: bool


def lower(ir: PipelineIR, graph: Graph, bind: Binding, scoring: str, options: Options) -> Lowered:
    """Adds the nodes of one pipeline to ``graph``.

    Raises:
        ToPython: The pipeline needs the Python backend from its first step.
        CompileError: The pipeline cannot be evaluated (the message says why).
    """
    return _Lowerer(ir, graph, bind, scoring, options).run()


class _Lowerer:
    def __init__(
        self, ir: PipelineIR, graph: Graph, bind: Binding, scoring: str, options: Options
    ) -> None:
        self.ir = ir
        self.graph = graph
        self.bind = bind
        self.scoring = scoring
        self.options = options
        self.labels: dict[int, tuple[str, int | None]] = {}
        self.naive = 0

    def node(
        self, op: ops.Op, inputs: list[int], label: str, fold: int | None, *, naive: bool = True
    ) -> int:
        """Adds a node; ``naive`` says whether the naive lowering has it too."""
        node = self.graph.add(op, inputs)
        self.labels.setdefault(node, (label, fold))
        if naive and not is_source(op):
            self.naive += 1
        return node

    def naive_split(self, stage: _Stage) -> int:
        """Ops the naive lowering spends to split ``stage`` into folds."""
        return 2 * len(self.bind.folds) if stage.naive_full else 0

    def run(self) -> Lowered:
        if self.ir.model is None and not self.ir.tail:
            raise CompileError("the pipeline has no final estimator to score")
        if not self.ir.prefix and self.ir.model is None:
            raise ToPython
        x = self.graph.add(ops.SourceX(kind="source_x"), salt=self.bind.x_salt)
        kinds = self.bind.kinds
        kind = _combine(kinds) if kinds is not None else "num"
        missing = bool(self.bind.missing)
        stage = _Stage(x, None, kind, self.bind.columns, naive_full=True, missing=missing)
        for step in self.ir.prefix:
            if isinstance(step, ColumnStep):
                stage = self.column_step(step, stage)
            else:
                stage = self.native(step, stage)
        if stage.kind != "num":
            raise ToPython
        if stage.missing and self.ir.model and self.ir.model.name in _GROWN_ON_NAN:
            # The native trees do not grow on NaN; scikit-learn's do.
            raise ToPython
        folds = self.split(stage, "column selection")
        if self.ir.model is None:
            return Lowered((), tuple(folds), self.labels, self.naive)
        scores = tuple(self.model(self.ir.model, i, tr, te) for i, (tr, te) in enumerate(folds))
        return Lowered(scores, (), self.labels, self.naive)

    def split(self, stage: _Stage, label: str) -> list[tuple[int, int]]:
        if stage.folds is not None:
            return stage.folds
        assert stage.full is not None
        naive = stage.naive_full
        return [
            (
                self.node(_take(tr), [stage.full], label, i, naive=naive),
                self.node(_take(te), [stage.full], label, i, naive=naive),
            )
            for i, (tr, te) in enumerate(self.bind.folds)
        ]

    def target(self, kind: str, fold: int, train: bool) -> int:
        name = self.bind.target.get(kind)
        if name is None:
            raise CompileError("y is not numeric, so a regressor cannot be fitted to it")
        y = self.graph.add(ops.SourceY(kind="source_y", target=name))
        index = self.bind.folds[fold][0 if train else 1]
        return self.node(_take(index), [y], "target", fold)

    def native(self, step: NativeStep, stage: _Stage) -> _Stage:
        label = f"step '{step.path}' ({step.label})"
        if step.estimator["name"] == "ordinal_encoder":
            spec, kind, missing = self.ordinal(step, stage)
        else:
            spec, kind = self.check_kinds(step, stage.kind)
            missing = stage.missing and spec["name"] != "simple_imputer"
        fit = ops.Fit(kind="fit", estimator=spec)
        if step.stateless and stage.full is not None and self.options.hoist:
            fitted = self.node(fit, [stage.full], label, None, naive=False)
            full = self.node(_APPLY, [fitted, stage.full], label, None, naive=False)
            # Unhoisted: split (unless already split), then fit + 2 applies per fold.
            self.naive += self.naive_split(stage) + 3 * len(self.bind.folds)
            return _Stage(full, None, kind, None, naive_full=False, missing=missing)
        folds = []
        for i, (tr, te) in enumerate(self.split(stage, label)):
            inputs = [tr]
            if spec["name"] == "select_k_best":
                wants = "codes" if spec["score_func"] == "f_classif" else "raw"
                if wants not in self.bind.target:
                    wants = "codes"
                inputs.append(self.target(wants, i, train=True))
            fitted = self.node(fit, inputs, label, i)
            folds.append(
                (
                    self.node(_APPLY, [fitted, tr], label, i),
                    self.node(_APPLY, [fitted, te], label, i),
                )
            )
        return _Stage(None, folds, kind, None, naive_full=False, missing=missing)

    def check_kinds(self, step: NativeStep, kind: ColumnKind) -> tuple[ops.Estimator, ColumnKind]:
        """The final estimator spec and the column kind it outputs."""
        spec = dict(step.estimator)
        if spec["name"] == "one_hot_encoder":
            if kind == "mixed":
                raise ToPython
            return _estimator(spec), "num"
        if spec["name"] != "simple_imputer":
            if kind != "num":
                raise ToPython
            return _estimator(spec), "num"
        fill = spec["fill_value"]
        if kind == "mixed":
            raise ToPython
        if kind == "num":
            if isinstance(fill, str):
                raise ToPython
            spec["fill_value"] = 0.0 if fill is None else float(fill)
            return _estimator(spec), kind
        if spec["strategy"] in ("mean", "median") or not (fill is None or isinstance(fill, str)):
            raise ToPython
        spec["fill_value"] = self.bind.fill_code("missing_value" if fill is None else fill)
        return _estimator(spec), kind

    def ordinal(self, step: NativeStep, stage: _Stage) -> tuple[ops.Estimator, ColumnKind, bool]:
        """An OrdinalEncoder's spec, with explicit categories as codes, and whether NaN leaves it.

        NaN leaves it for missing values when ``encoded_missing_value`` is NaN,
        and for values outside explicit categories (training rows included)
        when ``unknown_value`` is NaN.
        """
        kinds, cols = self.bind.kinds, stage.columns
        cat_missing = stage.missing and stage.kind != "num"
        if cat_missing and kinds is not None and cols is not None:
            cat_missing = any(kinds[c] == "cat" and c in self.bind.missing for c in cols)
        if cat_missing:
            # scikit-learn encodes None as a category of its own and NaN as
            # missing; the table holds both as NaN.
            raise ToPython
        spec = dict(step.estimator)
        given = spec["categories"]
        explicit = given != "auto"
        spec["categories"] = self.ordinal_categories(given, stage) if explicit else None
        unknown, missing = spec["unknown_value"], spec["encoded_missing_value"]
        nan_unknown = unknown is not None and math.isnan(unknown)
        nan_out = (stage.missing and math.isnan(missing)) or (explicit and nan_unknown)
        return _estimator(spec), "num", nan_out

    def ordinal_categories(self, given: list[list[Any]], stage: _Stage) -> list[list[float]]:
        """Explicit categories as codes of the table; what scikit-learn refuses stays foreign.

        Numeric categories must be integers (a float category is cast to an
        integer column's dtype) in ascending order; string categories become
        the table's order-preserving codes and keep their order.
        """
        kinds: tuple[ColumnKind, ...] = (stage.kind,) * len(given)
        if stage.kind == "mixed":
            if stage.columns is None or self.bind.kinds is None:
                raise ToPython
            kinds = tuple(self.bind.kinds[c] for c in stage.columns)
        if len(kinds) != len(given):
            raise ToPython
        out: list[list[float]] = []
        for column, kind in zip(given, kinds, strict=True):
            if not column:
                raise ToPython
            if kind == "num":
                if not all(_integral(v) for v in column):
                    raise ToPython
                codes = [float(v) for v in column]
                if any(a >= b for a, b in itertools.pairwise(codes)):
                    raise ToPython
            else:
                try:
                    codes = [float(self.bind.fill_code(v)) for v in column]
                except (TypeError, ValueError) as exc:
                    raise ToPython from exc
                # Two unseen categories may share a code: only scikit-learn tells them apart.
                if len(set(codes)) < len(codes):
                    raise ToPython
            out.append(codes)
        return out

    def column_step(self, step: ColumnStep, stage: _Stage) -> _Stage:
        if stage.columns is None:
            raise ToPython
        if any(isinstance(b.columns, (str, Integral)) for b in step.branches):
            # A scalar selector hands the branch 1-D data, which scikit-learn
            # refuses; let it say so on the Python backend.
            raise ToPython
        parts: list[_Stage] = []
        claimed: set[int] = set()
        try:
            dropped = [self.bind.resolve(sel) for sel in step.dropped]
            selected = [tuple(self.bind.resolve(b.columns)) for b in step.branches]
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ToPython from exc
        for cols in dropped:
            claimed.update(cols)
        for branch, cols in zip(step.branches, selected, strict=True):
            claimed.update(cols)
            if cols:
                parts.append(self.branch(branch, stage, cols))
        rest = tuple(c for c in stage.columns if c not in claimed)
        if step.passthrough_rest and rest:
            parts.append(self.branch(Branch(f"{step.path}__remainder", rest, ()), stage, rest))
        if not parts:
            raise CompileError(f"step '{step.path}' (ColumnTransformer) selects no columns")
        kind = _combine(tuple(p.kind for p in parts))
        missing = any(p.missing for p in parts)
        label = f"step '{step.path}' (ColumnTransformer)"
        if all(p.full is not None for p in parts):
            whole = all(p.naive_full for p in parts)
            inputs = [p.full for p in parts if p.full is not None]
            full = self.node(ops.Hstack(kind="hstack"), inputs, label, None, naive=whole)
            if not whole:
                # Unhoisted, some parts are split: split the rest, stack fold by fold.
                n_folds = len(self.bind.folds)
                self.naive += sum(self.naive_split(p) for p in parts) + 2 * n_folds
            return _Stage(full, None, kind, None, naive_full=whole, missing=missing)
        split = [self.split(p, label) for p in parts]
        folds = [
            (
                self.node(ops.Hstack(kind="hstack"), [s[i][0] for s in split], label, i),
                self.node(ops.Hstack(kind="hstack"), [s[i][1] for s in split], label, i),
            )
            for i in range(len(self.bind.folds))
        ]
        return _Stage(None, folds, kind, None, naive_full=False, missing=missing)

    def branch(self, branch: Branch, stage: _Stage, cols: tuple[Any, ...]) -> _Stage:
        assert stage.full is not None
        label = f"step '{branch.path}' (column selection)"
        select = ops.SelectCols(kind="select_cols", cols=list(cols))
        full = self.node(select, [stage.full], label, None)
        kinds = self.bind.kinds
        kind = "num" if kinds is None else _combine(tuple(kinds[c] for c in cols))
        missing = any(c in self.bind.missing for c in cols)
        part = _Stage(full, None, kind, cols, naive_full=stage.naive_full, missing=missing)
        for inner in branch.steps:
            part = self.native(inner, part)
        return part

    def model(self, model: NativeStep, fold: int, train: int, test: int) -> int:
        label = f"step '{model.path}' ({model.label})"
        spec = model.estimator
        classifier = self.ir.classifier
        metric = NATIVE_METRICS[self.scoring]
        if metric in CLASSIFICATION_METRICS and not classifier:
            raise CompileError(
                f"scoring {self.scoring!r} needs a classifier, but {model.label} is a regressor"
            )
        y_kind = "codes" if classifier else "raw"
        y_train = self.target(y_kind, fold, train=True)
        predicted = self.predict(spec, label, fold, train, test, y_train)
        y_test = self.target(y_kind, fold, train=False)
        score = ops.Score(kind="score", metric=metric, pos_label=self.pos_label(metric))
        return self.node(score, [y_test, predicted], f"scoring {self.scoring!r}", fold)

    def predict(
        self, spec: dict[str, Any], label: str, fold: int, train: int, test: int, y_train: int
    ) -> int:
        """The prediction node of a native model, through the shared rewrites.

        Linear fits solve from one Gram node; KNN variants read one neighbour
        search.
        """
        name = spec["name"]
        if name in ("ridge", "linear_regression") and self.options.share_gram:
            gram_op = ops.Gram(kind="gram", fit_intercept=bool(spec["fit_intercept"]))
            gram = self.node(gram_op, [train, y_train], label, fold)
            alpha = float(spec.get("alpha", 0.0))
            fitted = self.node(ops.Solve(kind="solve", alpha=alpha), [gram], label, fold)
        elif name == "k_neighbors" and self.options.share_neighbors:
            # k is left out of the search's key; the compiler sets it to the
            # largest n_neighbors reading the search.
            found = self.node(ops.Neighbors(kind="neighbors", k=0), [train, test], label, fold)
            knn_op = ops.KnnPredict(
                kind="knn_predict",
                k=int(spec["n_neighbors"]),
                weights=spec["weights"],
                classifier=bool(spec["classifier"]),
            )
            return self.node(knn_op, [found, y_train], label, fold)
        else:
            if name in ("ridge", "linear_regression"):
                self.naive += 1  # the naive lowering solves from a Gram: gram + solve
            fit = ops.Fit(kind="fit", estimator=_estimator(spec))
            fitted = self.node(fit, [train, y_train], label, fold)
        return self.node(_APPLY, [fitted, test], label, fold)

    def pos_label(self, metric: str) -> float:
        """The code of scikit-learn's default positive label (1) for f1."""
        classes = self.bind.classes
        if metric not in ("f1", "roc_auc") or classes is None:
            return 1.0
        if len(classes) > 2:
            raise CompileError(
                f"scoring {self.scoring!r} is binary, but y has {len(classes)} classes"
            )
        if metric == "f1":
            if 1 not in classes:
                raise CompileError(
                    f"scoring 'f1' uses pos_label=1, which is not a label of y "
                    f"(labels: {list(classes)})"
                )
            return float(list(classes).index(1))
        return 1.0


_APPLY = ops.Apply(kind="apply")

#: Native models whose scikit-learn counterparts fit on NaN.
_GROWN_ON_NAN = frozenset({"decision_tree", "random_forest"})


def _take(index: str) -> ops.TakeRows:
    return ops.TakeRows(kind="take_rows", index=index)


def _estimator(params: dict[str, Any]) -> ops.Estimator:
    """The IR's spec of a native step as the op the runtime reads.

    The translation builds specs by name from scikit-learn's parameters; the
    runtime refuses any field its ``Estimator`` does not have.
    """
    assert params["name"] in ops.ESTIMATORS, params["name"]
    return cast(ops.Estimator, params)


def _integral(value: Any) -> bool:
    """An integer (or integer-valued float) a float64 carries exactly."""
    if isinstance(value, bool) or not isinstance(value, (Integral, float)):
        return False
    number = float(value)
    return math.isfinite(number) and number.is_integer() and abs(number) <= 2**53


def _combine(kinds: tuple[ColumnKind, ...]) -> ColumnKind:
    found = set(kinds)
    if found == {"cat"}:
        return "cat"
    return "num" if found <= {"num"} else "mixed"
