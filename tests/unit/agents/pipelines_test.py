"""PipelineGenerator: new pipelines only, children of the best first, then exhausted."""

from __future__ import annotations

import pytest

from academy_ml.agents import PipelineGenerator, TrainingExample
from academy_ml.exceptions import GeneratorExhausted


def test_pipeline_generator_proposes_the_whole_space_once_then_says_so() -> None:
    # linear, max_k 2: 3 imputers x (4 scalers x {none, pca, select} + 3 scalers x poly).
    generator = PipelineGenerator(["x0", "x1", "x2"], ["cat0"], models=["linear"], max_k=2)
    first = generator.sample(8)
    assert len(first) == 8
    # Retrained: children of the best (a linear model has no knobs, so they change a
    # preprocessing step), topped up by exploration when the children run out.
    examples = [TrainingExample(p, {"score": float(i)}, {}) for i, p in enumerate(first)]
    assert generator.retrain(examples) == 1
    proposed = [p["candidate"] for p in first]
    while len(proposed) < 45:
        batch = generator.sample(8)
        assert batch
        proposed += [p["candidate"] for p in batch]
    with pytest.raises(GeneratorExhausted, match="45 proposed") as exhausted:
        generator.sample(8)
    assert exhausted.value.partial == []
    keys = {tuple(sorted(c.items())) for c in proposed}
    assert len(keys) == len(proposed) == 45
