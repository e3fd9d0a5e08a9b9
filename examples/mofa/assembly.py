"""Pillared Zn paddle-wheel frameworks in the pcu topology (the DMOF-1 family).

One node per cell at the origin: a Zn2 paddle-wheel (Zn-Zn along z) whose four
carboxylates point along +-x and +-y. Linkers run along x and y, the pillar along z and
binds the Zn atoms axially. The cell is orthorhombic: a = b = anchor-anchor distance +
2 x (node centre to carboxyl carbon), c = 2 x (Zn-Zn / 2 + Zn-N) + pillar N-N distance.
Each linker and the pillar are rotated about their axis to maximise the clearance to
everything else; a framework whose clearance stays under :data:`MIN_CLEARANCE` is rejected.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers
from scipy.spatial import cKDTree

from mofa.chemistry import COOH, Ensemble, design_seed

ZN_ZN = 2.90  # Angstrom, paddle-wheel Zn-Zn
ZN_O = 2.03
C_O = 1.26  # carboxylate C-O
O_C_O = math.radians(125.0)
ZN_N = 2.05  # axial Zn-N to the pillar
MIN_CLEARANCE = 1.5  # closest allowed non-bonded contact between building blocks
N_ANGLES = 24  # rotation grid about each axis (15 degree steps)

PILLAR_SMILES: dict[str, str] = {
    "dabco": "C1CN2CCN1CC2",
    "bipyridine": "c1cc(-c2ccncc2)ccn1",  # 4,4'-bipyridine
    "pyrazine": "c1cnccn1",
}

# Carboxylate O relative to its carbon: back toward the node and up/down along z.
_O_BACK = C_O * math.cos(O_C_O / 2)
_O_UP = C_O * math.sin(O_C_O / 2)
# Node centre to carboxyl carbon, from the Zn-O bond (2.59 A, so DMOF-1 gets a = 10.9 A).
NODE_TO_ANCHOR = _O_BACK + math.sqrt(ZN_O**2 - (ZN_ZN / 2 - _O_UP) ** 2)
_SHIFTS = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float)


@dataclass(frozen=True, eq=False)
class Framework:
    """One unit cell of an assembled framework.

    Attributes:
        symbols: Element of each atom.
        positions: Cartesian coordinates (Angstrom), shape (n, 3), wrapped into the cell.
        cell: Lattice vectors as rows (Angstrom), shape (3, 3); orthorhombic here.
        linker: The linker SMILES.
        pillar: The pillar name.
        clearance: Closest non-bonded contact between building blocks (Angstrom).
    """

    symbols: tuple[str, ...]
    positions: np.ndarray
    cell: np.ndarray
    linker: str
    pillar: str
    clearance: float

    @property
    def n_atoms(self) -> int:
        """Atoms in the unit cell."""
        return len(self.symbols)

    @property
    def lengths(self) -> tuple[float, float, float]:
        """Cell lengths a, b, c (Angstrom)."""
        a, b, c = np.linalg.norm(self.cell, axis=1)
        return float(a), float(b), float(c)

    @property
    def volume(self) -> float:
        """Cell volume (cubic Angstrom)."""
        return float(abs(np.linalg.det(self.cell)))


@dataclass(frozen=True)
class _Block:
    """Atoms of one building block in local coordinates (its axis along x, or z for pillars)."""

    symbols: tuple[str, ...]
    positions: np.ndarray
    checked: np.ndarray  # atoms whose contacts count (not the bonded anchors)


def _rotation(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


def _frame(origin: np.ndarray, target: np.ndarray, points: np.ndarray, axis: int) -> np.ndarray:
    """Moves points so origin goes to 0 and target lies on the +axis direction."""
    e1 = (target - origin) / np.linalg.norm(target - origin)
    helper = np.array([1.0, 0.0, 0.0]) if abs(e1[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e2 = np.cross(e1, helper)
    e2 /= np.linalg.norm(e2)
    e3 = np.cross(e1, e2)
    basis = np.roll(np.stack([e1, e2, e3]), axis, axis=0)  # right-handed for any axis
    return np.asarray((points - origin) @ basis.T)


def linker_block(ensemble: Ensemble) -> _Block:
    """Returns the linker without its COOH oxygens and acid H, anchors on +x from 0."""
    mol = ensemble.mol
    dropped: set[int] = set()
    for _, carbonyl, hydroxyl in mol.GetSubstructMatches(COOH):
        dropped |= {carbonyl, hydroxyl}
        hydroxyl_h = mol.GetAtomWithIdx(hydroxyl).GetNeighbors()
        dropped |= {n.GetIdx() for n in hydroxyl_h if n.GetAtomicNum() == 1}
    keep = [i for i in range(mol.GetNumAtoms()) if i not in dropped]
    positions = ensemble.best_positions()
    first, second = ensemble.anchors
    local = _frame(positions[first], positions[second], positions[keep], axis=0)
    return _Block(
        symbols=tuple(mol.GetAtomWithIdx(i).GetSymbol() for i in keep),
        positions=local,
        checked=np.array([i not in ensemble.anchors for i in keep]),
    )


@functools.cache
def pillar_block(pillar: str) -> _Block:
    """Returns the pillar (with H) with its two binding N atoms on +z from 0."""
    mol = Chem.AddHs(Chem.MolFromSmiles(PILLAR_SMILES[pillar]))
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = design_seed(PILLAR_SMILES[pillar])  # type: ignore[assignment]  # stubs
    with rdBase.BlockLogs():
        rdDistGeom.EmbedMolecule(mol, params)
        rdForceFieldHelpers.MMFFOptimizeMolecule(mol, maxIters=500)
    positions = np.asarray(mol.GetConformer().GetPositions())
    first, second = (a.GetIdx() for a in mol.GetAtoms() if a.GetSymbol() == "N")
    return _Block(
        symbols=tuple(a.GetSymbol() for a in mol.GetAtoms()),
        positions=_frame(positions[first], positions[second], positions, axis=2),
        checked=np.array([a.GetSymbol() != "N" for a in mol.GetAtoms()]),
    )


def _node() -> tuple[list[str], np.ndarray]:
    half = ZN_ZN / 2
    atoms = [("Zn", (0.0, 0.0, half)), ("Zn", (0.0, 0.0, -half))]
    back = NODE_TO_ANCHOR - _O_BACK
    for ux, uy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        atoms += [("O", (ux * back, uy * back, dz)) for dz in (_O_UP, -_O_UP)]
    return [s for s, _ in atoms], np.array([p for _, p in atoms])


def _clearance(moving: np.ndarray, others: cKDTree, lengths: np.ndarray) -> float:
    """Closest contact of moving atoms to the others and to their own periodic images."""
    if not len(moving):
        return math.inf
    nearest = float(others.query(moving)[0].min()) if others.n else math.inf
    images = moving[None, None, :, :] + (_SHIFTS[_SHIFTS.any(axis=1)] * lengths)[:, None, None, :]
    own = float(np.linalg.norm(moving[None, :, None, :] - images, axis=-1).min())
    return min(nearest, own)


def assemble(ensemble: Ensemble, linker: str, pillar: str, *, passes: int = 2) -> Framework:
    """Builds the unit cell and rotates the linkers and the pillar for clearance.

    Args:
        ensemble: The linker's conformers (the lowest-energy one is used).
        linker: The linker SMILES (recorded on the framework).
        pillar: A key of :data:`PILLAR_SMILES`.
        passes: Rounds of one-block-at-a-time rotation search.

    Returns:
        The framework; ``clearance < MIN_CLEARANCE`` means it failed to assemble.
    """
    body, post = linker_block(ensemble), pillar_block(pillar)
    a = ensemble.anchor_distance + 2 * NODE_TO_ANCHOR
    post_length = float(post.positions[~post.checked][:, 2].max())
    c = 2 * (ZN_ZN / 2 + ZN_N) + post_length
    lengths = np.array([a, a, c])
    node_symbols, node_positions = _node()
    to_y = _rotation(2, math.pi / 2)

    def place(block: int, angle: float) -> np.ndarray:
        # Blocks: 0 the node (fixed), 1 the x linker, 2 the y linker, 3 the pillar.
        if block == 0:
            moved = node_positions
        elif block == 1:
            moved = body.positions @ _rotation(0, angle).T + [NODE_TO_ANCHOR, 0.0, 0.0]
        elif block == 2:
            moved = body.positions @ (to_y @ _rotation(0, angle)).T + [0.0, NODE_TO_ANCHOR, 0.0]
        else:
            moved = post.positions @ _rotation(2, angle).T + [0.0, 0.0, ZN_ZN / 2 + ZN_N]
        return np.asarray(moved)

    masks = (np.ones(len(node_symbols), dtype=bool), body.checked, body.checked, post.checked)
    angles = [0.0] * 4
    grid = [2 * math.pi * k / N_ANGLES for k in range(N_ANGLES)]

    def block_clearance(block: int, candidates: list[float]) -> list[float]:
        rest = [place(other, angles[other])[masks[other]] for other in range(4) if other != block]
        tree = cKDTree((np.concatenate(rest)[None] + (_SHIFTS * lengths)[:, None]).reshape(-1, 3))
        return [_clearance(place(block, t)[masks[block]], tree, lengths) for t in candidates]

    for _ in range(passes):
        for block in (1, 2, 3):
            scores = block_clearance(block, grid)
            angles[block] = grid[int(np.argmax(scores))]
    # The node's own periodic images count too, so this is finite even for a bare linker.
    clearance = min(block_clearance(block, [angles[block]])[0] for block in range(4))
    positions = np.concatenate([place(block, angles[block]) for block in range(4)])
    return Framework(
        symbols=tuple(node_symbols) + body.symbols * 2 + post.symbols,
        positions=positions % lengths,  # wrap into the cell
        cell=np.diag(lengths),
        linker=linker,
        pillar=pillar,
        clearance=clearance,
    )
