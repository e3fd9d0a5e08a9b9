"""Widom insertion of a one-site Lennard-Jones CO2: Henry coefficient and low-pressure uptake.

The stand-in for MOFA's GCMC. The framework is rigid, its atoms carry UFF
Lennard-Jones parameters, CO2 is one LJ site (Hirschfelder's 195.2 K / 3.941 A, the
classic single-site fit), pairs are Lorentz-Berthelot mixed and truncated at 12 A
(no shift, no tail correction). Energies use the minimum image on a supercell of whole
unit cells at least twice the cutoff long in every direction, so every pair within the
cutoff is counted exactly once. In the Henry regime

    K_H = <exp(-U / kT)> / (R T rho_framework)        [mol / (kg Pa)]

and the uptake is K_H x P.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mofa.assembly import Framework

# UFF (Rappe et al. 1992): x_i (A) and D_i (kcal/mol); sigma = x / 2**(1/6),
# epsilon = D in kelvin (1 kcal/mol = 503.22 K).
_UFF: dict[str, tuple[float, float]] = {
    "H": (2.886, 0.044),
    "C": (3.851, 0.105),
    "N": (3.660, 0.069),
    "O": (3.500, 0.060),
    "F": (3.364, 0.050),
    "Cl": (3.947, 0.227),
    "S": (4.035, 0.274),
    "Zn": (2.763, 0.124),
}
UFF_LJ: dict[str, tuple[float, float]] = {
    element: (x / 2 ** (1 / 6), d * 503.22) for element, (x, d) in _UFF.items()
}
MASSES: dict[str, float] = {
    "H": 1.008,
    "C": 12.011,
    "N": 14.007,
    "O": 15.999,
    "F": 18.998,
    "Cl": 35.45,
    "S": 32.06,
    "Zn": 65.38,
}
CO2_SIGMA = 3.941  # Angstrom
CO2_EPSILON = 195.2  # kelvin
CUTOFF = 12.0
TEMPERATURE = 298.0
PRESSURE = 1.0e4  # Pa (0.1 bar)
N_INSERTIONS = 2000
GAS_CONSTANT = 8.314462618  # J / (mol K)
_AMU_PER_A3_TO_KG_PER_M3 = 1.66053907e-27 / 1e-30
_CHUNK = 128  # insertion points per vectorised block (bounds memory)


@dataclass(frozen=True)
class WidomResult:
    """The outcome of a Widom run.

    Attributes:
        uptake: CO2 uptake at the pressure (mol/kg).
        henry: Henry coefficient (mol / (kg Pa)).
        boltzmann: Mean Boltzmann factor <exp(-U/kT)> over the insertions.
        energy: Boltzmann-weighted mean CO2-framework energy (kJ/mol), 0 if all overlap.
        density: Framework density (kg/m^3).
        n_insertions: Insertion points used.
    """

    uptake: float
    henry: float
    boltzmann: float
    energy: float
    density: float
    n_insertions: int


def framework_density(framework: Framework) -> float:
    """Returns the framework density (kg/m^3)."""
    mass = sum(MASSES[symbol] for symbol in framework.symbols)
    return mass / framework.volume * _AMU_PER_A3_TO_KG_PER_M3


def insertion_energies(
    framework: Framework,
    points: np.ndarray,
    *,
    cutoff: float = CUTOFF,
    epsilon_scale: float = 1.0,
) -> np.ndarray:
    """Returns the CO2-framework energy (kelvin) at each point.

    Args:
        framework: An orthorhombic framework.
        points: Cartesian insertion points (Angstrom), shape (n, 3).
        cutoff: LJ cutoff (Angstrom).
        epsilon_scale: Factor on every framework epsilon (a deeper or shallower well).

    Raises:
        ValueError: If the cell is not orthorhombic or an element has no parameters.
    """
    cell = framework.cell
    if not np.allclose(cell, np.diag(np.diag(cell))):
        raise ValueError("insertion_energies needs an orthorhombic cell")
    missing = set(framework.symbols) - set(UFF_LJ)
    if missing:
        raise ValueError(f"no UFF parameters for {sorted(missing)}")
    lengths = np.diag(cell)
    reps = np.ceil(2 * cutoff / lengths).astype(int)
    shifts = np.stack(np.meshgrid(*(np.arange(n) for n in reps), indexing="ij"), -1)
    shifts = shifts.reshape(-1, 3) * lengths
    atoms = (framework.positions[None] + shifts[:, None]).reshape(-1, 3)
    box = lengths * reps
    sigma = np.array([UFF_LJ[s][0] for s in framework.symbols])
    epsilon = np.array([UFF_LJ[s][1] for s in framework.symbols]) * epsilon_scale
    sigma2 = np.tile(((sigma + CO2_SIGMA) / 2) ** 2, len(shifts))
    four_eps = np.tile(4 * np.sqrt(epsilon * CO2_EPSILON), len(shifts))
    energies = np.empty(len(points))
    for start in range(0, len(points), _CHUNK):
        delta = atoms[None] - points[start : start + _CHUNK, None]
        delta -= box * np.rint(delta / box)  # minimum image on the supercell
        r2 = np.maximum(np.einsum("ijk,ijk->ij", delta, delta), 1e-2)  # no 0/0 on an atom
        inv6 = (sigma2 / r2) ** 3
        pair = np.where(r2 < cutoff**2, four_eps * (inv6 * inv6 - inv6), 0.0)
        energies[start : start + _CHUNK] = pair.sum(axis=1)
    return energies


def widom(
    framework: Framework,
    *,
    seed: int,
    n_insertions: int = N_INSERTIONS,
    temperature: float = TEMPERATURE,
    pressure: float = PRESSURE,
    cutoff: float = CUTOFF,
    epsilon_scale: float = 1.0,
) -> WidomResult:
    """Estimates the Henry coefficient and uptake by uniform random insertions.

    Args:
        framework: The assembled framework.
        seed: Seed of the insertion points (per design, so runs repeat).
        n_insertions: Insertion points in the unit cell.
        temperature: Kelvin.
        pressure: Pa.
        cutoff: LJ cutoff (Angstrom).
        epsilon_scale: Factor on every framework epsilon.

    Returns:
        The uptake, Henry coefficient and their ingredients.
    """
    rng = np.random.default_rng(seed)
    points = rng.random((n_insertions, 3)) @ framework.cell
    energies = insertion_energies(framework, points, cutoff=cutoff, epsilon_scale=epsilon_scale)
    # Overlaps give exp(-huge) = 0; clip so the exponent never overflows either way.
    weights = np.exp(-np.clip(energies / temperature, -700.0, 700.0))
    boltzmann = float(weights.mean())
    energy = float((weights * energies).sum() / weights.sum()) if weights.sum() > 0 else 0.0
    density = framework_density(framework)
    henry = boltzmann / (GAS_CONSTANT * temperature * density)
    return WidomResult(
        uptake=henry * pressure,
        henry=henry,
        boltzmann=boltzmann,
        energy=energy * GAS_CONSTANT / 1000.0,
        density=density,
        n_insertions=n_insertions,
    )
