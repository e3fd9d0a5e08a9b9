from __future__ import annotations

import subprocess
import sys
from typing import Any

import msgpack
import numpy as np
import pytest
from hostile_specs import ATTACK_PATHS, rename
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectKBest, f_regression
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from academy_ml.agents.search_space import explored_batch
from academy_ml.compute.tasks.specs import (
    MAX_SPEC_BYTES,
    MAX_SPEC_DEPTH,
    TRUSTED_MODULES_ENV,
    TRUSTED_NAMES_ENV,
    Trust,
    decode_each,
    decode_pipelines,
    encode_pipelines,
)
from academy_ml.exceptions import UnsupportedPayloadError, WireError
from academy_ml.messaging.codec import Ext


def same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b) and a.get_params(deep=True).keys() == b.get_params(deep=True).keys()


def pack(spec: Any) -> bytes:
    return bytes(msgpack.packb(spec))


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
            ("log", FunctionTransformer(np.log1p)),
            ("model", Ridge(alpha=0.5)),
        ]
    )
    (copy,) = decode_pipelines(encode_pipelines([pipeline]))
    assert copy.named_steps["select"].score_func is f_regression
    assert copy.named_steps["log"].func is np.log1p
    assert copy.named_steps["columns"].transformers[1][1].dtype is np.float32
    assert copy.named_steps["columns"].transformers[0][2] == [0, 1]
    assert same(pipeline, copy)


def test_specs_carry_public_paths_and_old_defining_paths_still_decode() -> None:
    data = encode_pipelines([make_pipeline(SelectKBest(f_regression), Ridge())])
    text = data.decode("latin-1")
    assert "sklearn.linear_model:Ridge" in text
    assert "sklearn.feature_selection:f_regression" in text
    assert "_ridge" not in text
    old = [
        {"__estimator__": "sklearn.linear_model._ridge:Ridge", "params": {"alpha": 2.0}},
        {"__callable__": "sklearn.feature_selection._univariate_selection:f_regression"},
    ]
    ridge, function = decode_pipelines(pack(old))
    assert isinstance(ridge, Ridge)
    assert ridge.alpha == 2.0
    assert function is f_regression


def test_kernels_big_ints_and_dicts_round_trip() -> None:
    pipeline = make_pipeline(
        StandardScaler(),
        GaussianProcessRegressor(kernel=RBF(length_scale=2.0) + WhiteKernel()),
    )
    model = LogisticRegression(max_iter=10**30, class_weight={0: 1.0, 1: 2.5})
    copy, logistic = decode_pipelines(encode_pipelines([pipeline, model]))
    assert same(pipeline, copy)
    assert logistic.max_iter == 10**30
    assert logistic.class_weight == {0: 1.0, 1: 2.5}


class Custom(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor


def custom_score(X: Any, y: Any) -> Any:
    return f_regression(X, y)


def test_operator_packages_allow_their_own_classes_only(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode_pipelines([make_pipeline(Custom(3.0), Ridge())])
    with pytest.raises(WireError, match=f"not on this endpoint's allow-list.*{TRUSTED_NAMES_ENV}"):
        decode_pipelines(data)
    monkeypatch.setenv(TRUSTED_MODULES_ENV, __name__)
    (copy,) = decode_pipelines(data)
    assert copy.steps[0][1].factor == 3.0
    # A trusted module is no way into the modules it imports, nor into dunders.
    for name, match in [
        (f"{__name__}:sys.exit", "defined in sys"),
        (f"{__name__}:subprocess.run", "defined in subprocess"),
        (f"{__name__}:Custom.__init__", "dunder"),
        (f"{__name__}:Ridge", "defined in sklearn"),
    ]:
        with pytest.raises(WireError, match=match):
            Trust.from_env().resolve(name, "type")
    # Functions of a trusted package still need their exact name.
    score = {"__callable__": f"{__name__}:custom_score"}
    with pytest.raises(WireError, match="allow-list of functions"):
        decode_pipelines(pack([score]))
    monkeypatch.setenv(TRUSTED_NAMES_ENV, f"{__name__}:custom_score")
    assert decode_pipelines(pack([score])) == [custom_score]


def test_exact_names_from_the_operator_must_be_defined_where_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TRUSTED_NAMES_ENV, f"{__name__}:Custom,{__name__}:subprocess.run")
    spec = {"__estimator__": f"{__name__}:Custom", "params": {"factor": 4.0}}
    (custom,) = decode_pipelines(pack([spec]))
    assert custom.factor == 4.0
    with pytest.raises(WireError, match="defined in subprocess"):
        decode_pipelines(pack([{"__callable__": f"{__name__}:subprocess.run"}]))


@pytest.mark.parametrize("path", ATTACK_PATHS)
@pytest.mark.parametrize("kind", ["__callable__", "__estimator__", "__type__"])
def test_issue_14_paths_are_refused_by_name(path: str, kind: str) -> None:
    spec = {kind: path, "params": {}}
    with pytest.raises(WireError, match=path):
        decode_pipelines(pack([spec]))


@pytest.mark.parametrize("path", [*ATTACK_PATHS, "builtins:exec", "posix:system"])
def test_function_transformer_runs_only_listed_functions(path: str) -> None:
    spec = encode_pipelines([make_pipeline(FunctionTransformer(np.sqrt), Ridge())])
    hostile = rename(spec, "numpy:sqrt", path)
    with pytest.raises(WireError, match=f"{path} is not on this endpoint's allow-list"):
        decode_pipelines(hostile)


def test_functions_and_classes_are_not_interchangeable() -> None:
    for spec, match in [
        ({"__callable__": "sklearn.linear_model:Ridge"}, "allow-list of functions"),
        ({"__estimator__": "numpy:log1p", "params": {}}, "allow-list of estimator"),
        ({"__type__": "sklearn.linear_model:Ridge"}, "allow-list of types"),
        ({"__estimator__": "numpy:float64", "params": {}}, "allow-list of estimator"),
        # Public functions of academy_ml and of the rest of scikit-learn are no steps.
        ({"__callable__": "academy_ml:evaluate"}, "allow-list of functions"),
        ({"__callable__": "sklearn.datasets:fetch_openml"}, "allow-list of functions"),
    ]:
        with pytest.raises(WireError, match=match):
            decode_pipelines(pack([spec]))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"memory": "/tmp/planted"}, "memory="),
        ({"n_jobs": 100_000}, "n_jobs="),
        ({"n_jobs": True}, "n_jobs="),
    ],
)
def test_parameters_reaching_past_the_data_are_refused(params: dict[str, Any], match: str) -> None:
    steps = [["m", {"__estimator__": "sklearn.linear_model:Ridge", "params": {}}]]
    spec = {"__estimator__": "sklearn.pipeline:Pipeline", "params": {"steps": steps, **params}}
    with pytest.raises(WireError, match=match):
        decode_pipelines(pack([spec]))
    vectorizer = {"__estimator__": "sklearn.feature_extraction.text:CountVectorizer"}
    with pytest.raises(WireError, match="input='filename'"):
        decode_pipelines(pack([{**vectorizer, "params": {"input": "filename"}}]))


