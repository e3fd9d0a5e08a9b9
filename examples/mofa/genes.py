"""The linker "gene" space and the generative model over it (the stand-in for DiffLinker).

A design is a :class:`Genes`: one or two para-connected ring units, one substituent per
ring, a spacer and a pillar. :func:`mofa.chemistry.linker_smiles` maps it to a
dicarboxylic-acid linker. :class:`LinkerGenerator` is an independent categorical
distribution per gene position, retrained by a cross-entropy update toward the genes of
the best stable results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from mofa.chemistry import linker_smiles

# Para-connectable aromatic units: the four 6-rings keep the anchors collinear, the
# naphthalene (1,4) is a wider rigid unit, thiophene/furan (2,5) bend the linker a little.
RINGS: tuple[str, ...] = (
    "benzene",
    "pyridine",
    "pyrazine",
    "pyrimidine",
    "naphthalene",
    "thiophene",
    "furan",
)
SUBSTITUENTS: tuple[str, ...] = ("H", "CH3", "F", "Cl", "OH", "NH2")
# Between the two rings, or between a single ring and its second carboxyl group.
SPACERS: tuple[str, ...] = ("none", "C#C", "C=C", "CH2CH2", "OCH2")
PILLARS: tuple[str, ...] = ("dabco", "bipyridine", "pyrazine")
MAX_RINGS = 2

# Gene positions of the generator and their categories; ring1/sub1 only count for 2 rings.
POSITIONS: dict[str, tuple[str, ...]] = {
    "n_rings": tuple(str(n) for n in range(1, MAX_RINGS + 1)),
    "ring0": RINGS,
    "ring1": RINGS,
    "sub0": SUBSTITUENTS,
    "sub1": SUBSTITUENTS,
    "spacer": SPACERS,
    "pillar": PILLARS,
}


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r} (allowed: {', '.join(allowed)})")
    return value


class Genes(BaseModel):
    """One linker design plus its pillar.

    Attributes:
        rings: One or two ring units from :data:`RINGS`, connected para.
        substituents: One substituent per ring from :data:`SUBSTITUENTS`.
        spacer: The spacer from :data:`SPACERS`.
        pillar: The pillar from :data:`PILLARS`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    rings: list[str]
    substituents: list[str]
    spacer: str
    pillar: str

    @field_validator("rings")
    @classmethod
    def _rings(cls, rings: list[str]) -> list[str]:
        if not 1 <= len(rings) <= MAX_RINGS:
            raise ValueError(f"needs 1 to {MAX_RINGS} rings, got {len(rings)}")
        return [_one_of(ring, RINGS, "ring") for ring in rings]

    @field_validator("substituents")
    @classmethod
    def _substituents(cls, substituents: list[str]) -> list[str]:
        return [_one_of(sub, SUBSTITUENTS, "substituent") for sub in substituents]

    @field_validator("spacer")
    @classmethod
    def _spacer(cls, spacer: str) -> str:
        return _one_of(spacer, SPACERS, "spacer")

    @field_validator("pillar")
    @classmethod
    def _pillar(cls, pillar: str) -> str:
        return _one_of(pillar, PILLARS, "pillar")

    @model_validator(mode="after")
    def _one_substituent_per_ring(self) -> Genes:
        if len(self.substituents) != len(self.rings):
            raise ValueError(
                f"substituents: needs one per ring ({len(self.rings)}), "
                f"got {len(self.substituents)}"
            )
        return self

    def to_payload(self) -> dict[str, Any]:
        """Returns the genes as a msgpack-encodable dict (str and list of str only)."""
        return {
            "rings": list(self.rings),
            "substituents": list(self.substituents),
            "spacer": self.spacer,
            "pillar": self.pillar,
        }

    @classmethod
    def from_payload(cls, payload: Any) -> Genes:
        """Parses the output of :meth:`to_payload`.

        Args:
            payload: A dict with the keys rings, substituents, spacer and pillar.

        Returns:
            The genes.

        Raises:
            ValueError: If the payload is not a dict, misses or adds a key, or holds a value
                of the wrong type or outside the vocabulary; the message names the key.
        """
        if not isinstance(payload, Mapping):
            raise ValueError(f"genes payload must be a dict, got {type(payload).__name__}")
        try:
            return cls.model_validate(dict(payload))
        except ValidationError as error:
            first = error.errors()[0]
            key = ".".join(str(part) for part in first["loc"]) or "genes"
            raise ValueError(f"genes payload key {key!r}: {first['msg']}") from None


class Example(Protocol):
    """A scored candidate as the generator's caller passes it to :meth:`LinkerGenerator.retrain`."""

    @property
    def payload(self) -> Mapping[str, Any]:
        """The candidate payload ``{"genes": ..., "smiles": ...}``."""
        ...

    @property
    def metrics(self) -> Mapping[str, float]:
        """Its metrics (uptake, strain...)."""
        ...

    @property
    def flags(self) -> Mapping[str, bool]:
        """Its flags (valid, assembled, stable)."""
        ...


def _apply_floor(probs: np.ndarray, floor: float) -> np.ndarray:
    """Returns probs with every entry >= floor, the rest rescaled so they sum to one."""
    probs = probs / probs.sum()
    fixed = np.zeros(probs.shape, dtype=bool)
    # Raising one entry to the floor shrinks the others, which can push another below it.
    while True:
        low = (probs < floor) & ~fixed
        if not low.any():
            return probs
        fixed |= low
        free = probs[~fixed].sum()
        probs = np.where(fixed, floor, probs * (1.0 - floor * fixed.sum()) / free)


