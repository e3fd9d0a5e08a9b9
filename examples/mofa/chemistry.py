"""RDKit chemistry: linker SMILES from genes, validation, and the conformer-ensemble strain.

The strain is the stand-in for MOFA's MD stability check: the relative spread
``(max - min) / mean`` of the anchor-anchor distance (the two carboxyl carbons) over an
ETKDG + MMFF conformer ensemble, keeping conformers within :data:`ENERGY_WINDOW` of the
lowest. Rigid linkers (ring-ring, C#C, trans C=C) come out near 0; a CH2CH2 or OCH2 spacer
lets the linker fold (anti/gauche) and gives 0.14 to 0.4. Stable means below
:data:`STABLE_STRAIN`, MOFA's threshold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

if TYPE_CHECKING:
    from mofa.genes import Genes

STABLE_STRAIN = 0.1
ENERGY_WINDOW = 10.0  # kcal/mol above the lowest conformer
N_CONFORMERS = 16  # enough that a foldable linker shows both anti and gauche

# Each ring with its attachment at the first atom, the next part at {x} (para), a
# substituent branch at {s} (ortho to an attachment); {r}/{q} are ring-closure digits.
RING_TEMPLATES: dict[str, str] = {
    "benzene": "c{r}c{s}cc({x})cc{r}",
    "pyridine": "c{r}c{s}cc({x})cn{r}",
    "pyrazine": "c{r}c{s}nc({x})cn{r}",
    "pyrimidine": "c{r}nc{s}c({x})cn{r}",
    "naphthalene": "c{r}c{s}cc({x})c{q}ccccc{r}{q}",
    "thiophene": "c{r}c{s}cc({x})s{r}",
    "furan": "c{r}c{s}cc({x})o{r}",
}
SUBSTITUENT_SMILES: dict[str, str] = {
    "H": "",
    "CH3": "(C)",
    "F": "(F)",
    "Cl": "(Cl)",
    "OH": "(O)",
    "NH2": "(N)",
}
# "/C=C/" makes the double bond trans, the straight linker.
SPACER_SMILES: dict[str, str] = {
    "none": "",
    "C#C": "C#C",
    "C=C": "/C=C/",
    "CH2CH2": "CC",
    "OCH2": "OC",
}
COOH = Chem.MolFromSmarts("[CX3](=O)[OX2H1]")
# Elements with framework LJ parameters (mofa.widom); larger linkers cost too much.
LINKER_ELEMENTS = frozenset({"H", "C", "N", "O", "F", "Cl", "S"})
MAX_HEAVY_ATOMS = 40


def linker_smiles(genes: Genes) -> str:
    """Returns the canonical SMILES of HOOC-ring(-spacer-ring)-COOH, or HOOC-ring-spacer-COOH.

    With one ring the spacer sits between the ring and the second carboxyl group, so every
    gene is expressed.
    """
    tail = "C(=O)O"
    if len(genes.rings) == 2:
        tail = _ring(genes.rings[1], genes.substituents[1], 3, tail)
    body = _ring(genes.rings[0], genes.substituents[0], 1, SPACER_SMILES[genes.spacer] + tail)
    return Chem.MolToSmiles(Chem.MolFromSmiles("OC(=O)" + body))


def _ring(ring: str, substituent: str, digit: int, rest: str) -> str:
    return RING_TEMPLATES[ring].format(
        r=digit, q=digit + 1, s=SUBSTITUENT_SMILES[substituent], x=rest
    )


def check_linker(smiles: str) -> tuple[Chem.Mol | None, str]:
    """Parses and sanitises a linker: one fragment with exactly two COOH groups.

    Also rejects elements without framework parameters and more than
    :data:`MAX_HEAVY_ATOMS` heavy atoms (the generator's largest design has 30).

    Args:
        smiles: The linker SMILES.

    Returns:
        The molecule (no hydrogens added) and "", or None and why it was rejected.
    """
    with rdBase.BlockLogs():  # a bad SMILES is an expected outcome, not log noise
        mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None:
        return None, "does not parse or sanitise"
    if len(Chem.GetMolFrags(mol)) != 1:
        return None, "more than one fragment"
    count = len(mol.GetSubstructMatches(COOH))
    if count != 2:
        return None, f"{count} COOH groups, needs 2"
    foreign = {atom.GetSymbol() for atom in mol.GetAtoms()} - LINKER_ELEMENTS
    if foreign:
        return None, f"elements without parameters: {', '.join(sorted(foreign))}"
    if mol.GetNumHeavyAtoms() > MAX_HEAVY_ATOMS:
        return None, f"{mol.GetNumHeavyAtoms()} heavy atoms, at most {MAX_HEAVY_ATOMS}"
    return mol, ""


def design_seed(smiles: str) -> int:
    """Returns a per-design seed in [1, 2**31 - 1] from a hash of the canonical SMILES.

    Never 0: RDKit's randomSeed=0 repeats the same embedding (MOFA's pitfall).
    """
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
    canonical = Chem.MolToSmiles(mol) if mol is not None else smiles
    digest = hashlib.blake2b(canonical.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1) + 1


@dataclass(frozen=True, eq=False)
class Ensemble:
    """An MMFF-optimised conformer ensemble of a linker.

    Attributes:
        mol: The molecule with hydrogens and its conformers.
        seed: The ETKDG random seed used.
        energies: MMFF energy of each conformer (kcal/mol).
        distances: Anchor-anchor distance of each conformer (Angstrom).
        kept: Which conformers are within the energy window.
        anchors: Atom indices of the two carboxyl carbons.
        strain: ``(max - min) / mean`` of the kept distances.
        best: Index (into the arrays) of the lowest-energy conformer.
        conformer_ids: RDKit conformer id of each array entry.
    """

    mol: Chem.Mol
    seed: int
    energies: np.ndarray
    distances: np.ndarray
    kept: np.ndarray
    anchors: tuple[int, int]
    strain: float
    best: int
    conformer_ids: tuple[int, ...]

    @property
    def anchor_distance(self) -> float:
        """Anchor-anchor distance of the lowest-energy conformer (Angstrom)."""
        return float(self.distances[self.best])

    def best_positions(self) -> np.ndarray:
        """Coordinates (Angstrom) of the lowest-energy conformer, one row per atom."""
        return np.asarray(self.mol.GetConformer(self.conformer_ids[self.best]).GetPositions())


def conformer_ensemble(
    mol: Chem.Mol,
    *,
    n_conformers: int = N_CONFORMERS,
    window: float = ENERGY_WINDOW,
    seed: int | None = None,
) -> Ensemble | None:
    """Embeds (ETKDGv3) and MMFF-optimises conformers, then measures the strain.

    Args:
        mol: A linker accepted by :func:`check_linker`.
        n_conformers: Conformers to embed.
        window: Energy window above the lowest conformer (kcal/mol).
        seed: ETKDG seed; by default :func:`design_seed` of the SMILES (must not be 0).

    Returns:
        The ensemble, or None if embedding or MMFF typing fails.

    Raises:
        ValueError: If seed is 0.
    """
    seed = design_seed(Chem.MolToSmiles(mol)) if seed is None else seed
    if seed == 0:
        raise ValueError("seed 0 makes RDKit repeat one conformer; use design_seed")
    molh = Chem.AddHs(mol)
    params = rdDistGeom.ETKDGv3()
    # The rdkit stubs type these int properties as EmbedParameters.
    params.randomSeed = seed  # type: ignore[assignment]
    params.numThreads = 1  # type: ignore[assignment]  # one core per worker
    with rdBase.BlockLogs():
        ids = list(rdDistGeom.EmbedMultipleConfs(molh, n_conformers, params))
        if not ids or not rdForceFieldHelpers.MMFFHasAllMoleculeParams(molh):
            return None
        results = rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(molh, numThreads=1, maxIters=500)
    energies = np.array([energy for _, energy in results])
    first, second = (match[0] for match in molh.GetSubstructMatches(COOH))
    positions = np.array([molh.GetConformer(i).GetPositions() for i in ids])
    distances = np.linalg.norm(positions[:, first] - positions[:, second], axis=1)
    kept = energies <= energies.min() + window
    spread = distances[kept].max() - distances[kept].min()
    return Ensemble(
        mol=molh,
        seed=seed,
        energies=energies,
        distances=distances,
        kept=kept,
        anchors=(first, second),
        strain=float(spread / distances[kept].mean()),
        best=int(np.argmin(energies)),
        conformer_ids=tuple(ids),
    )