def test_one_refused_pipeline_leaves_the_others() -> None:
    specs = [
        {"__estimator__": "sklearn.linear_model:Ridge", "params": {"alpha": 3.0}},
        {"__estimator__": ATTACK_PATHS[0], "params": {}},
    ]
    ridge, refused = decode_each(pack(specs))
    assert ridge.alpha == 3.0
    assert isinstance(refused, WireError)
    assert "pipeline 1" in str(refused)
    assert ATTACK_PATHS[0] in str(refused)


def _nested_tuples(depth: int) -> bytes:
    payload = msgpack.packb([])
    for _ in range(depth):
        payload = msgpack.packb([msgpack.ExtType(Ext.TUPLE, payload)])
    return bytes(payload)


def test_nested_extensions_are_refused_before_they_overflow_the_stack() -> None:
    # Issue 14: ~200 nested tuples (714 bytes) segfaulted the decoder. In a
    # subprocess, so a crash fails this test instead of killing pytest.
    code = (
        "import sys; from academy_ml.compute.tasks.specs import decode_pipelines\n"
        "from academy_ml.exceptions import WireError\n"
        "try:\n    decode_pipelines(sys.stdin.buffer.read())\n"
        "except WireError as exc:\n    print('refused:', exc)\n"
    )
    for depth in (200, 5000):
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=_nested_tuples(depth),
            capture_output=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert f"nests deeper than {MAX_SPEC_DEPTH} levels" in done.stdout.decode()
    assert decode_pipelines(_nested_tuples(MAX_SPEC_DEPTH // 2 - 1)) is not None


def test_deep_or_large_specs_are_refused() -> None:
    deep: Any = 0
    for _ in range(900):
        deep = [deep]
    with pytest.raises(WireError, match="nests deeper"):
        decode_pipelines(pack([deep]))
    with pytest.raises(WireError, match="exceeds"):
        decode_pipelines(b"\x91" + b"\xc0" * MAX_SPEC_BYTES)
    huge = {"__array__": "<U256", "values": ["x"] * 70_000}
    with pytest.raises(WireError, match="exceeds"):
        decode_pipelines(pack([huge]))


@pytest.mark.parametrize(
    "spec",
    [
        [{"__estimator__": "os:system", "params": {}}],
        [{"__callable__": "builtins:eval"}],
        [{"__estimator__": "sklearn.linear_model:Ridge", "params": {"no_such": 1}}],
        [{"__estimator__": "sklearn.linear_model:Ridge", "params": {1: 1}}],
        [{"__estimator__": "sklearn.linear_model:Ridge", "params": None}],
        [{"__estimator__": "sklearn.linear_model:does_not_exist", "params": {}}],
        [{"__estimator__": "sklearn", "params": {}}],
        [{"__estimator__": ["not", "a", "string"], "params": {}}],
        [{"__estimator__": "a" * 10_000_000, "params": {}}],
        [{"__callable__": "sklearn.linear_model:Ridge"}],
        [{"__array__": "O", "values": [1]}],
        [{"__array__": "f8,i4", "values": [1]}],
        [{"__array__": "01", "values": [1]}],  # np.dtype parses this with ast.literal_eval
        [{"__array__": "<f3", "values": [1]}],
        [{"__array__": "<f8", "values": [[1], [1, 2]]}],
        [{"__array__": "<i8", "values": ["x"]}],
        [msgpack.ExtType(Ext.PICKLE, b"cos\nsystem\n.")],
        [msgpack.ExtType(Ext.BIGINT, b"f" * 1000)],
        [msgpack.ExtType(Ext.BIGINT, b"\xff")],
        [msgpack.ExtType(Ext.COMPLEX, msgpack.packb(["a", 1]))],
        "not a list",
    ],
)
def test_hostile_or_broken_specs_are_wire_errors(spec: Any) -> None:
    with pytest.raises(WireError) as raised:
        decode_pipelines(pack(spec))
    assert len(str(raised.value)) < 1000


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