class LinkerGenerator:
    """A categorical distribution per gene position, sampled with a seeded numpy Generator.

    Args:
        seed: Seed of the sampling stream.
        floor: Minimum probability of every category (keeps exploring after retraining).
        learning_rate: Weight of the examples' gene frequencies in a retraining update.

    Raises:
        ValueError: If the floor is negative or too high for the largest vocabulary, or the
            learning rate is outside (0, 1].
    """

    def __init__(self, seed: int, *, floor: float = 0.05, learning_rate: float = 0.5) -> None:
        widest = max(len(categories) for categories in POSITIONS.values())
        if not 0.0 <= floor <= 1.0 / widest:
            raise ValueError(f"floor must be in [0, {1.0 / widest:.3f}], got {floor}")
        if not 0.0 < learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {learning_rate}")
        self.seed = seed
        self.floor = floor
        self.learning_rate = learning_rate
        self.version = 0
        self.rng = np.random.default_rng(seed)
        self.probs: dict[str, np.ndarray] = {
            position: np.full(len(categories), 1.0 / len(categories))
            for position, categories in POSITIONS.items()
        }

    def probabilities(self, position: str) -> dict[str, float]:
        """Returns the current probability of each category at one gene position."""
        return dict(zip(POSITIONS[position], self.probs[position].tolist(), strict=True))

    def _draw(self, position: str) -> str:
        return POSITIONS[position][
            int(self.rng.choice(len(POSITIONS[position]), p=self.probs[position]))
        ]

    def sample_genes(self, n: int) -> list[Genes]:
        """Draws n designs (every position is drawn, used or not, to keep the stream aligned)."""
        designs = []
        for _ in range(n):
            draws = {position: self._draw(position) for position in POSITIONS}
            count = int(draws["n_rings"])
            designs.append(
                Genes(
                    rings=[draws[f"ring{i}"] for i in range(count)],
                    substituents=[draws[f"sub{i}"] for i in range(count)],
                    spacer=draws["spacer"],
                    pillar=draws["pillar"],
                )
            )
        return designs

    def sample(self, n: int) -> list[dict[str, Any]]:
        """Draws n candidate payloads ``{"genes": Genes.to_payload(), "smiles": <linker>}``."""
        return [
            {"genes": genes.to_payload(), "smiles": linker_smiles(genes)}
            for genes in self.sample_genes(n)
        ]

    def retrain(self, examples: Sequence[Example]) -> int:
        """Moves each position's distribution toward the examples' gene frequencies.

        The update is ``p <- (1 - lr) p + lr q`` with q the examples' (equally weighted)
        frequencies at that position, then the floor. A position no example uses (ring1
        when all examples have one ring) is left as it is.

        Args:
            examples: The best stable results, best first, with ``.payload["genes"]``.

        Returns:
            The new version (bumped even with no examples).

        Raises:
            ValueError: If an example's genes payload is malformed.
        """
        counts = {position: np.zeros(len(cats)) for position, cats in POSITIONS.items()}
        for example in examples:
            genes = Genes.from_payload(example.payload["genes"])
            seen = {
                "n_rings": str(len(genes.rings)),
                "spacer": genes.spacer,
                "pillar": genes.pillar,
            }
            for i, (ring, sub) in enumerate(zip(genes.rings, genes.substituents, strict=True)):
                seen[f"ring{i}"], seen[f"sub{i}"] = ring, sub
            for position, value in seen.items():
                counts[position][POSITIONS[position].index(value)] += 1.0
        for position, count in counts.items():
            if count.sum() > 0:
                target = count / count.sum()
                rate = self.learning_rate
                mixed = (1.0 - rate) * self.probs[position] + rate * target
                self.probs[position] = _apply_floor(mixed, self.floor)
        self.version += 1
        return self.version

    def state(self) -> dict[str, Any]:
        """Returns a msgpack-encodable checkpoint (probabilities, version, sampling stream)."""
        rng_state = self.rng.bit_generator.state
        return {
            "seed": self.seed,
            "floor": self.floor,
            "learning_rate": self.learning_rate,
            "version": self.version,
            "probs": {position: probs.tolist() for position, probs in self.probs.items()},
            # PCG64's 128-bit integers do not fit msgpack's 64-bit ones.
            "rng": {
                "bit_generator": rng_state["bit_generator"],
                "state": str(rng_state["state"]["state"]),
                "inc": str(rng_state["state"]["inc"]),
                "has_uint32": int(rng_state["has_uint32"]),
                "uinteger": int(rng_state["uinteger"]),
            },
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restores a checkpoint from :meth:`state`.

        Raises:
            ValueError: If the checkpoint misses a key or its probabilities do not fit the
                gene positions.
        """
        for key in ("seed", "floor", "learning_rate", "version", "probs", "rng"):
            if key not in state:
                raise ValueError(f"generator state is missing key {key!r}")
        probs: dict[str, np.ndarray] = {}
        for position, categories in POSITIONS.items():
            values = np.asarray(state["probs"].get(position, []), dtype=float)
            if values.shape != (len(categories),):
                raise ValueError(f"generator state key 'probs.{position}' has the wrong length")
            probs[position] = values
        rng = state["rng"]
        rng_state = {
            "bit_generator": rng["bit_generator"],
            "state": {"state": int(rng["state"]), "inc": int(rng["inc"])},
            "has_uint32": int(rng["has_uint32"]),
            "uinteger": int(rng["uinteger"]),
        }
        self.probs, self.version, self.seed = probs, int(state["version"]), int(state["seed"])
        self.floor, self.learning_rate = float(state["floor"]), float(state["learning_rate"])
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = rng_state
