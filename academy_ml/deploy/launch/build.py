"""Building agents from their specs: objects from tables, handles, the knowledge base, endpoints.

Specs are the operator's own files, so naming a class to import is what they
are for; nothing here reads anything that arrived over the network.
"""

from __future__ import annotations

import inspect
import os
import sys
import typing
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from academy.agent import Agent
from academy.handle import Handle
from pydantic import ConfigDict, TypeAdapter, ValidationError

from academy_ml.agents.knowledge import (
    InMemoryKnowledge,
    InMemoryKnowledgeBase,
    KnowledgeBase,
    KnowledgeFactory,
    RedisKnowledge,
    SqliteKnowledge,
)
from academy_ml.compute.placement import (
    Endpoint,
    GlobusComputeSpec,
    ParslEndpoint,
    ParslSpec,
    load_registry,
    resolve_task,
)
from academy_ml.deploy.launch.config import AgentSpec, Deployment
from academy_ml.exceptions import ConfigError

__all__ = [
    "build_agent",
    "build_endpoint",
    "check_agents",
    "import_object",
    "knowledge_factory",
    "use_python_path",
]


def import_object(path: str, where: str) -> Any:
    """Import the class or function ``pkg.mod.Name``.

    Raises:
        ConfigError: It cannot be imported (``where`` says which key named it).
    """
    try:
        return resolve_task(path)
    except (ImportError, ValueError) as error:
        raise ConfigError(f"{where}: cannot import {path!r}: {error}") from None


def use_python_path(deployment: Deployment) -> None:
    """Put the deployment's ``python_path`` on ``sys.path`` and on ``PYTHONPATH`` (for workers).

    (Parsl's scripts on ``PATH``: :class:`~academy_ml.compute.placement.ParslEndpoint`.)
    """
    entries = [str(p) for p in deployment.settings.python_path]
    for entry in reversed(entries):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [*entries, *(p for p in current if p not in entries)]
    )


