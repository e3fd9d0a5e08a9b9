"""The endpoint registry: endpoints and placement settings from TOML files.

A registry is a TOML file, or a directory of them (``configs/``; files
named ``*.example.toml`` there are skipped), with one table per endpoint
under ``endpoints`` and an optional ``placement`` table::

    [placement]
    redis_url = "redis://localhost:6379/0"   # affinity records in Redis
    attempts = 3
    timeout_s = 600

    [endpoints.laptop]
    kind = "local"
    workers = 2
    processes = true

    [endpoints.cluster]
    kind = "parsl"
    provider = "slurm"
    partition = "compute"
    max_blocks = 4
    workers_per_node = 8
    cache_dir = "/local/scratch/academy-ml"
    worker_init = "source /opt/academy-ml/bin/activate"

    [endpoints.polaris]
    kind = "globus_compute"
    endpoint_id = "2c3f5a57-7b0e-4c9f-9d2a-7e0f3b1f6a11"

A Parsl entry (:class:`ParslSpec`) is also what ``academy-ml endpoint render``
writes for a kit (``endpoint.toml``): copy it into the registry directory.

Other tables (the exchange, agents...) are left to their own loaders. Every
value is checked by pydantic; an error names the file, the key and the
problem: ``configs/x.toml: endpoints.hpc.max_blocks: must be >= 1``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from academy_ml.compute.placement.endpoints import (
    Endpoint,
    GlobusComputeEndpoint,
    LocalEndpoint,
)
from academy_ml.compute.placement.parsl_spec import ParslSpec
from academy_ml.exceptions import RegistryError

if TYPE_CHECKING:
    from academy_ml.compute.placement.placer import Placer, Policy

__all__ = [
    "EndpointSpec",
    "GlobusComputeSpec",
    "LocalSpec",
    "ParslSpec",
    "PlacementSettings",
    "RegistryError",
    "build_placer",
    "load_placement_settings",
    "load_registry",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalSpec(_Spec):
    """A pool on the client's own machine."""

    kind: Literal["local"]
    workers: int = Field(2, ge=1, description="pool size")
    processes: bool = Field(False, description="worker processes (spawn) instead of threads")
    cache_dir: str | None = Field(None, description="ACADEMY_ML_CACHE_DIR of the workers")

    @model_validator(mode="after")
    def _cache_needs_processes(self) -> LocalSpec:
        if self.cache_dir is not None and not self.processes:
            raise ValueError("cache_dir needs processes = true (threads share the client's)")
        return self

    def build(self, name: str) -> Endpoint:
        """A :class:`LocalEndpoint` named ``name``."""
        env = {"ACADEMY_ML_CACHE_DIR": self.cache_dir} if self.cache_dir else None
        return LocalEndpoint(name, workers=self.workers, processes=self.processes, env=env)


class GlobusComputeSpec(_Spec):
    """A Globus Compute endpoint, by UUID."""

    kind: Literal["globus_compute"]
    endpoint_id: UUID
    user_endpoint_config: dict[str, Any] | None = Field(
        None, description="values for a multi-user endpoint's template"
    )
    batch_size: int = Field(128, ge=1, description="most tasks per submission request")

    def build(self, name: str, client: Any = None) -> Endpoint:
        """A :class:`GlobusComputeEndpoint` named ``name``.

        Args:
            name: the endpoint's name.
            client: a ``globus_compute_sdk.Client`` (default: a new one).
        """
        return GlobusComputeEndpoint(
            name,
            str(self.endpoint_id),
            client=client,
            user_endpoint_config=self.user_endpoint_config,
            batch_size=self.batch_size,
        )


EndpointSpec = Annotated[LocalSpec | ParslSpec | GlobusComputeSpec, Field(discriminator="kind")]


class PlacementSettings(_Spec):
    """How the placer places: the ``[placement]`` table."""

    policy: Literal["affinity", "round_robin"] = "affinity"
    redis_url: str | None = Field(None, description="keep affinity records in this Redis")
    prefix: str = Field("academy-ml", min_length=1, description="Redis key prefix")
    affinity_ttl_s: float = Field(24 * 3600.0, gt=0, description="how long records live")
    attempts: int | None = Field(None, ge=1, description="most attempts per batch")
    timeout_s: float | None = Field(None, gt=0, description="give an attempt up after this")


