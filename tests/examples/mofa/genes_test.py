"""The gene space and the linker generator: payloads, sampling, retraining, checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
from mofa.chemistry import check_linker, linker_smiles
from mofa.genes import PILLARS, POSITIONS, RINGS, SPACERS, Genes, LinkerGenerator


@dataclass(frozen=True)
class Scored:
    payload: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)


def genes(**changes: Any) -> Genes:
    base: dict[str, Any] = {
        "rings": ["benzene", "pyridine"],
        "substituents": ["H", "F"],
        "spacer": "C#C",
        "pillar": "dabco",
    }
    return Genes.from_payload(base | changes)


def test_payload_round_trip_through_msgpack() -> None:
    design = genes()
    payload = msgpack.unpackb(msgpack.packb(design.to_payload()))
    assert Genes.from_payload(payload) == design


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"rings": ["cubane"]}, "rings"),
        ({"rings": ["benzene"] * 3, "substituents": ["H"] * 3}, "rings"),
        ({"substituents": ["H", "Br"]}, "substituents"),
        ({"substituents": ["H"]}, "substituents"),
        ({"spacer": "CH2"}, "spacer"),
        ({"pillar": 3}, "pillar"),
        ({"extra": 1}, "extra"),
    ],
)
def test_from_payload_names_the_bad_key(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        genes(**changes)


def test_from_payload_names_a_missing_key_and_rejects_non_dicts() -> None:
    payload = genes().to_payload()
    del payload["pillar"]
    with pytest.raises(ValueError, match="pillar"):
        Genes.from_payload(payload)
    with pytest.raises(ValueError, match="dict"):
        Genes.from_payload(["benzene"])


def test_sample_is_deterministic_per_seed_and_gives_valid_linkers() -> None:
    first, again = LinkerGenerator(0).sample(20), LinkerGenerator(0).sample(20)
    other = LinkerGenerator(1).sample(20)
    assert first == again
    assert first != other
    for candidate in first:
        Genes.from_payload(candidate["genes"])
        mol, why = check_linker(candidate["smiles"])
        assert mol is not None, (candidate, why)
    assert msgpack.unpackb(msgpack.packb(first)) == first


def test_every_ring_substituent_and_spacer_gives_a_valid_linker() -> None:
    for ring in RINGS:
        for spacer in SPACERS:
            for substituents in (["CH3", "NH2"], ["OH", "Cl"]):
                design = genes(rings=[ring, ring], substituents=substituents, spacer=spacer)
                assert check_linker(linker_smiles(design))[0] is not None, design


def stable_examples() -> list[Scored]:
    payload = genes(rings=["naphthalene"], substituents=["F"], spacer="C#C", pillar="pyrazine")
    return [Scored({"genes": payload.to_payload(), "smiles": ""}, {"uptake": 1.0})] * 4


def test_retrain_moves_toward_the_examples_respects_the_floor_and_bumps_the_version() -> None:
    generator = LinkerGenerator(0, floor=0.05, learning_rate=0.5)
    before = {position: generator.probabilities(position) for position in POSITIONS}
    assert generator.retrain(stable_examples()) == 1
    for _ in range(10):
        generator.retrain(stable_examples())
    assert generator.version == 11
    after = {position: generator.probabilities(position) for position in POSITIONS}
    for position, chosen in [
        ("n_rings", "1"),
        ("ring0", "naphthalene"),
        ("sub0", "F"),
        ("spacer", "C#C"),
        ("pillar", "pyrazine"),
    ]:
        assert after[position][chosen] > before[position][chosen]
        assert min(after[position].values()) >= 0.05 - 1e-12
        assert sum(after[position].values()) == pytest.approx(1.0)
    assert after["ring1"] == before["ring1"]  # no example has a second ring
    samples = generator.sample(50)
    assert sum(s["genes"]["spacer"] == "C#C" for s in samples) > 25


def test_retrain_without_examples_only_bumps_the_version() -> None:
    generator = LinkerGenerator(0)
    before = generator.state()["probs"]
    assert generator.retrain([]) == 1
    assert generator.state()["probs"] == before


def test_constructor_rejects_a_floor_too_high_for_the_vocabulary() -> None:
    with pytest.raises(ValueError, match="floor"):
        LinkerGenerator(0, floor=0.5)
    with pytest.raises(ValueError, match="learning_rate"):
        LinkerGenerator(0, learning_rate=0.0)


def test_state_round_trip_restores_probabilities_version_and_stream() -> None:
    generator = LinkerGenerator(3, floor=0.02, learning_rate=0.3)
    generator.retrain(stable_examples())
    generator.sample(5)
    state = msgpack.unpackb(msgpack.packb(generator.state()))
    restored = LinkerGenerator(99)
    restored.load_state(state)
    assert restored.version == 1
    assert (restored.floor, restored.learning_rate) == (0.02, 0.3)
    assert restored.state() == generator.state()
    assert restored.sample(10) == generator.sample(10)
    with pytest.raises(ValueError, match="probs"):
        restored.load_state(state | {"probs": {}})


def test_pillars_are_sampled() -> None:
    seen = {s["genes"]["pillar"] for s in LinkerGenerator(0).sample(40)}
    assert seen == set(PILLARS)
