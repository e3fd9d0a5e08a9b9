"""Unfitted scikit-learn pipelines as data: specs that travel without pickle.

A spec names an estimator's class by import path and holds its
``get_params(deep=False)``, recursively (Pipelines, ColumnTransformers and
their steps). Functions (``score_func=f_regression``) and types
(``dtype=np.float64``) are named by import path too. A decoder resolves a
name only through the exact allow-lists of :mod:`~academy_ml.compute.tasks.trust`
(never by importing what a request names), decodes with the plain-value
codec of :mod:`academy_ml.core.values` within size and depth limits and only
the extensions a spec needs, never unpickles, and refuses parameter values
that would make an endpoint touch its filesystem or oversubscribe its cores.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from academy_ml.compute.tasks.trust import (
    TRUSTED_MODULES_ENV,
    TRUSTED_NAMES_ENV,
    Trust,
    is_function,
    public_path,
)
from academy_ml.core.values import Ext, ValueDecoder, ValueEncoder
from academy_ml.exceptions import UnsupportedPayloadError, WireError

__all__ = [
    "MAX_ARRAY_BYTES",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "TRUSTED_MODULES_ENV",
    "TRUSTED_NAMES_ENV",
    "Trust",
    "decode_each",
    "decode_pipelines",
    "encode_pipelines",
]

#: Longest accepted encoding of a batch's specs.
MAX_SPEC_BYTES = 16 * 2**20
#: Deepest accepted nesting of a batch's specs (a Pipeline in a
#: ColumnTransformer in a Pipeline is about 20 levels).
MAX_SPEC_DEPTH = 64
#: Largest parameter array a spec may make an endpoint allocate.
MAX_ARRAY_BYTES = 64 * 2**20
#: Hex digits of the largest integer a spec carries (ints beyond 64 bits are an extension).
_MAX_BIGINT_DIGITS = 128

_ESTIMATOR, _CALLABLE, _TYPE, _ARRAY = "__estimator__", "__callable__", "__type__", "__array__"


def encode_pipelines(pipelines: Iterable[Any]) -> bytes:
    """Msgpack bytes of the specs of ``pipelines`` (unfitted estimators).

    Raises:
        UnsupportedPayloadError: A parameter is neither plain data nor an
            estimator, function or type with an import path.
    """
    return ValueEncoder().pack([_to_spec(p) for p in pipelines])


def decode_pipelines(data: bytes, trust: Trust | None = None) -> list[Any]:
    """Rebuild the estimators of :func:`encode_pipelines`.

    Args:
        data: The encoded specs.
        trust: Names and packages trusted besides the defaults (default
            :meth:`Trust.from_env`).

    Raises:
        WireError: The data is malformed, too large or deep, or names
            something not on the allow-lists.
    """
    pipelines = decode_each(data, trust)
    for pipeline in pipelines:
        if isinstance(pipeline, WireError):
            raise pipeline
    return pipelines


def decode_each(data: bytes, trust: Trust | None = None) -> list[Any]:
    """Like :func:`decode_pipelines`, with a refused pipeline's error in its place.

    One pipeline naming something refused does not cost the others of its batch.

    Raises:
        WireError: The data as a whole is malformed, too large or deep.
    """
    specs = _SpecDecoder(max_depth=MAX_SPEC_DEPTH, max_size=MAX_SPEC_BYTES).unpack(data)
    if not isinstance(specs, list):
        raise WireError("pipeline specs are not a list")
    trust = Trust.from_env() if trust is None else trust
    decoded: list[Any] = []
    for index, spec in enumerate(specs):
        try:
            decoded.append(_from_spec(spec, trust))
        except WireError as exc:
            decoded.append(WireError(f"pipeline {index}: {exc}"))
    return decoded


def _to_spec(value: Any) -> Any:
    if hasattr(value, "get_params") and not inspect.isclass(value):
        params = {name: _to_spec(v) for name, v in value.get_params(deep=False).items()}
        return {_ESTIMATOR: public_path(type(value)), "params": params}
    if isinstance(value, list):
        return [_to_spec(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_spec(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_spec(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()  # np.float64(0.1) from np.logspace, say
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise UnsupportedPayloadError(f"parameter arrays of dtype {value.dtype} cannot travel")
        return {_ARRAY: value.dtype.str, "values": value.tolist()}
    if inspect.isclass(value):
        return {_TYPE: public_path(value)}
    if is_function(value):
        return {_CALLABLE: public_path(value)}
    return value


_ARRAY_KINDS = "biufcSU"
_DTYPE = re.compile(rf"[<>|=][{_ARRAY_KINDS}][0-9]{{1,5}}")


def _from_spec(spec: Any, trust: Trust) -> Any:
    if isinstance(spec, list):
        return [_from_spec(v, trust) for v in spec]
    if isinstance(spec, tuple):
        return tuple(_from_spec(v, trust) for v in spec)
    if not isinstance(spec, dict):
        return spec
    if _ESTIMATOR in spec:
        cls = trust.resolve(spec[_ESTIMATOR], "estimator")
        params = spec.get("params")
        if not (isinstance(params, dict) and all(isinstance(k, str) for k in params)):
            raise WireError(f"{spec[_ESTIMATOR]} has no parameter map")
        _check_params(spec[_ESTIMATOR], params)
        try:
            return cls(**{k: _from_spec(v, trust) for k, v in params.items()})
        except (TypeError, ValueError) as exc:
            raise WireError(f"{spec[_ESTIMATOR]} does not take these parameters: {exc}") from exc
    if _CALLABLE in spec:
        return trust.resolve(spec[_CALLABLE], "function")
    if _TYPE in spec:
        return trust.resolve(spec[_TYPE], "type")
    if _ARRAY in spec:
        return _array(spec[_ARRAY], spec.get("values"))
    return {k: _from_spec(v, trust) for k, v in spec.items()}


def _check_params(name: str, params: dict[str, Any]) -> None:
    """Refuse values that reach past the data: files, caches, more cores than there are."""
    if params.get("memory") is not None:
        # joblib.Memory writes pickles under that path and unpickles what it finds there.
        raise WireError(f"{name}: memory={params['memory']!r:.80} is refused on an endpoint")
    if params.get("input") in ("filename", "file"):
        # The vectorizers would read the files the data names.
        raise WireError(f"{name}: input={params['input']!r} is refused on an endpoint")
    n_jobs = params.get("n_jobs")
    cores = os.cpu_count() or 1
    if n_jobs is not None and not (type(n_jobs) is int and n_jobs != 0 and abs(n_jobs) <= cores):
        raise WireError(f"{name}: n_jobs={n_jobs!r:.80} is not None or ±1..{cores} (the cores)")


def _array(descr: Any, values: Any) -> np.ndarray[Any, Any]:
    # Only the plain forms ``dtype.str`` writes reach np.dtype, whose parser
    # of other strings (comma lists, shapes) goes as far as ast.literal_eval.
    if not (isinstance(descr, str) and _DTYPE.fullmatch(descr)):
        raise WireError(f"parameter array dtype {descr!r:.80} is not allowed")
    try:
        dtype = np.dtype(descr)
    except TypeError as exc:
        raise WireError(f"parameter array dtype {descr!r} is not valid") from exc
    if _leaves(values) * max(dtype.itemsize, 1) > MAX_ARRAY_BYTES:
        raise WireError(f"a parameter array exceeds {MAX_ARRAY_BYTES} bytes")
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"malformed parameter array: {exc}") from exc


def _leaves(values: Any) -> int:
    """Number of scalars in nested lists (the depth is bounded already)."""
    count, pending = 0, [values]
    while pending:
        item = pending.pop()
        if isinstance(item, list | tuple):
            pending.extend(item)
        else:
            count += 1
    return count


#: The plain values a spec holds besides msgpack's own: no arrays (parameter
#: arrays are lists of values), sets, handles, exceptions or pickles.
_SPEC_EXTENSIONS = frozenset({Ext.TUPLE, Ext.BIGINT, Ext.COMPLEX})


class _SpecDecoder(ValueDecoder):
    """The plain-value decoder narrowed to what :func:`encode_pipelines` writes."""

    def _hook(self, code: int, data: bytes) -> Any:
        if code not in _SPEC_EXTENSIONS:
            raise WireError(f"a pipeline spec may not hold msgpack extension type {code}")
        if code == Ext.BIGINT and len(data) > _MAX_BIGINT_DIGITS:
            raise WireError(f"an integer of more than {_MAX_BIGINT_DIGITS} hex digits")
        return super()._hook(code, data)
