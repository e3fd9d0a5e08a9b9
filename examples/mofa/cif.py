"""Writes an assembled framework as a minimal P1 CIF (cell, fractional coordinates)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from mofa.assembly import Framework


def _angle(cell: np.ndarray, i: int, j: int) -> float:
    cosine = cell[i] @ cell[j] / (np.linalg.norm(cell[i]) * np.linalg.norm(cell[j]))
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def cif_text(framework: Framework, *, name: str) -> str:
    """Returns the CIF text of a framework.

    Args:
        framework: The assembled framework.
        name: The data block name (non-alphanumerics become underscores).
    """
    block = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "framework"
    a, b, c = framework.lengths
    fractional = framework.positions @ np.linalg.inv(framework.cell)
    lines = [
        f"data_{block}",
        f"# linker {framework.linker}; pillar {framework.pillar}; Zn paddle-wheel, pcu",
        "_symmetry_space_group_name_H-M    'P 1'",
        "_symmetry_Int_Tables_number       1",
        f"_cell_length_a                    {a:.4f}",
        f"_cell_length_b                    {b:.4f}",
        f"_cell_length_c                    {c:.4f}",
        f"_cell_angle_alpha                 {_angle(framework.cell, 1, 2):.4f}",
        f"_cell_angle_beta                  {_angle(framework.cell, 0, 2):.4f}",
        f"_cell_angle_gamma                 {_angle(framework.cell, 0, 1):.4f}",
        f"_cell_volume                      {framework.volume:.4f}",
        "loop_",
        "_symmetry_equiv_pos_as_xyz",
        "  'x, y, z'",
        "loop_",
        "_atom_site_label",
        "_atom_site_type_symbol",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
    ]
    counts: Counter[str] = Counter()
    for symbol, (x, y, z) in zip(framework.symbols, fractional, strict=True):
        counts[symbol] += 1
        lines.append(f"  {symbol}{counts[symbol]} {symbol} {x:.6f} {y:.6f} {z:.6f}")
    return "\n".join(lines) + "\n"


def write_cif(framework: Framework, path: Path, *, name: str) -> None:
    """Writes the framework to path as a P1 CIF.

    Args:
        framework: The assembled framework.
        path: Destination file (its directory must exist).
        name: The CIF data block name.
    """
    path.write_text(cif_text(framework, name=name))
