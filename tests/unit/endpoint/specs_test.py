from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectKBest, f_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from academy_ml.endpoint.specs import TRUSTED_ENV, decode_pipelines, encode_pipelines
from academy_ml.exceptions import UnsupportedPayloadError, WireError
from academy_ml.pipeline.generate import explored_batch


def same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b) and a.get_params(deep=True).keys() == b.get_params(deep=True).keys()


def test_generated_pipelines_round_trip() -> None:
    _, _, pipelines = explored_batch(32, 100)
    rebuilt = decode_pipelines(encode_pipelines(pipelines))
    assert len(rebuilt) == 32
    for original, copy in zip(pipelines, rebuilt, strict=True):
        assert same(original, copy)
        assert copy is not original


def test_nested_steps_functions_and_types_round_trip() -> None:
    pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", SimpleImputer(strategy="median"), [0, 1]),
                        ("cat", OneHotEncoder(dtype=np.float32), [2]),
                    ],
                    remainder="drop",
                ),
            ),
            ("select", SelectKBest(f_regression, k=2)),
            ("model", Ridge(alpha=0.5)),
        ]
    )
    (copy,) = decode_pipelines(encode_pipelines([pipeline]))
    assert copy.named_steps["select"].score_func is f_regression
    assert copy.named_steps["columns"].transformers[1][1].dtype is np.float32
    assert copy.named_steps["columns"].transformers[0][2] == [0, 1]
    assert same(pipeline, copy)


class Custom(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor


def test_untrusted_modules_are_refused_unless_the_operator_adds_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode_pipelines([make_pipeline(Custom(3.0), Ridge())])
    with pytest.raises(WireError, match=f"outside the trusted modules.*{TRUSTED_ENV}"):
        decode_pipelines(data)
    monkeypatch.setenv(TRUSTED_ENV, __name__.rsplit(".", 1)[0])
    (copy,) = decode_pipelines(data)
    assert copy.steps[0][1].factor == 3.0


@pytest.mark.parametrize(
    "spec",
    [
        [{"__estimator__": "os:system", "params": {}}],
        [{"__callable__": "builtins:eval"}],
        [{"__estimator__": "sklearn.linear_model:Ridge", "params": {"no_such": 1}}],
        [{"__estimator__": "sklearn.linear_model:does_not_exist", "params": {}}],
        [{"__estimator__": "sklearn", "params": {}}],
        [{"__callable__": "sklearn.linear_model:Ridge"}],
        "not a list",
    ],
)
def test_hostile_or_broken_specs_are_wire_errors(spec: Any) -> None:
    with pytest.raises(WireError):
        decode_pipelines(msgpack.packb(spec))


def test_unencodable_parameters_are_refused_when_encoding() -> None:
    with pytest.raises(UnsupportedPayloadError):
        encode_pipelines([StandardScaler().set_params(with_mean=object())])


def test_numpy_scalars_and_arrays_in_parameters() -> None:
    pipeline = make_pipeline(
        OneHotEncoder(categories=[np.array(["a", "b"])], handle_unknown="ignore"),
        Ridge(alpha=np.geomspace(0.1, 10, 3)[1]),
    )
    (copy,) = decode_pipelines(encode_pipelines([pipeline]))
    assert copy.steps[1][1].alpha == 1.0
    np.testing.assert_array_equal(copy.steps[0][1].categories[0], ["a", "b"])
