"""Deployment configs (``configs/*.toml``) and agent specs (``agents/*.toml``).

A deployment names its exchange, its knowledge base and the agent specs to
launch (paths relative to the config file)::

    [deployment]
    name = "mofa"                       # knowledge-base prefix and run name
    exchange = "local"                  # Academy's in-process exchange, or redis://...
    knowledge = "sqlite"                # runinfo/<name>/knowledge.sqlite beside this file, or
                                        # "sqlite:PATH", "exchange" (the exchange's Redis),
                                        # redis://..., "memory" (gone with the process)
    agents = ["../agents/planner.toml", "../agents/analysis.toml", "../agents/generation.toml"]
    python_path = ["../examples"]       # importable by the agents and their endpoints
    stop_with = "planner"               # ends when its strategies stop and the ledger drains
    log_level = "INFO"                  # DEBUG, INFO, WARNING or ERROR (`up --log-level`)
    logs = "runinfo/mofa"               # up's, the hosts' and Parsl's logs (this default)

An agent spec names the class, its init arguments (a table with a ``class``
key is built as an object), handles to other agents, its strategies and where
its work runs (an endpoint of the registry)::

    [agent]
    class = "academy_ml.agents.AnalysisAgent"
    name = "analysis"
    [agent.init]
    evaluator = { class = "academy_ml.agents.FunctionCalls", function = "mofa.simulate.evaluate" }
    [agent.handles]
    planner = "planner"
    [placement]
    endpoint = "local-parsl"

Both are checked by pydantic; every error names the file, the key and the
problem (:class:`~academy_ml.exceptions.ConfigError`). Overrides
``NAME.KEY=VALUE`` (``deployment.exchange=redis://...``,
``planner.budget=64``, ``analysis.placement.endpoint=polaris``) are applied
before validation; values are read as TOML values when they parse as one,
else as strings.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from academy_ml.agents.strategies.spec import parse_strategies
from academy_ml.core.resp import Address
from academy_ml.exceptions import ConfigError, StrategyError

__all__ = ["AgentSpec", "Deployment", "load_agent_spec", "load_deployment", "parse_overrides"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AgentSection(_Strict):
    """The ``[agent]`` table."""

    class_: str = Field(alias="class", pattern=r"^[\w.]+\.\w+$")
    name: str = Field(min_length=1, pattern=r"^[\w-]+$")
    init: dict[str, Any] = {}
    handles: dict[str, str] = {}


class PlacementSection(_Strict):
    """The ``[placement]`` table: where the agent's work runs."""

    endpoint: str = Field(min_length=1)
    #: Registry endpoints the agent may redirect to (its ``backups``).
    backups: list[str] = []


class AgentSpec(_Strict):
    """One agent spec file."""

    agent: AgentSection
    strategies: list[dict[str, Any]] | None = None
    placement: PlacementSection | None = None
    file: Path = Path()


class DeploymentSection(_Strict):
    """The ``[deployment]`` table."""

    name: str = Field("academy-ml", min_length=1, pattern=r"^[\w-]+$")
    exchange: str = "local"
    knowledge: str = "sqlite"
    agents: list[Path] = Field(min_length=1)
    python_path: list[Path] = []
    registry: Path | None = None
    stop_with: str | None = None
    #: Agents in host processes of their own (default: with a Redis exchange).
    processes: bool | None = None
    checkpoint_interval_s: float = Field(5.0, gt=0)
    #: Level of the deployment's logs (``up``'s, its hosts' and Parsl's files).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Where those logs go (relative to the config file; default: :attr:`Deployment.run_dir`).
    logs: Path | None = None

    @field_validator("exchange", "knowledge")
    @classmethod
    def _redis_url_parses(cls, value: str) -> str:
        # Checked here, so a bad URL parameter names the file and the key
        # rather than surfacing when the first connection is made.
        if value.startswith(("redis://", "rediss://", "unix://")):
            try:
                Address.parse(value)
            except OSError as error:  # a TLS file named by the URL
                raise ValueError(f"cannot use the URL's TLS files: {error}") from None
        return value

    @model_validator(mode="after")
    def _coherent(self) -> DeploymentSection:
        if self.exchange != "local" and not self.exchange.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError(f"exchange must be 'local' or a redis:// URL, got {self.exchange!r}")
        if self.knowledge not in ("sqlite", "memory", "exchange") and not self.knowledge.startswith(
            ("redis://", "rediss://", "unix://", "sqlite:")
        ):
            raise ValueError(
                "knowledge must be 'sqlite', 'sqlite:PATH', 'memory', 'exchange' or a redis:// "
                f"URL, got {self.knowledge!r}"
            )
        if self.knowledge == "sqlite:":
            raise ValueError("knowledge = 'sqlite:' names no file (sqlite:PATH)")
        if self.knowledge == "exchange" and self.exchange == "local":
            raise ValueError("knowledge = 'exchange' needs a Redis exchange")
        if self.processes and self.exchange == "local":
            raise ValueError("processes = true needs a Redis exchange")
        if self.knowledge == "memory" and self.exchange != "local":
            raise ValueError(
                "knowledge = 'memory' cannot be shared by agents in separate processes: "
                "use 'sqlite', 'exchange' or a redis:// URL"
            )
        return self


