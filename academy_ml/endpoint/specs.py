"""Unfitted scikit-learn pipelines as data: specs that travel without pickle.

A spec names an estimator's class by import path and holds its
``get_params(deep=False)``, recursively (Pipelines, ColumnTransformers and
their steps). Functions (``score_func=f_regression``) and types
(``dtype=np.float64``) are named by import path too. Rebuilding a spec
imports only from trusted modules (scikit-learn, numpy, academy_ml, plus
what the endpoint's operator adds), so a request cannot make an endpoint
import or run anything else; values are encoded with the exchange's codec,
which never unpickles.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from academy_ml.exceptions import UnsupportedPayloadError, WireError
from academy_ml.exchange.codec import Decoder, Encoder

#: Environment variable with more trusted module prefixes (comma separated).
TRUSTED_ENV = "ACADEMY_ML_TRUSTED_MODULES"
#: Module prefixes a spec may import from by default.
TRUSTED = ("sklearn", "numpy", "academy_ml")

_ESTIMATOR, _CALLABLE, _TYPE, _ARRAY = "__estimator__", "__callable__", "__type__", "__array__"


def trusted_modules(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The default trusted prefixes, the environment's and ``extra``."""
    configured = [m.strip() for m in os.environ.get(TRUSTED_ENV, "").split(",") if m.strip()]
    return (*TRUSTED, *configured, *extra)


def encode_pipelines(pipelines: Iterable[Any]) -> bytes:
    """Msgpack bytes of the specs of ``pipelines`` (unfitted estimators).

    Raises:
        UnsupportedPayloadError: A parameter is neither plain data nor an
            estimator, function or type with an import path.
    """
    return Encoder(allow_pickle=False).pack([_to_spec(p) for p in pipelines])


def decode_pipelines(data: bytes, trusted: tuple[str, ...] | None = None) -> list[Any]:
    """Rebuild the estimators of :func:`encode_pipelines`.

    Args:
        data: The encoded specs.
        trusted: Module prefixes to import from (default :func:`trusted_modules`).

    Raises:
        WireError: The data is malformed, or names something outside the
            trusted modules or that is not an estimator, function or type.
    """
    specs = Decoder([], allow_pickle=False).unpack(data)
    if not isinstance(specs, list):
        raise WireError("pipeline specs are not a list")
    modules = trusted_modules() if trusted is None else trusted
    return [_from_spec(spec, modules) for spec in specs]


def _path(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _to_spec(value: Any) -> Any:
    if hasattr(value, "get_params") and not inspect.isclass(value):
        params = {name: _to_spec(v) for name, v in value.get_params(deep=False).items()}
        return {_ESTIMATOR: _path(type(value)), "params": params}
    if isinstance(value, list):
        return [_to_spec(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_spec(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_spec(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()  # np.float64(0.1) from np.logspace, say
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufcSU":
            raise UnsupportedPayloadError(f"parameter arrays of dtype {value.dtype} cannot travel")
        return {_ARRAY: value.dtype.str, "values": value.tolist()}
    if inspect.isclass(value):
        return {_TYPE: _path(value)}
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return {_CALLABLE: _path(value)}
    return value


def _from_spec(spec: Any, trusted: tuple[str, ...]) -> Any:
    if isinstance(spec, list):
        return [_from_spec(v, trusted) for v in spec]
    if isinstance(spec, tuple):
        return tuple(_from_spec(v, trusted) for v in spec)
    if not isinstance(spec, dict):
        return spec
    if _ESTIMATOR in spec:
        cls = _resolve(spec[_ESTIMATOR], trusted)
        params = spec.get("params")
        if not (inspect.isclass(cls) and hasattr(cls, "get_params") and isinstance(params, dict)):
            raise WireError(f"{spec[_ESTIMATOR]} is not an estimator class with parameters")
        try:
            return cls(**{k: _from_spec(v, trusted) for k, v in params.items()})
        except TypeError as exc:
            raise WireError(f"{spec[_ESTIMATOR]} does not take these parameters: {exc}") from exc
    if _CALLABLE in spec:
        function = _resolve(spec[_CALLABLE], trusted)
        if not (inspect.isfunction(function) or inspect.isbuiltin(function)):
            raise WireError(f"{spec[_CALLABLE]} is not a function")
        return function
    if _ARRAY in spec:
        try:
            return np.asarray(spec["values"], dtype=np.dtype(spec[_ARRAY]))
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"malformed parameter array: {exc}") from exc
    if _TYPE in spec:
        cls = _resolve(spec[_TYPE], trusted)
        if not inspect.isclass(cls):
            raise WireError(f"{spec[_TYPE]} is not a type")
        return cls
    return {k: _from_spec(v, trusted) for k, v in spec.items()}


def _resolve(path: Any, trusted: tuple[str, ...]) -> Any:
    if not isinstance(path, str) or path.count(":") != 1:
        raise WireError(f"not an import path 'module:name': {path!r}")
    module_name, qualname = path.split(":")
    if not any(module_name == m or module_name.startswith(m + ".") for m in trusted):
        raise WireError(
            f"{path} is outside the trusted modules {', '.join(trusted)}; an endpoint's "
            f"operator can add module prefixes in ${TRUSTED_ENV}"
        )
    try:
        value: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise WireError(f"cannot import {path}: {exc}") from exc
    return value
