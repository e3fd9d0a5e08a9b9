"""The planner's surrogate of examples/mofa: features, the one-plan search, selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mofa.surrogate import (
    FRAGMENT_COLUMNS,
    GENE_COLUMNS,
    Surrogate,
    featurize,
    fragment_features,
    gene_features,
)

import academy_ml as aml

# A tiny stand-in for mofa.genes: para-connected rings with one substituent.
RINGS = {
    "benzene": "c1cc{s}c(cc1)",
    "pyridine": "c1nc{s}c(cc1)",
    "pyrimidine": "c1nc{s}c(nc1)",
}
SUBSTITUENTS = {"H": "", "CH3": "(C)", "F": "(F)", "Cl": "(Cl)", "OH": "(O)", "NH2": "(N)"}
SPACERS = {"none": "", "C#C": "C#C", "C=C": "C=C", "CH2CH2": "CC", "OCH2": "OC"}
PILLARS = ("dabco", "bipyridine", "pyrazine")


def payload(rng: np.random.Generator) -> dict[str, Any]:
    n = int(rng.integers(1, 3))
    rings = [str(rng.choice(list(RINGS))) for _ in range(n)]
    subs = [str(rng.choice(list(SUBSTITUENTS))) for _ in range(n)]
    spacer = str(rng.choice(list(SPACERS)))
    pillar = str(rng.choice(PILLARS))
    units = [RINGS[r].format(s=SUBSTITUENTS[s]) for r, s in zip(rings, subs, strict=True)]
    smiles = "OC(=O)" + SPACERS[spacer].join(units) + "C(=O)O"
    genes = {"rings": rings, "substituents": subs, "spacer": spacer, "pillar": pillar}
    return {"genes": genes, "smiles": smiles}


def uptake(p: dict[str, Any], rng: np.random.Generator) -> float:
    genes = p["genes"]
    return float(
        0.4 * genes["substituents"].count("F")
        + 0.5 * (genes["pillar"] == "dabco")
        + 0.2 * len(genes["rings"])
        + rng.normal(0.0, 0.05)
    )


def dataset(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[float]]:
    rng = np.random.default_rng(seed)
    payloads = [payload(rng) for _ in range(n)]
    return payloads, [uptake(p, rng) for p in payloads]


INVALID = {
    "genes": {"rings": ["benzene"], "substituents": ["H"], "spacer": "none", "pillar": "dabco"},
    "smiles": "C1CC(",
}


def test_features_are_deterministic_float64() -> None:
    payloads, _ = dataset(20)
    first, second = featurize(payloads), featurize(payloads)
    assert first.matrix.dtype == np.float64
    assert first.matrix.shape == (20, len(GENE_COLUMNS) + len(FRAGMENT_COLUMNS))
    assert first.valid.all()
    np.testing.assert_array_equal(first.matrix, second.matrix)
    assert set(first.columns) == {"genes", "fragments", "both"}
    assert len(first.columns["both"]) == first.matrix.shape[1]


def test_gene_features_handle_any_ring_name() -> None:
    genes = {
        "rings": ["some-new-ring", "benzene"],
        "substituents": ["F", "weird"],
        "spacer": "C#C",
        "pillar": "unknown",
    }
    row = gene_features(genes)
    columns = dict(zip(GENE_COLUMNS, row, strict=True))
    assert sum(v for k, v in columns.items() if k.startswith("ring_bucket_")) == 2.0
    assert columns["n_rings"] == 2.0
    assert columns["substituent_F"] == columns["substituent_other"] == 1.0
    assert columns["spacer_C#C"] == columns["pillar_other"] == 1.0
    with pytest.raises(ValueError, match="rings"):
        gene_features({**genes, "rings": []})


def test_fragment_features_count_atoms() -> None:
    row = dict(zip(FRAGMENT_COLUMNS, fragment_features("OC(=O)c1ccc(F)cc1C(=O)O"), strict=True))
    assert (row["n_C"], row["n_O"], row["n_F"]) == (8.0, 4.0, 1.0)
    assert row["aromatic_rings"] == 1.0
    assert row["heavy_atoms"] == 13.0
    with pytest.raises(ValueError, match="SMILES"):
        fragment_features("C1CC(")


def test_invalid_payloads_get_a_constant_row() -> None:
    payloads, _ = dataset(3)
    features = featurize([payloads[0], INVALID, {"smiles": "CCO"}, payloads[1]])
    assert features.valid.tolist() == [True, False, False, True]
    assert not features.matrix[1].any()
    assert not features.matrix[2].any()


def test_fit_picks_a_good_model_in_one_plan() -> None:
    payloads, uptakes = dataset(120)
    surrogate = Surrogate(cv=4, seed=0, threads=2)
    report = surrogate.fit(payloads, uptakes)
    assert surrogate.fitted
    assert report.n_samples == 120
    assert report.failed_pipelines == 0
    assert report.best_score > 0.8
    assert report.best.split(":")[0] in ("genes", "both")
    # Shared preprocessing, Gram matrices and neighbour searches are deduplicated.
    assert report.n_pipelines >= 20
    assert report.unique_ops < report.naive_ops / 2
    assert report.executed == report.unique_ops
    test_payloads, test_uptakes = dataset(40, seed=1)
    predicted = surrogate.predict(test_payloads)
    assert predicted.shape == (40,)
    assert np.corrcoef(predicted, test_uptakes)[0, 1] > 0.9


def test_refit_on_the_same_data_reads_the_cache(tmp_path: Path) -> None:
    payloads, uptakes = dataset(40)
    surrogate = Surrogate(cache=aml.Cache(tmp_path / "cache"), threads=1)
    first = surrogate.fit(payloads, uptakes)
    second = surrogate.fit(payloads, uptakes)
    assert first.cache_hits == 0
    assert second.cache_hits > 0
    assert second.executed < first.executed
    assert second.best == first.best
    assert second.best_score == pytest.approx(first.best_score)


def test_fit_needs_enough_samples() -> None:
    payloads, uptakes = dataset(10)
    surrogate = Surrogate(cv=4)
    with pytest.raises(ValueError, match="only 7 usable samples"):
        surrogate.fit(payloads[:7], uptakes[:7])
    # Invalid payloads and missing uptakes do not count.
    with pytest.raises(ValueError, match="only 6 usable samples"):
        surrogate.fit([*payloads[:8], INVALID], [*uptakes[:6], float("nan"), None, 1.0])
    with pytest.raises(ValueError, match="uptakes"):
        surrogate.fit(payloads, uptakes[:3])
    assert not surrogate.fitted
    # Two per fold is enough.
    report = Surrogate(cv=4).fit(payloads[:8], uptakes[:8])
    assert report.n_samples == 8


def test_predict_before_fit_raises() -> None:
    payloads, _ = dataset(3)
    with pytest.raises(RuntimeError, match="not been fitted"):
        Surrogate().predict(payloads)


def test_select_random_until_fitted() -> None:
    payloads, _ = dataset(30)
    picks = Surrogate().select(payloads, 10, rng=np.random.default_rng(0))
    assert len(picks) == len(set(picks)) == 10
    assert all(0 <= i < 30 for i in picks)
    assert sorted(Surrogate().select(payloads[:3], 10, rng=np.random.default_rng(0))) == [0, 1, 2]


def test_select_exploits_and_explores() -> None:
    payloads, uptakes = dataset(80)
    surrogate = Surrogate(threads=1)
    surrogate.fit(payloads, uptakes)
    candidates, _ = dataset(50, seed=2)
    candidates.insert(0, INVALID)
    predicted = surrogate.predict(candidates)
    assert np.isnan(predicted[0])
    ranked = [int(i) for i in np.argsort(-predicted[1:], kind="stable") + 1]

    greedy = surrogate.select(candidates, 8, explore=0.0, rng=np.random.default_rng(0))
    assert greedy == ranked[:8]

    mixed = surrogate.select(candidates, 8, explore=0.25, rng=np.random.default_rng(0))
    assert len(set(mixed)) == 8
    assert mixed[:6] == ranked[:6]
    assert not set(mixed[6:]) & set(ranked[:6])
    assert 0 not in mixed

    everything = surrogate.select(candidates, 100, explore=1.0, rng=np.random.default_rng(0))
    assert sorted(everything) == list(range(51))
    assert everything[-1] == 0  # the invalid payload comes last


def test_select_rejects_bad_arguments() -> None:
    payloads, _ = dataset(5)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="explore"):
        Surrogate().select(payloads, 2, explore=1.5, rng=rng)
    with pytest.raises(ValueError, match="k must"):
        Surrogate().select(payloads, -1, rng=rng)