class Deployment(BaseModel):
    """A loaded deployment: its settings, file and agent specs by name."""

    model_config = ConfigDict(frozen=True)

    file: Path
    settings: DeploymentSection
    agents: dict[str, AgentSpec]
    #: The ``NAME.KEY=VALUE`` overrides it was loaded with (hosts load it the same way).
    overrides: tuple[str, ...] = ()

    @property
    def knowledge_url(self) -> str | None:
        """The knowledge base's Redis URL, or None for a SQLite or in-process one."""
        if self.settings.knowledge == "memory" or self.knowledge_path is not None:
            return None
        return (
            self.settings.exchange
            if self.settings.knowledge == "exchange"
            else self.settings.knowledge
        )

    @property
    def knowledge_path(self) -> Path | None:
        """The knowledge base's SQLite file, or None for a Redis or in-process one.

        ``knowledge = "sqlite"`` keeps it in the deployment's directory,
        ``runinfo/<name>/`` beside the config file; ``"sqlite:PATH"`` names
        it (relative to the config file).
        """
        knowledge = self.settings.knowledge
        if knowledge == "sqlite":
            return self.run_dir / "knowledge.sqlite"
        if knowledge.startswith("sqlite:"):
            return (self.file.parent / Path(knowledge[7:]).expanduser()).absolute()
        return None

    @property
    def run_dir(self) -> Path:
        """The deployment's directory, ``runinfo/<name>/`` beside the config file (absolute)."""
        return (self.file.parent / "runinfo" / self.settings.name).absolute()

    @property
    def log_dir(self) -> Path:
        """Where ``up``, its hosts and Parsl write logs (``logs``, else :attr:`run_dir`)."""
        if self.settings.logs is None:
            return self.run_dir
        return (self.file.parent / self.settings.logs.expanduser()).absolute()

    @property
    def registry(self) -> Path:
        """The endpoint registry (the config file itself unless ``registry`` names one)."""
        return self.settings.registry or self.file

    @property
    def processes(self) -> bool:
        """Agents run in processes of their own (a Redis exchange), not threads of one."""
        if self.settings.processes is not None:
            return self.settings.processes
        return self.settings.exchange != "local"


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` strings as ``{NAME: {KEY: value}}``.

    Raises:
        ConfigError: An item is not of that form.
    """
    parsed: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, text = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not name or not key:
            raise ConfigError(f"override {item!r}: expected NAME.KEY=VALUE")
        try:
            value: Any = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        parsed.setdefault(name, {})[key] = value
    return parsed


def load_deployment(path: str | Path, overrides: Sequence[str] = ()) -> Deployment:
    """Load a deployment config and the agent specs it names.

    Raises:
        ConfigError: A file is missing, unreadable or invalid, an override
            names an unknown agent, or a handle names an agent not deployed.
    """
    file = Path(path)
    changes = parse_overrides(overrides)
    data = _read(file)
    table = data.get("deployment", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{file}: deployment: expected a table ([deployment]), got {table!r:.40}")
    section = {**table, **changes.pop("deployment", {})}
    settings = _validate(DeploymentSection, section, file, "deployment")
    settings = settings.model_copy(
        update={
            "agents": [file.parent / p for p in settings.agents],
            "python_path": [(file.parent / p).resolve() for p in settings.python_path],
            "registry": None if settings.registry is None else file.parent / settings.registry,
        }
    )
    agents: dict[str, AgentSpec] = {}
    for spec_file in settings.agents:
        spec = load_agent_spec(spec_file)
        if spec.agent.name in agents:
            raise ConfigError(f"{spec_file}: agent.name: {spec.agent.name!r} is deployed twice")
        agents[spec.agent.name] = spec
    for name, values in changes.items():
        if name not in agents:
            raise ConfigError(f"override {name}.*: no agent {name!r} in {file}")
        spec = agents[name]
        endpoint = values.pop("placement.endpoint", None)
        init = {**spec.agent.init, **values}
        update: dict[str, Any] = {"agent": spec.agent.model_copy(update={"init": init})}
        if endpoint is not None:
            update["placement"] = PlacementSection(endpoint=str(endpoint))
        agents[name] = spec.model_copy(update=update)
    for spec in agents.values():
        for argument, target in spec.agent.handles.items():
            if target not in agents:
                raise ConfigError(
                    f"{spec.file}: agent.handles.{argument}: no agent {target!r} in {file}"
                )
    if settings.stop_with is not None and settings.stop_with not in agents:
        raise ConfigError(f"{file}: deployment.stop_with: no agent {settings.stop_with!r}")
    return Deployment(file=file, settings=settings, agents=agents, overrides=tuple(overrides))


def load_agent_spec(file: Path) -> AgentSpec:
    """Load one agent spec file (strategies checked too).

    Raises:
        ConfigError: The file is missing, unreadable or invalid.
    """
    spec: AgentSpec = _validate(AgentSpec, _read(file), file, "")
    if spec.strategies is not None:
        try:
            parse_strategies(spec.strategies)
        except StrategyError as error:
            raise ConfigError(f"{file}: {error}") from None
    return spec.model_copy(update={"file": file})


def _read(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{file}: {error}") from None


def _validate(
    model: type[_Strict] | type[AgentSpec], data: Mapping[str, Any], file: Path, where: str
) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            key = ".".join(str(part) for part in (where, *detail["loc"]) if part != "")
            message = str(detail["msg"]).removeprefix("Value error, ")
            if detail["type"] == "extra_forbidden":
                message = "unknown setting"
            elif detail["type"] == "missing":
                message = "required"
            problems.append(f"{file}: {key or 'file'}: {message}")
        raise ConfigError("; ".join(problems)) from None
