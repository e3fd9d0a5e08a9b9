"""Which classes, types and functions a pipeline spec may name: exact allow-lists.

A spec names estimator classes, types (``dtype=np.float32``) and functions
(``score_func=f_regression``) as ``module:qualname``. A name a request sends
is never imported or followed attribute by attribute; it resolves only when
it is a key of an allow-list built once per process from what scikit-learn
and numpy expose publicly, under both its public path
(``sklearn.linear_model:Ridge``, what :func:`public_path` writes) and its
defining one (``sklearn.linear_model._ridge:Ridge``, what older specs carry):

- estimators: scikit-learn's ``all_estimators()`` and its Gaussian process kernels;
- types: numpy's scalar types, and ``float``, ``int``, ``bool``, ``complex``, ``str``;
- functions, a vetted set of pure numerical ones (a function runs on the
  endpoint's data, so it is the dangerous part): the score functions of
  ``sklearn.feature_selection``, the kernels and distances of
  ``sklearn.metrics.pairwise``, the functions of ``sklearn.preprocessing``
  and numpy's ufuncs (``np.log1p``...). academy_ml exposes no estimators,
  and its public functions (``evaluate``...) are not pipeline steps.

An endpoint's operator extends the lists with exact names in
``$ACADEMY_ML_TRUSTED_NAMES`` (classes or functions), or with packages of
their own in ``$ACADEMY_ML_TRUSTED_MODULES`` (estimator classes and types
defined there; functions only by exact name). Either way the object must be
defined in the module named (``mypkg:os.system`` is refused) and is found
by dictionary lookups (no property or module ``__getattr__`` runs), with
no dunder parts in its name.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from academy_ml.exceptions import WireError

#: Environment variable with exact names an operator trusts (comma separated).
TRUSTED_NAMES_ENV = "ACADEMY_ML_TRUSTED_NAMES"
#: Environment variable with packages whose classes an operator trusts.
TRUSTED_MODULES_ENV = "ACADEMY_ML_TRUSTED_MODULES"

Kind = Literal["estimator", "type", "function"]

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*")
_SHOWN = 120  # characters of a refused name put in an error message


def defining_path(obj: Any) -> str:
    """``module:qualname`` of where ``obj`` is defined."""
    return f"{obj.__module__}:{getattr(obj, '__qualname__', obj.__name__)}"


def public_path(obj: Any) -> str:
    """The import path scikit-learn or numpy documents for ``obj``.

    ``sklearn.linear_model:Ridge`` for Ridge: the deepest module without a
    private part that exposes it under its name; its defining path when none does.
    """
    path = _PUBLIC_PATHS.get(obj)
    if path is None:
        path = _PUBLIC_PATHS[obj] = _find_public_path(obj)
    return path


_PUBLIC_PATHS: dict[Any, str] = {}


def _find_public_path(obj: Any) -> str:
    name = getattr(obj, "__qualname__", obj.__name__)
    parts = obj.__module__.split(".")
    public = next((i for i, part in enumerate(parts) if part.startswith("_")), len(parts))
    for end in range(public, 0, -1):
        module = ".".join(parts[:end])
        try:
            exposed = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if exposed is obj:
            return f"{module}:{name}"
    return defining_path(obj)


def is_function(obj: Any) -> bool:
    """Whether a spec carries ``obj`` as a function (numpy ufuncs included)."""
    return inspect.isfunction(obj) or inspect.isbuiltin(obj) or isinstance(obj, np.ufunc)


@dataclass(frozen=True)
class Trust:
    """What a decoder resolves besides the default allow-lists.

    Attributes:
        names: Exact ``module:qualname`` names (classes or functions).
        modules: Packages whose estimator classes and types are trusted.
    """

    names: frozenset[str] = frozenset()
    modules: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> Trust:
        """What ``$ACADEMY_ML_TRUSTED_NAMES`` and ``$ACADEMY_ML_TRUSTED_MODULES`` list."""
        return cls(frozenset(_env_list(TRUSTED_NAMES_ENV)), tuple(_env_list(TRUSTED_MODULES_ENV)))

    def resolve(self, name: Any, kind: Kind) -> Any:
        """The object ``name`` stands for, if it is allowed as a ``kind``.

        Raises:
            WireError: ``name`` is malformed, not on an allow-list, or not a ``kind``.
        """
        if not isinstance(name, str) or len(name) > 1000 or not _NAME.fullmatch(name):
            raise WireError(f"not an import path 'module:name': {_shorten(name)}")
        found = allow_lists()[kind].get(name)
        if found is None:
            module = name.partition(":")[0]
            by_module = kind != "function" and any(_within(module, m) for m in self.modules)
            if name not in self.names and not by_module:
                raise WireError(_refusal(name, kind))
            found = _operator_object(name)
            if not _is_kind(found, kind):
                raise WireError(f"{name} is not {_KIND_TEXT[kind]}")
        return found


_KIND_TEXT = {
    "estimator": "an estimator class with parameters",
    "type": "a type",
    "function": "a function",
}


_PLURAL = {"estimator": "estimator classes", "type": "types", "function": "functions"}


def _refusal(name: str, kind: Kind) -> str:
    how = (
        f"list it by exact name in ${TRUSTED_NAMES_ENV}"
        if kind == "function"
        else f"list it in ${TRUSTED_NAMES_ENV}, or its package in ${TRUSTED_MODULES_ENV}"
    )
    return (
        f"{name} is not on this endpoint's allow-list of {_PLURAL[kind]} "
        f"(scikit-learn's and numpy's public ones); its operator can {how}"
    )


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


def _env_list(variable: str) -> list[str]:
    return [item.strip() for item in os.environ.get(variable, "").split(",") if item.strip()]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _is_kind(obj: Any, kind: Kind) -> bool:
    if kind == "estimator":
        return inspect.isclass(obj) and hasattr(obj, "get_params")
    if kind == "type":
        return inspect.isclass(obj)
    return is_function(obj)


@functools.lru_cache(maxsize=256)
def _operator_object(name: str) -> Any:
    """Import what an operator listed: defined in its module, found without getattr."""
    module_name, qualname = name.split(":")
    if any(part.startswith("__") for part in qualname.split(".")):
        raise WireError(f"{name} names a dunder attribute")
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise WireError(f"cannot import {module_name} for {name}: {exc}") from exc
    for part in qualname.split("."):
        namespace = vars(value) if inspect.ismodule(value) or inspect.isclass(value) else {}
        if part not in namespace:
            raise WireError(f"{name} does not exist")
        value = namespace[part]
    if not _within(str(getattr(value, "__module__", "")), module_name):
        raise WireError(
            f"{name} is defined in {getattr(value, '__module__', '?')}, not in {module_name}: "
            "list objects by the module that defines them"
        )
    return value


@functools.cache
def allow_lists() -> dict[Kind, dict[str, Any]]:
    """The default allow-lists by kind: public and defining paths to objects."""
    lists: dict[Kind, Iterable[Any]] = {
        "estimator": _estimators(),
        "type": _types(),
        "function": _functions(),
    }
    return {
        kind: {path: obj for obj in objects for path in (public_path(obj), defining_path(obj))}
        for kind, objects in lists.items()
    }


def _estimators() -> list[type]:
    from sklearn.gaussian_process import kernels
    from sklearn.utils import all_estimators

    found = [cls for _, cls in all_estimators()]
    found += [
        cls
        for name, cls in vars(kernels).items()
        if inspect.isclass(cls) and issubclass(cls, kernels.Kernel) and not name.startswith("_")
    ]
    return found


def _types() -> list[type]:
    return [*dict.fromkeys(np.sctypeDict.values()), float, int, bool, complex, str]


def _functions() -> list[Callable[..., Any]]:
    import sklearn.feature_selection
    import sklearn.preprocessing
    from sklearn.metrics import pairwise

    found: list[Callable[..., Any]] = [
        value for value in vars(np).values() if isinstance(value, np.ufunc)
    ]
    for module in (sklearn.feature_selection, sklearn.preprocessing):
        found += [
            getattr(module, name)
            for name in module.__all__
            if inspect.isfunction(getattr(module, name))
        ]
    registries = (pairwise.PAIRWISE_KERNEL_FUNCTIONS, pairwise.PAIRWISE_DISTANCE_FUNCTIONS)
    found += [f for registry in registries for f in registry.values() if f is not None]
    return found
