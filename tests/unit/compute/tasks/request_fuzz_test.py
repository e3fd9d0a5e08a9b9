"""Fuzzing what an endpoint decodes from a request, in a child process.

Structured inputs are real encodings (generated pipelines, nested
ColumnTransformers, functions, types, kernels, arrays; whole requests and
results) and hostile shapes: spec-like maps naming issue 14's paths and
other untrusted names, bad dtypes, extensions nested hundreds deep,
containers nested past msgpack's stack. :mod:`fuzz_support` mutates each
and fails on a crash or on any exception but :class:`WireError`. Explicit
splits (any size, byte length, index, fold count) are checked as an endpoint
checks them against a dataset of :data:`ROWS` rows.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import numpy as np
import pytest
from fuzz_support import SOAK_TIMEOUT, FuzzTarget, run_campaign
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectKBest, f_regression
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from academy_ml.agents.search_space import explored_batch
from academy_ml.compute.tasks.request import (
    MESSAGE_VERSION,
    SPLIT_DTYPE,
    BatchRequest,
    BatchResult,
    PipelineScores,
)
from academy_ml.compute.tasks.specs import decode_pipelines, encode_pipelines
from academy_ml.core.values import Ext, ValueEncoder
from academy_ml.exceptions import WireError

#: Names a hostile spec uses: issue 14's paths, allowed ones in the wrong role, junk.
NAMES = [
    "numpy.testing._private.extbuild:subprocess.run",
    "sklearn.datasets._base:os.system",
    "numpy._core.numeric:builtins.eval",
    "builtins:eval",
    "os:system",
    "sklearn.linear_model:Ridge",
    "sklearn.linear_model._ridge:Ridge",
    "sklearn.pipeline:Pipeline",
    "sklearn.compose:ColumnTransformer",
    "sklearn.preprocessing:FunctionTransformer",
    "sklearn.feature_selection:f_regression",
    "numpy:log1p",
    "numpy:float32",
    "builtins:float",
    "sklearn.linear_model:Ridge.__init__",
    "sklearn",
    ":",
    "<f8",
    "O",
    "f8,i4",
    "(2,)f8",
    "M8[s]",
    "<U100000",
    "S2147483647",
]
KEYS = ["__estimator__", "__callable__", "__type__", "__array__", "params", "values"]
PARAMS = ["alpha", "steps", "transformers", "func", "score_func", "dtype", "memory", "n_jobs"]


def _pipelines() -> list[Any]:
    _, _, generated = explored_batch(24, 100)
    columns = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), [0, 1]),
            ("cat", OneHotEncoder(categories=[np.array(["a", "b"])], dtype=np.float32), [2]),
        ]
    )
    return [
        *generated,
        Pipeline([("c", columns), ("s", SelectKBest(f_regression, k=2)), ("m", Ridge())]),
        make_pipeline(FunctionTransformer(np.log1p), Ridge(alpha=np.float64(0.5))),
        GaussianProcessRegressor(kernel=RBF(2.0) + WhiteKernel()),
        LogisticRegression(max_iter=10**30, class_weight={0: 1.0, 1: 2.5}),
    ]


CORPUS = [encode_pipelines([p]) for p in _pipelines()] + [encode_pipelines(_pipelines()[:6])]

_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits: the BIGINT extension
    st.floats(),
    st.complex_numbers(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.sampled_from(NAMES),
)
_spec_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.sampled_from(KEYS + PARAMS) | st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=20,
)


def nested_extensions(depth: int) -> bytes:
    data = msgpack.packb([])
    for _ in range(depth):
        data = msgpack.packb([msgpack.ExtType(Ext.TUPLE, data)])
    return bytes(data)


spec_inputs = st.one_of(
    st.sampled_from(CORPUS),
    st.lists(_spec_values, max_size=3).map(ValueEncoder().pack),
    st.integers(0, 400).map(nested_extensions),
    st.integers(0, 2000).map(lambda n: b"\x91" * n + b"\xc0"),
    st.binary(max_size=256),
)

_keys = st.text("0123456789abcdef", min_size=32, max_size=32)
_requests = st.builds(
    lambda plan, nodes, specs, cv, scoring, dataset, threads: BatchRequest(
        plan_key=plan,
        node_keys=nodes,
        pipelines=specs,
        cv=cv,
        scoring=scoring,
        dataset=dataset,
        threads=threads,
    ).to_bytes(),
    _keys,
    st.lists(_keys, max_size=4),
    spec_inputs,
    st.integers(2, 100),
    st.sampled_from([None, "r2", "accuracy"]),
    _keys,
    st.sampled_from([None, 1, 2]),
)
#: Rows of the dataset a fuzzed request's splits are checked against.
ROWS = 100
_in_range = st.lists(st.integers(0, ROWS - 1), min_size=1, max_size=6).map(
    lambda v: np.array(v, dtype=SPLIT_DTYPE).tobytes()
)
_indices = st.one_of(
    _in_range,
    st.lists(st.integers(0, 2 * ROWS), max_size=6).map(
        lambda v: np.array(v, dtype=SPLIT_DTYPE).tobytes()
    ),
    st.sampled_from([np.array([2**32 - 1], dtype=SPLIT_DTYPE).tobytes(), b"\x00" * 4 * 5000]),
    st.binary(max_size=9),
)
_split_fields = st.one_of(
    st.fixed_dictionaries({"train": _indices, "test": _indices}),
    st.dictionaries(
        st.sampled_from(["train", "test", "rows"]), _indices | _spec_values, max_size=3
    ),
    _spec_values,
)
_sound_splits = st.lists(
    st.fixed_dictionaries({"train": _in_range, "test": _in_range}), min_size=1, max_size=5
)
#: Requests whose other fields are sound, with splits of every shape (cv agreeing or not);
#: splits that are not a list at all come from ``_envelopes``.
_split_requests = st.builds(
    lambda splits, cv, specs: ValueEncoder().pack(
        [
            MESSAGE_VERSION,
            "BatchRequest",
            {
                "plan_key": "a" * 32,
                "node_keys": ["b" * 32],
                "pipelines": specs,
                "cv": len(splits) if cv is None else cv,
                "splits": splits,
                "scoring": None,
                "dataset": "c" * 32,
                "threads": None,
            },
        ]
    ),
    _sound_splits | st.lists(_split_fields, min_size=1, max_size=5),
    st.none() | st.integers(-1, 102),
    st.sampled_from(CORPUS),
)
_results = st.builds(
    lambda plan, scores, error: BatchResult(
        plan_key=plan,
        host="node",
        pid=1,
        results=[PipelineScores(index=0, fold_scores=scores, error=error)],
        executed=1,
        cache_hits=0,
        seconds=0.5,
    ).to_bytes(),
    _keys,
    st.lists(st.floats(), max_size=5),
    st.none() | st.text(max_size=20),
)
_fields = [*BatchRequest.model_fields, *BatchResult.model_fields]
#: Hostile fields in the envelope of either kind (and of a stray version or kind).
_envelopes = st.builds(
    lambda version, kind, fields: ValueEncoder().pack([version, kind, fields]),
    st.sampled_from([MESSAGE_VERSION, MESSAGE_VERSION - 1, MESSAGE_VERSION + 1]),
    st.sampled_from(["BatchRequest", "BatchResult", "CandidateRecord"]) | st.text(max_size=6),
    st.dictionaries(st.sampled_from(_fields) | st.text(max_size=6), _spec_values, max_size=9),
)


def decode_request(data: bytes) -> None:
    """What an endpoint does with request bytes before compiling (and a client with results)."""
    with contextlib.suppress(WireError):
        BatchResult.from_bytes(data)
    request = BatchRequest.from_bytes(data)
    request.folds(ROWS)
    decode_pipelines(request.pipelines)


SPECS = FuzzTarget(decode=decode_pipelines, inputs=spec_inputs, expected=(WireError,))
REQUEST = FuzzTarget(
    decode=decode_request,
    inputs=st.one_of(_requests, _split_requests, _results, _envelopes, spec_inputs),
    expected=(WireError,),
)

#: Splits alone: both an endpoint's acceptance and its refusals must be reached.
SPLITS = FuzzTarget(decode=decode_request, inputs=_split_requests, expected=(WireError,))


SEEN = {
    "SPECS": ("accepted",),
    "REQUEST": ("accepted", "EnvelopeError"),
    "SPLITS": ("accepted", "WireError"),
}


@pytest.mark.parametrize("target", ["SPECS", "REQUEST", "SPLITS"])
def test_request_decoders_survive_fuzzing(target: str) -> None:
    # Both halves are exercised: inputs that decode and inputs refused (by the
    # envelope, too, for another kind or version).
    report = run_campaign(__file__, target, seen=SEEN[target])
    assert sum(n for outcome, n in report.outcomes.items() if outcome != "accepted") > 0


@pytest.mark.slow
@pytest.mark.timeout(SOAK_TIMEOUT)
@pytest.mark.parametrize("target", ["SPECS", "REQUEST", "SPLITS"])
def test_request_decoders_soak(target: str) -> None:
    run_campaign(__file__, target, soak=True)
