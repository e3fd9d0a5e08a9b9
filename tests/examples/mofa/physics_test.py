"""The physics of the MOFA example: uptake, strain, seeds, validation, assembly, evaluate."""

from __future__ import annotations

import dataclasses
import functools
import pickle
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from mofa.assembly import MIN_CLEARANCE, Framework, assemble
from mofa.chemistry import (
    STABLE_STRAIN,
    check_linker,
    conformer_ensemble,
    design_seed,
    linker_smiles,
)
from mofa.cif import write_cif
from mofa.genes import Genes
from mofa.simulate import build_framework, evaluate
from mofa.widom import widom

TEREPHTHALIC = "OC(=O)c1ccc(C(=O)O)cc1"
BIPHENYL = "OC(=O)c1ccc(-c2ccc(C(=O)O)cc2)cc1"


def candidate(smiles: str, pillar: str = "dabco", **genes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rings": ["benzene"],
        "substituents": ["H"],
        "spacer": "none",
        "pillar": pillar,
    }
    return {"genes": Genes.from_payload(base | genes).to_payload(), "smiles": smiles}


@functools.cache
def framework(smiles: str, pillar: str = "dabco") -> Framework:
    built = build_framework(candidate(smiles, pillar))
    assert built is not None
    return built


def test_dmof1_cell_matches_the_known_structure() -> None:
    a, b, c = framework(TEREPHTHALIC).lengths
    # Zn2(bdc)2(dabco), DMOF-1: a = b = 10.93 A, c = 9.61 A.
    assert a == pytest.approx(10.93, abs=0.15)
    assert b == a
    assert c == pytest.approx(9.61, abs=0.15)
    assert framework(TEREPHTHALIC).clearance >= MIN_CLEARANCE


@pytest.mark.parametrize("smiles", [TEREPHTHALIC, BIPHENYL])
def test_known_linkers_give_positive_uptake(smiles: str) -> None:
    result = widom(framework(smiles), seed=design_seed(smiles), n_insertions=500)
    assert 0.0 < result.uptake < 10.0
    assert result.henry > 0.0
    assert result.energy < 0.0  # CO2 binds


def test_uptake_rises_with_the_framework_well_depth() -> None:
    fw = framework(TEREPHTHALIC)
    uptakes = [widom(fw, seed=7, n_insertions=500, epsilon_scale=s).uptake for s in (0.5, 1, 2)]
    assert uptakes[0] < uptakes[1] < uptakes[2]


@pytest.mark.parametrize(
    ("smiles", "stable"),
    [
        (TEREPHTHALIC, True),
        (BIPHENYL, True),
        ("OC(=O)c1ccc(C#Cc2ccc(C(=O)O)cc2)cc1", True),
        ("OC(=O)c1ccc(CCc2ccc(C(=O)O)cc2)cc1", False),
        ("OC(=O)c1ccc(OCc2ccc(C(=O)O)cc2)cc1", False),
        ("OC(=O)c1ccc(CCC(=O)O)cc1", False),
    ],
)
def test_rigid_linkers_are_stable_and_flexible_ones_strained(smiles: str, stable: bool) -> None:
    mol, _ = check_linker(smiles)
    assert mol is not None
    ensemble = conformer_ensemble(mol)
    assert ensemble is not None
    assert (ensemble.strain < STABLE_STRAIN) is stable


def test_conformer_seed_comes_from_the_smiles_and_is_never_zero() -> None:
    flexible = "OC(=O)c1ccc(CCc2ccc(C(=O)O)cc2)cc1"
    mol, _ = check_linker(flexible)
    assert mol is not None
    ensemble = conformer_ensemble(mol)
    assert ensemble is not None
    assert ensemble.seed == design_seed(flexible) != 0
    # The seed is per design, and follows the molecule, not the spelling.
    assert design_seed(TEREPHTHALIC) != design_seed(BIPHENYL)
    assert design_seed("c1cc(C(=O)O)ccc1C(O)=O") == design_seed(TEREPHTHALIC)
    assert len(set(np.round(ensemble.distances, 3))) > 1  # conformers differ
    with pytest.raises(ValueError, match="seed 0"):
        conformer_ensemble(mol, seed=0)


@pytest.mark.parametrize(
    "smiles", ["C1CC", "", "OC(=O)c1ccccc1", "OC(=O)c1ccccc1.OC(=O)C", "OC(=O)CC(C(=O)O)C(=O)O"]
)
def test_bad_chemistry_is_invalid_without_raising(smiles: str) -> None:
    result = evaluate(msgpack.packb(candidate(smiles)))
    assert result["flags"] == {"valid": False, "assembled": False, "stable": False}
    assert "uptake" not in result["metrics"]
    assert result["metrics"]["seconds"] < 1.0


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"\xc1\xc1not msgpack", "msgpack"),
        (msgpack.packb([1, 2]), "dict"),
        (msgpack.packb({"smiles": TEREPHTHALIC}), "genes"),
        (msgpack.packb({"genes": candidate("")["genes"]}), "smiles"),
        (msgpack.packb({"genes": {"rings": []}, "smiles": TEREPHTHALIC}), "rings"),
    ],
)
def test_malformed_payload_raises_value_error(payload: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        evaluate(payload)


def test_evaluate_is_deterministic_and_complete() -> None:
    design = Genes.from_payload(candidate("")["genes"])
    assert linker_smiles(design) == "O=C(O)c1ccc(C(=O)O)cc1"
    payload = msgpack.packb(candidate(linker_smiles(design)))
    first, second = evaluate(payload, n_insertions=500), evaluate(payload, n_insertions=500)
    first["metrics"].pop("seconds")
    second["metrics"].pop("seconds")
    assert first == second
    assert first["flags"] == {"valid": True, "assembled": True, "stable": True}
    assert {"uptake", "strain", "henry", "n_atoms"} <= set(first["metrics"])
    assert msgpack.unpackb(msgpack.packb(first)) == first
    assert pickle.loads(pickle.dumps(evaluate)) is evaluate  # Parsl ships it by reference


def test_pillar_sets_the_c_axis_and_cif_is_written(tmp_path: Path) -> None:
    # N-N: dabco 2.6 A, pyrazine 2.8 A, 4,4'-bipyridine 7.1 A.
    c = [framework(TEREPHTHALIC, p).lengths[2] for p in ("dabco", "pyrazine", "bipyridine")]
    assert c == sorted(c)
    assert c[2] - c[0] == pytest.approx(4.5, abs=0.3)
    fw = framework(TEREPHTHALIC)
    write_cif(fw, tmp_path / "dmof.cif", name="DMOF 1")
    text = (tmp_path / "dmof.cif").read_text()
    assert text.startswith("data_DMOF_1\n")
    assert sum(line.startswith("  Zn") for line in text.splitlines()) == 2
    assert sum(line.startswith("  ") for line in text.splitlines()) == fw.n_atoms + 1
    fractional = np.array(
        [line.split()[2:] for line in text.splitlines() if line.startswith("  Zn")], dtype=float
    )
    assert ((fractional >= 0) & (fractional < 1)).all()


def test_a_crowded_framework_is_rejected() -> None:
    mol, _ = check_linker(TEREPHTHALIC)
    assert mol is not None
    ensemble = conformer_ensemble(mol)
    assert ensemble is not None
    # Squash the linker onto the node: the anchors collide with the paddle-wheel.
    squashed = dataclasses.replace(ensemble, distances=ensemble.distances * 0.3)
    assert assemble(squashed, TEREPHTHALIC, "dabco").clearance < MIN_CLEARANCE
