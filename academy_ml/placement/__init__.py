"""Placement: which endpoint runs a batch, and getting its result back exactly once.

* :mod:`~academy_ml.placement.endpoints`: the :class:`Endpoint` protocol and
  its kinds (local pool, Parsl, Globus Compute).
* :mod:`~academy_ml.placement.registry`: endpoints from ``configs/*.toml``.
* :mod:`~academy_ml.placement.affinity`: ``node key -> endpoint`` records, in
  memory or in Redis.
* :mod:`~academy_ml.placement.placer`: cache affinity, then load; fail-over;
  every outcome recorded.
"""

from __future__ import annotations

from academy_ml.placement.affinity import AffinityStore, InMemoryAffinity, RedisAffinity
from academy_ml.placement.endpoints import (
    RUN_BATCH,
    Endpoint,
    GlobusComputeEndpoint,
    LocalEndpoint,
    ParslEndpoint,
    Scalable,
    TaskFunction,
    resolve_task,
)
from academy_ml.placement.placer import (
    PUT_DATASET,
    Outcome,
    PlacementError,
    PlacementRequest,
    PlacementResult,
    Placer,
    Policy,
)
from academy_ml.placement.registry import (
    EndpointSpec,
    GlobusComputeSpec,
    LocalSpec,
    ParslSpec,
    PlacementSettings,
    RegistryError,
    build_placer,
    load_placement_settings,
    load_registry,
)

__all__ = [
    "PUT_DATASET",
    "RUN_BATCH",
    "AffinityStore",
    "Endpoint",
    "EndpointSpec",
    "GlobusComputeEndpoint",
    "GlobusComputeSpec",
    "InMemoryAffinity",
    "LocalEndpoint",
    "LocalSpec",
    "Outcome",
    "ParslEndpoint",
    "ParslSpec",
    "PlacementError",
    "PlacementRequest",
    "PlacementResult",
    "PlacementSettings",
    "Placer",
    "Policy",
    "RedisAffinity",
    "RegistryError",
    "Scalable",
    "TaskFunction",
    "build_placer",
    "load_placement_settings",
    "load_registry",
    "resolve_task",
]