def _build_value(value: Any, where: str) -> Any:
    """Tables with a ``class`` key become objects (recursively); the rest stays data."""
    if isinstance(value, Mapping):
        built = {k: _build_value(v, f"{where}.{k}") for k, v in value.items()}
        if "class" not in built:
            return built
        factory = import_object(str(built.pop("class")), f"{where}.class")
        try:
            return factory(**built)
        except Exception as error:
            raise ConfigError(f"{where}: {type(error).__name__}: {error}") from None
    if isinstance(value, list):
        return [_build_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def _no_endpoint(
    deployment: Deployment, name: str, where: str, specs: Mapping[str, Any]
) -> ConfigError:
    known = ", ".join(sorted(specs)) or "none"
    return ConfigError(f"{where}: no endpoint {name!r} in {deployment.registry} (known: {known})")


def build_endpoint(deployment: Deployment, name: str, where: str) -> Endpoint:
    """Open the registry's endpoint ``name``.

    Raises:
        ConfigError: The registry has no such endpoint.
    """
    specs = load_registry(deployment.registry)
    if name not in specs:
        raise _no_endpoint(deployment, name, where, specs)
    spec = specs[name]
    if isinstance(spec, ParslSpec):
        return _parsl_endpoint(deployment, name, spec)
    return spec.build(name) if not isinstance(spec, GlobusComputeSpec) else spec.build(name, None)


def _parsl_endpoint(deployment: Deployment, name: str, spec: ParslSpec) -> Endpoint:
    """A Parsl endpoint whose run directory (and Parsl's log) is in the deployment's logs.

    Unless the registry sets ``run_dir``: ``<logs>/parsl/NNN/``, where Parsl
    writes ``parsl.log`` (its kernel's log, at DEBUG as Parsl does) beside
    the interchange's and the workers' logs.
    """
    if spec.run_dir is None:
        spec = spec.model_copy(update={"run_dir": str(deployment.log_dir / "parsl")})
    config = spec.parsl_config(name)
    config.initialize_logging = True  # Parsl's own log file, which the spec leaves off
    return ParslEndpoint(name, config)


def check_agents(deployment: Deployment) -> None:
    """Check every agent's class, init arguments and handles before anything launches.

    Arguments are checked against the ``__init__`` signatures along the class's
    MRO (a ``**kwargs`` is taken to be passed up, as Academy agents do) and
    their annotations; tables that build an object (a ``class`` key) are
    checked when they are built.

    Raises:
        ConfigError: A class cannot be imported or is no Agent, takes no
            argument of that name, the value does not fit its annotation, or
            a placement names an endpoint the registry lacks.
        RegistryError: The registry is unreadable or invalid.
    """
    placed = [spec for spec in deployment.agents.values() if spec.placement is not None]
    known = load_registry(deployment.registry) if placed else {}
    for spec in placed:
        assert spec.placement is not None
        where = f"{spec.file}: placement"
        for key, name in [("endpoint", spec.placement.endpoint)] + [
            ("backups", backup) for backup in spec.placement.backups
        ]:
            if name not in known:
                raise _no_endpoint(deployment, name, f"{where}.{key}", known)
    for spec in deployment.agents.values():
        where = f"{spec.file}: agent"
        cls = _agent_class(spec, where)
        accepted, open_ended = _init_parameters(cls)
        arguments = {**{f"init.{k}": (k, v) for k, v in spec.agent.init.items()}}
        arguments.update({f"handles.{k}": (k, None) for k in spec.agent.handles})
        for key, (name, value) in arguments.items():
            if name not in accepted:
                if open_ended:
                    continue
                raise ConfigError(f"{where}.{key}: {cls.__name__} takes no argument {name!r}")
            annotation = accepted[name]
            if key.startswith("init.") and annotation is not None and not _builds_object(value):
                _check_value(value, annotation, f"{where}.{key}", cls.__name__)


def _agent_class(spec: AgentSpec, where: str) -> type[Agent]:
    cls = import_object(spec.agent.class_, f"{where}.class")
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise ConfigError(f"{where}.class: {spec.agent.class_} is not an Academy Agent")
    return cls


def _init_parameters(cls: type) -> tuple[dict[str, Any], bool]:
    """Keyword arguments ``cls(...)`` accepts, with their annotations (None: unknown).

    Returns:
        The arguments, and whether more are accepted (a ``**kwargs`` nobody named).
    """
    accepted: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object:
            return accepted, False
        try:
            parameters = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return accepted, True  # a builtin: nothing to go by
        hints = _hints(init)
        for name, parameter in list(parameters.items())[1:]:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if parameter.kind is not parameter.POSITIONAL_ONLY:
                accepted.setdefault(name, hints.get(name))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return accepted, False
    return accepted, True


def _hints(function: Any) -> dict[str, Any]:
    """Resolved annotations of ``function``; one that cannot be resolved is left out."""
    try:
        return typing.get_type_hints(function)
    except Exception:  # a name imported only for type checkers: resolve one by one
        hints = {}
        namespace = getattr(function, "__globals__", {})
        for name, text in getattr(function, "__annotations__", {}).items():
            try:
                one = SimpleNamespace(__annotations__={name: text}, __globals__=namespace)
                hints[name] = typing.get_type_hints(one)[name]
            except Exception:
                continue
        return hints


def _builds_object(value: Any) -> bool:
    if isinstance(value, Mapping):
        return "class" in value or any(_builds_object(v) for v in value.values())
    if isinstance(value, list):
        return any(_builds_object(v) for v in value)
    return False


def _check_value(value: Any, annotation: Any, where: str, owner: str) -> None:
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(
            annotation, config=ConfigDict(arbitrary_types_allowed=True)
        )
    except Exception:
        return  # an annotation pydantic cannot check: the class will
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        problem = error.errors()[0]["msg"]
        raise ConfigError(
            f"{where}: {owner} expects {_name(annotation)}, got {shown} ({problem})"
        ) from None
    except Exception:
        return  # e.g. isinstance against a Protocol that is not runtime-checkable


def _name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def knowledge_factory(
    deployment: Deployment, memory: KnowledgeBase | None = None
) -> KnowledgeFactory:
    """What the deployment's agents open their knowledge base with.

    Args:
        deployment: A deployment keeping its knowledge in Redis (agents then
            connect under the deployment's name), in a SQLite file (each
            agent connects to it) or in memory.
        memory: An in-process knowledge base the agents share instead of the
            deployment's SQLite or in-memory one (a caller's, to read after
            the run); ignored for a Redis one.

    Raises:
        ConfigError: ``memory`` is not an in-memory knowledge base.
    """
    url = deployment.knowledge_url
    if url is not None:
        return RedisKnowledge(url, deployment.settings.name)
    if memory is not None:
        if not isinstance(memory, InMemoryKnowledgeBase):
            raise ConfigError(
                f"{deployment.file}: an embedded run shares an InMemoryKnowledgeBase, "
                f"not a {type(memory).__name__}"
            )
        return InMemoryKnowledge(memory)
    path = deployment.knowledge_path
    return InMemoryKnowledge() if path is None else SqliteKnowledge(path)


def build_agent(
    deployment: Deployment,
    spec: AgentSpec,
    handles: Mapping[str, Handle[Any]],
    knowledge: KnowledgeFactory,
) -> Agent:
    """Instantiate the agent ``spec`` describes.

    Args:
        deployment: The deployment the agent belongs to.
        spec: Its spec.
        handles: Handles to every agent of the deployment, by name.
        knowledge: Opens the shared knowledge base (see :func:`knowledge_factory`).

    Raises:
        ConfigError: The class, an object or the endpoint cannot be built, or
            the class refuses the arguments (the message says which file).
    """
    where = f"{spec.file}: agent"
    cls = _agent_class(spec, where)
    kwargs: dict[str, Any] = {
        key: _build_value(value, f"{where}.init.{key}") for key, value in spec.agent.init.items()
    }
    kwargs.update({arg: handles[target] for arg, target in spec.agent.handles.items()})
    kwargs.update(
        knowledge=knowledge,
        name=spec.agent.name,
        checkpoint_interval_s=deployment.settings.checkpoint_interval_s,
    )
    if spec.strategies is not None:
        kwargs["strategies"] = spec.strategies
    opened: list[Endpoint] = []
    if spec.placement is not None:
        where = f"{spec.file}: placement"
        opened.append(build_endpoint(deployment, spec.placement.endpoint, f"{where}.endpoint"))
        kwargs.update(endpoint=opened[0], owns_endpoints=True)
        if spec.placement.backups:
            kwargs["backups"] = {
                name: build_endpoint(deployment, name, f"{where}.backups")
                for name in spec.placement.backups
            }
            opened.extend(kwargs["backups"].values())
    try:
        agent: Agent = cls(**kwargs)
    except Exception as error:
        for endpoint in opened:
            endpoint.close()
        raise ConfigError(
            f"{where}: {spec.agent.class_}: {type(error).__name__}: {error}"
        ) from None
    return agent
