"""The batch compiler: N pipelines in, one deduplicated plan out."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import msgpack
import numpy as np
from sklearn.utils._indexing import _get_column_indices

from academy_ml import _runtime
from academy_ml.engine.data import Table, Target, digest, prepare_features, prepare_target
from academy_ml.engine.graph import Graph
from academy_ml.engine.ir import PipelineIR
from academy_ml.engine.lower import (
    Binding,
    CompileError,
    Lowered,
    Options,
    ToPython,
    lower,
)
from academy_ml.engine.ops import Node
from academy_ml.engine.scoring import (
    CLASSIFICATION_METRICS,
    Scorer,
    check_scoring,
    describe_scorer,
    is_native,
)
from academy_ml.engine.splits import Folds, check_cv_argument, describe_cv, make_folds
from academy_ml.engine.translate import steps_of, translate
from academy_ml.exceptions import PlanError

__all__ = ["PLAN_VERSION", "Plan", "PlanStats", "compile_batch"]

#: Version of the msgpack plan format: the runtime's own (it refuses others),
#: so the two sides cannot disagree.
PLAN_VERSION: int = _runtime.PLAN_VERSION


@dataclass(frozen=True)
class PlanStats:
    """What compilation saved.

    Attributes:
        pipelines: Pipelines in the batch.
        folds: Cross-validation folds.
        naive_ops: Operations if every pipeline ran alone, fold by fold.
        unique_ops: Operations in the compiled plan.
        python_pipelines: Pipelines with at least one step on the Python backend.
        shared_grams: Gram nodes, each shared by every linear fit on its design.
        linear_solves: Ridge/LinearRegression solves reading those Gram nodes.
        neighbor_searches: Neighbour searches, each shared by the KNN variants
            on its train/test matrices.
        knn_predictions: KNN predictions reading those searches.
    """

    pipelines: int
    folds: int
    naive_ops: int
    unique_ops: int
    python_pipelines: int
    shared_grams: int
    linear_solves: int
    neighbor_searches: int
    knn_predictions: int

    @property
    def dedup_ratio(self) -> float:
        """naive_ops / unique_ops."""
        return self.naive_ops / max(self.unique_ops, 1)


@dataclass
class Entry:
    """One pipeline of the batch and where its results come from.

    Attributes:
        ir: The translated pipeline.
        scoring: The scoring name (or, from ``aml.evaluate``, callable) used for it.
        folds: Its folds (None when compiled without data).
        lowered: Its plan nodes, or None when it runs on Python from the start.
        error: Why it cannot run, or None.
        score_outputs: Per fold, the index of its score among the plan outputs.
        matrix_outputs: Per fold, indices of the (train, test) matrices.
    """

    ir: PipelineIR
    scoring: Scorer
    folds: Folds | None
    lowered: Lowered | None = None
    error: str | None = None
    score_outputs: tuple[int, ...] = ()
    matrix_outputs: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Plan:
    """A compiled batch: data, run by :func:`academy_ml.engine.run.run`.

    Frozen, so its bytes and key are computed once, when first asked for.

    Attributes:
        nodes: Plan nodes in topological order.
        outputs: Node ids whose values the runtime returns.
        stats: Naive vs unique operation counts.
        entries: One per pipeline, in order.
        table: The bound features (None when compiled without data).
        target: The bound target (None when compiled without data).
        targets: Target arrays by the names the plan reads.
        indices: Row-index arrays by the names the plan reads.
    """

    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]
    stats: PlanStats
    entries: tuple[Entry, ...]
    table: Table | None = None
    target: Target | None = None
    targets: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    indices: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)

    @property
    def bound(self) -> bool:
        """Whether the plan was compiled against data and can run."""
        return self.table is not None

    def to_bytes(self) -> bytes:
        """The versioned msgpack form the runtime reads (encoded once).

        Raises:
            PlanError: If the plan was compiled without data.
        """
        if not self.bound:
            raise PlanError("a plan compiled without X and y cannot run; pass X= and y=")
        return self._bytes

    @functools.cached_property
    def _bytes(self) -> bytes:
        body = {"version": PLAN_VERSION, "nodes": self.nodes, "outputs": self.outputs}
        return bytes(msgpack.packb(body, use_bin_type=True))

    @functools.cached_property
    def key(self) -> str:
        """Content hash of the plan and its data binding (idempotency key)."""
        salt = self.table.fingerprint if self.table is not None else "unbound"
        return digest(self.to_bytes() if self.bound else repr(list(self.nodes)), salt)

    @functools.cached_property
    def node_keys(self) -> frozenset[str]:
        """Content keys of every node."""
        return frozenset(node["key"] for node in self.nodes)


def compile_batch(
    pipelines: Iterable[Any],
    cv: Any = 5,
    *,
    X: Any = None,
    y: Any = None,
    scoring: str | None = None,
    options: Options | None = None,
    scorings: Sequence[Scorer | None] | None = None,
) -> Plan:
    """Compiles a batch of scikit-learn pipelines into one plan.

    Args:
        pipelines: Estimators or Pipelines.
        cv: Folds as ``cross_val_score`` takes them.
        X: Features. Without X and y the plan is symbolic: its stats are
            exact, but it cannot run.
        y: Target; required with ``X``.
        scoring: A scikit-learn scoring name; None scores each pipeline as its
            ``score`` method would (accuracy for classifiers, r2 otherwise).
        options: Compiler switches.
        scorings: One scoring per pipeline, overriding ``scoring`` (names, or
            callables run on the Python backend): how ``aml.evaluate`` scores
            several metrics in one plan, their fits and predictions shared.
    """
    options = options or Options()
    cv = check_cv_argument(cv)
    if scoring is not None:
        check_scoring(scoring)
    if (X is None) != (y is None):
        raise ValueError("pass both X and y, or neither")
    table = prepare_features(X) if X is not None else None
    target = prepare_target(y, table.n_rows) if table is not None else None
    batch = list(pipelines)
    per_pipeline = [scoring] * len(batch) if scorings is None else list(scorings)
    if len(per_pipeline) != len(batch):
        raise ValueError(f"{len(per_pipeline)} scorings for {len(batch)} pipelines")
    for each in per_pipeline:
        if each is not None and not callable(each):
            check_scoring(each)
    irs = [_translate(p, s) for p, s in zip(batch, per_pipeline, strict=True)]
    folds = _folds(cv, target, {ir.classifier for ir, _ in irs})
    entries: list[Entry] = []
    graph = Graph(dedupe=options.cse)
    discrete = target is None or target.discrete
    bindings: dict[bool, Binding] = {}
    for ir, score_name in irs:
        entry = Entry(ir, score_name, folds.get(ir.classifier))
        if ir.classifier and not discrete:
            # scikit-learn refuses to fit a classifier to these labels
            # (continuous values...): let it say so on the Python backend.
            entry.ir = PipelineIR(ir.source, ir.classifier, tail=steps_of(ir.source))
        else:
            if ir.classifier not in bindings:
                # One per task type: it fingerprints y, which is costly on large data.
                bindings[ir.classifier] = _binding(table, target, entry.folds, cv, ir.classifier)
            _lower_entry(entry, graph, bindings[ir.classifier], options)
        entries.append(entry)
    outputs = _collect_outputs(entries, graph)
    _size_neighbor_searches(graph)
    stats = PlanStats(
        pipelines=len(entries),
        folds=max((len(b) for b in folds.values()), default=0) or _n_splits(cv),
        naive_ops=sum(e.lowered.naive_ops for e in entries if e.lowered is not None),
        unique_ops=graph.op_count(),
        python_pipelines=sum(1 for e in entries if e.ir.tail or e.lowered is None),
        shared_grams=_count(graph, "gram"),
        linear_solves=_count(graph, "solve"),
        neighbor_searches=_count(graph, "neighbors"),
        knn_predictions=_count(graph, "knn_predict"),
    )
    targets: dict[str, np.ndarray[Any, Any]] = {}
    indices: dict[str, np.ndarray[Any, Any]] = {}
    if table is not None and target is not None:
        targets["codes:" + target.fingerprint("codes")] = target.codes
        if target.raw is not None:
            targets["raw:" + target.fingerprint("raw")] = target.raw
        for f in folds.values():
            indices.update(f.arrays())
    return Plan(
        tuple(graph.nodes), tuple(outputs), stats, tuple(entries), table, target, targets, indices
    )


def _count(graph: Graph, kind: str) -> int:
    return sum(1 for n in graph.nodes if n["op"]["kind"] == kind)


def _size_neighbor_searches(graph: Graph) -> None:
    """Sets each neighbour search's k to the largest k reading it.

    k is not part of the node key, so the variants share one search.
    """
    for node in graph.nodes:
        op = node["op"]
        if op["kind"] == "knn_predict":
            search = graph.nodes[node["inputs"][0]]["op"]
            assert search["kind"] == "neighbors"
            search["k"] = max(search["k"], op["k"])


def _translate(pipeline: Any, scoring: Scorer | None) -> tuple[PipelineIR, Scorer]:
    ir = translate(pipeline)
    name = scoring or ("accuracy" if ir.classifier else "r2")
    # A native classifier predicts class codes, which only the classification
    # metrics read as labels; a regression metric needs the labels themselves.
    if not is_native(name) or (ir.classifier and name not in CLASSIFICATION_METRICS):
        ir = translate(pipeline, native_model=False)
    return ir, name


def _folds(cv: Any, target: Target | None, kinds: set[bool]) -> dict[bool, Folds]:
    if target is None:
        return {}
    return {c: _folds_of(cv, target, c) for c in sorted(kinds)}


def _folds_of(cv: Any, target: Target, classifier: bool) -> Folds:
    # A number of folds splits y the same way every time (unshuffled KFold or
    # StratifiedKFold), so the target keeps them; splitters may shuffle.
    if not (cv is None or (isinstance(cv, Integral) and not isinstance(cv, bool))):
        return make_folds(cv, target.original, classifier=classifier)
    key = ("folds", None if cv is None else int(cv), classifier)
    folds = target.memo.get(key)
    if folds is None:
        folds = target.memo[key] = make_folds(cv, target.original, classifier=classifier)
    assert isinstance(folds, Folds)
    return folds


def _n_splits(cv: Any) -> int:
    if cv is None:
        return 5
    if isinstance(cv, Integral):
        return int(cv)
    if hasattr(cv, "get_n_splits"):
        return int(cv.get_n_splits())
    return len(cv)


def _binding(
    table: Table | None, target: Target | None, folds: Folds | None, cv: Any, classifier: bool
) -> Binding:
    if table is None or target is None or folds is None:
        desc = describe_cv(cv, classifier=classifier)
        names = tuple(
            (f"{desc}/fold{i}/train", f"{desc}/fold{i}/test") for i in range(_n_splits(cv))
        )
        return Binding(
            x_salt="unbound",
            folds=names,
            target={"codes": "codes", "raw": "raw"},
            columns=("*",),
            kinds=None,
            resolve=lambda sel: (repr(sel),),
            fill_code=lambda value: repr(value),
            classes=None,
        )
    targets = {"codes": "codes:" + target.fingerprint("codes")}
    if target.raw is not None:
        targets["raw"] = "raw:" + target.fingerprint("raw")
    probe = table.probe

    def resolve(selector: Any) -> list[int]:
        if callable(selector):
            selector = selector(probe)
        return [int(i) for i in _get_column_indices(probe, selector)]

    return Binding(
        x_salt=table.fingerprint,
        folds=tuple(zip(folds.train_names, folds.test_names, strict=True)),
        target=targets,
        columns=tuple(range(len(table.columns))),
        kinds=tuple("cat" if c else "num" for c in table.categorical),
        resolve=resolve,
        fill_code=table.code_of,
        classes=tuple(target.classes.tolist()),
        missing=frozenset(np.flatnonzero(np.isnan(table.matrix).any(axis=0)).tolist()),
    )


def _lower_entry(entry: Entry, graph: Graph, bind: Binding, options: Options) -> None:
    mark = graph.mark()
    try:
        entry.lowered = lower(entry.ir, graph, bind, describe_scorer(entry.scoring), options)
    except ToPython:
        graph.rollback(mark)
        source = entry.ir.source
        entry.ir = PipelineIR(source, entry.ir.classifier, tail=steps_of(source))
    except CompileError as exc:
        graph.rollback(mark)
        entry.error = str(exc)


def _collect_outputs(entries: list[Entry], graph: Graph) -> list[int]:
    """Plan outputs, fold by fold, pipelines that share work next to each other.

    The runtime schedules work in output order, so a fold's intermediates are
    done with (and freed) before the next fold's are made, and a matrix that
    several pipelines read is freed once the last of them (now adjacent) has.
    """
    outputs: list[int] = []
    position: dict[int, int] = {}
    lowered = sorted(
        (e.lowered for e in entries if e.lowered is not None),
        key=lambda low: _ancestry(graph, (low.scores or low.matrices[0])[0]),
    )
    # A lowered pipeline has either a score or a matrix pair per fold.
    n_folds = max((len(low.scores) + len(low.matrices) for low in lowered), default=0)
    for fold in range(n_folds):
        for low in lowered:
            nodes = low.scores[fold : fold + 1] + tuple(
                node for pair in low.matrices[fold : fold + 1] for node in pair
            )
            for node in nodes:
                if node not in position:
                    position[node] = len(outputs)
                    outputs.append(node)
    for entry in entries:
        if entry.lowered is not None:
            entry.score_outputs = tuple(position[n] for n in entry.lowered.scores)
            entry.matrix_outputs = tuple(
                (position[a], position[b]) for a, b in entry.lowered.matrices
            )
    return outputs


def _ancestry(graph: Graph, node: int) -> list[int]:
    """Ids of ``node`` and everything it reads, ascending.

    Sorting pipelines by this list puts those that share their earliest
    (longest common) work next to each other, as a trie would.
    """
    seen = {node}
    stack = [node]
    while stack:
        for parent in graph.nodes[stack.pop()]["inputs"]:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return sorted(seen)