class _File(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    endpoints: dict[str, EndpointSpec] = Field(default_factory=dict)
    placement: PlacementSettings | None = None


def load_registry(path: str | Path) -> dict[str, EndpointSpec]:
    """The endpoints of a registry file, or of every ``*.toml`` in a directory.

    Raises:
        RegistryError: a file is unreadable or invalid, or two files define
            the same endpoint; the message names the file and the key.
    """
    found: dict[str, EndpointSpec] = {}
    origin: dict[str, Path] = {}
    for file, parsed in _load(Path(path)):
        for name, spec in parsed.endpoints.items():
            if name in found:
                raise RegistryError(f"{file}: endpoints.{name}: already defined in {origin[name]}")
            found[name], origin[name] = spec, file
    return found


def load_placement_settings(path: str | Path) -> PlacementSettings:
    """The ``[placement]`` table of a registry (defaults where there is none).

    Raises:
        RegistryError: as :func:`load_registry`, or two files have one.
    """
    settings: tuple[Path, PlacementSettings] | None = None
    for file, parsed in _load(Path(path)):
        if parsed.placement is not None:
            if settings is not None:
                raise RegistryError(f"{file}: placement: already defined in {settings[0]}")
            settings = (file, parsed.placement)
    return settings[1] if settings else PlacementSettings()


def build_placer(path: str | Path, *, client: Any = None) -> Placer[Any]:
    """A placer over every endpoint of a registry, with its placement settings.

    Args:
        path: a registry file or directory.
        client: the ``globus_compute_sdk.Client`` for Globus Compute
            endpoints (default: a new one each).
    """
    from academy_ml.compute.placement.affinity import AffinityStore, InMemoryAffinity, RedisAffinity
    from academy_ml.compute.placement.placer import Placer

    specs = load_registry(path)
    settings = load_placement_settings(path)
    endpoints: list[Endpoint] = []
    try:
        for name, spec in specs.items():
            endpoint = (
                spec.build(name, client)
                if isinstance(spec, GlobusComputeSpec)
                else spec.build(name)
            )
            endpoints.append(endpoint)
    except BaseException:
        for endpoint in endpoints:
            endpoint.close()
        raise
    affinity: AffinityStore
    if settings.redis_url is not None:
        affinity = RedisAffinity(settings.redis_url, settings.prefix, ttl_s=settings.affinity_ttl_s)
    else:
        affinity = InMemoryAffinity(settings.affinity_ttl_s)
    policy: Policy = settings.policy
    return Placer(
        endpoints, affinity, policy=policy, attempts=settings.attempts, timeout_s=settings.timeout_s
    )


def _load(path: Path) -> list[tuple[Path, _File]]:
    if path.is_dir():
        files = sorted(f for f in path.glob("*.toml") if not f.name.endswith(".example.toml"))
    elif path.exists():
        files = [path]
    else:
        raise RegistryError(f"{path}: no such file or directory")
    return [(file, _parse(file)) for file in files]


def _parse(file: Path) -> _File:
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RegistryError(f"{file}: {error}") from None
    try:
        parsed = _File.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{file}: {_where(detail['loc'])}: {_message(detail)}" for detail in error.errors()
        ]
        raise RegistryError("; ".join(problems)) from None
    return parsed


def _where(loc: tuple[int | str, ...]) -> str:
    # pydantic puts the union member's tag in the path: endpoints.hpc.parsl.max_blocks
    parts = [str(part) for part in loc]
    if (
        len(parts) > 2
        and parts[0] == "endpoints"
        and parts[2] in {"local", "parsl", "globus_compute"}
    ):
        del parts[2]
    return ".".join(parts)


def _message(detail: Any) -> str:
    kind, message = detail["type"], str(detail["msg"])
    if kind == "union_tag_invalid":
        return "kind must be one of 'local', 'parsl', 'globus_compute'"
    if kind == "union_tag_not_found":
        return "missing kind (one of 'local', 'parsl', 'globus_compute')"
    if kind == "extra_forbidden":
        return "unknown setting"
    if kind == "missing":
        return "required"
    if kind.startswith("greater_than") or kind.startswith("less_than"):
        bound = next(iter(detail.get("ctx", {}).values()), None)
        symbol = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}.get(kind, "<=")
        return f"must be {symbol} {bound}"
    return message.removeprefix("Value error, ")
