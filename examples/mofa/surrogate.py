"""The planner's surrogate: ranks candidate linkers by predicted CO2 uptake.

Each refit is one pipeline search (feature sets x models x hyperparameters)
run as a single academy_ml plan: every pipeline reads the same concatenated
feature matrix and picks its own columns with a ColumnTransformer, so the
column selections, scalers, Gram matrices and neighbour searches that
pipelines share are computed once, and kept in the node cache for the next
refit. The best pipeline by cross-validated r2 is refitted with plain
scikit-learn on all the data and used to rank new candidates::

    surrogate = Surrogate(cache=aml.Cache())
    report = surrogate.fit(payloads, uptakes)
    picks = surrogate.select(new_payloads, 8, rng=np.random.default_rng(0))
"""

from __future__ import annotations

import functools
import math
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from rdkit import Chem, rdBase
from rdkit.Chem import rdFingerprintGenerator, rdMolDescriptors
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

import academy_ml as aml

__all__ = [
    "FEATURE_SETS",
    "FRAGMENT_COLUMNS",
    "GENE_COLUMNS",
    "Features",
    "FitReport",
    "Surrogate",
    "featurize",
    "fragment_features",
    "gene_features",
]

FloatArray = NDArray[np.float64]

#: Feature sets the search tries; "both" is the concatenation of the others.
FEATURE_SETS: tuple[str, ...] = ("genes", "fragments", "both")

#: Ring names are hashed into this many count buckets, so the featuriser works
#: for any ring vocabulary the generator uses (collisions only cost accuracy).
RING_BUCKETS = 24
SUBSTITUENTS: tuple[str, ...] = ("H", "CH3", "F", "Cl", "OH", "NH2")
SPACERS: tuple[str, ...] = ("none", "C#C", "C=C", "CH2CH2", "OCH2")
PILLARS: tuple[str, ...] = ("dabco", "bipyridine", "pyrazine")

#: Names of the "genes" columns, in order.
GENE_COLUMNS: tuple[str, ...] = (
    *(f"ring_bucket_{i}" for i in range(RING_BUCKETS)),
    "n_rings",
    *(f"substituent_{s}" for s in SUBSTITUENTS),
    "substituent_other",
    *(f"spacer_{s}" for s in SPACERS),
    "spacer_other",
    *(f"pillar_{p}" for p in PILLARS),
    "pillar_other",
)

ELEMENTS: tuple[str, ...] = ("C", "N", "O", "F", "Cl", "S", "Br")
MORGAN_BINS = 64

#: Names of the "fragments" columns, in order.
FRAGMENT_COLUMNS: tuple[str, ...] = (
    *(f"n_{e}" for e in ELEMENTS),
    "n_other_heavy",
    "n_H",
    "heavy_atoms",
    "aromatic_atoms",
    "aromatic_rings",
    "aliphatic_rings",
    "rotatable_bonds",
    "double_bonds",
    "triple_bonds",
    "h_donors",
    "h_acceptors",
    "fraction_csp3",
    "tpsa",
    *(f"morgan_{i}" for i in range(MORGAN_BINS)),
)

RIDGE_ALPHAS: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
POLY_ALPHAS: tuple[float, ...] = (1.0, 10.0, 100.0)
KNN_KS: tuple[int, ...] = (3, 5, 9)
SCORING = "r2"


def _bucket(name: str) -> int:
    # crc32, not hash(): str hashes are salted per process, buckets must not be.
    return zlib.crc32(name.encode()) % RING_BUCKETS


def _one_hot(value: str, vocabulary: tuple[str, ...]) -> list[float]:
    row = [0.0] * (len(vocabulary) + 1)
    row[vocabulary.index(value) if value in vocabulary else len(vocabulary)] = 1.0
    return row


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty list of strings, got {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must hold strings, got {value!r}")
    return list(value)


def gene_features(genes: Mapping[str, Any]) -> FloatArray:
    """The "genes" row: ring-bucket counts, substituent counts, spacer and pillar one-hots.

    Args:
        genes: ``{"rings": [...], "substituents": [...], "spacer": str, "pillar": str}``.

    Returns:
        A float64 vector laid out as :data:`GENE_COLUMNS`.

    Raises:
        ValueError: If a gene is missing or of the wrong type.
    """
    try:
        rings = _strings(genes["rings"], "rings")
        substituents = _strings(genes["substituents"], "substituents")
        spacer, pillar = genes["spacer"], genes["pillar"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"incomplete genes {genes!r}") from exc
    if not isinstance(spacer, str) or not isinstance(pillar, str):
        raise ValueError(f"spacer and pillar must be strings, got {spacer!r}, {pillar!r}")
    ring_counts = [0.0] * RING_BUCKETS
    for ring in rings:
        ring_counts[_bucket(ring)] += 1.0
    sub_counts = [0.0] * (len(SUBSTITUENTS) + 1)
    for sub in substituents:
        sub_counts[SUBSTITUENTS.index(sub) if sub in SUBSTITUENTS else -1] += 1.0
    row = [
        *ring_counts,
        float(len(rings)),
        *sub_counts,
        *_one_hot(spacer, SPACERS),
        *_one_hot(pillar, PILLARS),
    ]
    return np.asarray(row, dtype=np.float64)


_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=MORGAN_BINS)


