"""The evaluation the analysis agent ships to endpoints: validate, strain, assemble, Widom.

:func:`evaluate` is a top-level function of bytes to a plain dict so Parsl (or any
process pool) can pickle it by reference and run it anywhere the package imports. Bad
chemistry is an outcome (flags false), never an exception; only a malformed payload
raises.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgpack

from mofa.assembly import MIN_CLEARANCE, Framework, assemble
from mofa.chemistry import STABLE_STRAIN, check_linker, conformer_ensemble, design_seed
from mofa.genes import Genes
from mofa.widom import N_INSERTIONS, widom


def decode(payload: bytes) -> dict[str, Any]:
    """Unpacks a msgpack candidate payload.

    Raises:
        ValueError: If it is not msgpack of a dict.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise ValueError(f"payload must be msgpack bytes, got {type(payload).__name__}")
    try:
        decoded = msgpack.unpackb(payload, raw=False)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise ValueError(f"payload is not msgpack: {error}") from None
    if not isinstance(decoded, dict):
        raise ValueError(f"payload must be a msgpack dict, got {type(decoded).__name__}")
    return decoded


def parse(candidate: Mapping[str, Any]) -> tuple[Genes, str]:
    """Returns the genes and the linker SMILES of a candidate dict.

    Raises:
        ValueError: If a key is missing or the genes are malformed (the message names it).
    """
    for key in ("genes", "smiles"):
        if key not in candidate:
            raise ValueError(f"payload is missing key {key!r}")
    smiles = candidate["smiles"]
    if not isinstance(smiles, str):
        raise ValueError(f"payload key 'smiles' must be a string, got {type(smiles).__name__}")
    return Genes.from_payload(candidate["genes"]), smiles


def _screen(
    candidate: Mapping[str, Any],
) -> tuple[dict[str, float], dict[str, bool], Framework | None]:
    """Runs validation, strain and assembly; returns metrics, flags and the framework."""
    genes, smiles = parse(candidate)
    metrics: dict[str, float] = {}
    flags = {"valid": False, "assembled": False, "stable": False}
    mol, _ = check_linker(smiles)
    if mol is None:
        return metrics, flags, None
    flags["valid"] = True
    ensemble = conformer_ensemble(mol)
    if ensemble is None:
        return metrics, flags, None
    metrics.update(
        strain=ensemble.strain,
        anchor_distance=ensemble.anchor_distance,
        n_conformers=float(int(ensemble.kept.sum())),
    )
    flags["stable"] = ensemble.strain < STABLE_STRAIN
    framework = assemble(ensemble, smiles, genes.pillar)
    metrics["clearance"] = framework.clearance
    if framework.clearance < MIN_CLEARANCE:
        return metrics, flags, None
    flags["assembled"] = True
    return metrics, flags, framework


def build_framework(payload: Mapping[str, Any]) -> Framework | None:
    """Assembles a candidate's framework (for structure files of the top candidates).

    Args:
        payload: The candidate dict ``{"genes": ..., "smiles": ...}`` (decoded).

    Returns:
        The framework, or None if the linker is invalid or does not assemble.

    Raises:
        ValueError: If the payload is malformed.
    """
    return _screen(payload)[2]


def evaluate(payload: bytes, *, n_insertions: int = N_INSERTIONS) -> dict[str, Any]:
    """Scores one candidate.

    Args:
        payload: msgpack of ``{"genes": Genes.to_payload(), "smiles": <linker>}``.
        n_insertions: Widom insertion points.

    Returns:
        ``{"metrics": {...}, "flags": {...}}``. Metrics: ``uptake`` (mol/kg, 298 K,
        0.1 bar), ``henry`` (mol/(kg Pa)), ``energy`` (kJ/mol), ``density`` (kg/m^3),
        ``n_atoms``, ``strain``, ``anchor_distance``, ``clearance``, ``seconds``; the
        Widom ones only for assembled frameworks, strain onward only for valid linkers.
        Flags: ``valid``, ``assembled``, ``stable`` (strain < 0.1).

    Raises:
        ValueError: If the payload is not msgpack of a candidate dict.
    """
    start = time.perf_counter()
    metrics, flags, framework = _screen(decode(payload))
    if framework is not None:
        result = widom(framework, seed=design_seed(framework.linker), n_insertions=n_insertions)
        metrics.update(
            uptake=result.uptake,
            henry=result.henry,
            energy=result.energy,
            density=result.density,
            n_atoms=float(framework.n_atoms),
        )
    metrics["seconds"] = time.perf_counter() - start
    return {"metrics": metrics, "flags": flags}