@functools.lru_cache(maxsize=8192)
def _fragments(smiles: str) -> FloatArray:
    # The planner re-ranks the same candidates many times: parse each SMILES once.
    with rdBase.BlockLogs():  # an invalid SMILES is reported by ValueError, not on stderr
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    symbols = [atom.GetSymbol() for atom in mol.GetAtoms()]
    bonds = [bond.GetBondType() for bond in mol.GetBonds()]
    row = [
        *(float(symbols.count(e)) for e in ELEMENTS),
        float(sum(1 for s in symbols if s not in ELEMENTS and s != "H")),
        float(sum(atom.GetTotalNumHs() for atom in mol.GetAtoms())),
        float(mol.GetNumHeavyAtoms()),
        float(sum(1 for atom in mol.GetAtoms() if atom.GetIsAromatic())),
        float(rdMolDescriptors.CalcNumAromaticRings(mol)),
        float(rdMolDescriptors.CalcNumAliphaticRings(mol)),
        float(rdMolDescriptors.CalcNumRotatableBonds(mol)),
        float(bonds.count(Chem.BondType.DOUBLE)),
        float(bonds.count(Chem.BondType.TRIPLE)),
        float(rdMolDescriptors.CalcNumHBD(mol)),
        float(rdMolDescriptors.CalcNumHBA(mol)),
        float(rdMolDescriptors.CalcFractionCSP3(mol)),
        float(rdMolDescriptors.CalcTPSA(mol)),
    ]
    morgan = np.asarray(_MORGAN.GetCountFingerprintAsNumPy(mol), dtype=np.float64)
    out = np.concatenate([np.asarray(row, dtype=np.float64), morgan])
    out.flags.writeable = False  # shared by the cache
    return out


def fragment_features(smiles: str) -> FloatArray:
    """The "fragments" row of a linker SMILES (RDKit counts and a hashed Morgan count).

    Args:
        smiles: The linker SMILES.

    Returns:
        A read-only float64 vector laid out as :data:`FRAGMENT_COLUMNS`.

    Raises:
        ValueError: If ``smiles`` is not a string RDKit can parse.
    """
    if not isinstance(smiles, str):
        raise ValueError(f"SMILES must be a string, got {smiles!r}")
    return _fragments(smiles)


@dataclass(frozen=True)
class Features:
    """Feature rows of a batch of payloads.

    Attributes:
        matrix: ``n x (genes + fragments)`` float64; a payload that could not
            be featurised has a row of zeros.
        valid: Per payload, whether it was featurised.
        columns: Column positions of each feature set in :attr:`matrix`.
    """

    matrix: FloatArray
    valid: NDArray[np.bool_]
    columns: Mapping[str, list[int]]


_N_GENES = len(GENE_COLUMNS)
_N_COLUMNS = _N_GENES + len(FRAGMENT_COLUMNS)
_COLUMNS: dict[str, list[int]] = {
    "genes": list(range(_N_GENES)),
    "fragments": list(range(_N_GENES, _N_COLUMNS)),
    "both": list(range(_N_COLUMNS)),
}


def featurize(payloads: Sequence[Mapping[str, Any]]) -> Features:
    """Featurises candidate payloads (``{"genes": {...}, "smiles": str}``), never raising.

    Args:
        payloads: Candidate payloads.

    Returns:
        Every feature set side by side; invalid payloads (missing genes, a
        SMILES RDKit rejects...) get a constant row and ``valid`` False.
    """
    matrix = np.zeros((len(payloads), _N_COLUMNS), dtype=np.float64)
    valid = np.zeros(len(payloads), dtype=bool)
    for i, payload in enumerate(payloads):
        try:
            genes = gene_features(payload["genes"])
            fragments = fragment_features(payload["smiles"])
        except (ValueError, KeyError, TypeError):
            continue
        matrix[i, :_N_GENES] = genes
        matrix[i, _N_GENES:] = fragments
        valid[i] = True
    return Features(matrix, valid, _COLUMNS)


class FitReport(BaseModel):
    """What one surrogate refit did.

    Attributes:
        n_samples: Training rows used (valid payloads with a finite uptake).
        n_pipelines: Pipelines cross-validated in the one plan.
        failed_pipelines: Of those, pipelines that produced no score.
        best: The chosen pipeline, e.g. ``"both: StandardScaler + Ridge(alpha=10)"``.
        best_score: Its mean cross-validated r2.
        scoring: The scoring name.
        naive_ops: Plan operations if every pipeline ran alone, fold by fold.
        unique_ops: Operations in the deduplicated plan.
        executed: Operations the runtime computed in this run.
        cache_hits: Plan nodes served by the node cache.
        seconds: Wall time of the whole refit (features, search, final fit).
    """

    model_config = ConfigDict(frozen=True)

    n_samples: int
    n_pipelines: int
    failed_pipelines: int
    best: str
    best_score: float
    scoring: str
    naive_ops: int
    unique_ops: int
    executed: int
    cache_hits: int
    seconds: float


def _search(columns: Mapping[str, list[int]], n_train: int) -> list[tuple[str, Pipeline]]:
    """(description, pipeline) for every candidate of the search."""

    def pipe(feature_set: str, *steps: tuple[str, Any]) -> Pipeline:
        select = ColumnTransformer([(feature_set, "passthrough", columns[feature_set])])
        return Pipeline([("columns", select), *steps])

    batch: list[tuple[str, Pipeline]] = []
    for name in FEATURE_SETS:
        for alpha in RIDGE_ALPHAS:
            batch.append(
                (
                    f"{name}: StandardScaler + Ridge(alpha={alpha:g})",
                    pipe(name, ("scale", StandardScaler()), ("model", Ridge(alpha=alpha))),
                )
            )
        # A fold's training rows must hold k neighbours.
        for k in (k for k in KNN_KS if k <= n_train):
            batch.append(
                (
                    f"{name}: StandardScaler + KNN(k={k}, distance)",
                    pipe(
                        name,
                        ("scale", StandardScaler()),
                        ("model", KNeighborsRegressor(n_neighbors=k, weights="distance")),
                    ),
                )
            )
    # Pairwise gene interactions (e.g. ring x pillar); only on the small gene
    # set, where the expanded design stays a few hundred columns wide.
    for alpha in POLY_ALPHAS:
        batch.append(
            (
                f"genes: PolynomialFeatures(2) + StandardScaler + Ridge(alpha={alpha:g})",
                pipe(
                    "genes",
                    ("poly", PolynomialFeatures(2, include_bias=False)),
                    ("scale", StandardScaler()),
                    ("model", Ridge(alpha=alpha)),
                ),
            )
        )
    return batch


class Surrogate:
    """Ranks candidates by predicted CO2 uptake; refits by one academy_ml plan.

    Args:
        cache: Node-local cache the search reads and stores intermediates in
            (None: no cache).
        cv: Cross-validation folds (KFold, shuffled with ``seed``).
        seed: Seed of the fold shuffle.
        threads: Runtime worker threads (None: all cores).

    Raises:
        ValueError: If ``cv`` < 2.
    """

    def __init__(
        self,
        *,
        cache: aml.Cache | None = None,
        cv: int = 4,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        if cv < 2:
            raise ValueError(f"cv must be at least 2, got {cv}")
        self.cache = cache
        self.cv = cv
        self.seed = seed
        self.threads = threads
        self.model: Pipeline | None = None
        self.report: FitReport | None = None

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has succeeded at least once."""
        return self.model is not None

    @property
    def min_samples(self) -> int:
        """Fewest usable samples :meth:`fit` accepts (two per fold)."""
        return 2 * self.cv

    def fit(
        self, payloads: Sequence[Mapping[str, Any]], uptakes: Sequence[float | None]
    ) -> FitReport:
        """Searches feature sets x models in one plan and refits the best on all data.

        Payloads that cannot be featurised and missing (None) or non-finite
        uptakes are left out.
        On failure the previous model (if any) is kept.

        Args:
            payloads: Simulated candidates.
            uptakes: Their CO2 uptake (mol/kg), one per payload.

        Returns:
            What the refit did (best pipeline, score, plan stats, time).

        Raises:
            ValueError: If lengths differ, if fewer than :attr:`min_samples`
                usable samples remain (the message names the count), or if no
                pipeline produced a finite score.
        """
        start = time.perf_counter()
        if len(payloads) != len(uptakes):
            raise ValueError(f"{len(payloads)} payloads but {len(uptakes)} uptakes")
        features = featurize(payloads)
        y = np.asarray([math.nan if u is None else u for u in uptakes], dtype=np.float64)
        keep = features.valid & np.isfinite(y)
        n = int(keep.sum())
        if n < self.min_samples:
            raise ValueError(
                f"only {n} usable samples (of {len(payloads)}); "
                f"the surrogate needs at least {self.min_samples} for {self.cv}-fold CV"
            )
        X, y = features.matrix[keep], y[keep]
        n_train = n - math.ceil(n / self.cv)  # smallest training fold
        described = _search(features.columns, n_train)
        folds = KFold(self.cv, shuffle=True, random_state=self.seed)
        plan = aml.compile([p for _, p in described], cv=folds, X=X, y=y, scoring=SCORING)
        run = aml.run(plan, threads=self.threads, cache=self.cache)
        scores = [_finite_mean(r) for r in run.results]
        if all(math.isnan(s) for s in scores):
            errors = {r.error for r in run.results if r.error}
            raise ValueError(f"no pipeline produced a finite CV score ({sorted(errors)[:3]})")
        best = int(np.nanargmax(scores))
        model = clone(described[best][1]).fit(X, y)
        self.model = model
        self.report = FitReport(
            n_samples=n,
            n_pipelines=len(described),
            failed_pipelines=sum(1 for r in run.results if not r.ok),
            best=described[best][0],
            best_score=scores[best],
            scoring=SCORING,
            naive_ops=plan.stats.naive_ops,
            unique_ops=plan.stats.unique_ops,
            executed=run.executed,
            cache_hits=run.cache_hits,
            seconds=time.perf_counter() - start,
        )
        return self.report

    def predict(self, payloads: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Predicted uptake (mol/kg) per payload; NaN where featurisation failed.

        Raises:
            RuntimeError: If the surrogate was never fitted.
        """
        if self.model is None:
            raise RuntimeError("the surrogate has not been fitted")
        if not payloads:
            return np.zeros(0, dtype=np.float64)
        features = featurize(payloads)
        predicted = np.asarray(self.model.predict(features.matrix), dtype=np.float64)
        predicted[~features.valid] = np.nan
        return predicted

    def select(
        self,
        payloads: Sequence[Mapping[str, Any]],
        k: int,
        *,
        explore: float = 0.25,
        rng: np.random.Generator,
    ) -> list[int]:
        """Indices of the ``k`` payloads to simulate next.

        ``round(k * explore)`` are drawn at random among the valid payloads
        outside the top; the rest are the top predicted. Payloads that cannot
        be featurised come last, only when there are not enough others. Before
        the first fit, ``k`` random indices.

        Args:
            payloads: Candidates to choose from.
            k: How many to choose (at most ``len(payloads)``).
            explore: Fraction of ``k`` chosen at random, in [0, 1].
            rng: Source of the random choices.

        Returns:
            Distinct indices into ``payloads``: exploited ones best first, then
            explored ones.

        Raises:
            ValueError: If ``k`` is negative or ``explore`` is outside [0, 1].
        """
        if k < 0:
            raise ValueError(f"k must be non-negative, got {k}")
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"explore must be in [0, 1], got {explore}")
        k = min(k, len(payloads))
        if not self.fitted:
            return [int(i) for i in rng.choice(len(payloads), size=k, replace=False)]
        predicted = self.predict(payloads)
        valid = np.flatnonzero(np.isfinite(predicted))
        # Stable sort, so ties keep the payloads' order.
        ranked = valid[np.argsort(-predicted[valid], kind="stable")]
        n_top = k - round(k * explore)
        top = [int(i) for i in ranked[:n_top]]
        rest = ranked[len(top) :]
        explored = rng.choice(rest, size=min(k - len(top), len(rest)), replace=False)
        chosen = top + [int(i) for i in explored]
        if len(chosen) < k:
            invalid = np.flatnonzero(~np.isfinite(predicted))
            chosen += [int(i) for i in invalid[: k - len(chosen)]]
        return chosen


def _finite_mean(result: aml.PipelineResult) -> float:
    if not result.ok:
        return math.nan
    scores = result.fold_scores[np.isfinite(result.fold_scores)]
    return float(scores.mean()) if len(scores) else math.nan
